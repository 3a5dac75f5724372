"""Registry and review strings made safe for each place they are shown (pure).

Every string that comes from a registry page or the review's table is hostile until shown
through one of these: a `|` or a line break must not break a Markdown table row, raw HTML
(`<script>`, `<img onerror=…>`) must show as text, a link is made only for an http(s) URL,
and a terminal never receives a control character or an ANSI escape from a registry.

- `md` : inline Markdown text (one line; `& < > | \\ ` * [ ]` escaped, leading block syntax
  neutralised), for list items and table cells alike;
- `md_code` : a code span when the value can be one, else `md` text;
- `md_link` : `<url>` for an http(s) URL, else the value as `md` text (never a link);
- `console` : one line for a terminal, control characters and escape sequences removed;
- `text` : control characters and escape sequences removed, line breaks kept;
- `csv_cell` / `csv_cell_read` : a CSV cell no spreadsheet runs as a formula, and back.
"""

from __future__ import annotations

import re

# ANSI/VT escape sequences (CSI, OSC, and single-character escapes), then any other control
# character (C0 but tab/newline, DEL, C1) and the Unicode line and paragraph separators.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_MD_SPECIAL = re.compile(r"([\\`*\[\]|])")
_LEADING_BLOCK = re.compile(r"^(#{1,6}|[-+=])(?=\s|$)")
_LEADING_NUMBER = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")
_HTTP_URL = re.compile(r"https?://[^\s<>`|\\\"']+", re.IGNORECASE)


def text(value: object) -> str:
    """The value with escape sequences and control characters removed; line breaks (as
    `\\n`) and tabs kept, for a place that shows text as text (a Prefect table cell)."""
    cleaned = _ANSI.sub("", str(value)).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", cleaned)


def plain(value: object) -> str:
    """The value as one line of text: escape sequences and control characters removed,
    every run of whitespace (line breaks included) one space."""
    text = _ANSI.sub("", str(value))
    text = _CONTROL.sub(" ", text)
    return " ".join(text.split())


def console(value: object) -> str:
    """A registry or review string safe to print to a terminal (one line, no escapes)."""
    return plain(value)


def md(value: object) -> str:
    """Inline Markdown text that renders as exactly these characters, on one line."""
    text = plain(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _LEADING_BLOCK.sub(r"\\\1", text)
    return _LEADING_NUMBER.sub(r"\1\\\2", text)


def md_code(value: object) -> str:
    """`value` as a code span when it can be one (no backtick or `|`), else as `md` text."""
    text = plain(value)
    if not text or "`" in text or "|" in text:
        return md(text)
    return f"`{text}`"


def md_link(value: object) -> str:
    """An autolink `<url>` for a plain http(s) URL; anything else (`javascript:`, `data:`,
    a URL carrying quotes or brackets) is shown as text, never linked."""
    text = plain(value)
    if _HTTP_URL.fullmatch(text):
        return f"<{text}>"
    return md(text)


# A cell starting with one of these runs as a formula in Excel, LibreOffice and Sheets.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A CSV cell as text no spreadsheet runs as a formula: `=HYPERLINK(…)` is written
    `'=HYPERLINK(…)`. A cell that itself starts with `'` gets one more, so `csv_cell_read`
    gives back exactly the value (files we read again, like the decisions file)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith((*FORMULA_START, "'")) else text


def csv_cell_read(cell: str) -> str:
    """The value `csv_cell` wrote."""
    if cell.startswith("'") and cell[1:].startswith((*FORMULA_START, "'")):
        return cell[1:]
    return cell
