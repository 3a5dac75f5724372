"""The drift report, rendered from a real replay snapshot of the bundled review."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import BUNDLED_REPLAY, fast_settings
from registry_sync import report
from registry_sync.pipeline import RunRequest, run_pipeline


@pytest.fixture(scope="module")
def content(tmp_path_factory: pytest.TempPathFactory) -> report.ReportContent:
    tmp = tmp_path_factory.mktemp("report")
    result = run_pipeline(fast_settings(tmp), RunRequest(replay_dir=BUNDLED_REPLAY))
    return report.load_content(result.snapshot_path)


def test_summary_counts_rows_ids_and_rows_out_of_date(content: report.ReportContent) -> None:
    s = report.summary(content)
    assert (s["rows"], s["trials"]) == (105, 103)
    # CT1-DAP001's phase (a warning); the three sponsors differing from the registry's lead
    # sponsor are notes (info), counted apart
    # plus the two rows whose ID is another product's record (product_mismatch: Eyecyte‑RPE,
    # NCR-101)
    assert (s["rows_out_of_date"], s["rows_with_notes_only"]) == (3, 3)
    md = report.render_markdown(content)
    assert md.startswith("# Drift report: review_2025_hpsc\n")  # a name, not a file path
    # severity, then the verdict: both records were last updated before the review's publication
    assert "- **warning** [wrong at publication] Table 2 row 7, CT1-DAP001 (NCT06482268)" in md
    assert "- **info** [wrong at publication] Table 1 row 3, FT516 (NCT04363346)" in md
    assert s["mode"] == "replay" and s["partial"] is False  # no registry failed


def test_markdown_sections_in_order(content: report.ReportContent) -> None:
    md = report.render_markdown(content)
    assert "> Replay of recorded payloads" in md
    heads = [ln for ln in md.splitlines() if ln.startswith("## ")]
    assert heads == [
        "## Summary",
        "## Where the review differs from the registry",
        "## Problems in the review's own table",
        "## The registry's own record (check before citing)",
        "## Values the registry does not give (nothing to check)",
        "## Current registry status (the review prints none)",
        "## Trials that could not be checked",
    ]


def test_unchecked_trials_name_their_table_and_product(content: report.ReportContent) -> None:
    md = report.render_markdown(content)
    # 88 trials the replay set lacks: one line, counted by registry, every ID named
    assert "- **86 trials `not_in_replay`** (ClinicalTrials.gov 64, jRCT 11," in md
    assert "IRCT20160704028786N2" in md.split("not_in_replay`**")[1].splitlines()[0]
    doc = json.loads(report.render_json(content))
    malformed = [u for u in doc["unchecked"] if u["outcome"] == "id_malformed"]
    assert malformed == [
        {
            "trial_id": "jRCT209022038",
            "registry": None,
            "outcome": "id_malformed",
            "detail": "'jRCT209022038' matches no registry's ID pattern",
            "stale_values_kept": False,
            "rows": [{"table": 2, "product": "Raguneprocel"}],
        }
    ]


def test_status_table_flags_unknown_status(content: report.ReportContent) -> None:
    md = report.render_markdown(content)
    assert (
        "| 5 | CAStem | NCT04331613 | Unknown (UNKNOWN), last known: Recruiting ⚠ "
        "[RECONSTRUCTED] | "
        "2020-04-02 |"
    ) in md


def test_json_findings_carry_product_and_row(content: report.ReportContent) -> None:
    doc = json.loads(report.render_json(content))
    phase = [f for f in doc["findings"] if f["kind"] == "phase_mismatch"]
    assert [
        (f["table"], f["row"], f["product"], f["review_value"], f["registry_value"]) for f in phase
    ] == [(2, 7, "CT1-DAP001", "I/II", "PHASE1"), (4, 21, "Eyecyte‑RPE", "I/II", "PHASE1")]


def test_unknown_format_is_refused(content: report.ReportContent) -> None:
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        report.render(content, "pdf")


def test_stale_age_is_said_in_days() -> None:
    assert report.stale_age("2026-11-20T03:00:00+00:00", "2026-11-25T03:00:01+00:00") == (
        "values fetched 2026-11-20, 5 days before this run"
    )
    assert report.stale_age("garbled", "2026-11-25T03:00:01+00:00") == "values fetched garbled"


def test_report_files_are_written_beside_each_other(tmp_path: Path) -> None:
    result = run_pipeline(
        fast_settings(tmp_path), RunRequest(ids=("NCT06482268",), replay_dir=BUNDLED_REPLAY)
    )
    assert result.report_paths["md"].read_text(encoding="utf-8") == result.report_markdown
    doc = json.loads(result.report_paths["json"].read_text(encoding="utf-8"))
    assert doc["summary"]["run_id"] == result.run_id
