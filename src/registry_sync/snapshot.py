"""Versioned, immutable SQLite snapshots, one file per run, written with sqlite-utils.

A snapshot is built in a hidden temp file and renamed into place, so a killed run leaves no
half file; the final file is made read-only and is never overwritten. A run whose records fail
the quality gate is written under `rejected/` with its validation report and never becomes
`latest`. Every record row carries its provenance (source URL, fetch time, payload sha256);
every request the run made is a row of `requests`, and the bytes served are named in `payloads`
(sha256, kind, URL, request...) and kept once across snapshots in the payload store
(`payload_store.py`, named in `_meta`), so a stale value can be re-parsed later and a block or
not-found answer can be shown. Bodies are read through `payload_bodies` alone, which also reads a
snapshot of schema 3 or older, whose bodies are inline.

Reading needs only `sqlite3`: importing this module loads neither pandas nor requests
(sqlite-utils, which imports pandas when installed, is imported only to write).

Pointers: `latest` names the newest accepted snapshot of any mode; `latest-<carry key>` the
newest of one kind of run (`live`, `replay`, `custom-<hash of base URLs>`), which is what a
later run of the same kind carries stale values forward from. Every file the store and the
reports hold is written through a temp file of a unique name (`.<name>.<pid>-<random>.tmp`),
fsynced and renamed, so two writers never trip on each other's temp file and a reader sees the
old file or the new one, never half of one. A run killed mid-write leaves only hidden `.tmp`
files (and, rarely, the reports of a snapshot that was never published): `leftover_temp_files`
names them and the next run (holding the run lock, see `runlock.py`) removes them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from registry_sync import payload_store
from registry_sync import snapshot_schema as schema
from registry_sync.errors import SnapshotError
from registry_sync.model import (
    CuratedRow,
    Exchange,
    Finding,
    RawPayload,
    StoredBody,
    TrialState,
)

SCHEMA_VERSION = schema.SCHEMA_VERSION
LATEST_POINTER = "latest"
REJECTED_DIR = "rejected"
SUFFIX = ".sqlite"

REPORT_FORMATS = ("md", "json", "html")  # the files a run writes per snapshot in reports/
PAUSE_ENV = "REGISTRY_SYNC_TEST_PAUSE_AT"  # test-only: see `pause_for_test`
_RUN_ID = re.compile(r"^\.(\d{8}T\d{6}Z-[0-9a-f]+)\.sqlite\.tmp$")


@dataclass(frozen=True)
class SnapshotData:
    """Everything one run writes."""

    run_id: str
    meta: Mapping[str, Any]
    curated: Sequence[CuratedRow]
    states: Sequence[TrialState]
    findings: Sequence[Finding]
    payloads: Sequence[RawPayload]
    parser_versions: Mapping[str, int]
    validation: Mapping[str, Any]
    exchanges: Sequence[Exchange] = ()
    endpoints: Mapping[str, str] = field(default_factory=dict)  # registry -> live|custom|replay
    carried_requests: Sequence[Mapping[str, Any]] = ()  # request rows of carried records


@dataclass(frozen=True)
class SnapshotInfo:
    path: Path
    run_id: str
    mode: str
    accepted: bool
    started_at: str
    partial: bool
    counts: Mapping[str, Any]
    carry_key: str = "live"  # which later runs it may feed (see `carry_key`)


def new_run_id(now: datetime) -> str:
    """Sortable, unique: `20261125T103300Z-3fa2`."""
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def write_snapshot(
    store: Path,
    data: SnapshotData,
    *,
    accepted: bool,
    before_publish: Callable[[Path], None] | None = None,
    inline_payloads: bool = False,
) -> Path:
    """Write a new snapshot file atomically; move the pointers only when accepted.

    `before_publish(temp_path)` runs on the complete file before it is renamed into place (the
    pipeline renders the reports there), then `finished_at` is stamped, so a snapshot never
    becomes visible before its reports exist.

    The bodies go into the payload store of `store` (committed before the snapshot is built,
    so a published snapshot never names a body the store lacks); `inline_payloads` keeps them
    in the snapshot instead, as schema 3 did (for tests of old snapshots and for export).
    """
    folder = store if accepted else store / REJECTED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{data.run_id}{SUFFIX}"
    if final.exists():
        raise SnapshotError(f"{final} already exists: snapshots are never overwritten")
    tmp = folder / f".{data.run_id}{SUFFIX}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        payload_rows = _unique_payload_rows(data)
        meta_extra: dict[str, Any] = {}
        store_file = payload_store.default_path(store)
        if not inline_payloads:
            held = ((r["sha256"], r["body"]) for r in payload_rows if r["body"] is not None)
            payload_store.put(store_file, held)
            payload_rows = [{**r, "body": None} for r in payload_rows]
            meta_extra["payload_store"] = os.path.relpath(store_file, folder)
        else:  # bodies the run already put in the store come back inline
            stored = payload_store.get(
                store_file, {r["sha256"] for r in payload_rows if r["body"] is None}
            )
            payload_rows = [
                {**r, "body": r["body"] or stored.get(r["sha256"])} for r in payload_rows
            ]
        _build(tmp, data, accepted, payload_rows, meta_extra)
        del payload_rows  # in the file now; not held while the reports render
        pause_for_test("snapshot")
        if before_publish is not None:
            before_publish(tmp)
        _stamp_finished(tmp)
        if not accepted:  # beside the rejected file, for a human to read without SQLite
            report = folder / f"{data.run_id}.validation.json"
            write_text_atomic(report, json.dumps(data.validation, indent=2, default=str) + "\n")
        _fsync(tmp)
        tmp.chmod(0o444)  # read-only before it is visible: never a writable snapshot
        os.replace(tmp, final)
        _fsync_dir(folder)
    finally:
        tmp.unlink(missing_ok=True)
    if accepted:
        pause_for_test("published")
        _write_pointers(store, final, carry_key(data.meta))
    return final


def carry_key(meta: Mapping[str, Any]) -> str:
    """Which runs may feed each other: `live`, `replay` or `custom-<hash>` (same base URLs)."""
    return str(meta.get("carry_key") or meta.get("mode") or "live")


def _build(
    tmp: Path,
    data: SnapshotData,
    accepted: bool,
    payload_rows: list[dict[str, Any]],
    meta_extra: Mapping[str, Any],
) -> None:
    import sqlite_utils  # imports pandas: only writers pay for it

    db = sqlite_utils.Database(tmp)
    try:
        # No journal while building: a failed build is discarded whole, never half-used.
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        for table in schema.TABLES:
            db.table(table.name).create(
                dict(table.columns),
                pk=table.pk,
                foreign_keys=list(table.foreign_keys),
                not_null=set(table.not_null),
            )
        columns = {t.name: list(t.columns) for t in schema.TABLES}
        with db.conn:
            for name, rows in _rows(data, accepted, payload_rows, meta_extra):
                # plain executemany over the declared columns: sqlite-utils' insert_all works
                # out each row's columns and types again (20 s of a 100,000-trial snapshot).
                # Every cell is a scalar already (lists are JSON text, see snapshot_schema);
                # anything else is an error from sqlite3, never silently stored
                cols = columns[name]
                sql = (
                    f"insert into [{name}] ({', '.join(f'[{c}]' for c in cols)}) "
                    f"values ({', '.join('?' * len(cols))})"
                )
                db.conn.executemany(sql, (tuple(r.get(c) for c in cols) for r in rows))
        for name, sql in schema.VIEWS.items():
            db.create_view(name, sql)
    finally:
        db.close()


def _rows(
    data: SnapshotData,
    accepted: bool,
    payload_rows: list[dict[str, Any]],
    meta_extra: Mapping[str, Any],
) -> Iterator[tuple[str, Iterable[dict[str, Any]]]]:
    """(table, rows) in creation order, so foreign keys point at rows already written."""
    meta = {
        **data.meta,
        **meta_extra,
        "schema_version": SCHEMA_VERSION,
        "run_id": data.run_id,
        "accepted": accepted,
        "parser_versions": dict(data.parser_versions),
        "validation": data.validation,
        "endpoints": dict(data.endpoints),
    }
    yield (
        "_meta",
        (
            {"key": k, "value": json.dumps(v, default=str, ensure_ascii=False)}
            for k, v in meta.items()
        ),
    )
    requests = {
        e.request_id: schema.request_row(e, data.endpoints.get(e.registry, "live"))
        for e in data.exchanges
    }
    for row in data.carried_requests:
        requests.setdefault(row["request_id"], dict(row))
    yield "requests", requests.values()
    # a batch request's URL (up to ~12 KB for 1,000 IDs) is kept once, in `requests`: rows of
    # the trials it answered name the request instead (see `schema.batch_urls`)
    batch = schema.batch_urls(data.states, (r["url"] for r in requests.values()))
    yield "payloads", ({**r, "url": schema.unless(r["url"], batch)} for r in payload_rows)
    yield "outcomes", (schema.outcome_row(s, batch) for s in data.states)
    yield (
        "evidence",
        (e for s in data.states for e in schema.evidence_rows(s) if e["request_id"] in requests),
    )
    yield (
        "records",
        (
            schema.record_row(s, data.parser_versions, batch)
            for s in data.states
            if s.record is not None
        ),
    )
    yield "curated", (schema.curated_row(r) for r in data.curated)
    yield "findings", (schema.finding_row(i, f) for i, f in enumerate(data.findings, 1))


def _unique_payload_rows(data: SnapshotData) -> list[dict[str, Any]]:
    """Served bodies and trial extracts, each sha256 once (extracts win: they name a trial)."""
    origins = {s.payload_sha256: s.origin.value for s in data.states if s.payload_sha256}
    rows: dict[str, dict[str, Any]] = {}
    for ex in data.exchanges:
        if ex.status is not None and ex.has_body:
            rows.setdefault(ex.sha256, schema.served_payload_row(ex))
    for p in data.payloads:
        rows[p.sha256] = schema.extract_payload_row(p, origins.get(p.sha256))
    return list(rows.values())


def _stamp_finished(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute(
                "insert or replace into _meta (key, value) values ('finished_at', ?)",
                [json.dumps(datetime.now(UTC).isoformat())],
            )
    finally:
        conn.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (a power cut after it cannot bring the old name back)."""
    _fsync(folder)


def temp_name(path: Path) -> Path:
    """A temp file beside `path` that no other writer uses: `.<name>.<pid>-<random>.tmp`."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def write_text_atomic(path: Path, text: str, *, pause: str | None = None) -> None:
    """Write `text` to `path` so that a reader (or a kill) sees the old file or the whole new
    one: a uniquely named temp file beside it, fsynced, then renamed over it. `pause` names the
    step for `pause_for_test`, between the temp file and the rename."""
    tmp = temp_name(path)
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if pause is not None:
            pause_for_test(pause)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _write_pointers(store: Path, target: Path, key: str) -> None:
    """`latest-<carry key>` and `latest` (text files naming the snapshot) and `latest.sqlite` (a
    relative symlink, for tools such as Datasette), each replaced atomically through a temp file
    of its own name, so concurrent updaters never fail and every pointer names a whole
    snapshot. The carry pointer moves first: a kill between the two leaves `latest` one run
    behind, never ahead of what the next run of that kind carries from."""
    for name in (f"{LATEST_POINTER}-{key}", LATEST_POINTER):
        write_text_atomic(store / name, target.name + "\n", pause=f"pointer-{name}")
    link = temp_name(store / f"{LATEST_POINTER}{SUFFIX}")
    try:
        link.symlink_to(target.name)
        os.replace(link, store / f"{LATEST_POINTER}{SUFFIX}")
    finally:
        link.unlink(missing_ok=True)
    _fsync_dir(store)


def pause_for_test(step: str) -> None:
    """Test-only hook for the crash test: when `REGISTRY_SYNC_TEST_PAUSE_AT` names `step` (or
    `step:seconds`), say so on standard error and sleep (60 s by default) so a test can kill
    the process in a window too short to hit by timing. Never set in production; read here,
    at the step, not at import time. Steps: fetch, gate, snapshot, report, published,
    pointer-latest-<carry key>, pointer-latest."""
    wanted = os.environ.get(PAUSE_ENV)
    if not wanted:
        return
    name, _, seconds = wanted.partition(":")
    if name != step:
        return
    print(f"registry-sync: paused at {step} (pid {os.getpid()})", file=sys.stderr, flush=True)
    time.sleep(float(seconds or 60))


def latest_snapshot(store: Path, pointer_name: str = LATEST_POINTER) -> Path | None:
    pointer = store / pointer_name
    if not pointer.exists():
        return None
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):  # not a pointer we wrote: names nothing
        return None
    target = store / name
    return target if name and "/" not in name and target.is_file() else None


def read_meta(path: Path) -> dict[str, Any]:
    conn = open_snapshot(path)
    try:
        return {r["key"]: json.loads(r["value"]) for r in conn.execute("select * from _meta")}
    finally:
        conn.close()


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {col[0]: value for col, value in zip(cursor.description, row, strict=True)}


def open_snapshot(path: Path) -> sqlite3.Connection:
    """Open read-only, rows as dicts; a file that is not one of our snapshots is a clear error."""
    if path.is_dir():
        raise SnapshotError(f"{path}: a directory, not a snapshot file (give a .sqlite file)")
    if not path.is_file():
        raise SnapshotError(f"{path}: no such snapshot (list them with `registry-sync snapshots`)")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = _dict_row
    try:
        found = conn.execute(
            "select 1 from sqlite_master where type = 'table' and name = '_meta'"
        ).fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise SnapshotError(f"{path}: not a registry-sync snapshot ({exc})") from exc
    if not found:
        conn.close()
        raise SnapshotError(f"{path}: not a registry-sync snapshot (no _meta table)")
    return conn


def list_snapshots(
    store: Path,
    *,
    include_rejected: bool = True,
    unreadable: list[tuple[Path, str]] | None = None,
) -> list[SnapshotInfo]:
    """Every snapshot in the store, oldest first. A file that cannot be read as one (corrupt,
    truncated, not ours) is skipped, and appended to `unreadable` with why when given."""
    paths = sorted(p for p in store.glob(f"*{SUFFIX}") if not p.is_symlink())
    if include_rejected:
        paths += sorted((store / REJECTED_DIR).glob(f"*{SUFFIX}"))
    infos = []
    for path in paths:
        try:
            meta = read_meta(path)
        except (SnapshotError, sqlite3.Error, ValueError) as exc:
            if unreadable is not None:
                unreadable.append((path, str(exc)))
            continue
        infos.append(
            SnapshotInfo(
                path=path,
                run_id=str(meta.get("run_id")),
                mode=str(meta.get("mode", "live")),
                accepted=bool(meta.get("accepted")),
                started_at=str(meta.get("started_at")),
                partial=bool(meta.get("partial")),
                counts=meta.get("counts", {}),
                carry_key=carry_key(meta),
            )
        )
    # run ids have second resolution and a random tail: two runs in one second sort by start
    return sorted(infos, key=lambda i: (i.started_at, i.run_id))


def leftover_temp_files(store: Path, reports_dir: Path | None = None) -> list[Path]:
    """What runs killed mid-write left: temp files of snapshots, pointers and reports (never
    snapshots), and the report files of a snapshot that was never published (its temp file is
    left and no snapshot of its run id exists). Safe to delete when no run is writing (the run
    lock says; see `runlock.clean_leftovers`)."""
    folders = [store, store / REJECTED_DIR]
    found = [p for folder in folders for p in folder.glob(".*.tmp") if not p.is_dir()]
    if reports_dir is not None:
        found += [p for p in reports_dir.glob(".*.tmp") if not p.is_dir()]
        for run_id in {m.group(1) for p in found if (m := _RUN_ID.match(p.name))}:
            if any((folder / f"{run_id}{SUFFIX}").exists() for folder in folders):
                continue
            found += [reports_dir / f"{run_id}.{fmt}" for fmt in REPORT_FORMATS]
            found.append(store / REJECTED_DIR / f"{run_id}.validation.json")
    return sorted(p for p in found if p.is_symlink() or p.exists())


def report_paths(reports_dir: Path, snapshot_path: Path) -> dict[str, Path]:
    """Where a run writes the reports of the snapshot at `snapshot_path`."""
    return {fmt: reports_dir / f"{snapshot_path.stem}.{fmt}" for fmt in REPORT_FORMATS}


def latest_of_mode(store: Path, key: str) -> Path | None:
    """The newest accepted snapshot of one kind of run (`live`, `replay`, `custom-<hash>`):
    what carries forward. Read from the `latest-<key>` pointer; a store without one is
    scanned."""
    pointed = latest_snapshot(store, f"{LATEST_POINTER}-{key}")
    if pointed is not None:
        return pointed
    candidates = [i for i in list_snapshots(store, include_rejected=False) if i.carry_key == key]
    return candidates[-1].path if candidates else None


@dataclass(frozen=True)
class StoredRecord:
    """A record row of an earlier snapshot with the payload it was parsed from and the request
    that payload came in (a metadata row, carried so each snapshot stands alone)."""

    run_id: str
    row: Mapping[str, Any]
    payload: RawPayload | None
    request: Mapping[str, Any] | None = None


def load_records(
    path: Path, trial_ids: Collection[str] | None = None, *, bodies: bool = True
) -> dict[str, StoredRecord]:
    """Records of a snapshot keyed by trial ID (only `trial_ids` when given), each with its
    payload bytes when kept (`bodies=False`: only their sha256 and size, for records reused
    as they are). Reads only the payloads it returns."""
    conn = open_snapshot(path)
    try:
        run_id = json.loads(
            conn.execute("select value from _meta where key = 'run_id'").fetchone()["value"]
        )
        if trial_ids is None:
            rows = list(conn.execute("select * from records"))
        else:
            sql = "select * from records where trial_id in (select value from json_each(?))"
            rows = list(conn.execute(sql, [json.dumps(sorted(trial_ids))]))
        shas = json.dumps([r["payload_sha256"] for r in rows if r["payload_sha256"]])
        sql = (
            "select p.*, coalesce(p.url, q.url) as url from payloads p left join requests q"
            " on q.request_id = p.request_id where p.sha256 in (select value from json_each(?))"
        )
        urls: dict[str, str] = {}  # a batch URL (~8 KB) once, not one copy per trial
        payloads = {
            p["sha256"]: {**p, "url": urls.setdefault(p["url"], p["url"])}
            for p in conn.execute(sql, [shas])
        }
        held = _bodies(conn, path, payloads.values()) if bodies else {}
        rids = json.dumps([p["request_id"] for p in payloads.values() if p.get("request_id")])
        sql = "select * from requests where request_id in (select value from json_each(?))"
        requests = {r["request_id"]: r for r in conn.execute(sql, [rids])}
    finally:
        conn.close()
    out = {}
    for row in rows:
        p = payloads.get(row["payload_sha256"])
        out[row["trial_id"]] = StoredRecord(
            run_id=row.get("carried_from") or run_id,
            row=row,
            payload=_payload(p, held.get(p["sha256"])) if p is not None else None,
            request=requests.get(p.get("request_id")) if p is not None else None,
        )
    return out


def _payload(p: Mapping[str, Any], body: bytes | None) -> RawPayload:
    """The payload a row describes; with `body` None, only its sha256 and size (the bytes
    stay in the payload store)."""
    return RawPayload(
        registry=p["registry"],
        trial_id=p["trial_id"],
        url=p["url"],
        fetched_at=datetime.fromisoformat(p["fetched_at"]),
        body=b"" if body is None else body,
        stored=StoredBody(p["sha256"], p["size"]) if body is None else None,
        content_type=p["content_type"],
        container_sha256=p["container_sha256"],
        source="" if p.get("source") in (None, p["registry"]) else p["source"],
        request_id=p.get("request_id"),
    )


def payload_store_of(path: Path, meta: Mapping[str, Any] | None = None) -> Path | None:
    """The payload store a snapshot names (`_meta.payload_store`, relative to its folder), or
    None for a snapshot whose bodies are inline (schema 3 and older)."""
    name = (read_meta(path) if meta is None else meta).get("payload_store")
    return path.parent / str(name) if name else None


def payload_bodies(path: Path, hashes: Collection[str] | None = None) -> dict[str, bytes]:
    """The bytes of the payloads a snapshot names (only `hashes` when given), from the
    snapshot itself when inline or else from the payload store it names: the one way every
    reader gets a body. A body the store lacks is an error (`registry-sync verify` lists
    them all)."""
    conn = open_snapshot(path)
    try:
        if hashes is None:
            rows = list(conn.execute("select sha256, body from payloads"))
        else:
            sql = (
                "select sha256, body from payloads where sha256 in (select value from json_each(?))"
            )
            rows = list(conn.execute(sql, [json.dumps(sorted(hashes))]))
        return _bodies(conn, path, rows)
    finally:
        conn.close()


def _bodies(
    conn: sqlite3.Connection, path: Path, rows: Iterable[Mapping[str, Any]]
) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    outside: set[str] = set()
    for row in rows:
        if row["body"] is not None:
            out[row["sha256"]] = bytes(row["body"])
        else:
            outside.add(row["sha256"])
    if not outside:
        return out
    found = conn.execute("select value from _meta where key = 'payload_store'").fetchone()
    if found is None:
        raise SnapshotError(f"{path}: payloads without a body and no payload store named")
    where = path.parent / str(json.loads(found["value"]))
    stored = payload_store.get(where, outside)
    missing = outside - stored.keys()
    if missing:
        raise SnapshotError(
            f"{path}: {len(missing)} payload(s) missing from {where}, e.g. {min(missing)} "
            "(run `registry-sync verify`)"
        )
    return out | stored
