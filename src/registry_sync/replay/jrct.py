"""jRCT replay routes (`/jrct`), behaving as REGISTRIES.md §2 says the site does:

- `GET /latest-detail/{jRCT ID}`: the recorded Japanese page of that trial; for an ID the set
  does not hold, **HTTP 500** with the site's generic page (jRCT's answer to an unknown ID),
  here `jrct/synthetic/error-500_generic-page_unknown-id_SYNTHETIC.html` (derived from the real
  page; see `data/replay/jrct/SOURCES.md`).
- `GET /en-latest-detail/{jRCT ID}`: no English page is recorded. For a trial the set holds,
  404 `text/plain` saying so (the live site would show it; we do not pretend); for any other
  ID the same HTTP 500 generic page.

The set is every `*.html` under `jrct/` outside `synthetic/` folders, filed by the value of its
`臨床研究実施計画番号` (Trial ID) row. One key space, `jrct_id`; a page under
`jrct/reconstructed/` has origin RECONSTRUCTED.
"""

from __future__ import annotations

import re
from pathlib import Path

from registry_sync import ids
from registry_sync.charset import decode_text
from registry_sync.replay.routes import (
    HTML,
    KeySpaces,
    RegistryRoutes,
    ReplayRequest,
    Reply,
    Route,
    Store,
    StoredDoc,
    add_doc,
    load_doc,
    text_reply,
)

JRCT_ID = "jrct_id"  # the one key space
SYNTHETIC_DIR = "synthetic"
GENERIC_500 = "synthetic/error-500_generic-page_unknown-id_SYNTHETIC.html"
# The trial-ID row: a `<th>` whose text is the label (JA, or EN from notes), then its `<td>`.
_ID_ROW = re.compile(
    r"(?:臨床研究実施計画番号|Trial ID)\s*(?:</label>\s*)?</th>\s*<td[^>]*>\s*(jRCT[0-9a-z]\d{9})",
    re.S,
)
# Only if the set lacks the synthetic page: a minimal generic page, labelled as built here.
_FALLBACK_500 = (
    b"<!DOCTYPE html><html><head><title>jRCT</title></head><body>"
    b"<!-- synthetic generic error page built by the registry-sync replay server --></body></html>"
)


def index_jrct(folder: Path) -> KeySpaces:
    """Every recorded detail page under `folder`, by the jRCT ID its Trial ID row shows."""
    docs: dict[str, StoredDoc] = {}
    for path in sorted(folder.rglob("*.html")) if folder.is_dir() else []:
        if SYNTHETIC_DIR in path.relative_to(folder).parts[:-1]:
            continue  # fault pages, not trials
        body = path.read_bytes()
        match = _ID_ROW.search(decode_text(body, "text/html"))
        if match is not None:
            add_doc(docs, match[1], load_doc(folder, path, body))
    return {JRCT_ID: docs}


def _generic_500(store: Store) -> Reply:
    """Quirk: jRCT answers an ID it does not have with HTTP 500 and its generic page."""
    path = store.folder / GENERIC_500
    body = path.read_bytes() if path.is_file() else _FALLBACK_500
    return Reply(500, body, HTML)


def _latest_detail(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
    doc = store.lookup(JRCT_ID, ids.normalize_id(match["id"]))
    return _generic_500(store) if doc is None else Reply(200, doc.body, HTML)


def _en_latest_detail(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
    trial_id = ids.normalize_id(match["id"])
    if store.lookup(JRCT_ID, trial_id) is None:
        return _generic_500(store)
    return text_reply(404, f"the replay set has no English page for {trial_id}")


ROUTES = RegistryRoutes(
    key="jrct",
    base_path="/jrct",
    index=index_jrct,
    routes=(
        Route(re.compile(r"/latest-detail/(?P<id>[^/]+)"), _latest_detail),
        Route(re.compile(r"/en-latest-detail/(?P<id>[^/]+)"), _en_latest_detail),
    ),
    spaces=(JRCT_ID,),
    normalize=ids.normalize_id,
)
