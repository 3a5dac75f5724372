"""Prefect: the flows run the same pipeline as the CLI; retries only on transient failures;
prefect.yaml is valid offline. One harness per session (`harness` in conftest.py, about
10 s to start), shared with test_flow_artifacts.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from helpers import BUNDLED_REPLAY, EXPECTATIONS, ROOT, absurd_start_replay, replay_copy
from registry_sync.pipeline import RunRequest, run_pipeline
from registry_sync.replay import Fault, ReplayServer
from registry_sync.settings import Settings

pytestmark = pytest.mark.prefect


def load_flow_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"flows_{name}", ROOT / "flows" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_SYNC_EXPECTATIONS_DIR", str(EXPECTATIONS))
    monkeypatch.setenv(
        "REGISTRY_SYNC_CURATED", str(ROOT / "data" / "curated" / "review_2025_hpsc.csv")
    )
    monkeypatch.setenv("REGISTRY_SYNC_MAX_RETRIES", "0")


def test_nightly_flow_equals_cli_pipeline(harness: None, env: None, tmp_path: Path) -> None:
    nightly = load_flow_module("nightly").nightly_sync
    out = nightly(data_dir=str(tmp_path / "flow"), replay_dir=str(BUNDLED_REPLAY))
    direct = run_pipeline(
        Settings.from_env(data_dir=tmp_path / "direct"), RunRequest(replay_dir=BUNDLED_REPLAY)
    )
    assert out["outcomes"] == direct.outcomes
    assert out["findings"] == direct.findings
    assert out["partial"] is False and Path(out["snapshot"]).exists()
    assert Path(out["report"]).read_text(encoding="utf-8").count(
        "\n- Table"
    ) == direct.report_markdown.count("\n- Table")


def fetch_requests(server: ReplayServer) -> int:
    return sum(1 for r in server.requests if r.path.endswith("/studies"))


def adhoc_against_fault(tmp_path: Path, fault: Fault) -> tuple[dict[str, Any], int]:
    """The ad-hoc flow for one trial against a server that answers `/studies` with `fault`."""
    adhoc = load_flow_module("reconcile").adhoc_reconcile
    with ReplayServer(replay_copy(tmp_path, "NCT06482268")) as server:
        server.add_fault("/ctgov/api/v2/studies", fault, times=50)
        mp = pytest.MonkeyPatch()
        mp.setenv("REGISTRY_SYNC_CTGOV_URL", server.base_urls()["ctgov"])
        try:
            out = adhoc(ids=["NCT06482268"], data_dir=str(tmp_path / "d"), fetch_retry_delay_s=0)
        finally:
            mp.undo()
        return out, fetch_requests(server)


def test_adhoc_flow_retries_a_down_registry_then_reports_it(
    harness: None, env: None, tmp_path: Path
) -> None:
    out, requests = adhoc_against_fault(tmp_path, Fault(status=503))
    assert requests == 3  # 1 try + 2 task retries (HTTP-level retries are off here)
    assert out["outcomes"] == {"registry_down": 1} and out["partial"] is True


def test_adhoc_flow_never_retries_blocked(harness: None, env: None, tmp_path: Path) -> None:
    out, requests = adhoc_against_fault(tmp_path, Fault(status=403))
    assert requests == 1
    assert out["outcomes"] == {"blocked": 1}


def test_nightly_flow_fails_when_the_gate_rejects(harness: None, env: None, tmp_path: Path) -> None:
    # the only records of the run, and all fail a per-record expectation: set-level, rejected
    synthetic = absurd_start_replay(tmp_path, "NCT06482268", "NCT04363346", "NCT04331613")
    nightly = load_flow_module("nightly").nightly_sync
    state = nightly(data_dir=str(tmp_path / "d"), replay_dir=str(synthetic), return_state=True)
    assert state.is_failed()
    assert list((tmp_path / "d" / "snapshots" / "rejected").glob("*.sqlite"))


def deployments() -> list[dict[str, Any]]:
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    return list(doc["deployments"])


def test_prefect_yaml_validates_offline() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel  # private, but the only validator
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.flows import Flow, load_flow_from_entrypoint

    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    PrefectYamlModel.model_validate(doc)
    by_name = {d["name"]: d for d in deployments()}
    assert set(by_name) == {"nightly", "reconcile"}
    (schedule,) = by_name["nightly"]["schedules"]
    cron = CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
    assert cron.cron == "0 3 * * *" and cron.timezone == "UTC"
    assert "schedules" not in by_name["reconcile"]
    for d in by_name.values():
        flow: Flow[..., Any] = load_flow_from_entrypoint(str(ROOT / d["entrypoint"]))
        flow.validate_parameters(d.get("parameters") or {})
