"""The GX quality gate (registry_sync.validate) over hand-built frames.

The frames are built the way the pipeline builds them: curated rows from `CuratedRow` values
(lines taken from data/curated/review_2025_hpsc.csv) and record rows from the fields of three
real ClinicalTrials.gov payloads in tests/fixtures/ctgov (values and sha256 digests as listed
in its SOURCES.md). Each test then breaks one thing by hand. GX is imported once per session
(by the first validation); each validation costs about 0.15 s, so the tests share reports
through module-scoped fixtures where they can.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from registry_sync.ids import ID_PATTERNS
from registry_sync.model import PHASES, STATUSES, CuratedRow, PartialDate
from registry_sync.registry_table import TRIAL_REGISTRIES
from registry_sync.validate import (
    REGISTRY_KEYS_PARAMETER,
    SEVERITIES,
    ExpectationOutcome,
    ValidationReport,
    add_date_columns,
    exception_text,
    latest_plausible_date,
    validate_curated,
    validate_records,
)

EXPECTATIONS = Path(__file__).resolve().parents[1] / "expectations"
TODAY = dt.date(2026, 8, 11)

# --- frame builders -----------------------------------------------------------------------

CURATED_ROWS = (
    CuratedRow(
        2,
        1,
        "FT500",
        "iNK",
        "advanced solid tumors",
        "Fate",
        "NCT03841110",
        "I",
        "US",
        "2019",
        registry="ctgov",
        phases=frozenset({"PHASE1"}),
        start_date=PartialDate(2019),
    ),
    CuratedRow(
        5,
        1,
        "FT576",
        "iCAR-NK",
        "MM",
        "Fate",
        "NCT05182073",
        "I/II",
        "US",
        "2021",
        registry="ctgov",
        phases=frozenset({"PHASE1", "PHASE2"}),
        start_date=PartialDate(2021),
    ),
    CuratedRow(
        12,
        1,
        "iPSC-NKT",
        "iNKT",
        "head and neck cancer",
        "Chiba University",
        "jRCT2033200116",
        "I",
        "JP",
        "2020",
        registry="jrct",
        phases=frozenset({"PHASE1"}),
        start_date=PartialDate(2020),
    ),
    CuratedRow(
        28,
        1,
        "HICM-188",
        "hiPSC-Cardiomyocyte",
        "HF",
        "HELP",
        "NCT04982081",
        "I",
        "CN",
        "2021",
        registry="ctgov",
        phases=frozenset({"PHASE1"}),
        start_date=PartialDate(2021),
    ),
)
# Table 4 prints the same ID for another product (review_2025_hpsc.csv row 87).
EYECYTE = CuratedRow(
    88,
    4,
    "Eyecyte‑RPE",
    "hiPSC-RPE",
    "AMD",
    "Eyestem Research Pvt",
    "NCT04982081",
    "I/II",
    "IN",
    "2021",
    registry="ctgov",
    phases=frozenset({"PHASE1", "PHASE2"}),
    start_date=PartialDate(2021),
)


def curated_frame(rows: tuple[CuratedRow, ...] | list[CuratedRow]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "line": r.line,
                "table": r.table,
                "product": r.product,
                "cell_type": r.cell_type,
                "indication": r.indication,
                "sponsor": r.sponsor,
                "trial_id": r.trial_id,
                "phase": r.phase,
                "nation": r.nation,
                "start": r.start,
                "registry": r.registry,
                "phases": "|".join(sorted(r.phases)) if r.phases is not None else None,
                "start_iso": r.start_date.iso() if r.start_date else None,
            }
            for r in rows
        ]
    )


CTGOV = "https://clinicaltrials.gov/api/v2/studies/"
RECORDS = (
    {
        "trial_id": "NCT03418623",
        "status": "COMPLETED",
        "status_raw": "COMPLETED",
        "phases": "PHASE2",
        "start": "2018-03-08",
        "primary_completion": "2019-12-19",
        "completion": "2020-03-13",
        "last_updated": "2020-10-08",
        "start_type": "ACTUAL",
        "enrollment": 24,
        "payload_sha256": "8fc97b0e3cf6ae709c3f35620d8587e054272576d649d9aceaf7ddc7efef7db7",
    },
    {
        "trial_id": "NCT00763412",
        "status": "COMPLETED",
        "status_raw": "COMPLETED",
        "phases": "",
        "start": "2006-11",
        "primary_completion": "2012-12",
        "completion": "2013-01",
        "last_updated": "2017-06-05",
        "start_type": None,
        "enrollment": 31,
        "payload_sha256": "726394696bb425f66ad8673ffd52af39e18a4acbf188758660da0dad9a3f0b83",
    },
    {
        "trial_id": "NCT04207047",
        "status": "UNKNOWN",
        "status_raw": "UNKNOWN",
        "phases": "NA",
        "start": "2018-10-02",
        "primary_completion": "2019-12-31",
        "completion": "2020-03-31",
        "last_updated": "2019-12-20",
        "start_type": "ACTUAL",
        "enrollment": 3,
        "stale": True,
        "payload_sha256": "6766d543d4b67430ada2366891013ac7820d0f6df9567358fedb62c69a12ebe5",
    },
)


def records_frame(*changes: dict[str, Any], extra: tuple[dict[str, Any], ...] = ()) -> pd.DataFrame:
    """The three real records; `changes[i]` overrides fields of record i; `extra` appends rows."""
    rows = []
    for i, base in enumerate((*RECORDS, *extra)):
        row: dict[str, Any] = {
            "registry": "ctgov",
            "lead_sponsor": "sponsor",
            "stale": False,
            "fetched_at": "2026-08-11T02:00:00+00:00",
            "source_url": CTGOV + str(base["trial_id"]),
            **base,
        }
        if i < len(changes):
            row.update(changes[i])
        rows.append(row)
    return pd.DataFrame(rows)


def outcome(report: ValidationReport, expectation: str, column: str | None) -> ExpectationOutcome:
    [found] = [o for o in report.outcomes if o.expectation == expectation and o.column == column]
    return found


def check_records(*changes: dict[str, Any], **kwargs: Any) -> ValidationReport:
    return validate_records(records_frame(*changes, **kwargs), EXPECTATIONS, TODAY)


# --- shared reports (one validation each) -------------------------------------------------


@pytest.fixture(scope="module")
def clean_curated() -> ValidationReport:
    return validate_curated(curated_frame(CURATED_ROWS), EXPECTATIONS)


@pytest.fixture(scope="module")
def duplicate_id_curated() -> ValidationReport:
    return validate_curated(curated_frame([*CURATED_ROWS, EYECYTE]), EXPECTATIONS)


@pytest.fixture(scope="module")
def unmapped_status_records() -> ValidationReport:
    return check_records({"status": "Recruiting soon"})


# --- curated suite ------------------------------------------------------------------------


def test_curated_clean_review_rows_pass_every_expectation(clean_curated: ValidationReport) -> None:
    assert clean_curated.success
    assert clean_curated.failures() == []
    assert all(o.error is None for o in clean_curated.outcomes)


def test_curated_NCT04982081_printed_for_two_products_is_a_warning_only(
    duplicate_id_curated: ValidationReport,
) -> None:
    assert duplicate_id_curated.success  # the gate still passes
    [warning] = duplicate_id_curated.failures("warning")
    assert (warning.expectation, warning.column) == (
        "expect_column_values_to_be_unique",
        "trial_id",
    )
    assert warning.unexpected_count == 2
    assert warning.examples == (
        "table=1 line=28 trial_id=NCT04982081",
        "table=4 line=88 trial_id=NCT04982081",
    )
    assert duplicate_id_curated.failures("critical") == []


def test_curated_missing_product_fails_the_gate() -> None:
    frame = curated_frame(CURATED_ROWS)
    frame.loc[1, "product"] = None
    report = validate_curated(frame, EXPECTATIONS)
    assert not report.success
    [failed] = report.failures("critical")
    assert (failed.expectation, failed.column) == ("expect_column_values_to_not_be_null", "product")
    assert failed.examples == ("table=1 line=5 trial_id=NCT05182073: product=null",)


def test_curated_blank_product_cell_counts_as_missing() -> None:
    frame = curated_frame(CURATED_ROWS)
    frame.loc[0, "product"] = "  "
    report = validate_curated(frame, EXPECTATIONS)
    assert not report.success
    assert [o.column for o in report.failures("critical")] == ["product"]


def test_curated_missing_column_is_named_and_fails() -> None:
    frame = curated_frame(CURATED_ROWS).drop(columns=["start_iso"])
    report = validate_curated(frame, EXPECTATIONS)
    assert not report.success
    columns_check = outcome(report, "expect_table_columns_to_match_set", None)
    assert columns_check.examples == ("missing column 'start_iso'",)
    regex = outcome(report, "expect_column_values_to_match_regex", "start_iso")
    assert not regex.success
    assert regex.error is not None and "start_iso" in regex.error


# --- records suite ------------------------------------------------------------------------


def test_records_three_real_ctgov_records_pass() -> None:
    report = check_records()
    assert report.success, report.summary()
    assert report.failures() == []


def test_records_status_outside_vocabulary_fails_and_names_NCT03418623(
    unmapped_status_records: ValidationReport,
) -> None:
    report = unmapped_status_records
    assert not report.success
    [failed] = report.failures("critical")
    assert (failed.expectation, failed.column) == ("expect_column_values_to_be_in_set", "status")
    assert failed.examples == ("registry=ctgov trial_id=NCT03418623: status=Recruiting soon",)


def test_records_null_status_is_allowed_unmapped_values_are_findings() -> None:
    report = check_records({"status": None, "status_raw": "Recruiting soon"})
    assert report.success, report.summary()


def test_records_start_in_1985_fails() -> None:
    report = check_records({"start": "1985"})
    assert not report.success
    [failed] = report.failures("critical")
    assert (failed.expectation, failed.column) == ("expect_column_values_to_be_between", "start_dt")
    assert failed.examples == ("registry=ctgov trial_id=NCT03418623: start_dt=1985-01-01",)


def test_records_start_bound_is_ten_years_after_today() -> None:
    eleven = (TODAY + dt.timedelta(days=365 * 11 + 3)).isoformat()
    nine = (TODAY + dt.timedelta(days=365 * 9)).isoformat()
    report = check_records({"start": eleven, "completion": None}, {"start": nine})
    assert not report.success
    failed = outcome(report, "expect_column_values_to_be_between", "start_dt")
    assert failed.unexpected_count == 1
    assert failed.examples == (f"registry=ctgov trial_id=NCT03418623: start_dt={eleven}",)


def test_records_start_nine_years_ahead_passes() -> None:
    nine = TODAY.replace(year=TODAY.year + 9).isoformat()
    report = check_records({"start": nine, "completion": None})
    assert report.success, report.summary()


def test_records_start_after_completion_is_a_warning_only() -> None:
    report = check_records({"start": "2021-06", "completion": "2020-03-13"})
    assert report.success
    [warning] = report.failures("warning")
    assert warning.column == "completion_dt,start_dt"
    assert warning.examples == (
        "registry=ctgov trial_id=NCT03418623: completion_dt=2020-03-13 start_dt=2021-06-01",
    )


def test_records_malformed_date_string_is_caught_not_dropped() -> None:
    report = check_records({"start": "March 2018"})
    assert not report.success
    [failed] = report.failures("critical")
    assert (failed.expectation, failed.column) == ("expect_column_values_to_match_regex", "start")


def test_records_bad_sha256_fails() -> None:
    report = check_records({"payload_sha256": "8FC97B0E" + "0" * 56})
    assert not report.success
    [failed] = report.failures("critical")
    assert failed.column == "payload_sha256"
    assert failed.examples[0].startswith("registry=ctgov trial_id=NCT03418623: ")


def test_records_duplicate_registry_and_trial_id_fails() -> None:
    report = check_records(extra=(RECORDS[0],))
    assert not report.success
    [failed] = report.failures("critical")
    assert failed.expectation == "expect_compound_columns_to_be_unique"
    assert failed.column == "registry,trial_id"
    assert failed.unexpected_count == 2  # GX lists both copies
    assert failed.examples == ("registry=ctgov trial_id=NCT03418623",)


def test_records_negative_enrollment_is_a_warning_only() -> None:
    report = check_records({"enrollment": -24})
    assert report.success
    [warning] = report.failures("warning")
    assert warning.column == "enrollment"
    assert warning.examples == ("registry=ctgov trial_id=NCT03418623: enrollment=-24",)


def test_records_metric_error_surfaces_in_error_and_fails_that_expectation() -> None:
    report = validate_records(records_frame().drop(columns=["source_url"]), EXPECTATIONS, TODAY)
    assert not report.success
    not_null = outcome(report, "expect_column_values_to_not_be_null", "source_url")
    assert not not_null.success
    assert not_null.error == 'Error: The column "source_url" in BatchData does not exist.'


# --- the report as plain data -------------------------------------------------------------


def test_report_to_dict_is_json_dumpable(unmapped_status_records: ValidationReport) -> None:
    data = json.loads(json.dumps(unmapped_status_records.to_dict()))
    assert data["suite"] == "records"
    assert data["success"] is False
    assert data["passed"] == data["total"] - 1
    [failed] = [o for o in data["outcomes"] if not o["success"]]
    assert failed["examples"] == ["registry=ctgov trial_id=NCT03418623: status=Recruiting soon"]


def test_report_summary_is_one_line(
    unmapped_status_records: ValidationReport, duplicate_id_curated: ValidationReport
) -> None:
    total = len(unmapped_status_records.outcomes)
    line = unmapped_status_records.summary()
    assert "\n" not in line
    assert line.startswith(
        f"records: {total - 1}/{total} expectations passed; 1 critical failure: "
    )
    assert "expect_column_values_to_be_in_set[status] 1 unexpected" in line
    assert "NCT03418623" in line
    assert (
        "; 1 warning: expect_column_values_to_be_unique[trial_id]" in duplicate_id_curated.summary()
    )


def test_report_outcomes_follow_suite_order(clean_curated: ValidationReport) -> None:
    suite = json.loads((EXPECTATIONS / "curated.json").read_text(encoding="utf-8"))
    assert [o.expectation for o in clean_curated.outcomes] == [
        e["type"] for e in suite["expectations"]
    ]
    assert clean_curated.outcomes[0].description == suite["expectations"][0]["meta"]["notes"]


def test_failures_rejects_an_unknown_severity(clean_curated: ValidationReport) -> None:
    with pytest.raises(ValueError, match="unknown severity 'error'"):
        clean_curated.failures("error")


# --- the suites themselves ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["curated.json", "records.json"])
def test_every_expectation_has_notes_and_a_severity(name: str) -> None:
    suite = json.loads((EXPECTATIONS / name).read_text(encoding="utf-8"))
    assert suite["expectations"]
    for expectation in suite["expectations"]:
        assert expectation["severity"] in SEVERITIES, expectation
        notes = expectation["meta"]["notes"]
        assert isinstance(notes, str) and notes.strip(), expectation


def test_suite_vocabularies_match_the_model() -> None:
    records = json.loads((EXPECTATIONS / "records.json").read_text(encoding="utf-8"))
    curated = json.loads((EXPECTATIONS / "curated.json").read_text(encoding="utf-8"))

    def kwargs_of(suite: dict[str, Any], type_: str, column: str) -> dict[str, Any]:
        [found] = [
            e["kwargs"]
            for e in suite["expectations"]
            if e["type"] == type_ and e["kwargs"].get("column") == column
        ]
        return found

    assert kwargs_of(records, "expect_column_values_to_be_in_set", "status")["value_set"] == list(
        STATUSES
    )
    # the registry value set is not listed in the suite: the registry table passes it in
    assert kwargs_of(curated, "expect_column_values_to_be_in_set", "registry")["value_set"] == {
        "$PARAMETER": REGISTRY_KEYS_PARAMETER
    }
    assert set(TRIAL_REGISTRIES) == set(ID_PATTERNS)
    for suite in (records, curated):
        phases = re.compile(
            kwargs_of(suite, "expect_column_values_to_match_regex", "phases")["regex"]
        )
        assert all(phases.search(p) for p in PHASES)
        assert phases.search("|".join(PHASES))
        assert not phases.search("PHASE1/PHASE2")


# --- pure helpers ---------------------------------------------------------------------------


def test_partial_dates_become_their_first_instant() -> None:
    frame = pd.DataFrame({"start": ["2021", "2006-11", "2018-03-08", None, "2021-13"]})
    got = add_date_columns(frame, ["start"])["start_dt"]
    assert str(got.dtype) == "datetime64[us]"
    assert [None if pd.isna(v) else v.date().isoformat() for v in got] == [
        "2021-01-01",
        "2006-11-01",
        "2018-03-08",
        None,
        None,
    ]
    assert got.iloc[0] == np.datetime64("2021-01-01T00:00:00")


def test_latest_plausible_date_is_midnight_ten_years_on_and_survives_leap_day() -> None:
    assert latest_plausible_date(dt.date(2026, 8, 11)) == dt.datetime(2036, 8, 11)
    assert latest_plausible_date(dt.date(2028, 2, 29)) == dt.datetime(2038, 2, 28)


def test_exception_text_reads_both_shapes_of_exception_info() -> None:
    flat = {"raised_exception": True, "exception_message": "boom", "exception_traceback": "..."}
    nested = {
        "MetricConfigurationID(metric_name='column_values.between.condition', ...)": {
            "raised_exception": True,
            "exception_message": "Cannot compare Timestamp with datetime.date.",
            "exception_traceback": "Traceback ...",
        },
        "MetricConfigurationID(metric_name='column_values.nonnull.condition', ...)": {
            "raised_exception": True,
            "exception_message": "Cannot compare Timestamp with datetime.date.",
            "exception_traceback": "Traceback ...",
        },
    }
    quiet = {"raised_exception": False, "exception_message": None, "exception_traceback": None}
    no_message = {
        "raised_exception": True,
        "exception_message": None,
        "exception_traceback": "Traceback\n  line\nKeyError: 'x'\n",
    }
    assert exception_text(flat) == "boom"
    assert exception_text(nested) == "Cannot compare Timestamp with datetime.date."
    assert exception_text(quiet) is None
    assert exception_text(None) is None
    assert exception_text(no_message) == "KeyError: 'x'"


def test_importing_validate_does_not_import_great_expectations() -> None:
    code = "import sys, registry_sync.validate; sys.exit('great_expectations' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
