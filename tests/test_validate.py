"""The GX quality gate (registry_sync.validate) over frames of real rows and records.

The frames are built the way the pipeline builds them (`registry_sync.frames`): curated rows
loaded by `load_curated` from data/curated/review_2025_hpsc.csv, and the records frame by
`frames.records_frame` from three real ClinicalTrials.gov payloads in tests/fixtures/ctgov,
parsed by the ctgov adapter (so values and sha256 digests are the fixtures' own, as listed in
its SOURCES.md). Each test then breaks one thing by hand, overriding that value explicitly.
GX is imported once per session (by the first validation); each validation costs about
0.15 s, so the tests share reports through module-scoped fixtures where they can.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest

from helpers import BUNDLED_CURATED, EXPECTATIONS, FIXTURES
from registry_sync import frames
from registry_sync.curated import load_curated
from registry_sync.ids import ID_PATTERNS
from registry_sync.model import (
    PHASES,
    STATUSES,
    CuratedRow,
    Outcome,
    RawPayload,
    TrialState,
)
from registry_sync.registries import ctgov
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

TODAY = dt.date(2026, 8, 11)

# --- frame builders -----------------------------------------------------------------------

# Four rows of the review's table (CSV lines 2, 5, 12 and 28), loaded as the pipeline loads them.
CURATED_LINES = (2, 5, 12, 28)
# Table 4 prints NCT04982081 (line 28's ID) for another product: CSV line 89.
EYECYTE_LINE = 89


def curated_rows(*lines: int) -> list[CuratedRow]:
    by_line = {r.line: r for r in load_curated(BUNDLED_CURATED).rows}
    return [by_line[line] for line in lines]


CURATED_ROWS = tuple(curated_rows(*CURATED_LINES))
[EYECYTE] = curated_rows(EYECYTE_LINE)


CTGOV = "https://clinicaltrials.gov/api/v2/studies/"
CTGOV_FIXTURES = FIXTURES / "ctgov"
FETCHED_AT = dt.datetime(2026, 8, 11, 2, 0, tzinfo=dt.UTC)
# The three real studies the records frame is built from, in frame order (row 0 first).
RECORD_FIXTURES = (
    "study_NCT03418623_phase2_completed.json",
    "study_NCT00763412_month-precision-start_with-results.json",
    "study_NCT04207047_unknown-status_lastKnownStatus.json",
)


def fixture_state(name: str, *, stale: bool = False) -> TrialState:
    """A real fixture parsed by the ctgov adapter, as the pipeline holds it after a fetch."""
    body = (CTGOV_FIXTURES / name).read_bytes()
    trial_id = name.split("_")[1]
    payload = RawPayload(ctgov.KEY, trial_id, CTGOV + trial_id, FETCHED_AT, body)
    return TrialState(
        registry=ctgov.KEY,
        trial_id=trial_id,
        outcome=Outcome.OK,
        record=ctgov.parse(payload),
        stale=stale,
        fetched_at=payload.fetched_at,
        source_url=payload.url,
        payload_sha256=payload.sha256,
    )


# NCT04207047 is marked stale (carried forward) so the frame holds one stale row, as a partial
# run's frame does; every other value comes from the fixtures.
STATES = tuple(
    fixture_state(name, stale=name.startswith("study_NCT04207047")) for name in RECORD_FIXTURES
)


def records_frame(*changes: dict[str, Any], extra: tuple[TrialState, ...] = ()) -> pd.DataFrame:
    """The pipeline's frame (`frames.records_frame`) of the three parsed real fixtures, so every
    value is the fixture's own; `extra` appends states. A test that needs a different value
    passes it explicitly: `changes[i]` overrides columns of row i, nothing else differs."""
    frame = frames.records_frame((*STATES, *extra))
    for i, change in enumerate(changes):
        for column, value in change.items():
            frame.loc[i, column] = value
    return frame


def outcome(report: ValidationReport, expectation: str, column: str | None) -> ExpectationOutcome:
    [found] = [o for o in report.outcomes if o.expectation == expectation and o.column == column]
    return found


def check_records(*changes: dict[str, Any], **kwargs: Any) -> ValidationReport:
    return validate_records(records_frame(*changes, **kwargs), EXPECTATIONS, TODAY)


# --- shared reports (one validation each) -------------------------------------------------


@pytest.fixture(scope="module")
def clean_curated() -> ValidationReport:
    return validate_curated(frames.curated_frame(CURATED_ROWS), EXPECTATIONS)


@pytest.fixture(scope="module")
def duplicate_id_curated() -> ValidationReport:
    return validate_curated(frames.curated_frame([*CURATED_ROWS, EYECYTE]), EXPECTATIONS)


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
        "table=4 line=89 trial_id=NCT04982081",
    )
    assert duplicate_id_curated.failures("critical") == []


def test_curated_missing_product_fails_the_gate() -> None:
    frame = frames.curated_frame(CURATED_ROWS)
    frame.loc[1, "product"] = None
    report = validate_curated(frame, EXPECTATIONS)
    assert not report.success
    [failed] = report.failures("critical")
    assert (failed.expectation, failed.column) == ("expect_column_values_to_not_be_null", "product")
    assert failed.examples == ("table=1 line=5 trial_id=NCT05182073: product=null",)


def test_curated_blank_product_cell_counts_as_missing() -> None:
    frame = frames.curated_frame(CURATED_ROWS)
    frame.loc[0, "product"] = "  "
    report = validate_curated(frame, EXPECTATIONS)
    assert not report.success
    assert [o.column for o in report.failures("critical")] == ["product"]


def test_curated_missing_column_is_named_and_fails() -> None:
    frame = frames.curated_frame(CURATED_ROWS).drop(columns=["start_iso"])
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


def test_records_frame_carries_the_fixtures_values_and_digests() -> None:
    frame = records_frame().set_index("trial_id")
    sources = (CTGOV_FIXTURES / "SOURCES.md").read_text(encoding="utf-8")
    for name in RECORD_FIXTURES:
        row = next(line for line in sources.splitlines() if f"`{name}`" in line)
        [listed_sha256] = re.findall(r"`([0-9a-f]{64})`", row)
        assert frame.loc[name.split("_")[1], "payload_sha256"] == listed_sha256
    # values the hand-built records of earlier versions got wrong
    assert frame.loc["NCT03418623", "primary_completion"] == "2020-03-13"
    assert frame.loc["NCT00763412", "phases"] == "NA"
    assert frame.loc["NCT00763412", "start"] == "2006-11"
    # NCT00763412's start is month precision with no `type`
    assert frame["start_type"].isna().to_dict() == {
        "NCT03418623": False,
        "NCT00763412": True,
        "NCT04207047": False,
    }
    assert frame.loc["NCT04207047", "primary_completion"] == "2018-10-31"
    assert frame.loc["NCT03418623", "lead_sponsor"] == "Laboratorio Farmaceutico Ct S.r.l."


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
    report = check_records(extra=(STATES[0],))
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
        matches: list[dict[str, Any]] = [
            e["kwargs"]
            for e in suite["expectations"]
            if e["type"] == type_ and e["kwargs"].get("column") == column
        ]
        [found] = matches
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


def test_records_examples_are_the_first_ten_distinct_of_many_failing_rows() -> None:
    """Rows are named here, not by GX: 24 rows breaking key uniqueness (each key twice) give the
    full count and the first ten distinct keys, in frame order."""
    base = STATES[0]
    assert base.record is not None
    ids = [f"NCT9{i:07d}" for i in range(12)]
    copies = tuple(
        dataclasses.replace(
            base, trial_id=tid, record=dataclasses.replace(base.record, trial_id=tid)
        )
        for tid in ids
        for _ in range(2)
    )
    report = check_records(extra=copies)
    dup = outcome(report, "expect_compound_columns_to_be_unique", "registry,trial_id")
    assert not dup.success and dup.unexpected_count == 24
    assert dup.examples == tuple(f"registry=ctgov trial_id={tid}" for tid in ids[:10])
