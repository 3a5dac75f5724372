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
import io
import re
from collections.abc import Iterator, Mapping
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
    """Read, decode and check the curated CSV; raise CuratedTableError on structural problems."""
    data = path.read_bytes()
    text = _decode(path, data)
    records = _records(path, text)
    header_line, header = next(records, (0, []))
    if not any(cell.strip() for cell in header):
        raise CuratedTableError(str(path), "the file is empty; expected a CSV header line", line=1)
    columns = _check_header(path, header)
    rows = tuple(_parse_row(path, line, cells, columns) for line, cells in records)
    if not rows:
        raise CuratedTableError(str(path), "the file has a header but no rows", line=header_line)
    return CuratedTable(path=path, sha256=hashlib.sha256(data).hexdigest(), rows=rows)


def _decode(path: Path, data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CuratedTableError(
            str(path),
            f"not UTF-8: byte 0x{data[exc.start]:02x} cannot be decoded; re-save the file as UTF-8",
            line=line,
        ) from exc
    return text.removeprefix("\ufeff")


def _records(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """Non-blank CSV records with the line each starts on."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CuratedTableError(str(path), f"malformed CSV: {exc}", line=start) from exc
        if cells:
            yield start, cells
        start = reader.line_num + 1


def _check_header(path: Path, header: list[str]) -> dict[str, int]:
    names = [name.strip() for name in header]
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    for name in names:
        if names.count(name) > 1:
            raise CuratedTableError(
                str(path), "the header repeats this column", line=1, column=name
            )
        if name not in known:
            raise CuratedTableError(
                str(path), f"unknown column; expected some of {sorted(known)}", line=1, column=name
            )
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise CuratedTableError(
            str(path), f"the header lacks required column(s) {listed}", line=1, column=missing[0]
        )
    return {name: index for index, name in enumerate(names)}


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
        problem = f"{text!r} is not {span}"
        raise CuratedTableError(str(path), problem, line=line, column=column)
    return number
