"""`registry-sync extract` and `check --text`: a PDF built here, and the review's excerpts.

The PDF is synthetic (fpdf2, two pages, English: fpdf2's core fonts have no CJK glyphs); the
excerpts are real (tests/fixtures/text/SOURCES.md).
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from helpers import BUNDLED_CURATED, BUNDLED_REPLAY, EXPECTATIONS, FIXTURES
from registry_sync.cli import main
from registry_sync.textsource import load_review_text

PROSE = FIXTURES / "text" / "review_2025_hpsc_prose.txt"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("REGISTRY_SYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REGISTRY_SYNC_EXPECTATIONS_DIR", str(EXPECTATIONS))
    monkeypatch.setenv("REGISTRY_SYNC_CURATED", str(BUNDLED_CURATED))
    return CliRunner()


def line(pdf: FPDF, text: str) -> None:
    pdf.multi_cell(0, 8, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def build_pdf(path: Path) -> Path:
    """Page 1: a sentence dating FT500's start (2018, where the table prints 2019); page 2: a
    table caption and one row of the review's Table 1 as its extractor prints it."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    line(pdf, "Fate Therapeutics was the pioneer.")
    line(pdf, "FT500 (NCT03841110) started in May 2018 as a phase 1 trial.")
    pdf.add_page()
    line(pdf, "Table 1   Mesodermal cell products")
    line(pdf, "FT500[13] iNK advanced solid tumors Fate NCT03841110 I US 2019")
    pdf.output(str(path))
    return path


def test_pdf_text_layer_by_page(tmp_path: Path) -> None:
    review = load_review_text(build_pdf(tmp_path / "review.pdf"))
    assert review.paged and len(review.pages) == 2
    assert "NCT03841110" in review.pages[0] and "Table 1" in review.pages[1]


def test_extract_pdf_writes_a_draft_that_check_accepts(runner: CliRunner, tmp_path: Path) -> None:
    pdf, draft = build_pdf(tmp_path / "review.pdf"), tmp_path / "draft.csv"
    result = runner.invoke(main, ["extract", str(pdf), "-o", str(draft)])
    assert result.exit_code == 0, result.output
    assert "NCT03841110: page 1, line" in result.output
    assert "NCT03841110: page 2, line" in result.output and "table 1" in result.output
    (row,) = list(csv.DictReader(draft.read_text(encoding="utf-8").splitlines()))
    assert (row["table"], row["product"], row["phase"], row["start"]) == ("1", "FT500", "I", "2019")
    assert "page 1" in row["note"] and "page 2" in row["note"]
    checked = runner.invoke(main, ["check", "--curated", str(draft)])
    assert checked.exit_code == 0, checked.output
    assert "1 rows; ctgov 1" in checked.output


def test_extract_without_output_prints_the_csv(runner: CliRunner) -> None:
    result = runner.invoke(main, ["extract", str(PROSE)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("row,table,product,refs,cell_type,indication,sponsor,")
    assert ",jRCT2090220384," in result.output


def test_check_text_pdf_gives_the_conflict_with_its_page(runner: CliRunner, tmp_path: Path) -> None:
    pdf = build_pdf(tmp_path / "review.pdf")
    result = runner.invoke(main, ["check", "--text", str(pdf)])
    assert result.exit_code == 0, result.output
    (line,) = [ln for ln in result.output.splitlines() if "text_table_conflict" in ln]
    assert line.startswith("Table 1 row 1, NCT03841110: text_table_conflict (warning)")
    assert "(page 1, line 2, para 1) says it started in May 2018" in line
    assert "'2019'" in line and '"FT500 (NCT03841110) started in May 2018' in line


def test_check_text_lists_the_excerpts_conflicts(runner: CliRunner) -> None:
    result = runner.invoke(main, ["check", "--text", str(PROSE), "--max-lines", "0"])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if "text_table_conflict" in ln]
    assert len(lines) == 6
    assert any(
        ln.startswith("Table 2 row 3, jRCT209022038:") and "jRCT2090220384" in ln for ln in lines
    )


def test_check_reads_the_text_the_review_metadata_names(runner: CliRunner, tmp_path: Path) -> None:
    curated = tmp_path / "review.csv"
    shutil.copy(BUNDLED_CURATED, curated)
    shutil.copy(PROSE, tmp_path / "prose.txt")
    meta = BUNDLED_CURATED.with_name("review_2025_hpsc.review.toml").read_text(encoding="utf-8")
    (tmp_path / "review.review.toml").write_text(meta + 'text = "prose.txt"\n', encoding="utf-8")
    result = runner.invoke(main, ["check", "--curated", str(curated), "--max-lines", "0"])
    assert result.exit_code == 0, result.output
    assert result.output.count("text_table_conflict") == 6


def test_check_text_missing_file_is_one_line_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["check", "--text", str(tmp_path / "nope.pdf")])
    assert result.exit_code == 4
    assert result.output.strip().startswith("Error:") and "nope.pdf: no such file" in result.output


def test_run_text_adds_the_conflict_to_the_snapshot(runner: CliRunner, tmp_path: Path) -> None:
    args = ["run", "--replay", str(BUNDLED_REPLAY), "--ids", "NCT03119636,NCT03841110"]
    result = runner.invoke(main, [*args, "--text", str(PROSE)])
    assert result.exit_code == 0, result.output
    assert "text_table_conflict 1" in result.output
    (snap,) = (tmp_path / "data" / "snapshots").glob("2*.sqlite")
    with sqlite3.connect(snap) as db:
        rows = db.execute(
            "SELECT trial_id, field, review_value, registry_value, verdict, details "
            "FROM findings WHERE kind = 'text_table_conflict'"
        ).fetchall()
    ((trial_id, field, printed, said, verdict, details),) = rows
    assert (trial_id, field, printed, said) == ("NCT03119636", "start", "2015", "2017年")
    assert verdict == "wrong_at_publication"
    assert json.loads(details)["quote"].startswith("2017年, 中国启动了首项hESC来源")


def test_several_reviews_each_read_their_own_text(runner: CliRunner, tmp_path: Path) -> None:
    """Two tables in one run: each review's prose comes from its own .review.toml and its
    conflicts are its own; `--text` names one review's text, so with two it is refused."""
    meta = BUNDLED_CURATED.with_name("review_2025_hpsc.review.toml").read_text(encoding="utf-8")
    lines = BUNDLED_CURATED.read_text(encoding="utf-8").splitlines(keepends=True)
    shutil.copy(PROSE, tmp_path / "prose.txt")
    tables = []
    for name, text in (("review_a", 'text = "prose.txt"\n'), ("review_b", "")):
        table = tmp_path / f"{name}.csv"
        table.write_text("".join(lines), encoding="utf-8")
        (tmp_path / f"{name}.review.toml").write_text(meta + text, encoding="utf-8")
        tables += ["--curated", str(table)]
    refused = runner.invoke(main, ["check", *tables, "--text", str(PROSE)])
    assert refused.exit_code == 2 and "--text names one review's text" in refused.output
    args = ["run", "--replay", str(BUNDLED_REPLAY), *tables, "--ids", "NCT03119636"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    (snap,) = (tmp_path / "data" / "snapshots").glob("2*.sqlite")
    with sqlite3.connect(snap) as db:
        found = db.execute(
            "select review, trial_id from findings where kind = 'text_table_conflict'"
        ).fetchall()
    assert found == [("review_a", "NCT03119636")]
    with_text = runner.invoke(main, [*args[:3], *tables[:2], "--text", str(PROSE)])
    assert with_text.exit_code == 0, with_text.output
