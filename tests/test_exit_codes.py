"""Exit codes a cron can act on, each from a real scenario over loopback: 0 complete (a
malformed ID in the review is a finding, not a partial run), 1 partial (a registry could not
be checked, named in one line), 2 usage, 3 quality gate, 4 error; every hostile CLI case is
one line without a traceback, and a reader that stops reading is no error."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from helpers import BUNDLED_REPLAY, EXPECTATIONS, absurd_start_replay, review_subset
from registry_sync import coverage
from registry_sync import report as report_mod
from registry_sync.cli import EXIT_ERROR, EXIT_GATE, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, main
from registry_sync.model import Outcome, TrialState
from registry_sync.replay import ReplayServer
from registry_sync.replay.faults import FAULT_KINDS

# One ClinicalTrials.gov trial and one jRCT trial the bundled set holds, and the review's
# malformed jRCT ID (a finding about the review, never a registry to ask).
REVIEW = """row,table,product,refs,cell_type,indication,sponsor,trial_id,phase,nation,start,note
1,1,CT1-DAP001,1,iPSC,x,Cynata,NCT06482268,I,US,2024,
2,1,A,1,iPSC,x,Kyoto,jRCTs051180190,I,JP,2019,
3,1,B,1,iPSC,x,X,jRCT209022038,I,JP,2019,
"""


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("REGISTRY_SYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REGISTRY_SYNC_EXPECTATIONS_DIR", str(EXPECTATIONS))
    monkeypatch.setenv("REGISTRY_SYNC_MAX_RETRIES", "0")
    curated = tmp_path / "review.csv"
    curated.write_text(REVIEW, encoding="utf-8")
    monkeypatch.setenv("REGISTRY_SYNC_CURATED", str(curated))
    return CliRunner()


@pytest.fixture
def served() -> Iterator[ReplayServer]:
    with ReplayServer(BUNDLED_REPLAY) as srv:
        yield srv


def run_against(runner: CliRunner, srv: ReplayServer) -> Result:
    """`registry-sync run` with every registry (WHO ICTRP too) at the loopback server."""
    args = ["run", "-q"]
    for key, url in srv.base_urls().items():
        args += ["--base-url", f"{key}={url}"]
    return runner.invoke(main, args)


def one_error_line(result: Result) -> str:
    """The command's only line of standard error, checked to be one line and no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and "Traceback" not in result.output
    return lines[0]


def test_exit_0_a_malformed_id_in_the_review_is_not_partial(
    runner: CliRunner, served: ReplayServer
) -> None:
    result = run_against(runner, served)
    assert result.exit_code == EXIT_OK, result.output
    assert ": complete" in result.output and "partial:" not in result.output
    assert "trials: id_malformed 1, ok 2" in result.output
    assert "id_malformed 1" in result.output.split("findings: ")[1]  # still reported


def test_exit_1_names_each_registry_not_checked_and_why_in_one_line(
    runner: CliRunner, served: ReplayServer
) -> None:
    served.add_fault("/jrct", FAULT_KINDS["403"], times=None)
    served.add_fault("/ctgov/api/v2/studies", FAULT_KINDS["503"], times=None)
    result = run_against(runner, served)
    assert result.exit_code == EXIT_PARTIAL, result.output
    assert ": PARTIAL" in result.output
    (line,) = [ln for ln in result.output.splitlines() if ln.startswith("partial: ")]
    assert line.startswith("partial: ClinicalTrials.gov down (1 trial: HTTP 503")
    assert "; jRCT blocked (1 trial: HTTP 403" in line
    assert "trials: blocked 1, id_malformed 1, registry_down 1" in result.output


def test_the_partial_rule_per_outcome() -> None:
    partial = {o for o in Outcome if coverage.makes_partial(o)}
    assert partial == {
        Outcome.REGISTRY_DOWN,
        Outcome.BLOCKED,
        Outcome.PARSE_ERROR,
        Outcome.QUARANTINED,
    }
    held = TrialState("ctgov", "NCT00000001", Outcome.QUARANTINED, "start 1899-01-01 is before")
    assert coverage.partial_because([held]).startswith("ClinicalTrials.gov held back by the")
    states = [
        TrialState("umin", "UMIN000000001", Outcome.PARSE_ERROR, "no title row\n\x1b[31m"),
        TrialState("umin", "UMIN000000002", Outcome.PARSE_ERROR, "no title row"),
        TrialState("umin", "UMIN000000003", Outcome.PARSE_ERROR, "x" * 500),
        TrialState(None, "NCT1", Outcome.ID_MALFORMED, "bad"),
        TrialState("jma", "JMA-IIA00412", Outcome.MOVED, "merged into jRCT"),
    ]
    line = coverage.partial_because(states)
    assert line == "UMIN-CTR not understood (3 trials: no title row)"
    assert coverage.partial_because(states[3:]) == "" and not coverage.is_partial(states[3:])


def test_exit_3_quality_gate_rejects_the_records(runner: CliRunner, tmp_path: Path) -> None:
    ids = ["NCT06482268", "NCT04945018", "NCT04363346"]  # most records failing: a set failure
    synthetic = absurd_start_replay(tmp_path, *ids)
    curated = review_subset(tmp_path, ids)
    result = runner.invoke(main, ["run", "--replay", str(synthetic), "--curated", str(curated)])
    assert result.exit_code == EXIT_GATE, result.output
    assert "quality gate: REJECTED" in result.output


def test_exit_2_usage(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["diff", str(tmp_path / "a.sqlite")])
    assert result.exit_code == EXIT_USAGE
    assert "give both OLD and NEW" in result.output


def test_report_on_a_directory_or_a_non_snapshot_is_one_line(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == EXIT_ERROR
    assert "a directory, not a snapshot file" in one_error_line(result)
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database", encoding="utf-8")
    result = runner.invoke(main, ["report", str(text)])
    assert result.exit_code == EXIT_ERROR
    assert "not a registry-sync snapshot" in one_error_line(result)


def test_serve_replay_on_a_busy_port_is_one_line(runner: CliRunner) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(main, ["serve-replay", str(BUNDLED_REPLAY), "--port", str(port)])
    assert result.exit_code == EXIT_ERROR
    assert f"port {port} is in use" in one_error_line(result)


def test_snapshots_lists_the_others_and_marks_a_corrupt_file(runner: CliRunner) -> None:
    assert runner.invoke(main, ["run", "--replay", str(BUNDLED_REPLAY)]).exit_code == 0
    store = Path(os.environ["REGISTRY_SYNC_DATA_DIR"]) / "snapshots"
    corrupt = store / "20200101T000000Z-dead.sqlite"
    corrupt.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)  # a truncated database
    result = runner.invoke(main, ["snapshots"])
    assert result.exit_code == EXIT_OK, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"! {corrupt}: unreadable, not listed (")
    assert len(lines) == 2 and lines[1].startswith("* ")  # the good one, still latest
    assert "Traceback" not in result.output
    # the commands that read the store still work around it
    assert runner.invoke(main, ["report"]).exit_code == EXIT_OK


def test_an_unexpected_error_is_one_line_and_debug_shows_it(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(main, ["run", "--replay", str(BUNDLED_REPLAY)]).exit_code == 0

    def broken(*_: object) -> str:
        raise KeyError("status")

    monkeypatch.setattr(report_mod, "render", broken)
    result = runner.invoke(main, ["report"])
    assert result.exit_code == EXIT_ERROR
    assert "unexpected KeyError" in one_error_line(result)
    debug = runner.invoke(main, ["--debug", "report"])
    assert isinstance(debug.exception, KeyError)  # the traceback, for whoever asked


def test_a_reader_that_stops_reading_is_no_error(runner: CliRunner) -> None:
    """`registry-sync report | head -1`: the pipe's reader is gone (here before the first
    write, so the test does not depend on timing): no 'Broken pipe' error, exit 0."""
    assert runner.invoke(main, ["run", "--replay", str(BUNDLED_REPLAY)]).exit_code == 0
    cli = Path(sys.executable).with_name("registry-sync")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    for command in (["report"], ["snapshots"], ["report", "--format", "json"]):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            done = subprocess.run(
                [str(cli), *command], stdout=write_end, stderr=subprocess.PIPE, env=env
            )
        finally:
            os.close(write_end)
        assert (done.returncode, done.stderr) == (EXIT_OK, b""), command
