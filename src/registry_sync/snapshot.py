"""Versioned, immutable SQLite snapshots, one file per run, written with sqlite-utils.

A snapshot is built in a hidden temp file and renamed into place, so a killed run leaves no
half file; the final file is made read-only and is never overwritten. A run whose records fail
the quality gate is written under `rejected/` with its validation report and never becomes
`latest`. Every record row carries its provenance (source URL, fetch time, payload sha256);
every request the run made is a row of `requests`, and the bytes served are kept in `payloads`,
so a stale value can be re-parsed later and a block or not-found answer can be shown.

Reading needs only `sqlite3`: importing this module loads neither pandas nor requests
(sqlite-utils, which imports pandas when installed, is imported only to write).

Pointers: `latest` names the newest accepted snapshot of any mode; `latest-<carry key>` the
newest of one kind of run (`live`, `replay`, `custom-<hash of base URLs>`), which is what a
later run of the same kind carries stale values forward from.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from registry_sync import snapshot_schema as schema
from registry_sync.errors import SnapshotError
from registry_sync.model import CuratedRow, Exchange, Finding, RawPayload, TrialState

SCHEMA_VERSION = schema.SCHEMA_VERSION
LATEST_POINTER = "latest"
REJECTED_DIR = "rejected"
SUFFIX = ".sqlite"
BATCH = 2000  # rows per INSERT; sqlite-utils caps it by SQLite's variable limit


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
) -> Path:
    """Write a new snapshot file atomically; move the pointers only when accepted.

    `before_publish(temp_path)` runs on the complete file before it is renamed into place (the
    pipeline renders the reports there), then `finished_at` is stamped, so a snapshot never
    becomes visible before its reports exist.
    """
    folder = store if accepted else store / REJECTED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{data.run_id}{SUFFIX}"
    if final.exists():
        raise SnapshotError(f"{final} already exists: snapshots are never overwritten")
    tmp = folder / f".{data.run_id}{SUFFIX}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        _build(tmp, data, accepted)
        if before_publish is not None:
            before_publish(tmp)
        _stamp_finished(tmp)
        _fsync(tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    final.chmod(0o444)
    if accepted:
        _write_pointers(store, final, carry_key(data.meta))
    else:  # beside the rejected file, for a human to read without opening SQLite
        report = folder / f"{data.run_id}.validation.json"
        report.write_text(json.dumps(data.validation, indent=2, default=str) + "\n", "utf-8")
    return final


def carry_key(meta: Mapping[str, Any]) -> str:
    """Which runs may feed each other: `live`, `replay` or `custom-<hash>` (same base URLs)."""
    return str(meta.get("carry_key") or meta.get("mode") or "live")


def _build(tmp: Path, data: SnapshotData, accepted: bool) -> None:
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
        with db.conn:
            for name, rows in _rows(data, accepted):
                db.table(name).insert_all(rows, batch_size=BATCH)
    finally:
        db.close()


def _rows(data: SnapshotData, accepted: bool) -> Iterator[tuple[str, Iterable[dict[str, Any]]]]:
    """(table, rows) in creation order, so foreign keys point at rows already written."""
    meta = {
        **data.meta,
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
    yield "payloads", _unique_payload_rows(data)
    yield "outcomes", (schema.outcome_row(s) for s in data.states)
    yield (
        "evidence",
        (e for s in data.states for e in schema.evidence_rows(s) if e["request_id"] in requests),
    )
    yield (
        "records",
        (schema.record_row(s, data.parser_versions) for s in data.states if s.record is not None),
    )
    yield "curated", (schema.curated_row(r) for r in data.curated)
    yield "findings", (schema.finding_row(i, f) for i, f in enumerate(data.findings, 1))


def _unique_payload_rows(data: SnapshotData) -> list[dict[str, Any]]:
    """Served bodies and trial extracts, each sha256 once (extracts win: they name a trial)."""
    origins = {s.payload_sha256: s.origin.value for s in data.states if s.payload_sha256}
    rows: dict[str, dict[str, Any]] = {}
    for ex in data.exchanges:
        if ex.status is not None and ex.body:
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


def _write_pointers(store: Path, target: Path, key: str) -> None:
    """`latest` and `latest-<carry key>` (text files naming the snapshot) and `latest.sqlite` (a
    relative symlink, for tools such as Datasette), each replaced atomically."""
    for name in (LATEST_POINTER, f"{LATEST_POINTER}-{key}"):
        tmp = store / f".{name}.{secrets.token_hex(4)}.tmp"
        tmp.write_text(target.name + "\n", encoding="utf-8")
        os.replace(tmp, store / name)
    link = store / f".{LATEST_POINTER}{SUFFIX}.{secrets.token_hex(4)}.tmp"
    link.symlink_to(target.name)
    os.replace(link, store / f"{LATEST_POINTER}{SUFFIX}")


def latest_snapshot(store: Path, pointer_name: str = LATEST_POINTER) -> Path | None:
    pointer = store / pointer_name
    if not pointer.exists():
        return None
    target = store / pointer.read_text(encoding="utf-8").strip()
    return target if target.exists() else None


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


def leftover_temp_files(store: Path) -> list[Path]:
    """Temp files of runs killed mid-write: never snapshots, safe to delete."""
    found = [*store.glob(f".*{SUFFIX}.tmp"), *(store / REJECTED_DIR).glob(f".*{SUFFIX}.tmp")]
    return sorted(found)


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


def load_records(path: Path, trial_ids: Collection[str] | None = None) -> dict[str, StoredRecord]:
    """Records of a snapshot keyed by trial ID (only `trial_ids` when given), each with its
    payload bytes when kept. Reads only the payloads it returns."""
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
        sql = "select * from payloads where sha256 in (select value from json_each(?))"
        payloads = {p["sha256"]: p for p in conn.execute(sql, [shas])}
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
            payload=_payload(p) if p is not None else None,
            request=requests.get(p.get("request_id")) if p is not None else None,
        )
    return out


def _payload(p: Mapping[str, Any]) -> RawPayload:
    return RawPayload(
        registry=p["registry"],
        trial_id=p["trial_id"],
        url=p["url"],
        fetched_at=datetime.fromisoformat(p["fetched_at"]),
        body=p["body"],
        content_type=p["content_type"],
        container_sha256=p["container_sha256"],
        source="" if p.get("source") in (None, p["registry"]) else p["source"],
        request_id=p.get("request_id"),
    )
