"""pandas frames of a run's curated rows and records, the shape the quality gate validates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from registry_sync import snapshot_schema
from registry_sync.model import CuratedRow, PartialDate, TrialState

CURATED_COLUMNS = (
    "line",
    "table",
    "product",
    "cell_type",
    "indication",
    "sponsor",
    "trial_id",
    "phase",
    "nation",
    "start",
    "registry",
    "phases",
    "start_iso",
)
RECORD_COLUMNS = (
    "registry",
    "trial_id",
    "status",
    "status_raw",
    "phases",
    "start",
    "primary_completion",
    "completion",
    "last_updated",
    "start_type",
    "lead_sponsor",
    "enrollment",
    "stale",
    "fetched_at",
    "source_url",
    "payload_sha256",
)


def curated_row(row: CuratedRow) -> dict[str, Any]:
    """One curated row as the gate sees it: the snapshot's columns, with phases `|`-joined (the
    form the suite's regex checks) instead of the snapshot's JSON array."""
    phases = "|".join(sorted(row.phases)) if row.phases is not None else None
    return {**snapshot_schema.curated_row(row), "phases": phases}


def curated_frame(rows: Sequence[CuratedRow]) -> pd.DataFrame:
    return pd.DataFrame.from_records([curated_row(r) for r in rows], columns=list(CURATED_COLUMNS))


def record_row(s: TrialState) -> dict[str, Any] | None:
    """One state's record as the gate sees it (None when it has no record): plain values, dates
    as ISO partial strings. `quarantine` checks these rows one by one; GX gets them as a frame."""
    rec = s.record
    if rec is None:
        return None
    return {
        "registry": rec.registry,
        "trial_id": rec.trial_id,
        "status": rec.status,
        "status_raw": rec.status_raw,
        "phases": "|".join(rec.phases),
        "start": _iso(rec.start),
        "primary_completion": _iso(rec.primary_completion),
        "completion": _iso(rec.completion),
        "last_updated": _iso(rec.last_updated),
        "start_type": rec.start_type,
        "lead_sponsor": rec.lead_sponsor,
        "enrollment": rec.enrollment,
        "stale": s.stale,
        "fetched_at": s.fetched_at.isoformat() if s.fetched_at else None,
        "source_url": s.source_url,
        "payload_sha256": s.payload_sha256,
    }


def records_frame(states: Iterable[TrialState]) -> pd.DataFrame:
    records = [row for row in map(record_row, states) if row is not None]
    frame = pd.DataFrame.from_records(records, columns=list(RECORD_COLUMNS))
    frame["enrollment"] = frame["enrollment"].astype("Int64")
    frame["stale"] = frame["stale"].astype(bool)
    return frame


def _iso(value: PartialDate | None) -> str | None:
    return value.iso() if value is not None else None
