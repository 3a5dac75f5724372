"""Load the review's table (data/curated/*.csv) and check its structure.

The CSV is a faithful transcription, errors included. Only a structurally broken file is an
error here (bad encoding, missing column, ragged row, empty required cell), raised as
`CuratedTableError` naming file, line and column. What a row *says* is never judged here: a
malformed ID gives `registry=None`, an unreadable phase `phases=None`, an unreadable start
`start_date=None`, and the reconcile step reports them.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from registry_sync.errors import CuratedTableError
from registry_sync.ids import registry_of
from registry_sync.model import CuratedRow, PartialDate

REQUIRED_COLUMNS = (
    "table", "product", "cell_type", "indication", "sponsor", "trial_id", "phase", "nation",
    "start",
)  # fmt: skip
OPTIONAL_COLUMNS = ("row", "refs", "note")
NON_EMPTY_COLUMNS = ("trial_id", "product", "phase", "start")

# Bounds that keep a hostile file's check linear and its memory bounded. The review's table is
# 11 KB and 105 rows; its longest cell is under 200 characters.
MAX_BYTES = 100_000_000
MAX_ROWS = 100_000  # as expectations/curated.json's row-count expectation
MAX_CELL_CHARS = 10_000

# Roman numerals as Unicode prints them (the review's Table 2 has a full-width "Ⅲ").
UNICODE_ROMAN = {
    "Ⅰ": "I", "Ⅱ": "II", "Ⅲ": "III", "Ⅳ": "IV",
    "ⅰ": "I", "ⅱ": "II", "ⅲ": "III", "ⅳ": "IV",
}  # fmt: skip

# One phase as a review prints it (sub-phase letter removed) -> canonical phase (model.PHASES).
REVIEW_PHASES = {
    "0": "EARLY_PHASE1",
    "I": "PHASE1", "1": "PHASE1",
    "II": "PHASE2", "2": "PHASE2",
    "III": "PHASE3", "3": "PHASE3",
    "IV": "PHASE4", "4": "PHASE4",
}  # fmt: skip

_PHASE_PART = re.compile(r"(?P<num>[IV]+|\d)(?P<sub>[a-cA-C])?")
_PHASE_SEPARATORS = re.compile(r"\s*[/\-–]\s*")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_START = re.compile(r"(?P<y>\d{4})(?:(?P<sep>[.\-])(?P<m>\d{1,2})(?:(?P=sep)(?P<d>\d{1,2}))?)?")


@dataclass(frozen=True)
class CuratedTable:
    """The loaded table: where it came from, the checksum of its bytes, and its rows."""

    path: Path
    sha256: str  # of the file bytes
    rows: tuple[CuratedRow, ...]


def parse_review_phase(text: str) -> frozenset[str] | None:
    """`I/IIa` -> {PHASE1, PHASE2}; `Ⅲ` -> {PHASE3}; `0` -> {EARLY_PHASE1}; `IIT`, `` -> None."""
    ascii_text = "".join(UNICODE_ROMAN.get(ch, ch) for ch in text).strip()
    if not ascii_text:
        return None
    phases: set[str] = set()
    for part in _PHASE_SEPARATORS.split(ascii_text):
        match = _PHASE_PART.fullmatch(part)
        phase = REVIEW_PHASES.get(match["num"]) if match else None
        if phase is None:
            return None
        phases.add(phase)
    return frozenset(phases)


def parse_review_start(text: str) -> PartialDate | None:
    """`2021` -> year; `2025.3` -> March 2025; `2021-06-14` / `2021.6.14` -> day; else None."""
    match = _START.fullmatch(text.strip())
    if match is None:
        return None
    month, day = match["m"], match["d"]
    try:
        return PartialDate(
            int(match["y"]),
            int(month) if month is not None else None,
            int(day) if day is not None else None,
        )
    except ValueError:  # month 13, 2021-02-30
        return None


def load_curated(path: Path) -> CuratedTable:
    """Read, decode and check the curated CSV; raise CuratedTableError on structural problems.

    Linear in the file's size and bounded: at most MAX_BYTES are read, MAX_ROWS rows kept and
    MAX_CELL_CHARS characters a cell; the first problem found stops the load.
    """
    data = _read_capped(path)
    sha256 = hashlib.sha256(data).hexdigest()
    text = _decode(path, data)
    del data  # the text is all that is needed from here
    records = _records(path, text)
    header_line, header = next(records, (0, []))
    if not any(cell.strip() for cell in header):
        raise CuratedTableError(str(path), "the file is empty; expected a CSV header line", line=1)
    _check_cells(path, header_line, header, header)
    columns = _check_header(path, header)
    rows: list[CuratedRow] = []
    seen: dict[tuple[str, ...], int] = {}  # a row's cells -> the line it was first on
    for line, cells in records:
        if len(rows) == MAX_ROWS:
            raise CuratedTableError(
                str(path),
                f"more than {MAX_ROWS:,} rows; a review's table is not this long "
                "(is this the right file?)",
                line=line,
            )
        _check_cells(path, line, cells, header)
        rows.append(_parse_row(path, line, cells, columns))
        first = seen.setdefault(tuple(cells), line)
        if first != line:
            raise CuratedTableError(
                str(path), f"this row repeats line {first} cell for cell; delete one", line=line
            )
    if not rows:
        raise CuratedTableError(str(path), "the file has a header but no rows", line=header_line)
    return CuratedTable(path=path, sha256=sha256, rows=tuple(rows))


def _read_capped(path: Path) -> bytes:
    """The file's bytes, refusing more than MAX_BYTES (read no further: /dev/zero ends too)."""
    with path.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise CuratedTableError(
            str(path),
            f"the file is larger than {MAX_BYTES // 1_000_000} MB; a review's table is not this "
            "big (is this the right file?)",
        )
    return data


def _decode(path: Path, data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8")
        line = _line_of(prefix)
        line_start = max(data.rfind(b"\n", 0, exc.start), data.rfind(b"\r", 0, exc.start)) + 1
        column = _column_at(prefix)
        raise CuratedTableError(
            str(path),
            f"not UTF-8: byte 0x{data[exc.start]:02x} (byte {exc.start - line_start + 1} of the "
            "line) cannot be decoded; re-save the file as UTF-8",
            line=line,
            column=column,
        ) from exc
    return text.removeprefix("\ufeff")


def _column_at(prefix: str) -> str | None:
    """The header name of the cell that the text right after `prefix` belongs to, if known.
    Streams over `prefix` (a bad byte may sit at the end of a 100 MB file)."""
    header: list[str] | None = None
    last: list[str] = []
    try:
        for cells in csv.reader(_lines(prefix.removeprefix("\ufeff") + "\x01")):
            if cells:
                header = header if header is not None else cells
                last = cells
    except csv.Error:  # a cell beyond the csv module's limit before it: the line must do
        return None
    if header is None or last is header:
        return f"#{len(last)} of the header"
    return _header_name(header, len(last) - 1)


def _header_name(header: list[str], index: int) -> str:
    return _clip(header[index].strip()) if index < len(header) else f"#{index + 1}"


def _lines(text: str) -> Iterator[str]:
    """`text` split as `io.StringIO(text, newline="")` splits it, without its 4-byte-a-character
    copy of the whole text."""
    return (match.group() for match in _LINE.finditer(text))


def _records(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """Non-blank CSV records with the line each starts on."""
    reader = csv.reader(_lines(text), strict=True)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                problem = f"a cell is longer than {MAX_CELL_CHARS:,} characters (the cap)"
                column = _long_cell_column(text, start)
                raise CuratedTableError(str(path), problem, line=start, column=column) from exc
            raise CuratedTableError(str(path), f"malformed CSV: {exc}", line=start) from exc
        if cells:
            yield start, cells
        start = reader.line_num + 1


def _long_cell_column(text: str, line: int) -> str | None:
    """The header name of the first over-long cell of the record starting on `line`."""
    header = next((cells for cells in csv.reader(_lines(text)) if cells), [])
    breaks = itertools.islice(_LINE_BREAK.finditer(text), line - 2, None)
    end = next((match.end() for match in breaks), 0) if line > 1 else 0
    quoted, length, index = False, 0, 0
    while end < len(text) and length <= MAX_CELL_CHARS:
        char = text[end]
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            length, index = -1, index + 1
        length += 1
        end += 1
    return _header_name(header, index)


def _line_of(prefix: str) -> int:
    """The line the text right after `prefix` is on: CRLF, CR and LF each end a line, as in csv."""
    return prefix.count("\n") + prefix.count("\r") - prefix.count("\r\n") + 1


def _check_cells(path: Path, line: int, cells: list[str], header: list[str]) -> None:
    """No cell holds a NUL character or more than MAX_CELL_CHARS characters."""
    for index, cell in enumerate(cells):
        too_long = len(cell) > MAX_CELL_CHARS
        if not too_long and "\x00" not in cell:
            continue
        in_header = header is cells
        column = f"#{index + 1} of the header" if in_header else _header_name(header, index)
        if too_long:
            problem = f"the cell has {len(cell):,} characters; the cap is {MAX_CELL_CHARS:,}"
        else:
            at = cell.index("\x00") + 1
            problem = f"a NUL character (character {at} of the cell); the file is not plain text"
        raise CuratedTableError(str(path), problem, line=line, column=column)


def _check_header(path: Path, header: list[str]) -> dict[str, int]:
    names = [name.strip() for name in header]
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise CuratedTableError(
                str(path), "the header repeats this column", line=1, column=_clip(name)
            )
        seen.add(name)
        if name not in known:
            raise CuratedTableError(
                str(path),
                f"unknown column; expected some of {sorted(known)}",
                line=1,
                column=_clip(name),
            )
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise CuratedTableError(
            str(path), f"the header lacks required column(s) {listed}", line=1, column=missing[0]
        )
    return {name: index for index, name in enumerate(names)}


def _clip(text: str, limit: int = 60) -> str:
    """A cell's text short enough for a one-line message, its end marked when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse_row(path: Path, line: int, cells: list[str], columns: Mapping[str, int]) -> CuratedRow:
    if len(cells) != len(columns):
        raise CuratedTableError(
            str(path), f"the row has {len(cells)} cells, the header has {len(columns)}", line=line
        )
    value = {name: cells[index] for name, index in columns.items()}
    for name in NON_EMPTY_COLUMNS:
        if not value[name].strip():
            raise CuratedTableError(str(path), "empty cell; it is required", line=line, column=name)
    table = _int_cell(path, line, "table", value["table"], upper=99)
    row = _int_cell(path, line, "row", value["row"], upper=None) if value.get("row") else None
    return CuratedRow(
        line=line,
        table=table,
        row=row,
        product=value["product"],
        cell_type=value["cell_type"],
        indication=value["indication"],
        sponsor=value["sponsor"],
        trial_id=value["trial_id"],
        phase=value["phase"],
        nation=value["nation"],
        start=value["start"],
        refs=value.get("refs", ""),
        note=value.get("note", ""),
        registry=registry_of(value["trial_id"]),
        phases=parse_review_phase(value["phase"]),
        start_date=parse_review_start(value["start"]),
    )


def _int_cell(path: Path, line: int, column: str, text: str, *, upper: int | None) -> int:
    stripped = text.strip()
    number = int(stripped) if stripped.isascii() and stripped.isdigit() else 0
    if number < 1 or (upper is not None and number > upper):
        span = f"an integer from 1 to {upper}" if upper is not None else "a positive integer"
        problem = f"{_clip(text)!r} is not {span}"
        raise CuratedTableError(str(path), problem, line=line, column=column)
    return number


# --- bounded console output for `check` ------------------------------------------------------

MAX_LINES_PER_KIND = 20  # `registry-sync check --max-lines`
LINE_CHARS = 400  # a printed line is cut here, with a marker saying how much was cut


def printable(text: str, limit: int = LINE_CHARS) -> str:
    """`text` as one terminal-safe line: control characters (newlines, ESC, NUL) shown escaped,
    and cut at `limit` characters with a marker naming what was cut."""
    cut = len(text) - limit
    head = text[:limit] if cut > 0 else text
    safe = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in head)
    return safe + (f"…[{cut:,} more characters]" if cut > 0 else "")


def bounded_lines(
    items: Iterable[tuple[str, str]], per_kind: int = MAX_LINES_PER_KIND
) -> Iterator[str]:
    """(kind, text) pairs as printable lines, in their order, at most `per_kind` of each kind
    (0: all); then one "… and K more <kind>" line per kind that had more."""
    shown: Counter[str] = Counter()
    for kind, text in items:
        shown[kind] += 1
        if not per_kind or shown[kind] <= per_kind:
            yield printable(text)
    for kind, count in sorted(shown.items()):
        if per_kind and count > per_kind:
            yield f"… and {count - per_kind:,} more {printable(kind, 60)} (--max-lines to see more)"
