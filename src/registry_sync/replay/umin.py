"""UMIN-CTR replay routes (`/umin`), behaving as REGISTRIES.md §5 says the registry does.

- `GET /cgi-open-bin/ctr/index.cgi?sort=03&function=04&ctrno=UMIN…`: the recorded search page
  for that UMIN ID; for an ID the set lacks, the registry's "no hit" answer: HTTP 200 with the
  search page and no result row (`synthetic/index_search_no-hit_UMIN000099999_SYNTHETIC.html`,
  derived from the real page; its `ctrno` hidden field is set to the ID asked for). Other query
  parameters (`page`, `title_s`, ...) are a 400: the replay implements the ID search only.
- `GET /cgi-open-bin/ctr/ctr_view.cgi?recptno=R…`: the recorded view page, or 404 `text/plain`
  (what UMIN answers for an unknown receipt number was not observed; the adapter only follows
  receipt numbers a search page linked, so this answer is the replay's own choice).

Both hosts of the registry table (center6 and upload.umin.ac.jp) serve these paths; the replay
serves both from this one base. The recorded search page links `./ctr_view.cgi?…` (relative);
should a page link an absolute `https://upload.umin.ac.jp/…` URL, the adapter moves only its
scheme and host to the search page's base (`registries.umin.view_link`), so it lands here too.

Pages are served as `text/html` with no charset, as the header's charset was not recorded:
the pages' own declarations decide (a bogus `<meta charset="ja">`, then UTF-8).

Key spaces: `umin_id` (primary: search pages, by the UMIN ID of their result row) and `recptno`
(view pages, by their `受付番号`). Files under `synthetic/` are templates, never indexed.
"""

from __future__ import annotations

import re
from pathlib import Path

from registry_sync.registries._html import document, find_value, label_rows, node_text
from registry_sync.replay.routes import (
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

UMIN_ID = "umin_id"
RECPTNO = "recptno"
SYNTHETIC_DIR = "synthetic"
NO_HIT = Path(SYNTHETIC_DIR) / "index_search_no-hit_UMIN000099999_SYNTHETIC.html"
NO_HIT_ID = b"UMIN000099999"  # the ID the no-hit template names; replaced by the one asked for
HTML_NO_CHARSET = "text/html"
SEARCH_PARAMS = {"sort": "03", "function": "04"}

_RESULT_ID = re.compile(r"^(UMIN\d{9})\b")


def index_umin(folder: Path) -> KeySpaces:
    """Search pages by the UMIN ID of their result row; view pages by their receipt number."""
    spaces: KeySpaces = {UMIN_ID: {}, RECPTNO: {}}
    for path in sorted(folder.rglob("*.html")) if folder.is_dir() else []:
        if SYNTHETIC_DIR in path.relative_to(folder).parts:
            continue
        doc = load_doc(folder, path)
        rows = label_rows(document(doc.body))
        if receipt := find_value(rows, "受付番号"):
            add_doc(spaces[RECPTNO], receipt, doc)
        for umin_id in _result_ids(doc):
            add_doc(spaces[UMIN_ID], umin_id, doc)
    return spaces


def _result_ids(doc: StoredDoc) -> list[str]:
    """The UMIN IDs of a search page's result rows (a row that links a view page)."""
    found = []
    for tr in document(doc.body).css("tr"):
        if tr.css_first("a[href*='ctr_view.cgi?recptno=']") is None:
            continue
        first = tr.css("td")[1:2]  # ICDR clip, then `UMIN ID<br>disclosure date`
        if first and (match := _RESULT_ID.match(node_text(first[0]))):
            found.append(match[1])
    return found


def _search(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
    query = dict(request.query)
    ctrno = query.pop("ctrno", "").strip().upper()
    if not ctrno or query != SEARCH_PARAMS:
        return text_reply(400, "the replay implements index.cgi?sort=03&function=04&ctrno= only")
    doc = store.lookup(UMIN_ID, ctrno)
    if doc is not None:
        return Reply(200, doc.body, HTML_NO_CHARSET)
    template_path = store.folder / NO_HIT
    if not template_path.is_file():
        return text_reply(404, f"the replay set lacks its no-hit page umin/{NO_HIT}")
    template = template_path.read_bytes()
    return Reply(200, template.replace(NO_HIT_ID, ctrno.encode()), HTML_NO_CHARSET)


def _view(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
    receipt = request.query.get("recptno", "").strip().upper()
    doc = store.lookup(RECPTNO, receipt)
    if doc is None:
        return text_reply(404, f"no view page for recptno={receipt!r} in the replay set")
    return Reply(200, doc.body, HTML_NO_CHARSET)


ROUTES = RegistryRoutes(
    key="umin",
    base_path="/umin",
    index=index_umin,
    routes=(
        Route(re.compile(r"/cgi-open-bin/ctr/index\.cgi"), _search),
        Route(re.compile(r"/cgi-open-bin/ctr/ctr_view\.cgi"), _view),
    ),
    spaces=(UMIN_ID, RECPTNO),
    normalize=str.upper,
)
