"""ChiCTR replay routes (`/chictr`), behaving as REGISTRIES.md §3 says the site does:

- `GET /searchproj.html?regno=ChiCTR…&btngo=btn` (other, empty, search fields are accepted):
  the search page whose rows include that registration number (hyphen-blind), else the
  no-hit page (`synthetic/searchproj_no-hit_SYNTHETIC.html`: the real page, rows removed).
  Without `regno` it is a 400: the replay only answers look-ups by registration number.
- `GET /showproj.html?proj=N`: the detail page filed under N, else what ChiCTR shows for a
  project it does not have, 200 "不存在或已超过当天最大查看次数" (the daily-cap page, which the
  adapter must read as blocked: the registry cannot tell the two apart).

Key spaces: `regno` (primary: registration number -> detail page, from each page's 注册号),
`proj` (proj number -> detail page: `_proj<N>_` in the file name; the recorded 2025 page never
printed its proj number, so it is filed under its registration number instead, and the
synthetic one-row search answer for it links `showproj.html?proj=ChiCTR2400084905`), and
`search` (registration number -> the search page listing it). The real search page's rows
point at proj numbers with no recorded detail page: those answer the daily-cap page.
The WAF pages under `synthetic/` are not served by a route; tests inject them as faults.
The XML export is not indexed (the adapter never fetches it).
"""

from __future__ import annotations

import re
from pathlib import Path

from selectolax.lexbor import LexborNode

from registry_sync import ids
from registry_sync.registries._html import document, label_key, node_text
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

REGNO, PROJ, SEARCH = "regno", "proj", "search"
NO_HIT = "synthetic/searchproj_no-hit_SYNTHETIC.html"
NO_PROJECT = "synthetic/showproj_daily-cap-or-no-such-project_SYNTHETIC.html"
_PROJ_IN_NAME = re.compile(r"_proj(\d+)_")


def index_chictr(folder: Path) -> KeySpaces:
    """Detail pages by regno and proj; search pages by each regno their rows list."""
    spaces: KeySpaces = {REGNO: {}, PROJ: {}, SEARCH: {}}
    for path in sorted(folder.rglob("*.html")) if folder.is_dir() else []:
        doc = load_doc(folder, path)
        tree = document(doc.body, HTML)
        if tree.css_first("td.left_title") is not None:
            regno = _regno_of(tree.css("td.left_title"))
            if regno:
                add_doc(spaces[REGNO], _bare(regno), doc)
                found = _PROJ_IN_NAME.search(path.name)
                add_doc(spaces[PROJ], found[1] if found else regno, doc)
        elif tree.css_first("#data-total") is not None:
            for row in tree.css("tr"):
                for td in row.css("td"):
                    if ids.ID_PATTERNS["chictr"].fullmatch(node_text(td)):
                        add_doc(spaces[SEARCH], _bare(node_text(td)), doc)
    return spaces


def _regno_of(titles: list[LexborNode]) -> str | None:
    """The value cell after the `注册号` label."""
    for title in titles:
        labels = [label_key(node_text(p)) for p in title.css("p")]
        if label_key("注册号") in labels:
            value = title.next
            while value is not None and value.tag != "td":
                value = value.next
            return node_text(value) or None
    return None


def _bare(trial_id: str) -> str:
    return ids.normalize_id(trial_id).replace("-", "").upper()


def _page(store: Store, name: str) -> Reply:
    path = store.folder / name
    if not path.is_file():
        return text_reply(404, f"this replay set has no chictr/{name}")
    return Reply(200, path.read_bytes(), HTML)


def _search(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
    regno = request.query.get("regno", "").strip()
    if not regno:
        return text_reply(400, "the replay server answers searches by regno only")
    doc: StoredDoc | None = store.lookup(SEARCH, _bare(regno))
    return Reply(200, doc.body, HTML) if doc is not None else _page(store, NO_HIT)


def _detail(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
    doc = store.lookup(PROJ, request.query.get("proj", "").strip())
    return Reply(200, doc.body, HTML) if doc is not None else _page(store, NO_PROJECT)


ROUTES = RegistryRoutes(
    key="chictr",
    base_path="/chictr",
    index=index_chictr,
    routes=(
        Route(re.compile(r"/searchproj\.html"), _search),
        Route(re.compile(r"/showproj\.html"), _detail),
    ),
    spaces=(REGNO, PROJ, SEARCH),
    normalize=_bare,
)
