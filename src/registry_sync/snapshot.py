"""Versioned, immutable SQLite snapshots, one file per run, written with sqlite-utils.

A snapshot is built in a hidden temp file and renamed into place, so a killed run leaves no
half file; the final file is made read-only and is never overwritten. A run whose records fail
the quality gate is written under `rejected/` with its validation report and never becomes
`latest`. Every record row carries its provenance: source URL, fetch time, payload sha256; the
payload bytes themselves are kept in `payloads`, so a stale value can be re-parsed later.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import sqlite3
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from registry_sync.errors import SnapshotError
from registry_sync.frames import curated_row
from registry_sync.model import (
    CuratedRow,
    Finding,
    PartialDate,
    RawPayload,
    RegistryRecord,
    TrialState,
)

SCHEMA_VERSION = 1
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


@dataclass(frozen=True)
class SnapshotInfo:
    path: Path
    run_id: str
    mode: str
    accepted: bool
    started_at: str
    partial: bool
    counts: Mapping[str, Any]


def new_run_id(now: datetime) -> str:
    """Sortable, unique: `20261125T103300Z-3fa2`."""
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def write_snapshot(store: Path, data: SnapshotData, *, accepted: bool) -> Path:
    """Write a new snapshot file atomically; move `latest` only when accepted."""
    folder = store if accepted else store / REJECTED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{data.run_id}{SUFFIX}"
    if final.exists():
        raise SnapshotError(f"{final} already exists: snapshots are never overwritten")
    tmp = folder / f".{data.run_id}{SUFFIX}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        db = sqlite_utils.Database(tmp)
        # No journal while building: a failed build is discarded whole, never half-used.
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        _fill(db, data, accepted)
        _fsync(tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    final.chmod(0o444)
    if accepted:
        _write_pointer(store, final, str(data.meta.get("mode", "live")))
    else:  # beside the rejected file, for a human to read without opening SQLite
        report = folder / f"{data.run_id}.validation.json"
        report.write_text(json.dumps(data.validation, indent=2, default=str) + "\n", "utf-8")
    return final


def _fill(db: sqlite_utils.Database, data: SnapshotData, accepted: bool) -> None:
    meta = {
        **data.meta,
        "schema_version": SCHEMA_VERSION,
        "run_id": data.run_id,
        "accepted": accepted,
        "parser_versions": dict(data.parser_versions),
        "validation": data.validation,
    }
    with db.conn:
        db.table("_meta").insert_all(
            (
                {"key": k, "value": json.dumps(v, default=str, ensure_ascii=False)}
                for k, v in meta.items()
            ),
            pk="key",
            batch_size=BATCH,
        )
        db.table("curated").insert_all(
            (curated_row(r) for r in data.curated), pk="line", batch_size=BATCH
        )
        db.table("records").insert_all(
            (record_row(s, data.parser_versions) for s in data.states if s.record is not None),
            pk=("registry", "trial_id"),
            batch_size=BATCH,
        )
        db.table("outcomes").insert_all(
            (outcome_row(s) for s in data.states), pk="trial_id", batch_size=BATCH
        )
        db.table("findings").insert_all(
            (finding_row(i, f) for i, f in enumerate(data.findings, 1)), pk="id", batch_size=BATCH
        )
        db.table("payloads").insert_all(
            (
                {
                    "sha256": p.sha256,
                    "registry": p.registry,
                    "trial_id": p.trial_id,
                    "url": p.url,
                    "fetched_at": p.fetched_at.isoformat(),
                    "content_type": p.content_type,
                    "container_sha256": p.container_sha256,
                    "body": p.body,
                }
                for p in _unique_payloads(data.payloads)
            ),
            pk="sha256",
            batch_size=BATCH,
        )
    for table in ("curated", "records", "outcomes", "findings", "payloads"):
        if not db.table(table).exists():  # an empty run still has every table
            db.table(table).create(EMPTY_SCHEMAS[table], pk=EMPTY_PKS[table])
    db.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unique_payloads(payloads: Iterable[RawPayload]) -> list[RawPayload]:
    return list({p.sha256: p for p in payloads}.values())


def record_row(state: TrialState, parser_versions: Mapping[str, int]) -> dict[str, Any]:
    rec = state.record
    assert rec is not None
    normalized = normalized_record(rec)
    return {
        **normalized,
        "content_hash": content_hash(normalized),
        "stale": state.stale,
        "carried_from": state.carried_from,
        "fetched_at": state.fetched_at.isoformat() if state.fetched_at else None,
        "source_url": state.source_url,
        "payload_sha256": state.payload_sha256,
        "parser_version": parser_versions.get(rec.registry),
    }


def normalized_record(rec: RegistryRecord) -> dict[str, Any]:
    """The record as flat columns: dates ISO, lists JSON. Provenance is not part of it."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(rec):
        value = getattr(rec, f.name)
        if isinstance(value, PartialDate):
            value = value.iso()
        elif f.name == "unmapped":
            value = json.dumps([[u.field, u.raw] for u in value], ensure_ascii=False)
        elif isinstance(value, tuple):
            value = json.dumps(list(value), ensure_ascii=False)
        out[f.name] = value
    return out


def content_hash(normalized: Mapping[str, Any]) -> str:
    """sha256 of the normalized record: equal hashes mean nothing the registry says changed."""
    text = json.dumps(normalized, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def outcome_row(state: TrialState) -> dict[str, Any]:
    return {
        "trial_id": state.trial_id,
        "registry": state.registry,
        "outcome": state.outcome.value,
        "detail": state.detail,
        "url": state.source_url,
        "stale": state.stale,
        "carried_from": state.carried_from,
    }


def finding_row(index: int, f: Finding) -> dict[str, Any]:
    return {
        "id": index,
        "table": f.table,
        "line": f.line,
        "trial_id": f.trial_id,
        "field": f.field,
        "kind": f.kind,
        "severity": f.severity.value,
        "review_value": f.review_value,
        "registry_value": f.registry_value,
        "evidence_url": f.evidence_url,
        "message": f.message,
        "stale": f.stale,
        "last_updated": f.extra.get("last_updated"),
        "stale_since": f.extra.get("stale_since"),
    }


EMPTY_PKS: dict[str, Any] = {
    "curated": "line",
    "records": ("registry", "trial_id"),
    "outcomes": "trial_id",
    "findings": "id",
    "payloads": "sha256",
}
EMPTY_SCHEMAS: dict[str, dict[str, type]] = {
    "curated": {"line": int, "table": int, "trial_id": str},
    "records": {
        "registry": str,
        "trial_id": str,
        "content_hash": str,
        "source_url": str,
        "fetched_at": str,
        "payload_sha256": str,
        "stale": int,
    },
    "outcomes": {
        "trial_id": str,
        "registry": str,
        "outcome": str,
        "detail": str,
        "url": str,
        "stale": int,
        "carried_from": str,
    },
    "findings": {
        "id": int,
        "table": int,
        "line": int,
        "trial_id": str,
        "field": str,
        "kind": str,
        "severity": str,
        "review_value": str,
        "registry_value": str,
        "evidence_url": str,
        "message": str,
        "stale": int,
        "last_updated": str,
        "stale_since": str,
    },
    "payloads": {"sha256": str, "body": bytes},
}


def _write_pointer(store: Path, target: Path, mode: str) -> None:
    """`latest` and `latest-<mode>` (text files naming the snapshot) and `latest.sqlite` (a
    relative symlink, for tools such as Datasette), each replaced atomically."""
    for name in (LATEST_POINTER, f"{LATEST_POINTER}-{mode}"):
        tmp = store / f".{name}.tmp"
        tmp.write_text(target.name + "\n", encoding="utf-8")
        os.replace(tmp, store / name)
    link = store / f".{LATEST_POINTER}{SUFFIX}.tmp"
    link.unlink(missing_ok=True)
    link.symlink_to(target.name)
    os.replace(link, store / f"{LATEST_POINTER}{SUFFIX}")


def latest_snapshot(store: Path, pointer_name: str = LATEST_POINTER) -> Path | None:
    pointer = store / pointer_name
    if not pointer.exists():
        return None
    target = store / pointer.read_text(encoding="utf-8").strip()
    return target if target.exists() else None


def read_meta(path: Path) -> dict[str, Any]:
    db = open_snapshot(path)
    try:
        return {r["key"]: json.loads(r["value"]) for r in db["_meta"].rows}
    finally:
        db.close()


def open_snapshot(path: Path) -> sqlite_utils.Database:
    """Open read-only; a file that is not one of our snapshots is a clear error."""
    if not path.exists():
        raise SnapshotError(f"{path}: no such snapshot (list them with `registry-sync snapshots`)")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db = sqlite_utils.Database(conn)
    try:
        ok = db["_meta"].exists()
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"{path}: not a registry-sync snapshot ({exc})") from exc
    if not ok:
        raise SnapshotError(f"{path}: not a registry-sync snapshot (no _meta table)")
    return db


def list_snapshots(store: Path, *, include_rejected: bool = True) -> list[SnapshotInfo]:
    """Every snapshot in the store, oldest first."""
    paths = sorted(p for p in store.glob(f"*{SUFFIX}") if not p.is_symlink())
    if include_rejected:
        paths += sorted((store / REJECTED_DIR).glob(f"*{SUFFIX}"))
    infos = []
    for path in paths:
        meta = read_meta(path)
        infos.append(
            SnapshotInfo(
                path=path,
                run_id=str(meta.get("run_id")),
                mode=str(meta.get("mode", "live")),
                accepted=bool(meta.get("accepted")),
                started_at=str(meta.get("started_at")),
                partial=bool(meta.get("partial")),
                counts=meta.get("counts", {}),
            )
        )
    return sorted(infos, key=lambda i: i.run_id)


def leftover_temp_files(store: Path) -> list[Path]:
    """Temp files of runs killed mid-write: never snapshots, safe to delete."""
    found = [*store.glob(f".*{SUFFIX}.tmp"), *(store / REJECTED_DIR).glob(f".*{SUFFIX}.tmp")]
    return sorted(found)


def latest_of_mode(store: Path, mode: str) -> Path | None:
    """The newest accepted snapshot written in `mode` (live or replay): what carries forward.
    Read from the `latest-<mode>` pointer; a store without one is scanned."""
    pointed = latest_snapshot(store, f"{LATEST_POINTER}-{mode}")
    if pointed is not None:
        return pointed
    candidates = [i for i in list_snapshots(store, include_rejected=False) if i.mode == mode]
    return candidates[-1].path if candidates else None


@dataclass(frozen=True)
class StoredRecord:
    """A record row of an earlier snapshot with the payload it was parsed from."""

    run_id: str
    row: Mapping[str, Any]
    payload: RawPayload | None


def load_records(path: Path, trial_ids: Collection[str] | None = None) -> dict[str, StoredRecord]:
    """Records of a snapshot keyed by trial ID (only `trial_ids` when given), each with its
    payload bytes when kept. Reads only the payloads it returns."""
    db = open_snapshot(path)
    try:
        run_id = json.loads(db.table("_meta").get("run_id")["value"])
        if trial_ids is None:
            rows = list(db["records"].rows)
        else:
            wanted = json.dumps(sorted(trial_ids))
            sql = "select * from records where trial_id in (select value from json_each(?))"
            rows = list(db.query(sql, [wanted]))
        shas = json.dumps([r["payload_sha256"] for r in rows if r["payload_sha256"]])
        sql = "select * from payloads where sha256 in (select value from json_each(?))"
        payloads = {p["sha256"]: _payload(p) for p in db.query(sql, [shas])}
        return {
            row["trial_id"]: StoredRecord(
                run_id=row.get("carried_from") or run_id,
                row=row,
                payload=payloads.get(row["payload_sha256"]),
            )
            for row in rows
        }
    finally:
        db.close()


def _payload(p: Mapping[str, Any]) -> RawPayload:
    return RawPayload(
        registry=p["registry"],
        trial_id=p["trial_id"],
        url=p["url"],
        fetched_at=datetime.fromisoformat(p["fetched_at"]),
        body=p["body"],
        content_type=p["content_type"],
        container_sha256=p["container_sha256"],
    )
