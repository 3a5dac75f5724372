"""Ad-hoc reconcile: some registries or some trials, on demand. Thin over the library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from registry_sync.pipeline import RunRequest
from registry_sync.prefect_tasks import run_in_flow


@flow(name="registry-sync-reconcile", log_prints=True)
def adhoc_reconcile(
    registries: list[str] | None = None,
    ids: list[str] | None = None,
    data_dir: str | None = None,
    replay_dir: str | None = None,
    fetch_retry_delay_s: float = 60,
) -> dict[str, Any]:
    """The same run as `registry-sync run --registry ... --ids ...`, with the same artifacts as
    the nightly flow (drift report, summary, findings table)."""
    request = RunRequest(
        registries=tuple(registries or ()),
        ids=tuple(ids or ()),
        replay_dir=Path(replay_dir) if replay_dir else None,
    )
    return run_in_flow(request, data_dir, fetch_retry_delay_s)


if __name__ == "__main__":
    adhoc_reconcile()
