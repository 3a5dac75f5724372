"""The one place that orders a run's steps. `registry-sync run` and the Prefect flows both call
`run_pipeline`; flows only wrap the steps as tasks (see `Steps`), so a nightly run and an ad-hoc
run cannot differ.

Order: load the review's table -> gate it -> plan (registry per ID; unsupported and malformed
IDs get their outcome here) -> fetch per registry -> parse -> carry the last good values forward
for trials not refreshed -> reconcile -> gate the records -> write the snapshot -> render reports.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from registry_sync import __version__, frames, report, snapshot, validate
from registry_sync.curated import CuratedTable, load_curated
from registry_sync.errors import ParseError, RegistryDownError, ValidationFailed
from registry_sync.http import Http
from registry_sync.ids import normalize_id
from registry_sync.model import CuratedRow, FetchOutcome, Outcome, RawPayload, TrialState
from registry_sync.reconcile import reconcile
from registry_sync.registries import REGISTRIES
from registry_sync.registry_table import TRIAL_REGISTRIES, registry_name
from registry_sync.settings import Settings


@dataclass(frozen=True)
class RunRequest:
    """What to run: all of the review by default; an ad-hoc run narrows it."""

    registries: tuple[str, ...] = ()  # registry keys; empty = all
    ids: tuple[str, ...] = ()  # trial IDs as printed or normalized; empty = all
    replay_dir: Path | None = None  # serve recorded payloads from here on loopback

    @property
    def mode(self) -> str:
        return "replay" if self.replay_dir is not None else "live"


@dataclass(frozen=True)
class RunResult:
    run_id: str
    snapshot_path: Path
    accepted: bool
    partial: bool
    outcomes: dict[str, int]
    findings: dict[str, int]
    report_paths: dict[str, Path]
    validation: dict[str, Any]
    report_markdown: str

    @property
    def exit_code(self) -> int:
        """0 complete, 1 partial, 3 records rejected by the quality gate (see cli.py)."""
        if not self.accepted:
            return 3
        return 1 if self.partial else 0


def fetch_registry(key: str, ids: Sequence[str], http: Http, base_url: str) -> list[FetchOutcome]:
    """Fetch one registry's trials. Raises RegistryDownError (transient) when every one failed."""
    outcomes = REGISTRIES[key].fetch(ids, http, base_url)
    if outcomes and all(o.outcome is Outcome.REGISTRY_DOWN for o in outcomes):
        raise RegistryDownError(
            f"{registry_name(key)} did not answer: {outcomes[0].detail}", outcomes
        )
    return outcomes


def fetch_data_timestamp(key: str, http: Http, base_url: str) -> str | None:
    fn = REGISTRIES[key].data_timestamp
    return fn(http, base_url) if fn is not None else None


@dataclass(frozen=True)
class Steps:
    """The steps a run calls, in the order `run_pipeline` gives. Flows wrap each as a task."""

    load_curated: Callable[[Path], CuratedTable] = load_curated
    validate_curated: Callable[..., validate.ValidationReport] = validate.validate_curated
    fetch_registry: Callable[[str, Sequence[str], Http, str], list[FetchOutcome]] = fetch_registry
    fetch_data_timestamp: Callable[[str, Http, str], str | None] = fetch_data_timestamp
    validate_records: Callable[..., validate.ValidationReport] = validate.validate_records
    write_snapshot: Callable[..., Path] = snapshot.write_snapshot


def run_pipeline(
    settings: Settings,
    request: RunRequest = RunRequest(),
    steps: Steps = Steps(),
    http: Http | None = None,
) -> RunResult:
    """Run once, end to end. Per-trial problems never stop the run; they become outcomes."""
    with _registry_endpoints(settings, request) as (settings, covers):
        own_http = http is None
        http = http or Http(settings.http)
        try:
            return _run(settings, request, steps, http, covers)
        finally:
            if own_http:
                http.close()


@contextlib.contextmanager
def _registry_endpoints(
    settings: Settings, request: RunRequest
) -> Iterator[tuple[Settings, Callable[[str, str], bool] | None]]:
    """Live: the settings' base URLs. Replay: a loopback server over the recorded set."""
    if request.replay_dir is None:
        yield settings, None
        return
    from registry_sync.replay import ReplayServer

    with ReplayServer(request.replay_dir) as server:
        # Politeness intervals protect real registries; our own loopback server needs none.
        local = replace(settings, http=replace(settings.http, min_interval={}))
        yield local.with_base_urls(server.base_urls()), server.covers


def _run(
    settings: Settings,
    request: RunRequest,
    steps: Steps,
    http: Http,
    covers: Callable[[str, str], bool] | None,
) -> RunResult:
    started = datetime.now(UTC)
    table, curated_report = _load_and_gate(settings, steps)
    rows = select_rows(table.rows, request)
    planned, by_registry = plan(rows)
    fetched, timestamps, payloads = _fetch_all(settings, steps, http, by_registry)
    states = {**planned, **fetched}
    if covers is not None:
        states = mark_not_in_replay(states, covers)
    previous = snapshot.latest_of_mode(settings.snapshots_dir, request.mode)
    states, carried_payloads = carry_forward(states, previous)
    findings = reconcile(rows, states)
    records_report = steps.validate_records(
        frames.records_frame(states.values()), settings.expectations_dir, started.date()
    )
    outcomes = dict(Counter(s.outcome.value for s in states.values()))
    kinds = dict(Counter(f.kind for f in findings))
    partial = any(s.outcome is not Outcome.OK for s in states.values())
    meta = {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "mode": request.mode,
        "package_version": __version__,
        "curated_path": str(settings.curated_path),
        "curated_sha256": table.sha256,
        "request": {"registries": list(request.registries), "ids": list(request.ids)},
        "base_urls": {k: settings.base_url(k) for k in by_registry},
        "data_timestamps": timestamps,
        "partial": partial,
        "counts": {
            "rows": len(rows),
            "trials": len(states),
            "outcomes": outcomes,
            "findings": kinds,
        },
        "requests_sent": http.requests_sent,
    }
    validation = {"curated": curated_report.to_dict(), "records": records_report.to_dict()}
    data = snapshot.SnapshotData(
        run_id=snapshot.new_run_id(started),
        meta=meta,
        curated=rows,
        states=list(states.values()),
        findings=findings,
        payloads=payloads + carried_payloads,
        parser_versions={k: r.parser_version for k, r in REGISTRIES.items()},
        validation=validation,
    )
    path = steps.write_snapshot(settings.snapshots_dir, data, accepted=records_report.success)
    report_paths, markdown = report.write_reports(path, settings.reports_dir)
    return RunResult(
        run_id=data.run_id,
        snapshot_path=path,
        accepted=records_report.success,
        partial=partial,
        outcomes=outcomes,
        findings=kinds,
        report_paths=report_paths,
        validation=validation,
        report_markdown=markdown,
    )


def _load_and_gate(
    settings: Settings, steps: Steps
) -> tuple[CuratedTable, validate.ValidationReport]:
    """The review's table, loaded and gated; a table that fails the gate stops the run."""
    table = steps.load_curated(settings.curated_path)
    curated_report = steps.validate_curated(
        frames.curated_frame(table.rows), settings.expectations_dir
    )
    if not curated_report.success:
        raise ValidationFailed(
            f"{settings.curated_path}: the review's table failed its quality gate: "
            f"{curated_report.summary()}",
            curated_report,
        )
    return table, curated_report


def select_rows(rows: Sequence[CuratedRow], request: RunRequest) -> list[CuratedRow]:
    """The rows an ad-hoc run asks for (all by default). Unknown keys or IDs are errors."""
    unknown = set(request.registries) - set(TRIAL_REGISTRIES)
    if unknown:
        raise ValueError(
            f"unknown registry key(s): {', '.join(sorted(unknown))}; "
            f"known: {', '.join(TRIAL_REGISTRIES)}"
        )
    wanted_ids = {normalize_id(i) for i in request.ids}
    selected = [
        r
        for r in rows
        if (not request.registries or r.registry in request.registries)
        and (not wanted_ids or normalize_id(r.trial_id) in wanted_ids)
    ]
    missing = wanted_ids - {normalize_id(r.trial_id) for r in rows}
    if missing:
        raise ValueError(f"not in the review's table: {', '.join(sorted(missing))}")
    return selected


def plan(rows: Sequence[CuratedRow]) -> tuple[dict[str, TrialState], dict[str, list[str]]]:
    """Outcomes decided without fetching (malformed, unsupported) and the IDs per registry."""
    decided: dict[str, TrialState] = {}
    by_registry: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    for row in rows:
        tid = normalize_id(row.trial_id)
        if tid in seen:
            continue
        seen.add(tid)
        if row.registry is None:
            decided[tid] = TrialState(
                None,
                tid,
                Outcome.ID_MALFORMED,
                f"{row.trial_id!r} matches no registry's ID pattern",
            )
        elif row.registry not in REGISTRIES:
            decided[tid] = TrialState(
                row.registry,
                tid,
                Outcome.UNSUPPORTED,
                f"no {registry_name(row.registry)} adapter yet",
            )
        else:
            by_registry[row.registry].append(tid)
    return decided, dict(by_registry)


def _fetch_all(
    settings: Settings, steps: Steps, http: Http, by_registry: dict[str, list[str]]
) -> tuple[dict[str, TrialState], dict[str, str | None], list[RawPayload]]:
    states: dict[str, TrialState] = {}
    timestamps: dict[str, str | None] = {}
    payloads: list[RawPayload] = []
    for key, ids in by_registry.items():
        base = settings.base_url(key)
        try:
            outcomes = steps.fetch_registry(key, ids, http, base)
            timestamps[key] = steps.fetch_data_timestamp(key, http, base)
        except RegistryDownError as exc:  # no answer at all: no data timestamp to ask for
            outcomes, timestamps[key] = exc.outcomes, None
        for o in outcomes:
            states[o.trial_id] = parse_outcome(o)
            if states[o.trial_id].outcome is Outcome.OK and o.payload is not None:
                payloads.append(o.payload)
    return states, timestamps, payloads


def parse_outcome(o: FetchOutcome) -> TrialState:
    """Turn a fetch outcome into a trial state, parsing the payload when there is one."""
    if o.outcome is not Outcome.OK or o.payload is None:
        return TrialState(o.registry, o.trial_id, o.outcome, o.detail, source_url=o.url)
    try:
        record = REGISTRIES[o.registry].parse(o.payload)
    except ParseError as exc:
        return TrialState(
            o.registry,
            o.trial_id,
            Outcome.PARSE_ERROR,
            str(exc),
            source_url=o.payload.url,
            payload_sha256=o.payload.sha256,
        )
    return TrialState(
        o.registry,
        o.trial_id,
        Outcome.OK,
        o.detail,
        record=record,
        fetched_at=o.payload.fetched_at,
        source_url=o.payload.url,
        payload_sha256=o.payload.sha256,
    )


def mark_not_in_replay(
    states: dict[str, TrialState], covers: Callable[[str, str], bool]
) -> dict[str, TrialState]:
    """In a replay, an ID the recorded set lacks is missing from the set, not the registry."""
    out = {}
    for tid, s in states.items():
        if s.outcome is Outcome.NOT_FOUND and s.registry and not covers(s.registry, tid):
            s = replace(
                s,
                outcome=Outcome.NOT_IN_REPLAY,
                detail="the replay set holds no recorded payload for this ID",
            )
        out[tid] = s
    return out


CARRY_FORWARD = frozenset({Outcome.REGISTRY_DOWN, Outcome.BLOCKED, Outcome.PARSE_ERROR})


def carry_forward(
    states: dict[str, TrialState], previous: Path | None
) -> tuple[dict[str, TrialState], list[RawPayload]]:
    """Trials not refreshed keep their last good values, re-parsed and marked stale.

    Returns the new states and the payloads carried with them, so each snapshot stands alone.
    """
    need = [tid for tid, s in states.items() if s.outcome in CARRY_FORWARD]
    if previous is None or not need:
        return states, []
    stored = snapshot.load_records(previous, need)
    out = dict(states)
    payloads = []
    for tid in need:
        old = stored.get(tid)
        if old is None or old.payload is None or old.row["registry"] not in REGISTRIES:
            continue
        try:
            record = REGISTRIES[old.row["registry"]].parse(old.payload)
        except ParseError:
            continue
        s = states[tid]
        out[tid] = replace(
            s,
            record=record,
            stale=True,
            carried_from=old.run_id,
            fetched_at=old.payload.fetched_at,
            source_url=old.payload.url,
            payload_sha256=old.payload.sha256,
            detail=f"{s.detail}; last good values from run {old.run_id} kept, marked stale",
        )
        payloads.append(old.payload)
    return out, payloads


__all__ = ["RunRequest", "RunResult", "Steps", "run_pipeline"]
