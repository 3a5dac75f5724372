"""The corrections CSV an author applies: the review's own notation, formula-safe, readable by
pandas as written."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from helpers import BUNDLED_REPLAY, fast_settings
from registry_sync import corrections, report
from registry_sync.pipeline import RunRequest, run_pipeline


@pytest.fixture(scope="module")
def csv_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("corrections")
    result = run_pipeline(fast_settings(tmp), RunRequest(replay_dir=BUNDLED_REPLAY))
    return report.render(report.load_content(result.snapshot_path), "corrections")


def test_bundled_review_corrections_round_trip_through_pandas(csv_text: str) -> None:
    frame = pd.read_csv(io.StringIO(csv_text), dtype=str, keep_default_na=False)
    assert list(frame.columns) == list(corrections.COLUMNS)
    ct1 = frame[frame["trial_id"] == "NCT06482268"].iloc[0]
    # CT1-DAP001, Table 2 row 7: printed I/II, registry PHASE1, suggested in the review's notation
    assert (ct1["table"], ct1["row"], ct1["column"], ct1["printed"], ct1["suggested"]) == (
        "2", "7", "phase", "I/II", "I"
    )  # fmt: skip
    assert "RECONSTRUCTED" in ct1["why"]
    assert set(frame["column"]) == {"phase", "sponsor", "trial_id"}


def test_a_row_citing_another_products_record_gets_only_check_the_id(csv_text: str) -> None:
    """Eyecyte-RPE (Table 4 row 21) prints HICM-188's NCT04982081 and NCR-101 (Table 5 row 12)
    NCR201's NCT06978920: that record's phase, start or sponsor is no correction for the row."""
    frame = pd.read_csv(io.StringIO(csv_text), dtype=str, keep_default_na=False)
    for table, row in (("4", "21"), ("5", "12")):
        lines = frame[(frame["table"] == table) & (frame["row"] == row)]
        assert list(lines["column"]) == ["trial_id"]
        (line,) = lines.to_dict("records")
        assert line["suggested"] == ""
        assert str(line["why"]).startswith("check the ID: record names")


@pytest.mark.parametrize(
    ("registry", "printed", "expected"),
    [(["PHASE1", "PHASE2"], "", "I/II"), (["EARLY_PHASE1"], "", "I"), (["NA"], "", "N/A")],
)
def test_review_phase_notation(registry: list[str], printed: str, expected: str) -> None:
    assert corrections.review_phase(registry) == expected


def test_review_start_keeps_the_printed_precision() -> None:
    assert corrections.review_start("2019-03-15", "2021") == "2019"
    assert corrections.review_start("2019-03-15", "2025.3") == "2019.3"
    assert corrections.review_start(None, "2021") == ""


def test_formula_like_cells_are_neutralised() -> None:
    hostile = {
        "table": 1,
        "row": 2,
        "trial_id": "NCT04630769",
        "column": "sponsor",
        "printed": '=HYPERLINK("http://evil.invalid","x")',
        "suggested": "+cmd|' /C calc'!A0",
        "evidence_url": "@SUM(1)",
        "severity": "-info",
        "verdict": "unknown",
        "why": "\tTab",
    }
    text = corrections.render_csv([hostile])
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    for column in ("printed", "suggested", "evidence_url", "severity", "why"):
        assert frame[column][0].startswith("'"), column
    assert frame["trial_id"][0] == "NCT04630769"


def test_cli_report_corrections(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from registry_sync.cli import main

    result = run_pipeline(fast_settings(tmp_path), RunRequest(replay_dir=BUNDLED_REPLAY))
    out = tmp_path / "corrections.csv"
    done = CliRunner().invoke(
        main, ["report", str(result.snapshot_path), "--format", "corrections", "-o", str(out)]
    )
    assert done.exit_code == 0, done.output
    assert out.read_text(encoding="utf-8").startswith("table,row,trial_id,column,printed,")
