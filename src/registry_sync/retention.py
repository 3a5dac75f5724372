"""Verify snapshots against the payload store, and prune old snapshots and the bodies no
remaining snapshot names.

`verify` reads only (SQLite read-only opens): each snapshot's own integrity (`PRAGMA
integrity_check`, `finished_at` stamped, every record's payload named in `payloads`), every
inline body hashing to its sha256, and every body kept outside present in the store it names
and hashing to its sha256 once decompressed. One `Problem` line per fault.

`prune` must run under the run lock (`runlock.hold`): it deletes snapshots beyond the newest
`keep` of each kind (accepted ones per carry key, rejected ones together) except any a pointer
names, with their reports, then collects the bodies no remaining snapshot names. The snapshot
files go first: a kill between the two leaves bodies no snapshot names (collected next time),
never a snapshot naming a deleted body. If any snapshot file cannot be read, no body is
collected (what it names is unknown).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from registry_sync import payload_store, reviews, snapshot
from registry_sync.errors import SnapshotError


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str

    def line(self) -> str:
        return f"{self.path}: {self.message}"


def verify(path: Path) -> list[Problem]:
    """Every problem of one snapshot ([] when it is whole)."""
    try:
        conn = snapshot.open_snapshot(path)
    except (SnapshotError, sqlite3.Error) as exc:
        return [Problem(path, f"unreadable ({exc})")]
    problems: list[Problem] = []
    try:
        integrity = [r["integrity_check"] for r in conn.execute("PRAGMA integrity_check")]
        if integrity != ["ok"]:
            problems += [Problem(path, f"integrity: {line}") for line in integrity]
            return problems
        meta = {r["key"]: json.loads(r["value"]) for r in conn.execute("select * from _meta")}
        if not meta.get("finished_at"):
            problems.append(Problem(path, "finished_at not stamped (a half-written snapshot)"))
        orphans = conn.execute(
            "select trial_id, payload_sha256 from records where payload_sha256 is not null "
            "and payload_sha256 not in (select sha256 from payloads)"
        ).fetchall()
        problems += [
            Problem(path, f"record {o['trial_id']} names payload {o['payload_sha256']}, not kept")
            for o in orphans
        ]
        outside: set[str] = set()
        for row in conn.execute("select sha256, size, body from payloads"):
            if row["body"] is None:
                outside.add(row["sha256"])
                continue
            got = payload_store.sha256(bytes(row["body"]))
            if got != row["sha256"]:
                problems.append(
                    Problem(path, f"payload {row['sha256']}: inline bytes hash to {got}")
                )
    except sqlite3.Error as exc:
        return [*problems, Problem(path, f"unreadable ({exc})")]
    finally:
        conn.close()
    if outside:
        where = snapshot.payload_store_of(path, meta)
        if where is None:
            problems.append(Problem(path, f"{len(outside)} payload(s) without a body and no store"))
            return problems
        try:
            found = payload_store.check(where, outside)
        except sqlite3.Error as exc:
            return [*problems, Problem(path, f"payload store {where} unreadable ({exc})")]
        for p in found:
            detail = f" ({p.detail})" if p.detail else ""
            problems.append(Problem(path, f"payload {p.sha256} {p.kind} in {where}{detail}"))
    return problems


def verify_all(store: Path) -> tuple[int, list[Problem]]:
    """Every snapshot of the store (rejected ones too), and the store file's integrity.
    Returns (snapshots checked, problems)."""
    unreadable: list[tuple[Path, str]] = []
    infos = snapshot.list_snapshots(store, unreadable=unreadable)
    problems = [Problem(path, f"unreadable ({why})") for path, why in unreadable]
    for info in infos:
        problems += verify(info.path)
    where = payload_store.default_path(store)
    if where.is_file():
        problems += [Problem(where, f"integrity: {x}") for x in payload_store.integrity(where)]
    return len(infos) + len(unreadable), problems


@dataclass(frozen=True)
class PruneResult:
    deleted: tuple[Path, ...]
    kept: tuple[Path, ...]
    bodies_deleted: int = 0
    bytes_reclaimed: int = 0  # snapshot files, their reports, and the store's shrinkage
    skipped_collect: str = ""  # why bodies were not collected, when they were not
    removed_files: tuple[Path, ...] = field(default=())


def pointed(store: Path) -> set[Path]:
    """The snapshots a pointer (`latest`, `latest-<carry key>`) names."""
    out = set()
    for p in store.glob(f"{snapshot.LATEST_POINTER}*"):
        if p.is_symlink() or p.suffix == snapshot.SUFFIX or p.name.endswith(".tmp"):
            continue
        target = snapshot.latest_snapshot(store, p.name)
        if target is not None:
            out.add(target.resolve())
    return out


def plan(store: Path, keep: int) -> tuple[list[Path], list[Path]]:
    """(to delete, to keep), oldest first: the newest `keep` of each carry key and of the
    rejected ones stay, as does every snapshot a pointer names."""
    if keep < 1:
        raise ValueError("prune --keep must be at least 1 (the newest of each kind stays)")
    groups: dict[str, list[Path]] = defaultdict(list)
    for info in snapshot.list_snapshots(store):  # oldest first
        groups[info.carry_key if info.accepted else "rejected"].append(info.path)
    protected = pointed(store)
    doomed: list[Path] = []
    kept: list[Path] = []
    for paths in groups.values():
        for i, path in enumerate(paths):
            newest = i >= len(paths) - keep
            (kept if newest or path.resolve() in protected else doomed).append(path)
    return sorted(doomed), sorted(kept)


def _companions(path: Path, reports_dir: Path | None) -> Iterator[Path]:
    """The files that live and die with a snapshot: its reports and a reject's validation."""
    if reports_dir is not None:
        yield from snapshot.report_paths(reports_dir, path).values()
        yield from reviews.report_files(reports_dir, path)  # a run of several reviews
    yield path.with_name(f"{path.stem}.validation.json")


def _named_hashes(paths: Iterable[Path]) -> set[str]:
    named: set[str] = set()
    for path in paths:
        conn = snapshot.open_snapshot(path)
        try:
            named |= {r["sha256"] for r in conn.execute("select sha256 from payloads")}
        finally:
            conn.close()
    return named


def prune(store: Path, keep: int, reports_dir: Path | None = None) -> PruneResult:
    """Delete what `plan` names, then collect the bodies left unnamed. Hold the run lock."""
    doomed, kept = plan(store, keep)
    reclaimed = 0
    removed: list[Path] = []
    for path in doomed:
        for extra in (path, *_companions(path, reports_dir)):
            with contextlib.suppress(FileNotFoundError):
                size = extra.stat().st_size
                extra.unlink()
                reclaimed += size
                removed.append(extra)
    for folder in {p.parent for p in doomed}:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    unreadable: list[tuple[Path, str]] = []
    remaining = [i.path for i in snapshot.list_snapshots(store, unreadable=unreadable)]
    if unreadable:
        why = f"{len(unreadable)} unreadable snapshot(s), e.g. {unreadable[0][0].name}"
        return PruneResult(tuple(doomed), tuple(kept), 0, reclaimed, why, tuple(removed))
    bodies, shrunk = payload_store.collect(
        payload_store.default_path(store), _named_hashes(remaining)
    )
    return PruneResult(tuple(doomed), tuple(kept), bodies, reclaimed + shrunk, "", tuple(removed))
