"""Personal data out of stored pages (pure): a registry page can publish contacts' and
investigators' names, phones, e-mails and addresses; a snapshot keeps the page as evidence but
never those values. The request row keeps the sha256 of the bytes as served, so what was served
stays provable, and the stored copy is marked `redacted`.

Rules, label-driven: the value cell after a `<th>` whose label names personal data is emptied
to `[redacted]`; in a table whose header row names a personal column (`主要研究者`, the
principal investigator), that column's cells are emptied. Everything else is kept as served.
"""

from __future__ import annotations

from collections.abc import Sequence

from selectolax.lexbor import LexborHTMLParser, LexborNode

from registry_sync.charset import decode_text
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
    """`body` with the value cells of personal labels and columns replaced, and every cell but
    the heading row of the tables matching the CSS selectors `tables` (a contacts table), as
    UTF-8."""
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
    return (tree.html or "").encode("utf-8")


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
