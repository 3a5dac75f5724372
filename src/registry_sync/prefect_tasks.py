"""The pipeline's steps wrapped as Prefect tasks: one library call each, named, no caching.

Only a transient fetch error (the registry did not answer at all) is retried at task level;
blocked, not found and parse errors are outcomes, never retried. After the retries the pipeline
records the trials as `registry_down` and carries their last good values forward, exactly as a
CLI run does. Imported only by the flows, so the CLI never pays for importing Prefect.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE

from registry_sync import pipeline
from registry_sync.errors import TransientFetchError, ValidationFailed
from registry_sync.http import Http
from registry_sync.model import FetchOutcome
from registry_sync.registry_table import REGISTRY_TABLE

P = ParamSpec("P")
R = TypeVar("R")

FETCH_RETRY_DELAY_S = 60


def is_transient_failure(task_: Any, task_run: Any, state: Any) -> bool:
    """retry_condition_fn: retry only when the task failed with a TransientFetchError."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, TransientFetchError)


def _plain_task(fn: Callable[P, R], name: str) -> Callable[P, R]:
    """A task that only names and observes one call: no caching, no persisted result."""
    return task(name=name, cache_policy=NO_CACHE, persist_result=False)(fn)


def prefect_steps(fetch_retry_delay_s: float = FETCH_RETRY_DELAY_S) -> pipeline.Steps:
    """`pipeline.Steps` whose calls run as Prefect tasks inside the calling flow.

    The fetch task's retries come from the registry table (`task_retries`), per registry: a
    registry that blocks bots is never retried, ClinicalTrials.gov twice.
    """
    base = pipeline.Steps()
    fetch_task = task(
        name="fetch-registry",
        retries=0,
        retry_delay_seconds=fetch_retry_delay_s,
        retry_condition_fn=is_transient_failure,
        cache_policy=NO_CACHE,
        persist_result=False,
    )(base.fetch_registry)

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

    from registry_sync import artifacts, report

    content = report.load_content(result.snapshot_path)
    state = "partial" if result.partial else "complete"
    create_markdown_artifact(
        markdown=artifacts.summary_markdown(content, result.report_paths),
        key=artifacts.SUMMARY_KEY,
        description=f"registry-sync run {result.run_id}: {state}; what to fix in the review",
    )
    create_table_artifact(
        table=artifacts.finding_rows(content),
        key=artifacts.FINDINGS_KEY,
        description=f"registry-sync run {result.run_id}: findings by table and row",
    )


def run_in_flow(
    request: pipeline.RunRequest, data_dir: str | None, fetch_retry_delay_s: float
) -> dict[str, Any]:
    """What every flow does: run the pipeline with task-wrapped steps, publish, summarize."""
    from pathlib import Path

    from registry_sync.settings import Settings

    settings = Settings.from_env(**({"data_dir": Path(data_dir)} if data_dir else {}))
    result = pipeline.run_pipeline(settings, request, steps=prefect_steps(fetch_retry_delay_s))
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
    }
