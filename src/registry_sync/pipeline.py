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
import hashlib
import json
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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
    payload_store,
    politeness,
    quarantine,
    report,
    reviews,
    runlock,
    snapshot,
    validate,
    verdict,
)
from registry_sync.body_sink import BodySink
from registry_sync.curated import CuratedTable, load_curated
from registry_sync.errors import FetchError, RegistryDownError, ValidationFailed
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
    # several reviews: one line each (name, rows, findings, rows_out_of_date, report)
    reviews: tuple[dict[str, Any], ...] = ()

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
            store = payload_store.default_path(endpoints.settings.snapshots_dir)
            try:
                with payload_store.Writer(store) as writer:
                    result = _run(endpoints, request, steps, http, on_progress, BodySink(writer))
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
    loose: list[Exchange] = field(default_factory=list)  # requests no outcome pointed at

    def merge(self, other: Fetched) -> None:
        """Add another stage's payloads, exchanges, notes and timings (not its states)."""
        self.payloads.extend(other.payloads)
        for rid, ex in other.exchanges.items():
            self.exchanges.setdefault(rid, ex)
        self.notes.extend(other.notes)
        self.seconds.update(other.seconds)
        self.loose.extend(other.loose)

    def keep_loose(self, exchanges: Sequence[Exchange], sink: BodySink) -> None:
        """Requests no outcome pointed at (retries, robots.txt, version history), redacted and
        stored as evidence of the run."""
        new = {
            ex.request_id: collect.redact_exchange(ex, _redactor(ex.registry))
            for ex in exchanges
            if ex.request_id not in self.exchanges
        }
        _, kept = sink.stash((), list(new.values()))
        for ex in kept:
            self.exchanges.setdefault(ex.request_id, ex)


def _run(
    endpoints: Endpoints,
    request: RunRequest,
    steps: Steps,
    http: Http,
    on_progress: ProgressHook | None = None,
    sink: BodySink | None = None,
) -> RunResult:
    settings = endpoints.settings
    sink = sink or BodySink(None)
    started = datetime.now(UTC)
    # each review's table loaded and gated on its own, its metadata and decisions read (and
    # checked) before anything is fetched or written; decisions are applied after reconcile
    loaded = [_load_review(settings, steps, p) for p in reviews.check_tables(settings.tables)]
    rows = select_rows([r for lr in loaded for r in lr.table.rows], request)
    curated_sha256 = reviews.combined_sha256([(lr.name, lr.table.sha256) for lr in loaded])
    # each review's prose against its table (read now: a bad file stops the run unfetched)
    text_found = review_text_conflicts(loaded, rows, request.text)
    planned, by_registry = plan(rows)
    keys = sorted(by_registry)
    mode, key = endpoints.mode(keys), endpoints.carry_key(keys)
    previous = snapshot.latest_of_mode(settings.snapshots_dir, key)
    clock = time.monotonic()
    inc = fetch_unchanged(
        endpoints, steps, http, by_registry, previous, curated_sha256, request, sink
    )
    fetched = fetch_all(endpoints, steps, http, inc.to_fetch, on_progress=on_progress, sink=sink)
    fetched.merge(inc.fetched)
    fetched.states.update(inc.fetched.states)
    fetched.timestamps.update({k: v for k, v in inc.fetched.timestamps.items() if v})
    states, copies = ask_ictrp(
        endpoints, steps, http, fetched.states, on_progress=on_progress, sink=sink
    )
    bound, why = politeness.lower_bound(by_registry)
    timing = {
        "fetch_s": round(time.monotonic() - clock, 2),
        "politeness_lower_bound_s": round(bound, 1),
        "politeness_bound_because": why,
        "ictrp_asked": len(copies.states),
    }
    fetched.merge(copies)
    snapshot.pause_for_test("fetch")
    fetched.keep_loose([*fetched.loose, *http.drain_exchanges()], sink)
    states = {**planned, **states}
    if endpoints.origin_of is not None:
        states = mark_not_in_replay(states, endpoints.origin_of)
    changed = layout.detect([*fetched.states.values(), *copies.states.values()])
    states, held, set_checks = quarantine_records(states, settings.expectations_dir, started)
    states, carried = carry_forward(states, previous)
    today = PartialDate(started.year, started.month, started.day)
    judged = [
        review_findings(
            endpoints, steps, http, (lr, rows, states, held), key, today, text_found[lr.name]
        )
        for lr in loaded
    ]
    findings = [f for found, _, _ in judged for f in found]
    verdict_meta, decided_meta, reviews_meta = _reviews_meta(loaded, rows, judged)
    fetched.keep_loose(http.drain_exchanges(), sink)  # the version-history requests, if asked
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
        "curated_sha256": curated_sha256,  # one table's own; several: see reviews.py
        "reviews": reviews_meta,
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
    validation = {
        "curated": _curated_validation(loaded),
        "records": records_report.to_dict(),
    }
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
        carried_requests=[
            *(c.request for c in carried if c.request is not None),
            *inc.reused_requests.values(),
        ],
    )
    inc_meta = inc.meta
    # The snapshot data holds what the run found; the frame lets go of it, so that once the
    # file is built `render_reports` can free it before the reports read the file back (a
    # 100,000-trial run would otherwise hold both at once).
    del states, findings, rows, fetched, carried, copies, judged, loaded, planned, inc, held
    rendered: dict[str, Any] = {}

    def render_reports(tmp: Path) -> None:
        _release(data)
        final = tmp.with_name(f"{data.run_id}{snapshot.SUFFIX}")
        rendered["paths"], rendered["md"], rendered["reviews"] = reviews.write_review_reports(
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
        incremental=inc_meta,
        reviews=tuple(
            {**line, "report": str(rendered["paths"][f"md:{line['name']}"])}
            for line in rendered["reviews"]
        ),
    )


def _release(data: snapshot.SnapshotData) -> None:
    """Empty the snapshot data's row lists once the file holds them (the `_meta`, validation
    and run id stay, for publishing)."""
    for rows in (data.curated, data.states, data.findings, data.payloads, data.exchanges):
        if isinstance(rows, list):
            rows.clear()


@dataclass
class Incremental:
    """What an incremental night already has for ClinicalTrials.gov, and what is left to fetch."""

    to_fetch: dict[str, list[str]]
    fetched: Fetched = field(default_factory=Fetched)
    reused: int = 0  # records reused as stored
    # the request rows those records came in, once each (a batch answered hundreds of them)
    reused_requests: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def fetch_unchanged(
    endpoints: Endpoints,
    steps: Steps,
    http: Http,
    by_registry: Mapping[str, Sequence[str]],
    previous: Path | None,
    curated_sha256: str,
    request: RunRequest,
    sink: BodySink | None = None,
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
    # rows only (an unchanged record is reused as stored, its body never read), a chunk at a
    # time: 100,000 whole rows at once were a gigabyte
    hashes: dict[str, str | None] = {}
    for chunk in _chunks(ids, REUSE_CHUNK):
        for t, r in snapshot.load_records(previous, chunk, bodies=False).items():
            if incremental.reusable(r.row, r.payload):
                hashes[t] = r.row.get("content_hash")
    asked = [t for t in ids if t in hashes]
    base_url = endpoints.settings.base_url(key)
    started = time.monotonic()
    stamp = steps.fetch_data_timestamp(key, http, base_url)  # before the query: conservative
    sent = len(http.exchanges)
    advanced = incremental.advanced_filter(plan.since)
    outcomes, how = ask_changed(asked, http, base_url, advanced) if asked else ([], "none")
    query = tuple(ex.request_id for ex in http.exchanges[sent:])
    fetched = Fetched(timestamps={key: stamp})
    redacted = [collect.redact_outcome(o, _redactor(key)) for o in outcomes]
    states, fetched.payloads, fetched.exchanges = _parsed(key, redacted, endpoints)
    fetched.states.update((s.trial_id, s) for s in states)
    fresh = [s for s in states if s.outcome is Outcome.OK and s.record is not None]
    same = sum(
        1 for s in fresh if s.record and incremental.record_hash(s.record) == hashes[s.trial_id]
    )
    changed = len(fresh) - same
    confirmed = stamp or datetime.now(UTC).isoformat(timespec="seconds")
    for tid, old_rec in _stored_in_chunks(previous, [t for t in asked if t not in fetched.states]):
        payload = old_rec.payload
        record = incremental.stored_record(old_rec.row)
        if payload is None or record is None:
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
        inc.reused += 1
        if old_rec.request is not None:
            inc.reused_requests.setdefault(old_rec.request["request_id"], old_rec.request)
    fetched.seconds["ctgov:incremental"] = round(time.monotonic() - started, 3)
    rest = [t for t in ids if t not in fetched.states]
    inc.to_fetch = {k: v for k, v in inc.to_fetch.items() if k != key or rest}
    if rest:
        inc.to_fetch[key] = rest
    sink = sink or BodySink(None)
    fetched.payloads, kept = sink.stash(fetched.payloads, list(fetched.exchanges.values()))
    fetched.exchanges = {ex.request_id: ex for ex in kept}
    inc.fetched = fetched
    inc.meta.update(
        asked=len(asked),
        returned=len(outcomes),
        changed=changed,
        unchanged=same + inc.reused,
        reused=inc.reused,
        fetched_in_full=len(rest),
        filter=advanced,
        asked_by=how,
    )
    return inc


REUSE_CHUNK = 5000  # stored records read at a time on an incremental night


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _stored_in_chunks(
    previous: Path, ids: Sequence[str]
) -> Iterator[tuple[str, snapshot.StoredRecord]]:
    """The stored records of `ids`, in order, `REUSE_CHUNK` rows held at a time."""
    for chunk in _chunks(ids, REUSE_CHUNK):
        stored = snapshot.load_records(previous, chunk, bodies=False)
        yield from ((t, stored[t]) for t in chunk if t in stored)


def ask_changed(
    asked: Sequence[str], http: Http, base_url: str, advanced: str
) -> tuple[list[FetchOutcome], str]:
    """The outcomes of the studies of `asked` that changed under `advanced`, and how they were
    asked: `by ID` (our IDs with the filter, one request per batch) or, when the registry's
    changed studies fill fewer pages than our IDs need batches (a registry-wide tracker's
    night), `registry-wide` (the changed NCT IDs, 1,000 a page, then ours among them in
    full). A failure of the registry-wide way falls back to asking by ID."""
    batches = len(ctgov.batches(asked, base_url, advanced=advanced))
    if batches > 2:
        try:
            pages = ctgov.changed_pages(http, base_url, advanced)
            if pages is not None and pages + 1 < batches:
                changed = ctgov.changed_since(http, base_url, advanced)
                mine = [t for t in asked if t in changed]
                return (ctgov.fetch(mine, http, base_url) if mine else []), "registry-wide"
        except FetchError:
            pass
    return ctgov.fetch_changed(asked, http, base_url, advanced), "by ID"


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
    table: Path | None = None,
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
            f"no review metadata beside {table or settings.curated_path} "
            "(see data/curated/README.md): "
            "every verdict is unknown"
        )
    return judged, meta


def _load_and_gate(
    settings: Settings, steps: Steps, path: Path | None = None
) -> tuple[CuratedTable, validate.ValidationReport]:
    """A review's table (`path`, default the settings' first), loaded and gated; a table that
    fails the gate stops the run."""
    path = path or settings.curated_path
    table = steps.load_curated(path)
    curated_report = steps.validate_curated(
        frames.curated_frame(table.rows), settings.expectations_dir
    )
    if not curated_report.success:
        raise ValidationFailed(
            f"{path}: the review's table failed its quality gate: {curated_report.summary()}",
            curated_report,
        )
    return table, curated_report


@dataclass(frozen=True)
class LoadedReview:
    """One review of a run: its table (rows tagged with its name), gate report, metadata and
    decisions."""

    name: str
    path: Path
    table: CuratedTable
    gate: validate.ValidationReport
    meta: ReviewMeta | None
    decided: decisions.Decisions


def _load_review(settings: Settings, steps: Steps, path: Path) -> LoadedReview:
    table, gate = _load_and_gate(settings, steps, path)
    name = reviews.review_name(path)
    table = replace(table, rows=tuple(reviews.tag_rows(table.rows, name)))
    meta = steps.load_review(path)
    decided = decisions.load_decisions(decisions.decisions_path(path))
    return LoadedReview(name, path, table, gate, meta, decided)


def review_findings(
    endpoints: Endpoints,
    steps: Steps,
    http: Http,
    run: tuple[
        LoadedReview, Sequence[CuratedRow], Mapping[str, TrialState], dict[str, quarantine.Held]
    ],
    carry_key: str,
    today: PartialDate,
    text_found: Sequence[Finding] = (),
) -> tuple[list[Finding], dict[str, Any], dict[str, Any]]:
    """One review's rows against the run's shared states: reconciled, judged, its authors'
    decisions applied (after the verdicts: every finding); each finding tagged with the review.
    Returns the findings, the verdict `_meta` and the decisions summary."""
    lr, all_rows, states, held = run
    rows = [r for r in all_rows if r.review == lr.name]
    findings = sorted(
        [*reconcile(rows, states, today), *quarantine.findings(rows, held, states), *text_found],
        key=lambda f: (f.table, f.line, f.field, f.kind),
    )
    findings, verdict_meta = judge(
        endpoints, steps, http, (rows, states, findings), lr.meta, carry_key, lr.path
    )
    findings = [replace(f, review=lr.name) for f in decisions.apply(findings, lr.decided.rows)]
    return findings, verdict_meta, decisions.summarise(lr.decided, findings)


def review_text_conflicts(
    loaded: Sequence[LoadedReview], rows: Sequence[CuratedRow], text: Path | None
) -> dict[str, list[Finding]]:
    """Each review's `text_table_conflict` findings: its prose (`text`, for a run of one review,
    else the `text` its `.review.toml` names) against its rows."""
    if text is not None and len(loaded) > 1:
        raise ValueError(
            "--text names one review's text; with several tables, name each review's text in "
            'its .review.toml (text = "...")'
        )
    out: dict[str, list[Finding]] = {}
    for lr in loaded:
        path = text or (lr.meta.text_path if lr.meta else None)
        out[lr.name] = text_conflicts([r for r in rows if r.review == lr.name], path)
    return out


def _reviews_meta(
    loaded: Sequence[LoadedReview],
    rows: Sequence[CuratedRow],
    judged: Sequence[tuple[list[Finding], dict[str, Any], dict[str, Any]]],
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """`_meta` of the verdicts and decisions (one review: its own, as ever; several: the run's
    totals, each review's own in `_meta.reviews`) and `_meta.reviews`."""
    listed = [
        {
            "name": lr.name,
            "curated_path": str(lr.path),
            "curated_sha256": lr.table.sha256,
            "rows": sum(1 for r in rows if r.review == lr.name),
            "findings": len(found),
            **{k: v for k, v in vmeta.items() if k in ("review", "verdicts", "verdict_note")},
            "decisions": dmeta,
        }
        for lr, (found, vmeta, dmeta) in zip(loaded, judged, strict=True)
    ]
    if len(judged) == 1:
        return judged[0][1], judged[0][2], listed
    found = [f for fs, _, _ in judged for f in fs]
    trials: dict[str, str] = {}
    for _, vmeta, _ in judged:
        trials.update(vmeta["history"]["trials"])
    verdict_meta = {
        "review": None,
        "verdicts": verdict.count_verdicts(found),
        "history": {
            "asked": judged[0][1]["history"]["asked"],
            "trials": dict(sorted(trials.items())),
        },
    }
    dmetas = [d for _, _, d in judged]
    named = [(lr.name, d) for lr, (_, _, d) in zip(loaded, judged, strict=True)]
    decided_meta = {
        "count": sum(d.get("count", 0) for d in dmetas),
        "accepted": sum(d.get("accepted", 0) for d in dmetas),
        "reopened": sum(d.get("reopened", 0) for d in dmetas),
        "unmatched": [f"{n}/{u}" for n, d in named for u in d.get("unmatched", [])],
        "notes": [f"{n}: {note}" for n, d in named for note in d.get("notes", [])],
        "path": ", ".join(str(d.get("path", "")) for d in dmetas),
    }
    return verdict_meta, decided_meta, listed


def _curated_validation(loaded: Sequence[LoadedReview]) -> dict[str, Any]:
    """The gate's report of the one table (as ever), or of each review's by name."""
    if len(loaded) == 1:
        return loaded[0].gate.to_dict()
    return {"reviews": {lr.name: lr.gate.to_dict() for lr in loaded}}


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
    source such as WHO ICTRP asked for another registry's trials). `part` numbers the shares of
    one registry's IDs (see `split_jobs`); the first also asks the data timestamp."""

    key: str
    ids: tuple[str, ...]
    home: str | None = None
    part: int = 0

    @property
    def name(self) -> str:
        """`ctgov`; `ictrp:jrct` for a source asked for another registry's trials."""
        return self.key if self.home is None else f"{self.key}:{self.home}"


ProgressHook = Callable[[str, int, int], None]  # (job name, trials done, trials asked)
JOBS_AT_ONCE = 2  # shares of one registry in flight at a time (bounded memory)


def split_jobs(jobs: Sequence[Job], base_url: Callable[[str], str]) -> list[Job]:
    """Each job cut into its adapter's `shares` (ClinicalTrials.gov: four full batches, about
    2,200 IDs): each share is parsed and its bodies stored before more are held."""
    out: list[Job] = []
    for job in jobs:
        adapter = REGISTRIES.get(job.key)
        cut = adapter.shares if adapter is not None else None
        parts = cut(job.ids, base_url(job.key)) if cut is not None else [list(job.ids)]
        out.extend(replace(job, ids=tuple(ids), part=n) for n, ids in enumerate(parts) if ids)
        if not parts or not any(parts):
            out.append(job)
    return out


class _Progress:
    """One bar per job name, whatever the number of its shares: trials done over all shares."""

    def __init__(self, hook: ProgressHook, jobs: Sequence[Job]) -> None:
        self.hook = hook
        self.total: Counter[str] = Counter()
        for job in jobs:
            self.total[job.name] += len(job.ids)
        self.done: Counter[str] = Counter()
        self.lock = threading.Lock()

    def start(self) -> None:
        for name, total in self.total.items():
            self.hook(name, 0, total)

    def add(self, name: str, n: int) -> None:
        with self.lock:
            self.done[name] = min(self.total[name], self.done[name] + n)
            done = self.done[name]
        self.hook(name, done, self.total[name])


@dataclass
class _Share:
    """What one share gives back from its worker: parsed states, bodies already stored."""

    collected: collect.Collected
    states: list[TrialState]
    payloads: list[RawPayload]
    exchanges: list[Exchange]


def _worker(
    job: Job,
    endpoints: Endpoints,
    steps: Steps,
    http: Http,
    sink: BodySink,
    progress: _Progress | None,
) -> Callable[[], _Share]:
    """Fetch one share (telling `progress` as the adapter answers each trial, a
    ClinicalTrials.gov batch at once), parse it and put its bodies in the store, all in the
    worker: only hashes come back."""

    def run() -> _Share:
        reported = 0

        def tick(n: int) -> None:
            nonlocal reported
            if progress is not None:
                reported += n
                progress.add(job.name, n)

        with _ticks.listening(tick):
            got = collect.fetch_one(
                job.key,
                list(job.ids),
                http,
                endpoints.settings.base_url(job.key),
                steps.fetch_registry,
                steps.fetch_data_timestamp,
                home=job.home,
                redact=_redactor(job.key),
                stamp=job.part == 0,
            )
        if progress is not None and reported < len(job.ids):
            progress.add(job.name, len(job.ids) - reported)
        states, payloads, exchanges = _parsed(job.key, got.outcomes, endpoints)
        slim_payloads, slim_exchanges = sink.stash(payloads, list(exchanges.values()))
        got.outcomes = []  # parsed: the bodies they held are in the store now
        return _Share(got, states, slim_payloads, slim_exchanges)

    return run


def _parsed(
    key: str, outcomes: Sequence[FetchOutcome], endpoints: Endpoints
) -> tuple[list[TrialState], list[RawPayload], dict[str, Exchange]]:
    """Each (redacted) outcome of registry or source `key` parsed, its origin marked; the
    payloads of those `ok`; and every exchange behind them, once."""
    states: list[TrialState] = []
    payloads: list[RawPayload] = []
    exchanges: dict[str, Exchange] = {}
    for o in outcomes:
        state = collect.parse_outcome(o, REGISTRIES)
        states.append(replace(state, origin=endpoints.origin(key, o.trial_id)))
        for ex in o.evidence:
            exchanges.setdefault(ex.request_id, ex)
        if state.outcome is Outcome.OK and o.payload is not None:
            payloads.append(o.payload)
    return states, payloads, exchanges


def fetch_all(
    endpoints: Endpoints,
    steps: Steps,
    http: Http,
    by_registry: Mapping[str, Sequence[str]],
    *,
    on_progress: ProgressHook | None = None,
    sink: BodySink | None = None,
) -> Fetched:
    """Every registry's trials, each registry in its own worker."""
    jobs = [Job(k, tuple(v)) for k, v in by_registry.items()]
    return fetch_jobs(endpoints, steps, http, jobs, on_progress=on_progress, sink=sink)


def fetch_jobs(
    endpoints: Endpoints,
    steps: Steps,
    http: Http,
    jobs: Sequence[Job],
    *,
    on_progress: ProgressHook | None = None,
    sink: BodySink | None = None,
) -> Fetched:
    """Each registry in its own worker thread (so a whole run takes about as long as its
    slowest registry); the per-host throttle in `Http` stays serial. A registry whose adapter
    takes its IDs in shares (`split_jobs`) has at most `JOBS_AT_ONCE` of them in flight, each
    parsed and its bodies stored (`sink`) in its worker as it ends. The context is copied into
    each worker so that, in a flow, the steps still run as tasks."""
    fetched = Fetched()
    if not jobs:
        return fetched
    sink = sink or BodySink(None)
    shares = split_jobs(jobs, endpoints.settings.base_url)
    progress = _Progress(on_progress, shares) if on_progress is not None else None
    if progress is not None:
        progress.start()
    queued: dict[str, deque[Job]] = defaultdict(deque)
    for job in shares:
        queued[job.name].append(job)
    workers = endpoints.settings.fetch_workers or len(queued)
    at_once = {name: min(JOBS_AT_ONCE, len(q)) for name, q in queued.items()}
    loose: dict[str, Exchange] = {}  # requests no outcome pointed at yet (retries, robots)
    with ThreadPoolExecutor(
        max_workers=max(workers, 1) * JOBS_AT_ONCE, thread_name_prefix="fetch"
    ) as pool:
        running: dict[Future[_Share], Job] = {}

        def submit(name: str) -> None:
            job = queued[name].popleft()
            run = _worker(job, endpoints, steps, http, sink, progress)
            running[pool.submit(contextvars.copy_context().run, run)] = job

        names = list(queued)
        for name in names[:workers]:
            for _ in range(at_once[name]):
                submit(name)
        waiting = names[workers:]
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                _absorb(fetched, job, future.result())  # fetch_one never raises for an adapter
                if queued[job.name]:
                    submit(job.name)
                elif waiting and not any(j.name == job.name for j in running.values()):
                    nxt = waiting.pop(0)
                    for _ in range(at_once[nxt]):
                        submit(nxt)
            for ex in http.drain_exchanges():
                loose.setdefault(ex.request_id, ex)
            for rid in [r for r in loose if r in fetched.exchanges]:
                del loose[rid]  # its job's evidence, already redacted and stored
    fetched.loose = list(loose.values())
    return fetched


def _absorb(fetched: Fetched, job: Job, share: _Share) -> None:
    got = share.collected
    if job.home is None and job.part == 0:
        fetched.timestamps[job.key] = got.timestamp
    fetched.notes.extend(got.notes)
    fetched.seconds[job.name] = round(fetched.seconds.get(job.name, 0.0) + got.seconds, 3)
    for state in share.states:
        fetched.states[state.trial_id] = state
    for ex in share.exchanges:
        fetched.exchanges.setdefault(ex.request_id, ex)
    fetched.payloads.extend(share.payloads)


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
    sink: BodySink | None = None,
) -> tuple[dict[str, TrialState], Fetched]:
    """The fallback stage: trials their registry could not give (blocked, down, gone without
    a new home) asked of WHO ICTRP, one worker per home registry."""
    states = fallback.link_moved(states)
    wanted = fallback.ictrp_requests(states)
    if not wanted or "ictrp" not in REGISTRIES:
        return states, Fetched()
    jobs = [Job("ictrp", tuple(ids), home) for home, ids in wanted.items()]
    copies = fetch_jobs(endpoints, steps, http, jobs, on_progress=on_progress, sink=sink)
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
