"""Two Dask workers against one: the ad-hoc flow's fetch spread over a local cluster. A script
that prints figures; not a test (pytest does not collect `bench/`).

    PYTHONPATH=src .venv/bin/python bench/bench_workers.py [--trials 3000] [--batch 500]

A SYNTHETIC set of `--trials` ClinicalTrials.gov studies (one real recorded study copied with
its NCT ID rewritten, as `bench_soak.py` builds it) is generated into a temp dir and served by
the loopback replay server of the flow's own process. The ad-hoc flow runs on a
`DaskTaskRunner` over a `LocalCluster` of 1, then 2 worker processes (one thread each), with
ClinicalTrials.gov batches of `--batch` IDs, two in flight; the Prefect test harness gives it
a throwaway server. Printed: each run's flow wall time and fetch time, and whether the two
snapshots hold the same records. On 2 cores and loopback, the fetch is mostly the flow's own
parse and the server's work on the same cores: expect little or no gain; see the README.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_soak import EXPECTATIONS, ROOT, scale_set


def records(path: Path) -> dict[str, tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return {r[0]: r[1:] for r in conn.execute("select trial_id, content_hash from records")}
    finally:
        conn.close()


def run(workers: int, replay: Path, data: Path, batch: int) -> tuple[dict[str, Any], float]:
    import importlib.util

    from distributed import LocalCluster
    from prefect_dask.task_runners import DaskTaskRunner

    spec = importlib.util.spec_from_file_location("flows_reconcile", ROOT / "flows/reconcile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
    ) as cluster:
        flow = module.adhoc_reconcile.with_options(
            task_runner=DaskTaskRunner(address=cluster.scheduler_address)
        )
        start = time.perf_counter()
        out: dict[str, Any] = flow(
            registries=["ctgov"],
            data_dir=str(data),
            replay_dir=str(replay),
            ctgov_batch_size=batch,
            batches_at_once=2,
        )
        return out, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="workers-"))
    for key, value in {
        "PREFECT_HOME": str(tmp / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "ERROR",
        "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
        "REGISTRY_SYNC_EXPECTATIONS_DIR": str(EXPECTATIONS),
        "REGISTRY_SYNC_MAX_RETRIES": "0",
    }.items():
        os.environ[key] = value
    try:
        from prefect.testing.utilities import prefect_test_harness

        t0 = time.perf_counter()
        replay, review, _ = scale_set(tmp, args.trials)
        os.environ["REGISTRY_SYNC_CURATED"] = str(review)
        print(
            f"workers: {args.trials} synthetic ClinicalTrials.gov trials, batches of "
            f"{args.batch}, two in flight, loopback (generated in "
            f"{time.perf_counter() - t0:.1f} s)"
        )
        got = {}
        with prefect_test_harness(server_startup_timeout=120):
            for workers in (1, 2):
                out, wall = run(workers, replay, tmp / f"data-{workers}", args.batch)
                got[workers] = records(Path(out["snapshot"]))
                print(
                    f"  {workers} worker(s): flow {wall:.1f} s, fetch {out['fetch_s']} s, "
                    f"{out['outcomes']}"
                )
        same = got[1] == got[2]
        print(f"  same records (content hashes) either way: {same}")
        return 0 if same else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
