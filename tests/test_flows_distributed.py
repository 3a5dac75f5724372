"""Beyond one machine: the ad-hoc flow on a two-worker Dask cluster (prefect-dask) gives the
same snapshot as one process; ClinicalTrials.gov batches go to both workers, nothing is
fetched in the flow's own process; what crosses a process boundary pickles. Shares the
session's Prefect harness (conftest.py)."""

from __future__ import annotations

import csv
import math
import pickle
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import BUNDLED_CURATED, BUNDLED_REPLAY, EXPECTATIONS, FAST_HTTP
from registry_sync import prefect_tasks
from registry_sync.errors import RegistryDownError
from registry_sync.http import Http
from registry_sync.model import Outcome
from registry_sync.pipeline import RunRequest, fetch_registry, run_pipeline
from registry_sync.replay import ReplayServer
from registry_sync.settings import Settings
from test_flows import load_flow_module

distributed = pytest.importorskip("distributed")

BATCH = 4


RECORDED_PAGES = {"jRCTs051180190": "JP", "UMIN000027821": "JP"}  # other trials than the review's


def review_subset(tmp: Path) -> tuple[Path, list[str]]:
    """The review's rows for nine recorded ClinicalTrials.gov IDs and one not recorded (three
    batches of 4), and rows for two page-registry trials the replay set holds."""
    lines = BUNDLED_CURATED.read_text(encoding="utf-8").splitlines(keepends=True)
    recorded = {p.stem for p in (BUNDLED_REPLAY / "ctgov").rglob("NCT*.json")}
    rows = list(csv.DictReader(lines))
    nct = [r["trial_id"] for r in rows if r["trial_id"] in recorded][:9]
    nct += [r["trial_id"] for r in rows if r["trial_id"].startswith("NCT")][-1:]
    keep = [lines[0]] + [ln for ln, r in zip(lines[1:], rows, strict=True) if r["trial_id"] in nct]
    extra = [
        f"{900 + n},1,page trial {n},,,,,{tid},I,{nation},2018,\n"
        for n, (tid, nation) in enumerate(RECORDED_PAGES.items())
    ]
    path = tmp / "review_subset.csv"
    path.write_text("".join(keep + extra), encoding="utf-8")
    return path, nct + list(RECORDED_PAGES)


def snapshot_content(path: Path) -> dict[str, Any]:
    """What must not depend on where the fetch ran (not run ids, timestamps or request ids)."""
    conn = sqlite3.connect(path)
    try:
        records = {
            r[0]: r[1:]
            for r in conn.execute(
                "select trial_id, content_hash, payload_sha256, stale, origin from records"
            )
        }
        outcomes = {
            r[0]: r[1:]
            for r in conn.execute("select trial_id, registry, source, outcome from outcomes")
        }
        findings = sorted(conn.execute("select key, kind, verdict from findings"))
        # a trial's own payload; the batch answers it came in differ with the batch size
        payloads = sorted(
            conn.execute("select trial_id, kind, sha256 from payloads where trial_id is not null")
        )
    finally:
        conn.close()
    return {"records": records, "outcomes": outcomes, "findings": findings, "payloads": payloads}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_SYNC_EXPECTATIONS_DIR", str(EXPECTATIONS))
    monkeypatch.setenv("REGISTRY_SYNC_MAX_RETRIES", "0")
    monkeypatch.delenv(prefect_tasks.DASK_ADDRESS_ENV, raising=False)


@pytest.fixture
def cluster() -> Iterator[tuple[Any, Any]]:
    """Two worker processes on this machine, one thread each (they reach the loopback replay
    server of the flow's process on 127.0.0.1)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            # a random dashboard port: another cluster on this machine (a bench) keeps 8787
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",
        ) as local,
        Client(local) as client,  # type: ignore[no-untyped-call]
    ):
        yield local, client


@pytest.mark.prefect
def test_two_workers_write_the_same_snapshot_as_one_process(
    harness: None,
    env: None,
    tmp_path: Path,
    cluster: tuple[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect_dask.task_runners import DaskTaskRunner

    local, client = cluster
    curated, ids = review_subset(tmp_path)
    monkeypatch.setenv("REGISTRY_SYNC_CURATED", str(curated))
    adhoc = load_flow_module("reconcile").adhoc_reconcile
    spread = adhoc.with_options(task_runner=DaskTaskRunner(address=local.scheduler_address))
    before_here = sum(prefect_tasks.SHARDS_HERE.values())
    out = spread(
        data_dir=str(tmp_path / "dask"),
        replay_dir=str(BUNDLED_REPLAY),
        ctgov_batch_size=BATCH,
        batches_at_once=2,
    )
    one = run_pipeline(
        Settings.from_env(data_dir=tmp_path / "one"),
        RunRequest(replay_dir=BUNDLED_REPLAY),
    )

    per_worker: dict[str, dict[str, int]] = client.run(
        lambda: dict(__import__("registry_sync.prefect_tasks").prefect_tasks.SHARDS_HERE)
    )
    assert len(per_worker) == 2
    # both worked (which shard lands where is the scheduler's choice: count any)
    assert all(sum(shards.values()) >= 1 for shards in per_worker.values())
    n_nct = sum(1 for i in ids if i.startswith("NCT"))
    assert sum(s.get("ctgov", 0) for s in per_worker.values()) == math.ceil(n_nct / BATCH)
    page_keys = {k for s in per_worker.values() for k in s} - {"ctgov"}
    assert {"jrct", "umin"} <= page_keys
    assert sum(prefect_tasks.SHARDS_HERE.values()) == before_here  # none in the flow's process

    assert out["outcomes"] == one.outcomes and out["findings"] == one.findings
    assert out["partial"] == one.partial and out["accepted"] is True
    spread_content = snapshot_content(Path(out["snapshot"]))
    fetched_ok = [t for t, o in spread_content["outcomes"].items() if o[2] == "ok"]
    assert set(spread_content["outcomes"]) == set(ids)
    assert sorted(fetched_ok) == sorted(ids[:9] + list(RECORDED_PAGES)), spread_content["outcomes"]
    assert spread_content == snapshot_content(one.snapshot_path)


def test_what_crosses_a_process_boundary_pickles(server: ReplayServer) -> None:
    http = Http(FAST_HTTP)
    try:
        base = server.base_urls()["ctgov"]
        outcomes = fetch_registry("ctgov", ["NCT06482268", "NCT99999999"], http, base)
        shard = prefect_tasks.Shard(outcomes, list(http.exchanges), http.requests_sent)
    finally:
        http.close()
    assert [o.outcome for o in outcomes] == [Outcome.OK, Outcome.NOT_FOUND]
    assert outcomes[0].payload is not None and outcomes[0].evidence
    assert pickle.loads(pickle.dumps(shard)) == shard
    down = pickle.loads(pickle.dumps(RegistryDownError("ClinicalTrials.gov down", outcomes)))
    assert isinstance(down, RegistryDownError) and down.outcomes == outcomes
    assert str(down) == "ClinicalTrials.gov down"


def test_batches_keep_every_id_in_order() -> None:
    ids = [f"NCT{i:08d}" for i in range(10)]
    got = prefect_tasks.chunks(ids, 4)
    assert [len(c) for c in got] == [4, 4, 2]
    assert [i for c in got for i in c] == ids
    assert prefect_tasks.chunks([], 4) == []


def test_task_runner_from_env() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask.task_runners import DaskTaskRunner

    default = prefect_tasks.task_runner_from_env({})
    assert isinstance(default, ThreadPoolTaskRunner)
    assert not prefect_tasks.leaves_the_process(default)
    dask = prefect_tasks.task_runner_from_env(
        {prefect_tasks.DASK_ADDRESS_ENV: "tcp://192.0.2.7:8786"}
    )
    assert isinstance(dask, DaskTaskRunner) and dask.address == "tcp://192.0.2.7:8786"
    assert prefect_tasks.leaves_the_process(dask)
