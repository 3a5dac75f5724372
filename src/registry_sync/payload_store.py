"""A content-addressed, compressed payload store: each body once across every snapshot.

One SQLite file, `<snapshots>/payloads/payloads.sqlite`, one row per distinct body keyed by
the sha256 of its bytes, the bytes zlib-compressed. Snapshots keep their `payloads` rows
(sha256, kind, URL, request, size...) with `body` NULL and name the store in `_meta`
(`payload_store`, a path relative to the snapshot's folder), so a night with nothing changed
adds no bytes here.

Crash safety: a run writes its bodies in one transaction (rollback journal, `synchronous =
FULL`) before its snapshot is published, so a published snapshot never names a body the store
lacks; a run killed in between leaves bodies no snapshot names, which `prune` collects. Only a
holder of the run lock writes or collects (`runlock.hold`); readers open the file read-only and
wait on SQLite's lock. Stdlib only (sqlite3, zlib, hashlib).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import zlib
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

FOLDER = "payloads"
FILENAME = "payloads.sqlite"
LEVEL = 6  # zlib level: 9 saves ~1 % more on registry pages at twice the time
_BUSY_MS = 30_000
PAGE_SIZE = 16384
_CHUNK = 500  # hashes per query (well under SQLite's variable limit)


def default_path(snapshots_dir: Path) -> Path:
    """Where the snapshots of `snapshots_dir` keep their bodies."""
    return snapshots_dir / FOLDER / FILENAME


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Problem:
    """One hash the store cannot vouch for: `missing`, or `corrupt` (with why)."""

    sha256: str
    kind: str
    detail: str = ""


def _connect(path: Path, *, write: bool) -> sqlite3.Connection:
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            # a `Writer` is shared by the fetch workers; its own lock serialises them
            path,
            timeout=_BUSY_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute("PRAGMA synchronous = FULL")
        # set before the first table exists (a no-op after): 16 KB pages hold seven ~2 KB
        # compressed study documents each, where 4 KB pages hold one and waste nearly half
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        conn.execute(
            # a rowid table: its leaves hold a ~2 KB compressed body in place, where a WITHOUT
            # ROWID table spills anything over ~1 KB into whole overflow pages (2x the file)
            "create table if not exists bodies (sha256 text primary key, size integer not null,"
            " codec text not null, data blob not null)"
        )
        return conn
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=_BUSY_MS / 1000)
    return conn


def _chunks(items: Collection[str]) -> Iterator[list[str]]:
    ordered = sorted(items)
    for i in range(0, len(ordered), _CHUNK):
        yield ordered[i : i + _CHUNK]


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


def put(path: Path, bodies: Iterable[tuple[str, bytes]]) -> tuple[int, int]:
    """Store each (sha256, body) not stored yet, in one durable transaction. Returns (bodies
    added, compressed bytes added). A sha256 that does not match its body is refused: the
    store is keyed by content, never by what a caller says."""
    conn = _connect(path, write=True)
    try:
        return _put(conn, bodies)
    finally:
        conn.close()


def _put(conn: sqlite3.Connection, bodies: Iterable[tuple[str, bytes]]) -> tuple[int, int]:
    added = added_bytes = 0
    conn.execute("begin immediate")
    try:
        for digest, body in bodies:
            if sha256(body) != digest:
                raise ValueError(f"payload store: body does not hash to {digest}")
            if conn.execute("select 1 from bodies where sha256 = ?", [digest]).fetchone():
                continue
            data = zlib.compress(body, LEVEL)
            conn.execute(
                "insert into bodies (sha256, size, codec, data) values (?, ?, 'zlib', ?)",
                [digest, len(body), data],
            )
            added += 1
            added_bytes += len(data)
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return added, added_bytes


class Writer:
    """The store held open for one run: `put` from any thread, each call one durable
    transaction, so the bodies of a batch are on disk (and out of memory) as soon as it is
    parsed. Only the run-lock holder opens one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None  # opened by the first `put`
        self._lock = threading.Lock()
        self.added = 0
        self.added_bytes = 0

    def put(self, bodies: Iterable[tuple[str, bytes]]) -> None:
        """As module-level `put`: each (sha256, body) not stored yet; a mismatch is refused."""
        with self._lock:
            if self._conn is None:
                self._conn = _connect(self.path, write=True)
            added, added_bytes = _put(self._conn, bodies)
            self.added += added
            self.added_bytes += added_bytes

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decode(codec: str, data: bytes) -> bytes:
    if codec == "zlib":
        return zlib.decompress(data)
    if codec == "raw":
        return bytes(data)
    raise ValueError(f"unknown codec {codec!r}")


def get(path: Path, hashes: Collection[str]) -> dict[str, bytes]:
    """The bodies of `hashes` that the store holds (decompressed; not re-hashed: `check`
    does that)."""
    if not hashes or not path.is_file():
        return {}
    conn = _connect(path, write=False)
    out: dict[str, bytes] = {}
    try:
        for chunk in _chunks(hashes):
            sql = (
                "select sha256, codec, data from bodies "
                f"where sha256 in ({_placeholders(len(chunk))})"
            )
            for digest, codec, data in conn.execute(sql, chunk):
                out[digest] = _decode(codec, data)
    finally:
        conn.close()
    return out


def check(path: Path, hashes: Collection[str]) -> list[Problem]:
    """Each of `hashes` is in the store and its decompressed bytes hash to it."""
    if not path.is_file():
        return [Problem(h, "missing", f"no payload store at {path}") for h in sorted(hashes)]
    conn = _connect(path, write=False)
    found: set[str] = set()
    problems: list[Problem] = []
    try:
        for chunk in _chunks(hashes):
            sql = (
                "select sha256, size, codec, data from bodies "
                f"where sha256 in ({_placeholders(len(chunk))})"
            )
            for digest, size, codec, data in conn.execute(sql, chunk):
                found.add(digest)
                try:
                    body = _decode(codec, data)
                except (ValueError, zlib.error) as exc:
                    problems.append(Problem(digest, "corrupt", f"does not decompress ({exc})"))
                    continue
                if sha256(body) != digest:
                    problems.append(Problem(digest, "corrupt", f"bytes hash to {sha256(body)}"))
                elif len(body) != size:
                    problems.append(Problem(digest, "corrupt", f"{len(body)} bytes, not {size}"))
    finally:
        conn.close()
    problems += [Problem(h, "missing") for h in sorted(set(hashes) - found)]
    return sorted(problems, key=lambda p: p.sha256)


def integrity(path: Path) -> list[str]:
    """SQLite's own integrity check of the store file ([] when ok)."""
    conn = _connect(path, write=False)
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()
    return [] if rows == ["ok"] else rows


def hashes(path: Path) -> set[str]:
    """Every sha256 the store holds."""
    if not path.is_file():
        return set()
    conn = _connect(path, write=False)
    try:
        return {str(r[0]) for r in conn.execute("select sha256 from bodies")}
    finally:
        conn.close()


def collect(path: Path, keep: Collection[str]) -> tuple[int, int]:
    """Delete every body whose sha256 is not in `keep`, then give the space back (VACUUM).
    Call only while holding the run lock. Returns (bodies deleted, file bytes reclaimed)."""
    if not path.is_file():
        return 0, 0
    before = path.stat().st_size
    keep_set = set(keep)
    conn = _connect(path, write=True)
    try:
        doomed = [h for (h,) in conn.execute("select sha256 from bodies") if h not in keep_set]
        conn.execute("begin immediate")
        try:
            for chunk in _chunks(doomed):
                conn.execute(
                    f"delete from bodies where sha256 in ({_placeholders(len(chunk))})", chunk
                )
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
        if doomed:
            conn.execute("VACUUM")
    finally:
        conn.close()
    return len(doomed), max(0, before - path.stat().st_size)


def size(path: Path) -> int:
    """Bytes on disk of the store (0 when there is none yet)."""
    return path.stat().st_size if path.is_file() else 0
