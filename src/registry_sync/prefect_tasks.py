"""The pipeline's steps wrapped as Prefect tasks: one library call each, named, no caching.

Only a transient fetch error (the registry did not answer at all) is retried at task level;
blocked, not found and parse errors are outcomes, never retried. After the retries the pipeline
records the trials as `registry_down` and carries their last good values forward, exactly as a
CLI run does. Imported only by the flows, so the CLI never pays for importing Prefect.

Beyond one machine: when the flow runs on a task runner that leaves the process (prefect-dask's
`DaskTaskRunner`, chosen by `task_runner_from_env`), `distributed_steps` spreads the fetch over
its workers: ClinicalTrials.gov in batches, every other registry as one task (serial per host,
as in one process). Each worker has its own `Http`; everything else, the snapshot included,
stays in the flow's own process.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ParamSpec, TypeVar

from prefect import Task, task
from prefect.cache_policies import NO_CACHE

from registry_sync import pipeline
from registry_sync.errors import RegistryDownError, TransientFetchError, ValidationFailed
from registry_sync.http import Http, is_loopback
from registry_sync.model import Exchange, FetchOutcome, Outcome
from registry_sync.registries import ctgov
from registry_sync.registry_table import REGISTRY_TABLE, registry_name
from registry_sync.settings import HttpSettings

P = ParamSpec("P")
R = TypeVar("R")

FETCH_RETRY_DELAY_S = 60
DASK_ADDRESS_ENV = "REGISTRY_SYNC_DASK_ADDRESS"
SPREAD = "ctgov"  # the one registry whose batches go to several workers at once
SHARDS_HERE: Counter[str] = Counter()  # shards this process fetched, per registry (a worker's)


def is_transient_failure(task_: Any, task_run: Any, state: Any) -> bool:
    """retry_condition_fn: retry only when the task failed with a TransientFetchError."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, TransientFetchError)


def _plain_task(fn: Callable[P, R], name: str) -> Callable[P, R]:
    """A task that only names and observes one call: no caching, no persisted result."""
    return task(name=name, cache_policy=NO_CACHE, persist_result=False)(fn)


def _fetch_task(fn: Callable[P, R], name: str, retry_delay_s: float) -> Task[P, R]:
    """`fn` as a fetch task: retried only on a transient failure (the count is set per
    registry when it runs), never cached, no result persisted."""
    return task(
        name=name,
        retries=0,
        retry_delay_seconds=retry_delay_s,
        retry_condition_fn=is_transient_failure,
        cache_policy=NO_CACHE,
        persist_result=False,
    )(fn)


def prefect_steps(fetch_retry_delay_s: float = FETCH_RETRY_DELAY_S) -> pipeline.Steps:
    """`pipeline.Steps` whose calls run as Prefect tasks inside the calling flow.

    The fetch task's retries come from the registry table (`task_retries`), per registry: a
    registry that blocks bots is never retried, ClinicalTrials.gov twice.
    """
    base = pipeline.Steps()
    fetch_task = _fetch_task(base.fetch_registry, "fetch-registry", fetch_retry_delay_s)

    def fetch(key: str, ids: Sequence[str], http: Http, base_url: str) -> list[FetchOutcome]:
        info = REGISTRY_TABLE.get(key)
        configured = fetch_task.with_options(
            retries=info.task_retries if info is not None else 0,
            task_run_name=f"fetch-{key}",
        )
        return configured(key, ids, http, base_url)

    return pipeline.Steps(
        load_curated=_plain_task(base.load_curated, "load-curated"),
        validate_curated=_plain_task(base.validate_curated, "validate-curated"),
        fetch_registry=fetch,
        fetch_data_timestamp=_plain_task(base.fetch_data_timestamp, "fetch-data-timestamp"),
        validate_records=_plain_task(base.validate_records, "validate-records"),
        write_snapshot=_plain_task(base.write_snapshot, "write-snapshot"),
    )


def task_runner_from_env(env: Mapping[str, str] | None = None) -> Any:
    """The flows' task runner: a `DaskTaskRunner` on the scheduler at `REGISTRY_SYNC_DASK_ADDRESS`
    (e.g. `tcp://10.0.0.5:8786`; needs the `distributed` extra), else Prefect's default thread
    pool (one process). Read when a flow module is imported, i.e. in the process that runs it."""
    address = (os.environ if env is None else env).get(DASK_ADDRESS_ENV, "").strip()
    if not address:
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    from prefect_dask.task_runners import DaskTaskRunner

    return DaskTaskRunner(address=address)


def leaves_the_process(runner: Any) -> bool:
    """True for a task runner whose tasks may run in another process (Dask, Ray...)."""
    from prefect.task_runners import ThreadPoolTaskRunner

    return runner is not None and not isinstance(runner, ThreadPoolTaskRunner)


@dataclass(frozen=True)
class Shard:
    """What a worker sends back for one job or batch: the outcomes, and every exchange its own
    client recorded (retries and robots.txt included, as `Http.exchanges` in one process)."""

    outcomes: list[FetchOutcome]
    exchanges: list[Exchange]
    requests_sent: int


def fetch_on_worker(
    key: str, ids: Sequence[str], http_settings: HttpSettings, base_url: str
) -> Shard:
    """Runs on a worker: one job or batch through the registry's adapter, with a client of its
    own (its own sessions and per-host throttle). Raises RegistryDownError (transient, so the
    task is retried) when nothing answered."""
    SHARDS_HERE[key] += 1
    http = Http(http_settings)
    try:
        outcomes = pipeline.fetch_registry(key, ids, http, base_url)
    finally:
        http.close()
    return Shard(outcomes, list(http.exchanges), http.requests_sent)


def chunks(ids: Sequence[str], size: int) -> list[list[str]]:
    size = max(1, size)
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def distributed_steps(
    fetch_retry_delay_s: float = FETCH_RETRY_DELAY_S,
    *,
    batch_size: int | None = None,
    batches_at_once: int = 2,
) -> pipeline.Steps:
    """`prefect_steps` whose fetch is submitted to the flow's task runner (its workers):

    - ClinicalTrials.gov: one task per batch of `batch_size` IDs (its adapter's batch by
      default), at most `batches_at_once` in flight, released one politeness interval apart
      (none on loopback), each worker's interval for it multiplied by `batches_at_once`: the
      workers together never ask faster than one process would;
    - every other registry (page registries, WHO ICTRP): the whole job as one task, and one
      such task per registry at a time, so each host is still asked serially.

    Results come back to the flow's process (pickled), which parses, reconciles and writes
    the snapshot once, exactly as in one process."""
    base = prefect_steps(fetch_retry_delay_s)
    shard_task = _fetch_task(fetch_on_worker, "fetch-shard", fetch_retry_delay_s)
    size = batch_size or ctgov.DEFAULT_BATCH_SIZE
    at_once = max(1, batches_at_once)
    serial: dict[str, threading.Lock] = {k: threading.Lock() for k in REGISTRY_TABLE}
    counted = threading.Lock()

    def gather(future: Any, http: Http, into: list[FetchOutcome]) -> None:
        try:
            shard: Shard = future.result()
        except RegistryDownError as exc:  # after the task's retries
            into.extend(exc.outcomes)
            return
        into.extend(shard.outcomes)
        with counted, http._lock:  # the flow's client: its evidence and count, as if it sent
            http.exchanges.extend(shard.exchanges)
            http.requests_sent += shard.requests_sent

    def fetch(key: str, ids: Sequence[str], http: Http, base_url: str) -> list[FetchOutcome]:
        info = REGISTRY_TABLE.get(key)
        configured = shard_task.with_options(retries=info.task_retries if info is not None else 0)
        outcomes: list[FetchOutcome] = []
        if key != SPREAD:
            with serial.setdefault(key, threading.Lock()):
                named = configured.with_options(task_run_name=f"fetch-{key}")
                gather(named.submit(key, list(ids), http.settings, base_url), http, outcomes)
        else:
            interval = 0.0 if is_loopback(base_url) else http.settings.min_interval.get(key, 0.0)
            spaced = {**http.settings.min_interval, key: interval * at_once}
            worker_settings = replace(http.settings, min_interval=spaced)
            pending: list[Any] = []
            released = float("-inf")
            for n, batch in enumerate(chunks(ids, size), 1):
                if len(pending) >= at_once:
                    gather(pending.pop(0), http, outcomes)
                time.sleep(max(0.0, released + interval - time.monotonic()))
                released = time.monotonic()
                named = configured.with_options(task_run_name=f"fetch-{key}-batch-{n}")
                pending.append(named.submit(key, batch, worker_settings, base_url))
            for future in pending:
                gather(future, http, outcomes)
        if outcomes and all(o.outcome is Outcome.REGISTRY_DOWN for o in outcomes):
            raise RegistryDownError(f"{registry_name(key)} did not answer", outcomes)
        return outcomes

    return replace(base, fetch_registry=fetch)


def publish_report(result: pipeline.RunResult) -> None:
    """The drift report as a Prefect markdown artifact (the file is written by the pipeline)."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        markdown=result.report_markdown,
        key="drift-report",
        description=f"registry-sync run {result.run_id}: "
        f"{'partial' if result.partial else 'complete'}",
    )


def publish_artifacts(result: pipeline.RunResult) -> None:
    """The summary (markdown: what to fix, counts, the reports' paths, HTML first) and the
    findings (a table, one row per finding), read back from the run's snapshot."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from registry_sync import artifacts, reviews, snapshot

    state = "partial" if result.partial else "complete"
    # one review: keys as ever; several: one pair per review, keyed `<key>-<review>`
    for name, suffix, paths in reviews.artifact_parts(
        snapshot.read_meta(result.snapshot_path), result.report_paths
    ):
        content = reviews.load_review_content(result.snapshot_path, name)
        of = name if suffix else "the review"
        create_markdown_artifact(
            markdown=artifacts.summary_markdown(content, paths),
            key=artifacts.SUMMARY_KEY + suffix,
            description=f"registry-sync run {result.run_id}: {state}; what to fix in {of}",
        )
        create_table_artifact(
            table=artifacts.finding_rows(content),
            key=artifacts.FINDINGS_KEY + suffix,
            description=f"registry-sync run {result.run_id}: findings "
            + (f"of {name} " if suffix else "")
            + "by table and row",
        )


def run_in_flow(
    request: pipeline.RunRequest,
    data_dir: str | None,
    fetch_retry_delay_s: float,
    *,
    ctgov_batch_size: int | None = None,
    batches_at_once: int = 2,
    curated: Sequence[str] = (),
) -> dict[str, Any]:
    """What every flow does: run the pipeline with task-wrapped steps, publish, summarize.
    On a task runner that leaves the process, the fetch is spread (`distributed_steps`).
    `curated`: the reviews' tables (several reviews in one run); empty: the settings'."""
    from pathlib import Path

    from prefect.context import FlowRunContext

    from registry_sync.settings import Settings

    settings = Settings.from_env(**({"data_dir": Path(data_dir)} if data_dir else {}))
    settings = settings.with_tables([Path(p) for p in curated])
    context = FlowRunContext.get()
    if leaves_the_process(context.task_runner if context is not None else None):
        steps = distributed_steps(
            fetch_retry_delay_s, batch_size=ctgov_batch_size, batches_at_once=batches_at_once
        )
    else:
        steps = prefect_steps(fetch_retry_delay_s)
    result = pipeline.run_pipeline(settings, request, steps=steps)
    publish_report(result)
    publish_artifacts(result)
    if not result.accepted:  # the snapshot was kept apart: the flow run must show as failed
        raise ValidationFailed(
            f"run {result.run_id}: records rejected by the quality gate "
            f"({result.validation['records'].get('summary')}); snapshot kept apart at "
            f"{result.snapshot_path}",
            result.validation["records"],
        )
    print(
        f"run {result.run_id} ({request.mode}): "
        f"{'PARTIAL' if result.partial else 'complete'}; outcomes {result.outcomes}; "
        f"snapshot {result.snapshot_path}"
    )
    return {
        "run_id": result.run_id,
        "snapshot": str(result.snapshot_path),
        "report": str(result.report_paths["md"]),
        "report_html": str(html) if (html := result.report_paths.get("html")) else None,
        "partial": result.partial,
        "accepted": result.accepted,
        "outcomes": result.outcomes,
        "findings": result.findings,
        "fetch_s": result.timing.get("fetch_s"),
    }
