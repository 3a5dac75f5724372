"""The one place that orders a run's steps. `registry-sync run` and the Prefect flows both call
`run_pipeline`; flows only wrap the steps as tasks (see `Steps`), so a nightly run and an ad-hoc
run cannot differ.

Order: load the review's table -> gate it -> plan (registry per ID; unsupported and malformed
IDs get their outcome here) -> fetch, each registry in its own worker (the per-host throttle
stays serial) -> hold every adapter to the per-trial contract -> parse -> note a source whose
pages mostly failed to parse (`layout`) -> quarantine records failing a per-record expectation
(`quarantine`) -> carry the last good values forward for trials not refreshed (or quarantined)
or no longer shown -> reconcile (and judge verdicts)
-> apply the authors' decisions (read, and checked, before fetching) -> gate the records ->
write the snapshot, rendering its reports before it is published.

Where values come from is decided per registry (`Endpoints`): its default address (`live`), a
base URL of the user's (`custom`), or the loopback replay server (`replay`). A run only ever
carries values forward from an earlier run of the same kind, so a replay or a stand-in never
feeds a live run.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from registry_sync import (
    __version__,
    collect,
    coverage,
    decisions,
    fallback,
    frames,
    history,
    incremental,
    layout,
    politeness,
    quarantine,
    report,
    runlock,
    snapshot,
    validate,
    verdict,
)
from registry_sync.curated import CuratedTable, load_curated
from registry_sync.errors import RegistryDownError, ValidationFailed
from registry_sync.http import Http
from registry_sync.ids import normalize_id
from registry_sync.model import (
    CuratedRow,
    Exchange,
    FetchOutcome,
    Finding,
    Origin,
    Outcome,
    PartialDate,
    RawPayload,
    TrialState,
)
from registry_sync.reconcile import reconcile
from registry_sync.registries import REGISTRIES, _ticks, ctgov
from registry_sync.registry_table import REGISTRY_TABLE, TRIAL_REGISTRIES, registry_name
from registry_sync.review_meta import ReviewMeta, load_review_meta
from registry_sync.settings import DEFAULT_BASE_URLS, Settings
from registry_sync.textsource import text_conflicts


@dataclass(frozen=True)
class RunRequest:
    """What to run: all of the review by default; an ad-hoc run narrows it."""

    registries: tuple[str, ...] = ()  # registry keys; empty = all
    ids: tuple[str, ...] = ()  # trial IDs as printed or normalized; empty = all
    replay_dir: Path | None = None  # serve recorded payloads from here on loopback
    full: bool = False  # fetch everything, even when an incremental night is possible
    text: Path | None = None  # the review's text: its claims checked against the table

    @property
    def mode(self) -> str:
        """The mode asked for; a live run with a non-default base URL is recorded `custom`."""
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
    mode: str = "live"
    timing: dict[str, Any] = field(default_factory=dict)
    decisions: dict[str, Any] = field(default_factory=dict)  # as in the snapshot's _meta
    notices: tuple[str, ...] = ()  # one line each: a registry's changed pages, quarantined records
    cleaned: tuple[Path, ...] = ()  # what killed runs left, removed before this run began
    partial_because: str = ""  # which registries could not be checked, and why (one line)
    incremental: dict[str, Any] = field(default_factory=dict)  # as `_meta.incremental`

    @property
    def exit_code(self) -> int:
        """0 complete, 1 partial, 3 records rejected by the quality gate (see cli.py)."""
        if not self.accepted:
            return 3
        return 1 if self.partial else 0


@dataclass(frozen=True)
class Endpoints:
    """Where each registry is reached this run, and what kind of place that is."""

    settings: Settings  # with the base URLs in effect
    kinds: Mapping[str, str]  # registry key -> "live" | "custom" | "replay"
    origin_of: Callable[[str, str], Origin | None] | None = None  # replay: recorded or rebuilt

    def kind(self, key: str) -> str:
        return self.kinds.get(key, "live")

    def mode(self, keys: Sequence[str]) -> str:
        """`replay`, else `custom` when any fetched registry is off its default, else `live`."""
        kinds = {self.kind(k) for k in keys}
        return "replay" if "replay" in kinds else "custom" if "custom" in kinds else "live"

    def carry_key(self, keys: Sequence[str]) -> str:
        """Runs that may feed each other: `live`, `replay`, or custom with the same base URLs."""
        mode = self.mode(keys)
        if mode != "custom":
            return mode
        custom = {k: self.settings.base_url(k) for k in sorted(keys) if self.kind(k) == "custom"}
        return "custom-" + hashlib.sha256(json.dumps(custom).encode()).hexdigest()[:10]

    def origin(self, key: str, trial_id: str) -> Origin:
        if self.origin_of is not None:
            return self.origin_of(key, trial_id) or Origin.RECORDED
        return Origin.CUSTOM if self.kind(key) == "custom" else Origin.LIVE


def fetch_registry(key: str, ids: Sequence[str], http: Http, base_url: str) -> list[FetchOutcome]:
    """Fetch one registry's trials. Raises RegistryDownError (transient) when every one failed,
    so a flow can retry the whole registry."""
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
    load_review: Callable[[Path], ReviewMeta | None] = load_review_meta
    fetch_history: Callable[..., dict[str, verdict.TrialHistory]] = history.fetch_histories


def run_pipeline(
    settings: Settings,
    request: RunRequest = RunRequest(),
    steps: Steps = Steps(),
    http: Http | None = None,
    on_progress: ProgressHook | None = None,
) -> RunResult:
    """Run once, end to end. Per-trial problems never stop the run; they become outcomes.

    `on_progress(name, done, total)` hears of each registry's fetch: `0/total` when it starts,
    `total/total` when its answers are in (see `fetch_jobs`). Holds the data directory's run
    lock throughout, and first cleans up after killed runs (see `runlock.py`)."""
    with runlock.hold(settings.data_dir, wait=settings.lock_wait):
        recovered = runlock.recover(settings.snapshots_dir, settings.reports_dir)
        with _endpoints(settings, request) as endpoints:
            own_http = http is None
            http = http or Http(endpoints.settings.http)
            try:
                result = _run(endpoints, request, steps, http, on_progress)
            finally:
                if own_http:
                    http.close()
    return replace(result, cleaned=recovered.cleaned)


@contextlib.contextmanager
def _endpoints(settings: Settings, request: RunRequest) -> Iterator[Endpoints]:
    """Live: the settings' base URLs (`custom` where not a registry's default). Replay: every
    registry key on a loopback server over the recorded set (one without routes answers 404),
    so a replay run never reaches a live registry."""
    if request.replay_dir is None:
        kinds = {
            k: "live" if settings.base_url(k) == DEFAULT_BASE_URLS[k].rstrip("/") else "custom"
            for k in REGISTRY_TABLE
        }
        yield Endpoints(settings, kinds)
        return
    from registry_sync.replay import ReplayServer

    with ReplayServer(request.replay_dir) as server:
        served = server.base_urls()
        urls = {k: served.get(k, f"{server.url}/{k}") for k in REGISTRY_TABLE}
        yield Endpoints(
            replace(settings, base_urls=urls),
            dict.fromkeys(REGISTRY_TABLE, "replay"),
            origin_of=server.origin,
        )


@dataclass
class Fetched:
    """What the fetch stage gives the rest of the run."""

    states: dict[str, TrialState] = field(default_factory=dict)
    timestamps: dict[str, str | None] = field(default_factory=dict)
    payloads: list[RawPayload] = field(default_factory=list)
    exchanges: dict[str, Exchange] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # contract violations, adapter errors
    seconds: dict[str, float] = field(default_factory=dict)

    def merge(self, other: Fetched) -> None:
        """Add another stage's payloads, exchanges, notes and timings (not its states)."""
        self.payloads.extend(other.payloads)
        for rid, ex in other.exchanges.items():
            self.exchanges.setdefault(rid, ex)
        self.notes.extend(other.notes)
        self.seconds.update(other.seconds)


def _run(
    endpoints: Endpoints,
    request: RunRequest,
    steps: Steps,
    http: Http,
    on_progress: ProgressHook | None = None,
) -> RunResult:
    settings = endpoints.settings
    started = datetime.now(UTC)
    table, curated_report = _load_and_gate(settings, steps)
    review = steps.load_review(settings.curated_path)
    # read (and checked) before anything is fetched or written; applied after reconcile
    decided = decisions.load_decisions(decisions.decisions_path(settings.curated_path))
    rows = select_rows(table.rows, request)
    text_found = text_conflicts(rows, request.text or (review.text_path if review else None))
    planned, by_registry = plan(rows)
    keys = sorted(by_registry)
    mode, key = endpoints.mode(keys), endpoints.carry_key(keys)
    previous = snapshot.latest_of_mode(settings.snapshots_dir, key)
    clock = time.monotonic()
    inc = fetch_unchanged(endpoints, steps, http, by_registry, previous, table.sha256, request)
    fetched = fetch_all(endpoints, steps, http, inc.to_fetch, on_progress=on_progress)
    fetched.merge(inc.fetched)
    fetched.states.update(inc.fetched.states)
    fetched.timestamps.update({k: v for k, v in inc.fetched.timestamps.items() if v})
    states, copies = ask_ictrp(endpoints, steps, http, fetched.states, on_progress=on_progress)
    bound, why = politeness.lower_bound(by_registry)
    timing = {
        "fetch_s": round(time.monotonic() - clock, 2),
        "politeness_lower_bound_s": round(bound, 1),
        "politeness_bound_because": why,
        "ictrp_asked": len(copies.states),
    }
    fetched.merge(copies)
    snapshot.pause_for_test("fetch")
    for ex in list(http.exchanges):  # requests no outcome pointed at (retries, robots)
        if ex.request_id not in fetched.exchanges:
            fetched.exchanges[ex.request_id] = collect.redact_exchange(ex, _redactor(ex.registry))
    states = {**planned, **states}
    if endpoints.origin_of is not None:
        states = mark_not_in_replay(states, endpoints.origin_of)
    changed = layout.detect([*fetched.states.values(), *copies.states.values()])
    states, held, set_checks = quarantine_records(states, settings.expectations_dir, started)
    states, carried = carry_forward(states, previous)
    findings = reconcile(rows, states, PartialDate(started.year, started.month, started.day))
    findings = sorted(
        [*findings, *quarantine.findings(rows, held, states), *text_found],
        key=lambda f: (f.table, f.line, f.field, f.kind),
    )
    findings, verdict_meta = judge(endpoints, steps, http, (rows, states, findings), review, key)
    for ex in list(http.exchanges):  # the version-history requests, when asked
        if ex.request_id not in fetched.exchanges:
            fetched.exchanges[ex.request_id] = collect.redact_exchange(ex, _redactor(ex.registry))
    findings = decisions.apply(findings, decided.rows)  # after the verdicts: every finding
    decided_meta = decisions.summarise(decided, findings)
    records_report = steps.validate_records(
        frames.records_frame(states.values()), settings.expectations_dir, started.date()
    )
    records_report = validate.with_set_checks(records_report, set_checks)
    snapshot.pause_for_test("gate")
    outcomes = dict(Counter(s.outcome.value for s in states.values()))
    kinds = dict(Counter(f.kind for f in findings))
    partial = coverage.is_partial(states.values())  # a registry not checked; not a review finding
    meta = {
        "started_at": started.isoformat(),
        "mode": mode,
        "carry_key": key,
        "package_version": __version__,
        "curated_path": str(settings.curated_path),
        "curated_sha256": table.sha256,
        "decisions": decided_meta,
        "request": {"registries": list(request.registries), "ids": list(request.ids)},
        "base_urls": {k: settings.base_url(k) for k in keys},
        "data_timestamps": fetched.timestamps,
        "fetch_seconds": fetched.seconds,
        "timing": timing,
        "notes": fetched.notes,
        "partial": partial,
        "partial_because": coverage.partial_because(states.values()),
        "counts": {
            "rows": len(rows),
            "trials": len(states),
            "outcomes": outcomes,
            "findings": kinds,
        },
        "requests_sent": http.requests_sent,
        "carried_from": str(previous.name) if previous is not None else None,
        "incremental": inc.meta,
        "quarantine": {"held": [h.to_dict() for h in held.values()]},
        "layout_changes": layout.to_meta(changed),
        **verdict_meta,
    }
    validation = {"curated": curated_report.to_dict(), "records": records_report.to_dict()}
    data = snapshot.SnapshotData(
        run_id=snapshot.new_run_id(started),
        meta=meta,
        curated=rows,
        states=list(states.values()),
        findings=findings,
        payloads=fetched.payloads + [c.payload for c in carried if c.payload is not None],
        parser_versions={k: r.parser_version for k, r in REGISTRIES.items()},
        validation=validation,
        exchanges=list(fetched.exchanges.values()),
        endpoints={k: endpoints.kind(k) for k in keys},
        carried_requests=[c.request for c in [*carried, *inc.reused] if c.request is not None],
    )
    rendered: dict[str, Any] = {}

    def render_reports(tmp: Path) -> None:
        final = tmp.with_name(f"{data.run_id}{snapshot.SUFFIX}")
        rendered["paths"], rendered["md"] = report.write_reports(
            tmp, settings.reports_dir, final, previous
        )

    path = steps.write_snapshot(
        settings.snapshots_dir,
        data,
        accepted=records_report.success,
        before_publish=render_reports,
    )
    return RunResult(
        run_id=data.run_id,
        snapshot_path=path,
        accepted=records_report.success,
        partial=partial,
        partial_because=meta["partial_because"],
        outcomes=outcomes,
        findings=kinds,
        report_paths=rendered["paths"],
        validation=validation,
        report_markdown=rendered["md"],
        mode=mode,
        timing=timing,
        decisions=decided_meta,
        notices=tuple(report.notice_lines({**meta, "accepted": records_report.success})),
        incremental=inc.meta,
    )


@dataclass
class Incremental:
    """What an incremental night already has for ClinicalTrials.gov, and what is left to fetch."""

    to_fetch: dict[str, list[str]]
    fetched: Fetched = field(default_factory=Fetched)
    reused: list[snapshot.StoredRecord] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def fetch_unchanged(
    endpoints: Endpoints,
    steps: Steps,
    http: Http,
    by_registry: Mapping[str, Sequence[str]],
    previous: Path | None,
    curated_sha256: str,
    request: RunRequest,
) -> Incremental:
    """Incremental vs full (see `incremental.py`). Incremental: one filtered query for the
    ClinicalTrials.gov IDs the last snapshot holds a fresh record of; those it leaves out are
    reused from that snapshot (not stale); those it returns, and the rest, are fetched."""
    key = incremental.KEY
    ids = list(by_registry.get(key, ()))
    prev_meta = snapshot.read_meta(previous) if previous is not None and ids else None
    plan = incremental.decide(
        prev_meta,
        curated_sha256=curated_sha256,
        parser_version=REGISTRIES[key].parser_version,
        full=request.full,
    )
    inc = Incremental({k: list(v) for k, v in by_registry.items()})
    if not ids:
        return inc
    inc.meta = plan.to_meta()
    if not plan.incremental or plan.since is None or previous is None:
        return inc
    stored = {
        t: r
        for t, r in snapshot.load_records(previous, ids).items()
        if incremental.reusable(r.row, r.payload)
    }
    asked = [t for t in ids if t in stored]
    base_url = endpoints.settings.base_url(key)
    started = time.monotonic()
    stamp = steps.fetch_data_timestamp(key, http, base_url)  # before the query: conservative
    sent = len(http.exchanges)
    advanced = incremental.advanced_filter(plan.since)
    outcomes = ctgov.fetch_changed(asked, http, base_url, advanced) if asked else []
    query = tuple(ex.request_id for ex in http.exchanges[sent:])
    fetched = Fetched(timestamps={key: stamp})
    changed = same = 0
    for o in outcomes:
        state = collect.parse_outcome(collect.redact_outcome(o, _redactor(key)), REGISTRIES)
        fetched.states[o.trial_id] = replace(state, origin=endpoints.origin(key, o.trial_id))
        for ex in o.evidence:
            fetched.exchanges.setdefault(ex.request_id, ex)
        if state.outcome is Outcome.OK and o.payload is not None and state.record is not None:
            fetched.payloads.append(o.payload)
            old = stored[o.trial_id].row.get("content_hash")
            changed, same = (
                (changed, same + 1)
                if incremental.record_hash(state.record) == old
                else (changed + 1, same)
            )
    confirmed = stamp or datetime.now(UTC).isoformat(timespec="seconds")
    for tid in asked:
        old_rec = stored[tid]
        payload = old_rec.payload
        record = None if payload is None else collect.reparse(payload, REGISTRIES)
        if tid in fetched.states or payload is None or record is None:
            continue
        fetched.states[tid] = incremental.reused_state(
            tid,
            record,
            payload,
            old_rec.row,
            since=plan.since,
            confirmed=confirmed,
            run_id=old_rec.run_id,
            evidence=query,
        )
        fetched.payloads.append(payload)
        inc.reused.append(old_rec)
    fetched.seconds["ctgov:incremental"] = round(time.monotonic() - started, 3)
    rest = [t for t in ids if t not in fetched.states]
    inc.to_fetch = {k: v for k, v in inc.to_fetch.items() if k != key or rest}
    if rest:
        inc.to_fetch[key] = rest
    inc.fetched = fetched
    inc.meta.update(
        asked=len(asked),
        returned=len(outcomes),
        changed=changed,
        unchanged=same + len(inc.reused),
        reused=len(inc.reused),
        fetched_in_full=len(rest),
        filter=advanced,
    )
    return inc


def quarantine_records(
    states: dict[str, TrialState], expectations_dir: Path, started: datetime
) -> tuple[dict[str, TrialState], dict[str, quarantine.Held], list[quarantine.SetCheck]]:
    """Records fetched this run that fail a critical per-record expectation of the records
    suite, held back (outcome `quarantined`, values not used) before anything is carried
    forward or reconciled; and the set-level checks of the answer as a whole."""
    suite = validate.load_suite_json(expectations_dir / validate.RECORDS_SUITE_FILE)
    rows = {tid: row for tid, s in states.items() if (row := frames.record_row(s)) is not None}
    parameters = validate.records_parameters(started.date())
    held = quarantine.find_held(rows, states, suite["expectations"], parameters)
    statuses = quarantine.fresh_statuses(rows.values())
    checks = quarantine.set_checks(len(rows), held, statuses)
    return quarantine.hold_back(states, held), held, checks


def judge(
    endpoints: Endpoints,
    steps: Steps,
    http: Http,
    reconciled: tuple[Sequence[CuratedRow], Mapping[str, TrialState], Sequence[Finding]],
    review: ReviewMeta | None,
    carry_key: str,
) -> tuple[list[Finding], dict[str, Any]]:
    """Every finding's verdict (see `verdict.py`), reading ClinicalTrials.gov version history
    first when the settings ask for it; returns the findings and what `_meta` should say
    (`review`, `verdicts`, `history`)."""
    rows, states, findings = reconciled
    settings = endpoints.settings
    window = review.window if review is not None else None
    wanted = verdict.history_wanted(findings, states, window) if settings.history else []
    histories: dict[str, verdict.TrialHistory] = {}
    if wanted and window is not None:
        cache = settings.cache_dir / "ctgov-history" / carry_key
        histories = steps.fetch_history(wanted, http, settings.base_url("ctgov"), window, cache)
    judged = verdict.apply_verdicts(findings, rows, states, window, histories)
    meta: dict[str, Any] = {
        "review": review.to_dict() if review is not None else None,
        "verdicts": verdict.count_verdicts(judged),
        "history": {
            "asked": settings.history,
            "trials": {t: h.error or "read" for t, h in sorted(histories.items())},
        },
    }
    if review is None:
        meta["verdict_note"] = (
            f"no review metadata beside {settings.curated_path} (see data/curated/README.md): "
            "every verdict is unknown"
        )
    return judged, meta


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


@dataclass(frozen=True)
class Job:
    """One worker's share: registry or source `key` asked for `ids` (of `home`, when `key` is a
    source such as WHO ICTRP asked for another registry's trials)."""

    key: str
    ids: tuple[str, ...]
    home: str | None = None

    @property
    def name(self) -> str:
        """`ctgov`; `ictrp:jrct` for a source asked for another registry's trials."""
        return self.key if self.home is None else f"{self.key}:{self.home}"


ProgressHook = Callable[[str, int, int], None]  # (job name, trials done, trials asked)


def _counted(job: Job, hook: ProgressHook | None) -> Callable[..., collect.Collected]:
    """`collect.fetch_one` for `job`, telling `hook` as the adapter answers each trial (a
    ClinicalTrials.gov batch at once); run inside the worker's own context."""
    fetch = functools.partial(collect.fetch_one, home=job.home, redact=_redactor(job.key))
    if hook is None:
        return fetch
    total = len(job.ids)

    def run(*args: Any) -> collect.Collected:
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done = min(total, done + n)
            hook(job.name, done, total)

        with _ticks.listening(tick):
            return fetch(*args)

    return run


def _report_progress(jobs: Sequence[Job], futures: Sequence[Any], hook: ProgressHook) -> None:
    """n/n for each job as its worker finishes, whatever its adapter ticked (see `_counted`;
    `fetch_jobs` said 0/n for every job before any worker started)."""
    by_future = dict(zip(futures, jobs, strict=True))
    for future in as_completed(futures):
        job = by_future[future]
        hook(job.name, len(job.ids), len(job.ids))


def fetch_all(
    endpoints: Endpoints,
    steps: Steps,
    http: Http,
    by_registry: Mapping[str, Sequence[str]],
    *,
    on_progress: ProgressHook | None = None,
) -> Fetched:
    """Every registry's trials, each registry in its own worker."""
    jobs = [Job(k, tuple(v)) for k, v in by_registry.items()]
    return fetch_jobs(endpoints, steps, http, jobs, on_progress=on_progress)


def fetch_jobs(
    endpoints: Endpoints,
    steps: Steps,
    http: Http,
    jobs: Sequence[Job],
    *,
    on_progress: ProgressHook | None = None,
) -> Fetched:
    """Each job in its own worker thread (so a whole run takes about as long as its slowest
    registry); the per-host throttle in `Http` stays serial. The context is copied into each
    worker so that, in a flow, the steps still run as tasks."""
    fetched = Fetched()
    if not jobs:
        return fetched
    workers = endpoints.settings.fetch_workers or len(jobs)
    if on_progress is not None:
        for job in jobs:
            on_progress(job.name, 0, len(job.ids))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        futures = [
            pool.submit(
                contextvars.copy_context().run,
                _counted(job, on_progress),
                job.key,
                list(job.ids),
                http,
                endpoints.settings.base_url(job.key),
                steps.fetch_registry,
                steps.fetch_data_timestamp,
            )
            for job in jobs
        ]
        if on_progress is not None:
            _report_progress(jobs, futures, on_progress)
        for job, future in zip(jobs, futures, strict=True):
            got = future.result()  # fetch_one never raises for an adapter's problem
            name = job.name
            if job.home is None:
                fetched.timestamps[job.key] = got.timestamp
            fetched.notes.extend(got.notes)
            fetched.seconds[name] = round(got.seconds, 3)
            for o in got.outcomes:
                state = collect.parse_outcome(o, REGISTRIES)
                origin = endpoints.origin(job.key, o.trial_id)
                fetched.states[o.trial_id] = replace(state, origin=origin)
                for ex in o.evidence:
                    fetched.exchanges.setdefault(ex.request_id, ex)
                if state.outcome is Outcome.OK and o.payload is not None:
                    fetched.payloads.append(o.payload)
    return fetched


def _redactor(key: str) -> collect.Redactor | None:
    adapter = REGISTRIES.get(key)
    return adapter.redact if adapter is not None else None


def ask_ictrp(
    endpoints: Endpoints,
    steps: Steps,
    http: Http,
    states: dict[str, TrialState],
    *,
    on_progress: ProgressHook | None = None,
) -> tuple[dict[str, TrialState], Fetched]:
    """The fallback stage: trials their registry could not give (blocked, down, gone without
    a new home) asked of WHO ICTRP, one worker per home registry."""
    states = fallback.link_moved(states)
    wanted = fallback.ictrp_requests(states)
    if not wanted or "ictrp" not in REGISTRIES:
        return states, Fetched()
    jobs = [Job("ictrp", tuple(ids), home) for home, ids in wanted.items()]
    copies = fetch_jobs(endpoints, steps, http, jobs, on_progress=on_progress)
    return fallback.merge_ictrp(states, copies.states), copies


def mark_not_in_replay(
    states: dict[str, TrialState], origin_of: Callable[[str, str], Origin | None]
) -> dict[str, TrialState]:
    """In a replay, an ID the recorded set lacks is missing from the set, not the registry."""
    out = {}
    for tid, s in states.items():
        if s.outcome is Outcome.NOT_FOUND and s.registry and origin_of(s.registry, tid) is None:
            s = replace(
                s,
                outcome=Outcome.NOT_IN_REPLAY,
                detail="the replay set holds no recorded payload for this ID",
            )
        out[tid] = s
    return out


def carry_forward(
    states: dict[str, TrialState], previous: Path | None
) -> tuple[dict[str, TrialState], list[snapshot.StoredRecord]]:
    """Trials not refreshed keep their last good values, re-parsed and marked stale.

    Not refreshed: the registry was down, blocked us, gave an answer we could not use or a record
    the quality gate quarantined (`CARRY_FORWARD`), or it no longer shows a trial the previous
    run found (`not_found` with a stored record: one night's glitch or a real withdrawal,
    reported as `vanished` either way).
    Returns the new states and the stored records carried, so each snapshot stands alone.
    """
    need = [
        tid
        for tid, s in states.items()
        if s.outcome in CARRY_FORWARD
        or s.outcome is Outcome.NOT_FOUND
        or (s.outcome is Outcome.MOVED and not s.moved_to)
    ]
    if previous is None or not need:
        return states, []
    stored = snapshot.load_records(previous, need)
    out = dict(states)
    carried = []
    for tid in need:
        old = stored.get(tid)
        if old is None or old.payload is None:
            continue
        record = collect.reparse(old.payload, REGISTRIES)
        if record is None:
            continue
        s = states[tid]
        why = (
            f"not in the registry's answer, though run {old.run_id} found it"
            if s.outcome is Outcome.NOT_FOUND
            else s.detail
        )
        kept = replace(
            s,
            record=record,
            stale=True,
            carried_from=old.run_id,
            source=old.payload.served_by,
            fetched_at=old.payload.fetched_at,
            source_url=old.payload.url,
            payload_sha256=old.payload.sha256,
            origin=Origin(old.row.get("origin") or Origin.LIVE.value),
            detail=f"{why}; last good values from run {old.run_id} kept, marked stale",
        )
        fresh_copy = s.record is not None and s.source == "ictrp"
        out[tid] = fallback.prefer_newer(s, kept) if fresh_copy else kept
        carried.append(old)
    return out, carried


CARRY_FORWARD = frozenset(
    {Outcome.REGISTRY_DOWN, Outcome.BLOCKED, Outcome.PARSE_ERROR, Outcome.QUARANTINED}
)


__all__ = ["Endpoints", "ProgressHook", "RunRequest", "RunResult", "Steps", "run_pipeline"]
