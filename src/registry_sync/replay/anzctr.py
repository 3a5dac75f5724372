"""ANZCTR replay routes (`/anzctr`), behaving as REGISTRIES.md §6 says the registry does.

- `GET /Trial/Registration/TrialReview.aspx?ACTRN=<14 digits>` (the digits without the `ACTRN`
  prefix): the recorded review page of that trial. For a trial the set lacks: HTTP 200 with the
  review page's shell and an empty Trial ID (`synthetic/TrialReview_not-found-shell_SYNTHETIC.html`,
  derived from the real page). ANZCTR's real answer for an unknown ACTRN has not been observed:
  this is the assumption the adapter's `is_not_found` makes, and the replay's own choice.
- Other parameters (`id=`, `isXml=true`) are a 400: the replay implements the ACTRN form only.

Pages are served as `text/html; charset=utf-8` (the recorded page declares `<meta charset=
"utf-8">`; its response headers were not recorded).

Key space: `actrn` (primary), by the page's own `ctl00_body_CXACTRNUMBER` span. Files under
`synthetic/` are never indexed: they are not recorded pages.
"""

from __future__ import annotations

import re
from pathlib import Path

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

ACTRN = "actrn"
SYNTHETIC_DIR = "synthetic"
NOT_FOUND = Path(SYNTHETIC_DIR) / "TrialReview_not-found-shell_SYNTHETIC.html"
_TRIAL_ID = re.compile(rb'id="ctl00_body_CXACTRNUMBER">\s*(ACTRN\d{14})\s*<')
_DIGITS = re.compile(r"\d{14}")


def index_anzctr(folder: Path) -> KeySpaces:
    """Every review page outside `synthetic/`, by the ACTRN its Trial ID span prints."""
    docs: dict[str, StoredDoc] = {}
    for path in sorted(folder.rglob("*.html")) if folder.is_dir() else []:
        if SYNTHETIC_DIR in path.relative_to(folder).parts:
            continue
        raw = path.read_bytes()
        match = _TRIAL_ID.search(raw)
        if match is not None:
            add_doc(docs, match[1].decode(), load_doc(folder, path, raw))
    return {ACTRN: docs}


def _review(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
    query = dict(request.query)
    digits = query.pop("ACTRN", "").strip()
    if query or not digits:
        return text_reply(400, "the replay implements TrialReview.aspx?ACTRN=<14 digits> only")
    doc = store.lookup(ACTRN, f"ACTRN{digits}") if _DIGITS.fullmatch(digits) else None
    if doc is not None:
        return Reply(200, doc.body, HTML)
    shell = store.folder / NOT_FOUND
    if not shell.is_file():
        return text_reply(404, f"the replay set lacks its not-found page anzctr/{NOT_FOUND}")
    return Reply(200, shell.read_bytes(), HTML)


ROUTES = RegistryRoutes(
    key="anzctr",
    base_path="/anzctr",
    index=index_anzctr,
    routes=(Route(re.compile(r"/Trial/Registration/TrialReview\.aspx"), _review),),
    spaces=(ACTRN,),
    normalize=str.upper,
)
