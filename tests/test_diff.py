"""Night to night: `diff` names what changed between two snapshots, and nothing else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import BUNDLED_REPLAY, EXPECTATIONS, ROOT, fast_settings
from registry_sync import diff
from registry_sync.cli import main
from registry_sync.pipeline import RunRequest, run_pipeline

TRIAL = "NCT04363346"  # FT516: COMPLETED in the bundled (reconstructed) record


def replay_with_status(tmp: Path, status: str | None) -> Path:
    """A copy of the bundled replay set; with `status`, TRIAL's record says that status
    (synthetic: one value of a reconstructed record changed)."""
    out = tmp / f"replay-{status or 'as-is'}"
    shutil.copytree(BUNDLED_REPLAY, out)
    if status is not None:
        path = next((out / "ctgov").rglob(f"{TRIAL}.json"))
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["protocolSection"]["statusModule"]["overallStatus"] = status
        path.write_text(json.dumps(doc), encoding="utf-8")
    return out


def test_diff_names_one_status_change_and_nothing_else(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path)
    first = run_pipeline(settings, RunRequest(replay_dir=replay_with_status(tmp_path, None)))
    second = run_pipeline(
        settings, RunRequest(replay_dir=replay_with_status(tmp_path, "TERMINATED"))
    )
    d = diff.diff_snapshots(
        diff.load_rows(first.snapshot_path), diff.load_rows(second.snapshot_path)
    )
    assert [(c.trial_id, c.field, c.old, c.new) for c in d.changes] == [
        (TRIAL, "status", "COMPLETED", "TERMINATED")
    ]
    assert d.outcomes == []
    # the row's status finding keeps its stable key (its value changed, shown above): no finding
    # is new or resolved
    assert d.new_findings == [] and d.resolved_findings == []
    # the second night's report ends with the same section
    md = second.report_paths["md"].read_text(encoding="utf-8")
    assert f"## Changes since run `{first.run_id}`" in md
    assert f"- {TRIAL} status: COMPLETED → TERMINATED" in md


def test_unchanged_nights_diff_to_nothing(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path)
    replay = replay_with_status(tmp_path, None)
    run_pipeline(settings, RunRequest(replay_dir=replay))
    run_pipeline(settings, RunRequest(replay_dir=replay))
    old, new = diff.two_newest(settings.snapshots_dir)
    assert diff.diff_snapshots(diff.load_rows(old), diff.load_rows(new)).empty


def test_diff_command_defaults_to_the_two_newest(tmp_path: Path) -> None:
    mp = pytest.MonkeyPatch()
    mp.setenv("REGISTRY_SYNC_DATA_DIR", str(tmp_path / "data"))
    mp.setenv("REGISTRY_SYNC_EXPECTATIONS_DIR", str(EXPECTATIONS))
    mp.setenv("REGISTRY_SYNC_CURATED", str(ROOT / "data" / "curated" / "review_2025_hpsc.csv"))
    try:
        runner = CliRunner()
        one = runner.invoke(main, ["diff"])
        assert one.exit_code == 4 and "no snapshot" in one.output
        for status in (None, "WITHDRAWN"):
            replay = replay_with_status(tmp_path, status)
            assert runner.invoke(main, ["run", "--replay", str(replay)]).exit_code == 0
        result = runner.invoke(main, ["diff", "--format", "json"])
        assert result.exit_code == 0, result.output
        doc = json.loads(result.output)
        assert [(c["trial_id"], c["new"]) for c in doc["changes"]] == [(TRIAL, "WITHDRAWN")]
    finally:
        mp.undo()


def test_a_light_older_side_diffs_the_same(tmp_path: Path) -> None:
    """The report reads the older snapshot light (keys and decisions, resolved rows read whole
    on demand): the diff is the same as with every row loaded, resolved findings included."""
    settings = fast_settings(tmp_path)
    replay = replay_with_status(tmp_path, None)
    first = run_pipeline(settings, RunRequest(replay_dir=replay))
    second = run_pipeline(settings, RunRequest(replay_dir=replay, ids=(TRIAL, "NCT06482268")))
    new = diff.load_rows(second.snapshot_path)
    whole = diff.diff_snapshots(diff.load_rows(first.snapshot_path), new)
    light = diff.diff_snapshots(diff.load_rows(first.snapshot_path, light=True), new)
    assert len(whole.resolved_findings) > 10
    assert [dict(r) for r in light.resolved_findings] == [dict(r) for r in whole.resolved_findings]
    assert light == whole
