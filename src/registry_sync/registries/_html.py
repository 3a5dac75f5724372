"""The HTML kit every page-scraping adapter shares (pure): decode, parse, and read label -> value
rows, so an adapter reads as a list of labels and vocabularies, not as parsing code.

Parsing is selectolax's lexbor engine (a well-kept, typed HTML5 parser); bytes are decoded with
`charset.decode_text` (header, BOM or meta). Values are whitespace-collapsed, never otherwise
changed: a full-width `Ⅱ` stays `Ⅱ` (vocabulary tables map it), an NBSP becomes a space.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser, LexborNode

from registry_sync.charset import decode_text

_SPACES = re.compile(r"[\s\u00a0\u3000]+")
_LABEL_END = re.compile(r"[\s:：]+$")


def document(body: bytes, content_type: str = "") -> LexborHTMLParser:
    """The page as a tree, decoded by its declared charset."""
    return LexborHTMLParser(decode_text(body, content_type))


def clean(text: str | None) -> str:
    """Whitespace (NBSP and the ideographic space included) collapsed to single spaces."""
    return _SPACES.sub(" ", text or "").strip()


def label_key(text: str | None) -> str:
    """A label as printed, without its trailing colon (`注册号：` -> `注册号`), casefolded."""
    return _LABEL_END.sub("", clean(text)).casefold()


def node_text(node: LexborNode | None, separator: str = " ") -> str:
    """A node's text, its parts joined by `separator`, whitespace collapsed ("" for None)."""
    if node is None:
        return ""
    return clean(node.text(separator=separator, strip=True))


@dataclass(frozen=True)
class Row:
    """One `<tr>`: its label (the `<th>`, or the first cell) and the value cells after it."""

    label: str
    values: tuple[str, ...]

    @property
    def value(self) -> str:
        return " ".join(v for v in self.values if v)


def label_rows(root: LexborHTMLParser | LexborNode, selector: str = "tr") -> list[Row]:
    """Every row under `root` that has a label cell and at least one value cell."""
    rows = []
    for tr in root.css(selector):
        cells = [c for c in tr.iter() if c.tag in ("th", "td")]
        if len(cells) < 2:
            continue
        rows.append(Row(node_text(cells[0]), tuple(node_text(c) for c in cells[1:])))
    return rows


def find_row(rows: Iterable[Row], *labels: str, startswith: bool = False) -> Row | None:
    """The first row whose label is one of `labels` (compared by `label_key`); with
    `startswith`, a label that begins with one of them (`研究名称 / Scientific Title`)."""
    wanted = [label_key(label) for label in labels]
    for row in rows:
        key = label_key(row.label)
        if key in wanted or (startswith and any(key.startswith(w) for w in wanted)):
            return row
    return None


def find_value(rows: Sequence[Row], *labels: str, startswith: bool = False) -> str | None:
    """The joined value cells of the first matching row; None when no row has that label."""
    row = find_row(rows, *labels, startswith=startswith)
    return row.value if row is not None else None
