"""One run per data directory at a time, and what a killed run left behind.

The lock is `fcntl.flock` on `<data dir>/registry-sync.lock`: the kernel releases it when the
holder's process ends however it ends (kill -9 included), so a lock is never stale and no pid
check decides whether it is held. The holder writes its pid, start time and command into the
file, for the one line a refused run prints. A second run waits up to `Settings.lock_wait`
seconds (default 10; `REGISTRY_SYNC_LOCK_WAIT`) and then refuses (`RunLockHeld`).

A run holds the lock from before it reads anything until its pointers have moved, and starts by
`recover`-ing: every temp file in the store and the reports (no other run can be writing them:
the lock says so) and the reports of a snapshot that was never published are removed, and the
reports of a snapshot a pointer names are rendered again if they are missing (reports are pure
over a snapshot). Commands that only read take no lock; `report` regenerates missing report
files only when it can take the lock at once (a run in progress will publish its own).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from registry_sync import reviews, snapshot
from registry_sync.errors import RegistrySyncError

LOCK_NAME = "registry-sync.lock"
POLL_S = 0.1


class RunLockHeld(RegistrySyncError):
    """Another run holds the data directory's lock (and did not let go in time)."""


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a lock, as its holder wrote it; empty fields when unreadable."""

    pid: int | None
    started_at: str | None
    command: str = ""

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "pid unknown"
        return f"{who}, started {self.started_at}" if self.started_at else who


def lock_path(data_dir: Path) -> Path:
    return data_dir / LOCK_NAME


def read_holder(path: Path) -> Holder:
    """What the holder wrote into the lock file (it may be mid-write: then pid unknown)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return Holder(None, None)
    if not isinstance(doc, dict):
        return Holder(None, None)
    pid = doc.get("pid")
    return Holder(
        pid if isinstance(pid, int) else None,
        str(doc["started_at"]) if doc.get("started_at") else None,
        str(doc.get("command") or ""),
    )


@contextlib.contextmanager
def hold(data_dir: Path, *, wait: float = 10.0) -> Iterator[Path]:
    """Hold the data directory's run lock for the `with` block, waiting up to `wait` seconds
    for another holder; raise `RunLockHeld` (one line: the lock file, the holder's pid and
    start time) when it is still held then. Yields the lock file's path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = lock_path(data_dir)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, wait)
        me = {
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv[:3]),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # the kernel lets go at close (or at death) whatever happens
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, wait: float) -> None:
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RunLockHeld(
                    f"another run holds {path} ({read_holder(path).describe()}); waited "
                    f"{wait:g} s: try again when it has finished"
                ) from None
            time.sleep(min(POLL_S, left))


def held_by(data_dir: Path) -> Holder | None:
    """The holder when a run holds the lock now, else None (asks the kernel, takes nothing)."""
    path = lock_path(data_dir)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_holder(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Recovered:
    """What `recover` did: files removed, report files rendered again."""

    cleaned: tuple[Path, ...] = ()
    regenerated: tuple[Path, ...] = ()


def recover(store: Path, reports_dir: Path) -> Recovered:
    """Clean up after killed runs. Call only while holding the lock (see the module doc)."""
    return Recovered(clean_leftovers(store, reports_dir), restore_reports(store, reports_dir))


def clean_leftovers(store: Path, reports_dir: Path) -> tuple[Path, ...]:
    """Remove what `snapshot.leftover_temp_files` names. Call only while holding the lock."""
    removed = []
    for path in snapshot.leftover_temp_files(store, reports_dir):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return tuple(removed)


def restore_reports(store: Path, reports_dir: Path) -> tuple[Path, ...]:
    """Render again the reports of every snapshot a pointer names when any file is missing,
    the way its run did (with what changed since the run it carried from). A snapshot that no
    longer renders (say, of a schema this version cannot read) is skipped: a run must not fail
    over an old report, and `report` shows the error when asked for it."""
    if not store.is_dir():
        return ()
    targets = {
        found
        for pointer in sorted(store.glob(f"{snapshot.LATEST_POINTER}*"))
        if not pointer.is_symlink()
        and pointer.suffix != snapshot.SUFFIX  # `latest.sqlite` is a link (or, copied, a file)
        and (found := snapshot.latest_snapshot(store, pointer.name)) is not None
    }
    written: list[Path] = []
    for target in sorted(targets):
        wanted = [
            *snapshot.report_paths(reports_dir, target).values(),
            *reviews.report_files(reports_dir, target),  # a run of several reviews
        ]
        if all(p.exists() for p in wanted):
            continue
        try:
            written += _render_again(store, reports_dir, target)
        except Exception:  # see the docstring: never fail a run over an old report
            continue
    return tuple(written)


def _render_again(store: Path, reports_dir: Path, target: Path) -> list[Path]:
    carried = snapshot.read_meta(target).get("carried_from")
    previous = store / str(carried) if carried else None
    paths, _ = reviews.write_reports(
        target, reports_dir, None, previous if previous and previous.is_file() else None
    )
    return list(paths.values())


def restore_reports_if_free(data_dir: Path, store: Path, reports_dir: Path) -> tuple[Path, ...]:
    """`restore_reports` when the lock can be taken at once; nothing when a run holds it or
    the data directory cannot be written (a store only read)."""
    try:
        with hold(data_dir, wait=0):
            return restore_reports(store, reports_dir)
    except (RunLockHeld, OSError):
        return ()


__all__ = [
    "LOCK_NAME",
    "Holder",
    "Recovered",
    "RunLockHeld",
    "clean_leftovers",
    "held_by",
    "hold",
    "lock_path",
    "read_holder",
    "recover",
    "restore_reports",
    "restore_reports_if_free",
]
