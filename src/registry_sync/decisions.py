"""Decisions that stick: findings the review's authors have accepted, kept beside their table.

An author who decides a finding needs no correction ("we name the sponsor by its parent
company") writes it down once, in `<curated stem>.decisions.csv` next to the review's table
(`data/curated/review_2025_hpsc.decisions.csv`; no file = no decisions), keyed by the finding's
stable key (`snapshot_schema.finding_key`: `kind:table:line:trial_id:field`):

    key,registry_value,reason,decided_on,decided_by
    sponsor_mismatch:1:4:NCT04363346:sponsor,"Masonic Cancer Center, ...",we name ...,2025-11-25,JS

`registry_value` is what the registry said when the author decided. A decision holds only
while the finding's registry value is the same (whitespace normalised): then the finding is
marked accepted (`accepted_reason`, `accepted_on`) and reports show it as such, night after
night. When the registry says something else the finding is live again, its message saying
"accepted on D for 'old'; the registry now says 'new'". A decision that matches no finding is
kept in the file and reported as a note, never dropped.

`apply`, `unmatched` and `summarise` are pure; `load_decisions` and `write_decision` do the
file I/O (a broken file is one error naming file, line and column, raised before a run
fetches or writes anything).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import difflib
import fcntl
import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from registry_sync import snapshot
from registry_sync.errors import CuratedTableError
from registry_sync.escape import csv_cell, csv_cell_read
from registry_sync.model import Finding
from registry_sync.snapshot_schema import finding_key

COLUMNS = ("key", "registry_value", "reason", "decided_on", "decided_by")
REQUIRED = ("key", "reason", "decided_on")
SUFFIX = ".decisions.csv"
KEY_PARTS = 5  # kind:table:line:trial_id:field


class DecisionsError(CuratedTableError):
    """The decisions file beside the review's table is broken (names file, line and column)."""


@dataclass(frozen=True)
class Decision:
    key: str
    registry_value: str  # as the author saw it; "" when the finding had none
    reason: str
    decided_on: str  # ISO date
    decided_by: str = ""
    line: int = 0  # where it is in the file (0: not from a file)


@dataclass(frozen=True)
class Decisions:
    """The decisions file as read: its path, sha256 (None: no file) and rows in file order."""

    path: Path
    sha256: str | None
    rows: tuple[Decision, ...] = ()

    def by_key(self) -> dict[str, Decision]:
        return {d.key: d for d in self.rows}


def decisions_path(curated_path: Path) -> Path:
    """`data/curated/review_2025_hpsc.csv` -> `data/curated/review_2025_hpsc.decisions.csv`."""
    return curated_path.with_name(curated_path.stem + SUFFIX)


def same_value(a: str | None, b: str | None) -> bool:
    """Equal once whitespace is normalised (None counts as empty)."""
    return " ".join((a or "").split()) == " ".join((b or "").split())


# --- pure ---------------------------------------------------------------------------------


def apply(findings: Iterable[Finding], decisions: Iterable[Decision]) -> list[Finding]:
    """Each finding with a decision for its key: accepted while the registry value is the one
    decided on; otherwise live, its message saying what was accepted and what changed."""
    chosen = {d.key: d for d in decisions}
    out = []
    for f in findings:
        d = chosen.get(finding_key(f))
        out.append(f if d is None else _decide(f, d))
    return out


def _decide(f: Finding, d: Decision) -> Finding:
    if same_value(f.registry_value, d.registry_value):
        extra = {**f.extra, "accepted_by": d.decided_by} if d.decided_by else f.extra
        return dataclasses.replace(
            f, accepted_reason=d.reason, accepted_on=d.decided_on, extra=extra
        )
    now = f.registry_value or ""
    note = f"accepted on {d.decided_on} for '{d.registry_value}'; the registry now says '{now}'"
    extra = {
        **f.extra,
        "reopened_on": d.decided_on,
        "reopened_value": d.registry_value,
        "reopened_reason": d.reason,
    }
    message = f"{f.message} — {note}" if f.message else note
    return dataclasses.replace(f, message=message, extra=extra, accepted_reason="", accepted_on="")


def unmatched(findings: Iterable[Finding], decisions: Iterable[Decision]) -> list[Decision]:
    """Decisions whose key no finding of this run has (kept in the file, reported)."""
    keys = {finding_key(f) for f in findings}
    return [d for d in decisions if d.key not in keys]


def summarise(decisions: Decisions, findings: Sequence[Finding]) -> dict[str, Any]:
    """What a snapshot's `_meta.decisions` records: the file, its sha256, what each did."""
    lost = unmatched(findings, decisions.rows)
    return {
        "path": str(decisions.path),
        "sha256": decisions.sha256,
        "count": len(decisions.rows),
        "accepted": sum(1 for f in findings if f.accepted_on),
        "reopened": sum(1 for f in findings if "reopened_on" in f.extra),
        "unmatched": [d.key for d in lost],
        "notes": [f"decision for {d.key} matches no finding this run" for d in lost],
    }


def close_keys(key: str, known: Iterable[str], limit: int = 5) -> list[str]:
    """Keys an author may have meant: the same trial's first, then the most alike."""
    known = sorted(set(known))
    parts = key.split(":")
    trial = parts[3] if len(parts) == KEY_PARTS else ""
    same_trial = [k for k in known if trial and k.split(":")[3:4] == [trial]]
    alike = difflib.get_close_matches(key, known, n=limit, cutoff=0.6)
    return list(dict.fromkeys([*same_trial, *alike]))[:limit]


def decide(
    findings: Mapping[str, Mapping[str, Any]], key: str, reason: str, on: str, by: str = ""
) -> Decision:
    """The decision to accept the finding `key` of a snapshot (`findings`: its rows by key) at
    its current registry value. An unknown key is a ValueError naming the closest keys."""
    row = findings.get(key)
    if row is None:
        near = close_keys(key, findings)
        hint = f"; close keys: {', '.join(near)}" if near else ""
        raise ValueError(f"no finding {key!r} in this snapshot{hint}")
    if not reason.strip():
        raise ValueError("a decision needs a reason (--reason)")
    if not _is_date(on):
        raise ValueError(f"{on!r} is not a date as YYYY-MM-DD")
    value = " ".join(str(row.get("registry_value") or "").split())
    return Decision(key, value, reason.strip(), on, by.strip())


def status(d: Decision, findings: Mapping[str, Mapping[str, Any]]) -> str:
    """What a decision does to a snapshot's findings: accepted, reopened (and why) or nothing."""
    row = findings.get(d.key)
    if row is None:
        return "matches no finding"
    now = row.get("registry_value")
    if same_value(now, d.registry_value):
        return "accepted"
    return f"reopened: accepted for '{d.registry_value}'; the registry now says '{now or ''}'"


# --- disk ---------------------------------------------------------------------------------


def load_decisions(path: Path) -> Decisions:
    """Read and check the decisions file; no file is no decisions. Raises DecisionsError."""
    if not path.exists():
        return Decisions(path, None)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DecisionsError(str(path), "not UTF-8; re-save the file as UTF-8", line=line) from exc
    records = _records(path, text)
    first = next(records, None)
    if first is None:
        return Decisions(path, hashlib.sha256(data).hexdigest())
    columns = _check_header(path, first[1])
    rows: dict[str, Decision] = {}
    for line, cells in records:
        d = _parse_row(path, line, cells, columns)
        if d.key in rows:
            raise DecisionsError(
                str(path),
                f"a second decision for {d.key!r} (the first is on line {rows[d.key].line}); "
                "keep one",
                line=line,
                column="key",
            )
        rows[d.key] = d
    return Decisions(path, hashlib.sha256(data).hexdigest(), tuple(rows.values()))


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
            raise DecisionsError(str(path), f"malformed CSV: {exc}", line=start) from exc
        if any(c.strip() for c in cells):
            yield start, cells
        start = reader.line_num + 1


def _check_header(path: Path, header: list[str]) -> dict[str, int]:
    names = [name.strip() for name in header]
    for name in names:
        if name not in COLUMNS:
            raise DecisionsError(
                str(path), f"unknown column; expected {', '.join(COLUMNS)}", line=1, column=name
            )
        if names.count(name) > 1:
            raise DecisionsError(str(path), "the header repeats this column", line=1, column=name)
    for name in REQUIRED:
        if name not in names:
            raise DecisionsError(str(path), "the header lacks this column", line=1, column=name)
    return {name: i for i, name in enumerate(names)}


def _parse_row(path: Path, line: int, cells: list[str], columns: Mapping[str, int]) -> Decision:
    if len(cells) != len(columns):
        raise DecisionsError(
            str(path), f"the row has {len(cells)} cells, the header has {len(columns)}", line=line
        )
    value = {name: csv_cell_read(cells[i].strip()) for name, i in columns.items()}
    for name in REQUIRED:
        if not value[name]:
            raise DecisionsError(str(path), "empty cell; it is required", line=line, column=name)
    problem = key_problem(value["key"])
    if problem:
        raise DecisionsError(str(path), problem, line=line, column="key")
    if not _is_date(value["decided_on"]):
        raise DecisionsError(
            str(path),
            f"{value['decided_on']!r} is not a date as YYYY-MM-DD",
            line=line,
            column="decided_on",
        )
    return Decision(
        key=value["key"],
        registry_value=value.get("registry_value", ""),
        reason=value["reason"],
        decided_on=value["decided_on"],
        decided_by=value.get("decided_by", ""),
        line=line,
    )


def key_problem(key: str) -> str:
    """Why `key` is not a finding key (`kind:table:line:trial_id:field`), or ""."""
    parts = key.split(":")
    if len(parts) != KEY_PARTS or not all(parts):
        return f"{key!r} is not a finding key (kind:table:line:trial_id:field)"
    if not (parts[1].isdigit() and parts[2].isdigit()):
        return f"{key!r}: table and line must be numbers (kind:table:line:trial_id:field)"
    return ""


def _is_date(text: str) -> bool:
    try:
        return len(text) == 10 and date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def write_decision(path: Path, decision: Decision) -> Decisions:
    """Add `decision` to the file (replacing one for the same key, in place), atomically.
    The file as it stands is read and checked first: a broken file is never overwritten."""
    if key_problem(decision.key):
        raise ValueError(key_problem(decision.key))
    if not decision.reason.strip():
        raise ValueError("a decision needs a reason")
    if not _is_date(decision.decided_on):
        raise ValueError(f"{decision.decided_on!r} is not a date as YYYY-MM-DD")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _writing(path):  # two `accept`s at once: each reads what the other wrote
        _write_with(path, decision)
    return load_decisions(path)


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """An exclusive lock on `.<name>.lock` beside the file for one read-modify-write (released
    by the OS if the process dies)."""
    with open(path.with_name(f".{path.name}.lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_with(path: Path, decision: Decision) -> None:
    current = load_decisions(path)
    rows = [d for d in current.rows if d.key != decision.key]
    at = next((i for i, d in enumerate(current.rows) if d.key == decision.key), len(rows))
    rows.insert(at, decision)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for d in rows:
        cells = (d.key, d.registry_value, d.reason, d.decided_on, d.decided_by)
        writer.writerow([csv_cell(c) for c in cells])  # a reason `=…` is no formula
    snapshot.write_text_atomic(path, buffer.getvalue())


__all__ = [
    "Decision",
    "Decisions",
    "DecisionsError",
    "apply",
    "decide",
    "decisions_path",
    "load_decisions",
    "status",
    "summarise",
    "unmatched",
    "write_decision",
]
