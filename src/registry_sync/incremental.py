"""Incremental nights for ClinicalTrials.gov: what to ask, given the last snapshot (pure).

A night after an accepted run of the same kind (carry key) asks ClinicalTrials.gov only for the
review's studies updated since the last run's data timestamp, with the API's own last-update
filter (REGISTRIES.md §1; the API's query-parameter docs give `filter.advanced` as an Essie
expression and `AREA[LastUpdatePostDate]RANGE[2023-01-15,MAX]` as an example):

    filter.ids=<batch>&filter.advanced=AREA[LastUpdatePostDate]RANGE[<since>,MAX]

`since` is the date of the last run's `/version` `dataTimestamp` minus `SAFETY_DAYS` (the
timestamp is a time of day, the filter a date; a study posted on that same day after the stamp
must not be missed). The studies the answer leaves out were confirmed unchanged by the registry
itself: their record is re-parsed from the last snapshot's payload and kept with outcome `ok`,
**not stale**, `fetched_at` of the original fetch, and a detail saying `unchanged since <since>
(ClinicalTrials.gov's last-update filter), confirmed <data timestamp>`. Only a fresh,
ClinicalTrials.gov-served record qualifies (not a stale one, not a WHO ICTRP copy).

A full fetch instead when: `--full`; no earlier snapshot of the same kind; the review's table
changed (`curated_sha256`); the ClinicalTrials.gov parser version changed; or the last run has
no data timestamp (a replay set without `ctgov/version.json`). Changed vs unchanged is counted
by the records' `content_hash`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from registry_sync.model import Origin, Outcome, RawPayload, RegistryRecord, TrialState
from registry_sync.snapshot_schema import content_hash, normalized_record, record_from_row

KEY = "ctgov"
SAFETY_DAYS = 1


@dataclass(frozen=True)
class Plan:
    """Incremental or full for this night, and why; `since` is the filter's lower bound."""

    incremental: bool
    why: str
    since: str | None = None  # yyyy-MM-dd
    previous_run: str | None = None

    def to_meta(self) -> dict[str, Any]:
        return {
            "mode": "incremental" if self.incremental else "full",
            "why": self.why,
            "since": self.since,
            "previous_run": self.previous_run,
        }


def decide(
    previous_meta: Mapping[str, Any] | None,
    *,
    curated_sha256: str,
    parser_version: int,
    full: bool = False,
) -> Plan:
    """Whether this night may ask ClinicalTrials.gov only for what changed since the last."""
    if full:
        return Plan(False, "--full asked for a full fetch")
    if previous_meta is None:
        return Plan(False, "no earlier snapshot of this kind of run")
    run = previous_meta.get("run_id")
    previous_run = run if isinstance(run, str) else None
    if previous_meta.get("curated_sha256") != curated_sha256:
        return Plan(False, "the review's table changed since the last run", None, previous_run)
    versions = previous_meta.get("parser_versions")
    old = versions.get(KEY) if isinstance(versions, Mapping) else None
    if old != parser_version:
        why = f"the ClinicalTrials.gov parser changed (version {old} -> {parser_version})"
        return Plan(False, why, None, previous_run)
    stamps = previous_meta.get("data_timestamps")
    stamp = stamps.get(KEY) if isinstance(stamps, Mapping) else None
    since = since_date(stamp) if isinstance(stamp, str) else None
    if since is None:
        why = "the last run has no ClinicalTrials.gov data timestamp"
        return Plan(False, why, None, previous_run)
    why = f"nothing forces a full fetch; last data timestamp {stamp}"
    return Plan(True, why, since.isoformat(), previous_run)


def since_date(data_timestamp: str) -> date | None:
    """The date of a `dataTimestamp` (`yyyy-MM-dd'T'HH:mm:ss`) minus the safety margin."""
    try:
        stamp = datetime.fromisoformat(data_timestamp)
    except ValueError:
        return None
    return stamp.date() - timedelta(days=SAFETY_DAYS)


def advanced_filter(since: str) -> str:
    """The `filter.advanced` expression: studies whose last update was posted on or after."""
    return f"AREA[LastUpdatePostDate]RANGE[{since},MAX]"


def reusable(row: Mapping[str, Any], payload: RawPayload | None) -> bool:
    """A stored record may stand for an unchanged study: fresh, served by ClinicalTrials.gov
    itself, with the payload it was parsed from."""
    return (
        payload is not None
        and not row.get("stale")
        and row.get("source") in (None, KEY)
        and payload.served_by == KEY
    )


def stored_record(row: Mapping[str, Any]) -> RegistryRecord | None:
    """The record a stored row holds, rebuilt from its columns; None when it does not hash to
    the row's own `content_hash` (then the study is fetched in full instead)."""
    try:
        record = record_from_row(row)
    except (TypeError, ValueError):
        return None
    return record if record_hash(record) == row.get("content_hash") else None


def record_hash(record: RegistryRecord, source: str = KEY) -> str:
    """The `content_hash` a snapshot stores for this record (see `snapshot_schema`)."""
    return content_hash({**normalized_record(record), "source": source})


def reused_state(
    trial_id: str,
    record: RegistryRecord,
    payload: RawPayload,
    row: Mapping[str, Any],
    *,
    since: str,
    confirmed: str,
    run_id: str,
    evidence: tuple[str, ...] = (),
) -> TrialState:
    """An unchanged study's state: the stored values, not stale, provenance saying so."""
    return TrialState(
        KEY,
        trial_id,
        Outcome.OK,
        f"unchanged since {since} (ClinicalTrials.gov's last-update filter), confirmed "
        f"{confirmed}; values as fetched {payload.fetched_at.isoformat()} in run {run_id}",
        record=record,
        stale=False,
        fetched_at=payload.fetched_at,
        source_url=payload.url,
        payload_sha256=payload.sha256,
        origin=Origin(row.get("origin") or Origin.LIVE.value),
        evidence=evidence,
    )
