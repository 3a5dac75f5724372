"""Nightly sync: the whole review against the live registries. Thin over the library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from registry_sync.pipeline import RunRequest
from registry_sync.prefect_tasks import run_in_flow


@flow(name="registry-sync-nightly", log_prints=True)
def nightly_sync(
    data_dir: str | None = None, replay_dir: str | None = None, fetch_retry_delay_s: float = 60
) -> dict[str, Any]:
    """Reconcile every trial of the review; snapshot; publish the drift report, the summary
    (what to fix, counts, report paths) and the findings table as artifacts."""
    request = RunRequest(replay_dir=Path(replay_dir) if replay_dir else None)
    return run_in_flow(request, data_dir, fetch_retry_delay_s)


if __name__ == "__main__":
    nightly_sync()
