"""Each finding the review's table gives about itself, pinned on the review's own rows.

The bundled table (data/curated/review_2025_hpsc.csv) reconciled with no registry record at
all: what is left is what the review says against itself.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from helpers import BUNDLED_CURATED
from registry_sync.curated import load_curated
from registry_sync.model import (
    REVIEW_KINDS,
    CuratedRow,
    Finding,
    Outcome,
    RegistryRecord,
    Severity,
    TrialState,
)
from registry_sync.reconcile import find_split_indications, reconcile

ROWS: list[CuratedRow] = list(load_curated(BUNDLED_CURATED).rows)


@pytest.fixture(scope="module")
def findings() -> list[Finding]:
    return reconcile(ROWS, {})


def at(table: int, row: int) -> CuratedRow:
    (found,) = [r for r in ROWS if (r.table, r.row) == (table, row)]
    return found


def of_kind(findings: list[Finding], kind: str) -> list[Finding]:
    return [f for f in findings if f.kind == kind]


def test_review_alone_gives_only_review_kinds(findings: list[Finding]) -> None:
    assert {f.kind for f in findings} <= set(REVIEW_KINDS)
    counts = {k: len(of_kind(findings, k)) for k in REVIEW_KINDS}
    assert counts == {
        "id_malformed": 1,
        "id_suspect": 1,
        "duplicate_id": 2,
        "review_inconsistent": 14,
        "phase_unparsed": 1,
        "start_unparsed": 0,
        "text_table_conflict": 0,  # the table alone: the prose is read only with --text
    }


def test_id_malformed_jRCT209022038_table_2_row_3(findings: list[Finding]) -> None:
    (f,) = of_kind(findings, "id_malformed")
    r = at(2, 3)
    assert (f.line, f.trial_id, r.product) == (r.line, "jRCT209022038", "Raguneprocel")
    assert f.severity is Severity.ERROR
    assert "looks like a jRCT ID but does not match its pattern" in f.message


def test_id_suspect_jRCT209022038_table_2_row_3(findings: list[Finding]) -> None:
    (f,) = of_kind(findings, "id_suspect")
    assert (f.table, f.line, f.trial_id) == (2, at(2, 3).line, "jRCT209022038")
    assert f.severity is Severity.WARNING
    assert "one digit short of jRCT's pattern" in f.message
    assert "13 characters where it needs 14" in f.message
    assert "no ID known to this run fits" in f.message
    assert "look it up on jRCT: its search page" in f.message
    assert f.evidence_url == "https://jrct.mhlw.go.jp/search"


@pytest.mark.parametrize(
    ("trial_id", "first", "second"),
    [
        ("NCT04982081", (1, 27, "HICM-188"), (4, 21, "Eyecyte‑RPE")),
        ("NCT06978920", (2, 17, "NCR201"), (5, 12, "NCR-101")),
    ],
)
def test_duplicate_id_one_finding_per_id_naming_both_products(
    findings: list[Finding],
    trial_id: str,
    first: tuple[int, int, str],
    second: tuple[int, int, str],
) -> None:
    (f,) = [d for d in of_kind(findings, "duplicate_id") if d.trial_id == trial_id]
    assert (f.table, f.line) == (first[0], at(first[0], first[1]).line)  # on its first row
    assert f.severity is Severity.WARNING
    assert f"Table {first[0]} row {first[1]} {first[2]}" in f.message
    assert f"Table {second[0]} row {second[1]} {second[2]}" in f.message
    assert "the registry record could not be read to tell which" in f.message


def test_duplicate_id_names_the_product_the_record_is_NCT04982081() -> None:
    rec = RegistryRecord(
        "ctgov",
        "NCT04982081",
        brief_title="Human Embryonic Stem Cell-derived Cardiomyocyte "
        "Therapy (HICM-188) for Chronic Heart Failure",
    )
    state = TrialState("ctgov", "NCT04982081", Outcome.OK, record=rec)
    rows = [r for r in ROWS if r.trial_id == "NCT04982081"]
    (f,) = of_kind(reconcile(rows, {"NCT04982081": state}), "duplicate_id")
    assert "the registry record is HICM-188" in f.message and f.registry_value == "HICM-188"


def test_review_inconsistent_MA09_hRPE_start_2021_against_2011_2011(
    findings: list[Finding],
) -> None:
    """Table 4 rows 1-3: three trials of MA09-hRPE printed as started 2011, 2011 and 2021."""
    odd = [
        f
        for f in of_kind(findings, "review_inconsistent")
        if f.table == 4 and f.line in {at(4, n).line for n in (1, 2, 3)}
    ]
    assert [(f.line, f.field, f.review_value) for f in odd] == [(at(4, 3).line, "start", "2021")]
    (f,) = odd
    assert f.severity is Severity.INFO
    assert "Table 4 row 1 2011" in f.message and "Table 4 row 2 2011" in f.message


def test_phase_unparsed_IIT_HeartSheet_table_1_row_23(findings: list[Finding]) -> None:
    (f,) = of_kind(findings, "phase_unparsed")
    r = at(1, 23)
    assert (f.line, f.trial_id, r.product) == (r.line, "jRCT2053190081", "HeartSheet")
    assert f.severity is Severity.WARNING and f.review_value == "IIT"
    assert "printed phase 'IIT' is not a trial phase" in f.message


def test_one_id_under_two_indications_of_one_product() -> None:
    """The review has no such pair today: HICM-188's own row printed again under a second
    indication stands for one."""
    first = at(1, 27)
    again = replace(first, line=200, row=99, indication="AMD")
    rec = RegistryRecord("ctgov", "NCT04982081", conditions=("Heart Failure", "HF"))
    state = TrialState("ctgov", "NCT04982081", Outcome.OK, record=rec)
    (f,) = find_split_indications([first, again], {"NCT04982081": state})
    assert (f.kind, f.field, f.severity, f.line) == (
        "duplicate_id",
        "indication",
        Severity.WARNING,
        first.line,
    )
    assert "printed for HICM-188 under 2 indications" in f.message
    assert "Table 1 row 27 HF" in f.message and "Table 1 row 99 AMD" in f.message
    assert "the registry record is for HF" in f.message
    assert find_split_indications([first, replace(again, indication="HF")]) == []
