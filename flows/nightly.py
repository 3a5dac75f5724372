"""Nightly sync: the whole review against the live registries. Thin over the library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from registry_sync.pipeline import RunRequest
from registry_sync.prefect_tasks import run_in_flow, task_runner_from_env


@flow(name="registry-sync-nightly", log_prints=True, task_runner=task_runner_from_env())
def nightly_sync(
    data_dir: str | None = None,
    replay_dir: str | None = None,
    fetch_retry_delay_s: float = 60,
    ctgov_batch_size: int | None = None,
    batches_at_once: int = 2,
    curated: list[str] | None = None,
) -> dict[str, Any]:
    """Reconcile every trial of the review; snapshot; publish the drift report, the summary
    (what to fix, counts, report paths) and the findings table as artifacts. On a Dask task
    runner (`REGISTRY_SYNC_DASK_ADDRESS`), the fetch is spread over its workers (see
    `registry_sync.prefect_tasks.distributed_steps`); the snapshot is written here, once.
    `curated`: several reviews' tables in one night (each trial fetched once, a report per
    review); none: the settings' table (`REGISTRY_SYNC_CURATED`, else the bundled one)."""
    request = RunRequest(replay_dir=Path(replay_dir) if replay_dir else None)
    return run_in_flow(
        request,
        data_dir,
        fetch_retry_delay_s,
        ctgov_batch_size=ctgov_batch_size,
        batches_at_once=batches_at_once,
        curated=curated or (),
    )


if __name__ == "__main__":
    nightly_sync()
