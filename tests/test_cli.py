"""The CLI: exit codes, one-line errors, every command documented in the README."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import BUNDLED_REPLAY, EXPECTATIONS, ROOT, absurd_start_replay
from registry_sync.cli import main


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("REGISTRY_SYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REGISTRY_SYNC_EXPECTATIONS_DIR", str(EXPECTATIONS))
    monkeypatch.setenv(
        "REGISTRY_SYNC_CURATED", str(ROOT / "data" / "curated" / "review_2025_hpsc.csv")
    )
    monkeypatch.setenv("REGISTRY_SYNC_MAX_RETRIES", "0")
    return CliRunner()


def test_run_replay_prints_summary_and_exits_complete(runner: CliRunner, tmp_path: Path) -> None:
    """No registry failed: IDs the replay set lacks, the retired JMACCT and the malformed ID
    are reported, but none makes the run partial (see `coverage`)."""
    result = runner.invoke(main, ["run", "--replay", str(BUNDLED_REPLAY)])
    assert result.exit_code == 0, result.output
    assert "hint:" not in result.output and "partial:" not in result.output
    assert re.search(r"^run \S+ \(replay\): complete$", result.output, re.M)
    assert "trials: id_malformed 1, moved 1, not_in_replay 86, ok 15" in result.output
    assert "politeness lower bound for a live run 55 s (jRCT: 12 requests 5 s apart)" in (
        result.output
    )
    assert "phase_mismatch 2" in result.output and "product_mismatch 2" in result.output
    report_line = next(ln for ln in result.output.splitlines() if ln.startswith("report: "))
    assert Path(report_line.removeprefix("report: ")).exists()


def test_run_ids_comma_joined_and_complete_exit_zero(runner: CliRunner) -> None:
    result = runner.invoke(
        main, ["run", "--replay", str(BUNDLED_REPLAY), "--ids", "NCT06482268,NCT04363346"]
    )
    assert result.exit_code == 0, result.output
    assert "trials: ok 2" in result.output
    assert ": complete" in result.output


def test_base_url_option_points_a_registry_elsewhere(runner: CliRunner) -> None:
    result = runner.invoke(
        main, ["run", "--ids", "NCT06482268", "--base-url", "ctgov=http://127.0.0.1:9/api/v2"]
    )
    assert result.exit_code == 1, result.output
    assert "trials: registry_down 1" in result.output
    # nothing answered: the user is pointed at the offline demo
    assert "hint: no registry answered (no network?)" in result.output
    assert "registry-sync run --replay data/replay" in result.output


def test_base_url_option_rejects_unknown_keys(runner: CliRunner) -> None:
    result = runner.invoke(main, ["run", "--base-url", "nope=http://x"])
    assert result.exit_code == 2
    assert "expected KEY=URL" in result.output


def test_rejected_run_says_why(runner: CliRunner, tmp_path: Path) -> None:
    trials = ("NCT06482268", "NCT04363346", "NCT04331613")
    synthetic = absurd_start_replay(tmp_path, *trials)  # every record fails: set-level
    result = runner.invoke(main, ["run", "--replay", str(synthetic), "--ids", ",".join(trials)])
    assert result.exit_code == 3, result.output
    assert "quality gate: REJECTED: records:" in result.output
    assert "/rejected/" in result.output


def test_run_unknown_id_is_one_line_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["run", "--ids", "NCT00000001"])
    assert result.exit_code == 4
    assert result.output.strip() == ("Error: not in the review's table: NCT00000001")


def test_run_unknown_registry_is_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["run", "--registry", "nope"])
    assert result.exit_code == 2
    assert "nope" in result.output


def test_broken_curated_table_names_file_and_column(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("table,product,trial_id\n1,FT500,NCT03841110\n", encoding="utf-8")
    result = runner.invoke(main, ["run", "--curated", str(bad)])
    assert result.exit_code == 4
    assert "bad.csv" in result.output and "Traceback" not in result.output


def test_snapshots_and_report_after_a_run(runner: CliRunner) -> None:
    assert runner.invoke(main, ["snapshots"]).output.startswith("no snapshots")
    runner.invoke(main, ["run", "--replay", str(BUNDLED_REPLAY), "--ids", "NCT06482268"])
    listing = runner.invoke(main, ["snapshots"])
    assert listing.exit_code == 0
    assert re.search(r"^\* \S+\s+replay\s+complete\s+ok 1/1", listing.output, re.M)
    as_json = json.loads(runner.invoke(main, ["snapshots", "--json"]).output)
    assert as_json["latest"] is True
    md = runner.invoke(main, ["report"])
    assert md.exit_code == 0
    assert "review says Phase I/II; registry says Phase I (PHASE1)" in md.output
    doc = json.loads(runner.invoke(main, ["report", "--format", "json"]).output)
    assert doc["summary"]["outcomes"] == {"ok": 1}
    assert doc["findings"][0]["product"] == "CT1-DAP001"
    explicit = runner.invoke(main, ["report", as_json["path"], "--format", "json"])
    assert json.loads(explicit.output) == doc


def test_report_without_snapshot_is_one_line_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["report"])
    assert result.exit_code == 4
    assert result.output.startswith("Error: no snapshot in ")


def test_check_lists_the_reviews_own_problems(runner: CliRunner) -> None:
    result = runner.invoke(main, ["check"])
    assert result.exit_code == 0, result.output
    assert "105 rows" in result.output
    # keyed by the review's own table and row, as the report is (never a CSV line number)
    assert "Table 2 row 3, jRCT209022038: id_malformed (error)" in result.output
    assert result.output.count("duplicate_id") == 2  # one per ID printed for two products


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in main.commands:
        assert f"registry-sync {name}" in readme, f"README does not document {name!r}"


def test_serve_replay_prints_urls_and_serves(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "registry_sync.cli",
        "serve-replay",
        str(BUNDLED_REPLAY),
        "--port",
        str(port),
    ]
    # the context manager closes the stdout pipe and reaps the server, however the test ends
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line == f"export REGISTRY_SYNC_CTGOV_URL=http://127.0.0.1:{port}/ctgov/api/v2"
            url = line.split("=", 1)[1] + "/studies/NCT06482268"
            with urllib.request.urlopen(url, timeout=5) as resp:
                assert (
                    json.loads(resp.read())["protocolSection"]["identificationModule"]["nctId"]
                    == "NCT06482268"
                )
        finally:
            proc.terminate()
            proc.wait(timeout=10)
