"""Ad-hoc reconcile: some registries or some trials, on demand. Thin over the library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from registry_sync.pipeline import RunRequest
from registry_sync.prefect_tasks import run_in_flow, task_runner_from_env


@flow(name="registry-sync-reconcile", log_prints=True, task_runner=task_runner_from_env())
def adhoc_reconcile(
    registries: list[str] | None = None,
    ids: list[str] | None = None,
    data_dir: str | None = None,
    replay_dir: str | None = None,
    fetch_retry_delay_s: float = 60,
    ctgov_batch_size: int | None = None,
    batches_at_once: int = 2,
    curated: list[str] | None = None,
) -> dict[str, Any]:
    """The same run as `registry-sync run --registry ... --ids ...`, with the same artifacts as
    the nightly flow (drift report, summary, findings table). On a Dask task runner
    (`REGISTRY_SYNC_DASK_ADDRESS`), the fetch is spread over its workers: ClinicalTrials.gov
    in batches of `ctgov_batch_size` IDs, `batches_at_once` in flight; other registries one
    task each. `curated`: the reviews' tables, as `--curated` repeated."""
    request = RunRequest(
        registries=tuple(registries or ()),
        ids=tuple(ids or ()),
        replay_dir=Path(replay_dir) if replay_dir else None,
    )
    return run_in_flow(
        request,
        data_dir,
        fetch_retry_delay_s,
        ctgov_batch_size=ctgov_batch_size,
        batches_at_once=batches_at_once,
        curated=curated or (),
    )


if __name__ == "__main__":
    adhoc_reconcile()
