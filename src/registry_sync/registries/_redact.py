"""Personal data out of stored pages (pure): a registry page can publish contacts' and
investigators' names, phones, e-mails and addresses; a snapshot keeps the page as evidence but
never those values. The request row keeps the sha256 of the bytes as served, so what was served
stays provable, and the stored copy is marked `redacted`.

Rules, label-driven: the value cell after a `<th>` whose label names personal data is emptied
to `[redacted]`; in a table whose header row names a personal column (`主要研究者`, the
principal investigator), that column's cells are emptied. Everything else is kept as served.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Sequence
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from registry_sync.charset import decode_text, meta_charset
from registry_sync.registries._html import node_text

REDACTED = "[redacted]"


def redact_html(
    body: bytes,
    labels: Sequence[str] = (),
    columns: Sequence[str] = (),
    content_type: str = "",
    *,
    tables: Sequence[str] = (),
) -> bytes:
    """`body` with the value cells of personal labels and columns replaced, every cell but
    the heading row of the tables matching the CSS selectors `tables` (a contacts table), and
    any e-mail address anywhere, as UTF-8."""
    tree = LexborHTMLParser(decode_text(body, content_type))
    for selector in tables:
        for table in tree.css(selector):
            for row in table.css("tr")[1:]:
                for td in row.css("td"):
                    _blank(td)
    for th in tree.css("th"):
        label = node_text(th)
        if any(token in label for token in labels):
            value = _next_cell(th)
            if value is not None:
                _blank(value)
    for table in tree.css("table"):
        _blank_columns(table, columns)
    return scrub_emails(tree.html or "").encode("utf-8")


def _next_cell(th: LexborNode) -> LexborNode | None:
    node = th.next
    while node is not None and node.tag not in ("td", "th"):
        node = node.next
    return node if node is not None and node.tag == "td" else None


def _blank(cell: LexborNode) -> None:
    if node_text(cell):
        for child in list(cell.iter(include_text=True)):
            child.decompose()
        cell.insert_child(REDACTED)


def _blank_columns(table: LexborNode, columns: Sequence[str]) -> None:
    rows = table.css("tr")
    if not rows:
        return
    header = [node_text(c) for c in rows[0].iter() if c.tag in ("th", "td")]
    personal = [i for i, text in enumerate(header) if any(col in text for col in columns)]
    for row in rows[1:]:
        cells = [c for c in row.iter() if c.tag in ("th", "td")]
        for i in personal:
            if i < len(cells):
                _blank(cells[i])


# What an e-mail address looks like anywhere in a page, an attribute (`mailto:`) included.
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_EMAIL_BYTES = re.compile(EMAIL.pattern.encode())


def scrub_emails(text: str) -> str:
    """Every e-mail address in `text` replaced by `[redacted]`."""
    return EMAIL.sub(REDACTED, text)


def redact_page(
    body: bytes,
    labels: Sequence[str],
    *,
    label_cells: str = "th",
    elements: str = "",
) -> bytes:
    """`body` without the values of personal labels, and without any e-mail address, in the
    page's own encoding (so that its `<meta charset>` still tells the truth).

    A cell matching `label_cells` (CSS) whose text contains one of `labels` has every value
    cell after it in its row emptied, up to the next label cell (a jRCT row gives a name in
    Japanese and in English); nodes matching `elements` (CSS) are emptied outright."""
    codec = _bom_codec(body) or meta_charset(body) or "utf-8"
    tree = LexborHTMLParser(body.decode(codec, errors="replace"))
    label_ids = {node.mem_id for node in tree.css(label_cells)}
    for cell in tree.css(label_cells):
        if any(token in node_text(cell) for token in labels):
            node = cell.next
            while node is not None and node.mem_id not in label_ids:
                if node.tag in ("td", "th"):
                    _blank(node)
                node = node.next
    if elements:
        for node in tree.css(elements):
            _blank(node)
    return scrub_emails(tree.html or "").encode(codec, errors="xmlcharrefreplace")


def redact_xml(body: bytes, tags: Sequence[str]) -> bytes:
    """An XML export with the text of the personal elements `tags` (`<email>`, `<telephone>`)
    and any e-mail address replaced, byte for byte elsewhere (no re-serialisation)."""
    names = "|".join(re.escape(t) for t in tags)
    element = re.compile(rb"<(" + names.encode() + rb")>[^<]+</\1>")
    body = element.sub(lambda m: b"<%s>%s</%s>" % (m[1], REDACTED.encode(), m[1]), body)
    return _EMAIL_BYTES.sub(REDACTED.encode(), body)


def redact_json(body: bytes, containers: Sequence[str], fields: Sequence[str]) -> bytes:
    """A JSON answer with personal fields replaced, wherever they are: inside any object or
    list under a key in `containers` (`centralContacts`), every string but `role` and
    `affiliation`; any key in `fields` (`investigatorFullName`); any e-mail address in any
    string. Written back as canonical JSON (sorted keys, compact), so redacting twice gives
    the same bytes. A body that is not JSON (a block or error page) loses its e-mail addresses
    only."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _EMAIL_BYTES.sub(REDACTED.encode(), body)
    return redact_doc(doc, containers, fields)


def redact_doc(doc: Any, containers: Sequence[str], fields: Sequence[str]) -> bytes:
    """`redact_json` of a document already parsed: the same canonical bytes."""
    return canonical_json(redact_walk(doc, containers, fields))


def canonical_json(doc: Any) -> bytes:
    """Sorted keys, compact, UTF-8: the bytes every redacted JSON body is written as."""
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def redact_walk(doc: Any, containers: Sequence[str], fields: Sequence[str]) -> Any:
    """A parsed JSON document with the personal fields replaced (a new object; walking an
    already redacted one changes nothing)."""
    return _walk(doc, frozenset(containers), frozenset(fields), inside=False)


_KEPT_IN_CONTACTS = frozenset({"role", "affiliation", "organization", "status"})


def _walk(value: Any, containers: frozenset[str], fields: frozenset[str], inside: bool) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in fields and isinstance(item, str):
                out[key] = REDACTED
            elif inside and isinstance(item, str):
                out[key] = scrub_emails(item) if key in _KEPT_IN_CONTACTS else REDACTED
            else:
                out[key] = _walk(item, containers, fields, inside or key in containers)
        return out
    if isinstance(value, list):
        return [_walk(v, containers, fields, inside) for v in value]
    if isinstance(value, str):
        return REDACTED if inside else scrub_emails(value)
    return value


def _bom_codec(body: bytes) -> str | None:
    if body.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    return None
