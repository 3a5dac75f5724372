"""China drug-trial registry (CTR, chinadrugtrials.org.cn) replay routes (`/ctr`), behaving as
REGISTRIES.md §4 and openrd's 2026 measurements say the site does:

- **Anti-bot gate.** A request without the gate's cookie (`FSSBBIl1UgzbN7N80S`) is answered
  HTTP 202 with the real challenge page (`recorded/challenge_…`) and a `Set-Cookie`; the same
  request carrying the cookie gets the real page. (The live gate sets two cookies; this server
  sets one, enough for a client that keeps what it was given. No script is needed, as openrd
  found.) Tests rehearse a gate that keeps challenging with a fault.
- `POST /clinicaltrials.searchlist.dhtml` (GET too, as the header search box uses it): with
  `reg_no`, the one-row answer for that registration number when the set has one, else the
  real zero-results page (`共 <i>0</i> 条记录`, `暂无数据`), as the site answers an unknown
  number. Without `reg_no`, the recorded list page for the same `keywords`/`state`/
  `currentpage` (the two 2025 KRAS pages), else 404 `text/plain` (not in the set).
- `GET /clinicaltrials.searchlistdetail.dhtml?id=<32-hex>` (or the site's own form POST with
  `id`): the recorded detail page with that id, else 404 `text/plain`.

Key spaces: `reg_no` (primary: the detail pages, by their 登记号), `detail_id` (the same pages
by the 32-hex id of their export form), `search_reg_no` (one-row search answers by the
registration number in their form), `list_query` (list pages by `keywords|state|currentpage`)
and `page` (`zero`, `challenge`). Every `*.html` under `ctr/` is sorted by what it is. Files
under a `synthetic/` folder are built by hand (the one-row answer for CTR20252821, derived from
the real zero-results page): they are labelled RECONSTRUCTED, never recorded.
"""

from __future__ import annotations

import re
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from registry_sync.charset import decode_text
from registry_sync.model import Origin
from registry_sync.replay.routes import (
    HTML,
    KeySpaces,
    RegistryRoutes,
    ReplayRequest,
    ReplaySetError,
    Reply,
    Route,
    Store,
    StoredDoc,
    add_doc,
    load_doc,
    text_reply,
)

CHALLENGE_COOKIE = "FSSBBIl1UgzbN7N80S"  # the name the live gate uses
REG_NO, DETAIL_ID, SEARCH, LIST, PAGE = "reg_no", "detail_id", "search_reg_no", "list_query", "page"
SYNTHETIC_DIR = "synthetic"
_READ_AND_POST = frozenset({"GET", "HEAD", "POST"})


def index_ctr(folder: Path) -> KeySpaces:
    """Every page under `folder`, filed by what it is; an unrecognised page is an error."""
    spaces: KeySpaces = {REG_NO: {}, DETAIL_ID: {}, SEARCH: {}, LIST: {}, PAGE: {}}
    for path in sorted(folder.rglob("*.html")) if folder.is_dir() else []:
        doc = load_doc(folder, path)
        if SYNTHETIC_DIR in path.relative_to(folder).parts[:-1]:
            doc = StoredDoc(doc.body, path, Origin.RECONSTRUCTED)  # built by hand
        for space, key in _keys(doc):
            add_doc(spaces[space], key, doc)
    return spaces


def _keys(doc: StoredDoc) -> list[tuple[str, str]]:
    """(space, key) pairs a page is filed under."""
    text = decode_text(doc.body, "text/html")
    root = LexborHTMLParser(text)
    if "searchDetailTable" in text:
        reg_no = _basic_reg_no(root)
        detail_id = _export_id(root)
        if reg_no and detail_id:
            return [(REG_NO, reg_no), (DETAIL_ID, detail_id)]
    elif "searchTable" in text:
        if "暂无数据" in text:
            return [(PAGE, "zero")]
        reg_no = _form_value(root, "#reg_no")
        if reg_no:
            return [(SEARCH, reg_no)]
        return [(LIST, _query_key(_form_fields(root)))]
    elif re.search(r"<script[^>]*\br=['\"]m['\"]", text):
        return [(PAGE, "challenge")]
    raise ReplaySetError(f"{doc.path}: not a CTR detail, search, zero or challenge page")


def _basic_reg_no(root: LexborHTMLParser) -> str | None:
    for th in root.css("div#collapseOne th"):
        if th.text(strip=True) == "登记号" and th.next is not None:
            cell = th.next if th.next.tag == "td" else th.next.next
            return cell.text(strip=True) if cell is not None else None
    return None


def _export_id(root: LexborHTMLParser) -> str | None:
    """The 32-hex id the detail page's own export form posts (the page's detail id)."""
    values = (i.attributes.get("value") or "" for i in root.css('form input[name="id"]'))
    return next((v for v in values if re.fullmatch(r"[0-9a-f]{32}", v)), None)


def _form_value(root: LexborHTMLParser, selector: str) -> str | None:
    node = root.css_first(selector)
    return (node.attributes.get("value") or "").strip() or None if node is not None else None


def _form_fields(root: LexborHTMLParser) -> dict[str, str]:
    """The `#searchfrm` values a list page echoes (its query), selects by their chosen option."""
    fields = {
        str(i.attributes.get("name")): (i.attributes.get("value") or "").strip()
        for i in root.css("#searchfrm input[name]")
    }
    for select in root.css("#searchfrm select[name]"):
        chosen = select.css_first("option[selected]")
        fields[str(select.attributes.get("name"))] = (
            (chosen.attributes.get("value") or "") if chosen is not None else ""
        )
    return fields


def _query_key(fields: dict[str, str]) -> str:
    return "|".join(fields.get(k, "") for k in ("keywords", "state", "currentpage"))


def _params(request: ReplayRequest) -> dict[str, str]:
    return request.form if request.method == "POST" else dict(request.query)


def _gate(store: Store, request: ReplayRequest) -> Reply | None:
    """The 202 challenge for a request without the gate's cookie; None to let it through."""
    if request.cookies.get(CHALLENGE_COOKIE):
        return None
    challenge = store.lookup(PAGE, "challenge")
    if challenge is None:
        return None  # a set without the challenge page has no gate
    cookie = f"{CHALLENGE_COOKIE}=replay-gate-cookie; Path=/; HttpOnly"
    return Reply(202, challenge.body, HTML, {"Set-Cookie": cookie})


def _search(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
    if gate := _gate(store, request):
        return gate
    params = _params(request)
    reg_no = params.get("reg_no", "").strip().upper()
    if reg_no:
        doc = store.lookup(SEARCH, reg_no) or store.lookup(PAGE, "zero")
    else:
        doc = store.lookup(LIST, _query_key(params))
    if doc is None:
        return text_reply(404, "the replay set has no CTR search answer for this query")
    return Reply(200, doc.body, HTML)


def _detail(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
    if gate := _gate(store, request):
        return gate
    detail_id = _params(request).get("id", "").strip().lower()
    doc = store.lookup(DETAIL_ID, detail_id)
    if doc is None:
        return text_reply(404, f"the replay set has no CTR detail page with id {detail_id!r}")
    return Reply(200, doc.body, HTML)


ROUTES = RegistryRoutes(
    key="ctr",
    base_path="/ctr",
    index=index_ctr,
    routes=(
        Route(re.compile(r"/clinicaltrials\.searchlist\.dhtml"), _search, _READ_AND_POST),
        Route(re.compile(r"/clinicaltrials\.searchlistdetail\.dhtml"), _detail, _READ_AND_POST),
    ),
    spaces=(REG_NO, DETAIL_ID, SEARCH, LIST, PAGE),
    normalize=str.upper,
)
