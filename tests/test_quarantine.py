"""Gate granularity: a record failing a per-record expectation is quarantined, not the run.

Pure checks of `registry_sync.quarantine` against the real suite `expectations/records.json`,
then runs through `run_pipeline` over replay sets derived from the bundled ClinicalTrials.gov
documents (`absurd_start_replay`: NCT06482268's start made 1985-01-01).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from helpers import (
    BUNDLED_REPLAY,
    EXPECTATIONS,
    absurd_start_replay,
    fast_settings,
    replay_copy,
    review_subset,
)
from registry_sync import quarantine, snapshot, validate
from registry_sync.model import Outcome, TrialState
from registry_sync.pipeline import RunRequest, run_pipeline

SUITE = json.loads((EXPECTATIONS / "records.json").read_text(encoding="utf-8"))
TODAY = dt.date(2026, 8, 11)
PARAMETERS = validate.records_parameters(TODAY)
ABSURD = "NCT06482268"
SUBSET = ("NCT06482268", "NCT04363346", "NCT04331613")

# A clean record row in the shape of frames.record_row (NCT04363346's values, abridged).
CLEAN: dict[str, Any] = {
    "registry": "ctgov",
    "trial_id": "NCT04363346",
    "status": "COMPLETED",
    "status_raw": "COMPLETED",
    "phases": "PHASE1",
    "start": "2020-05-01",
    "primary_completion": "2021-06",
    "completion": "2021",
    "last_updated": "2022-01-10",
    "start_type": "ACTUAL",
    "lead_sponsor": "Fate Therapeutics",
    "enrollment": 4,
    "stale": False,
    "fetched_at": "2026-08-11T02:00:00+00:00",
    "source_url": "https://clinicaltrials.gov/api/v2/studies?filter.ids=NCT04363346",
    "payload_sha256": "a" * 64,
}


def held_for(**changes: Any) -> dict[str, quarantine.Held]:
    row = {**CLEAN, **changes}
    state = TrialState(
        "ctgov", row["trial_id"], Outcome.OK, payload_sha256="a" * 64, evidence=("req-1",)
    )
    return quarantine.find_held(
        {row["trial_id"]: row}, {row["trial_id"]: state}, SUITE["expectations"], PARAMETERS
    )


def rows_of(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


# --- the suite says which expectations are per record ------------------------------------


def test_every_records_expectation_names_its_scope() -> None:
    scopes = {
        (e["type"], e["kwargs"].get("column")): e["meta"]["scope"] for e in SUITE["expectations"]
    }
    assert set(scopes.values()) == {"record", "set"}
    assert scopes[("expect_column_values_to_be_between", "start_dt")] == "record"
    assert scopes[("expect_compound_columns_to_be_unique", None)] == "set"
    assert scopes[("expect_column_values_to_not_be_null", "trial_id")] == "set"
    # every critical per-record expectation is one quarantine can evaluate (raises otherwise)
    assert len(quarantine.record_rules(SUITE["expectations"])) == 11


def test_a_per_record_type_quarantine_cannot_evaluate_is_named() -> None:
    odd = {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "x"}}
    with pytest.raises(ValueError, match="expect_column_values_to_be_unique"):
        quarantine.record_rules([{**odd, "severity": "critical", "meta": {"scope": "record"}}])


# --- one record, one rule ------------------------------------------------------------------


def test_clean_record_is_not_held() -> None:
    assert held_for() == {}


def test_start_in_1985_is_held_with_expectation_and_value() -> None:
    (held,) = held_for(start="1985-01-01").values()
    (breach,) = held.breaches
    assert breach.expectation == "expect_column_values_to_be_between"
    assert (breach.column, breach.value) == ("start", "1985-01-01")
    assert held.message == "start 1985-01-01 is before 1990-01-01: the record's values are not used"
    assert held.evidence == ("req-1",) and held.payload_sha256 == "a" * 64


def test_start_bound_follows_the_run_date_parameter() -> None:
    assert held_for(start="2036-08-11") == {}  # ten years after TODAY: the bound itself
    (held,) = held_for(start="2036-08-12").values()
    assert held.reason == "start 2036-08-12 is after 2036-08-11"
    assert held_for(start="2036") == {}  # a bare year is its 1 January, as GX sees it


def test_unknown_status_malformed_date_and_bad_digest_are_held() -> None:
    assert (
        held_for(status="WEIRD")["NCT04363346"].reason == "status 'WEIRD' is not in the vocabulary"
    )
    reason = held_for(completion="2021-13")["NCT04363346"].reason
    assert reason.startswith("completion '2021-13' does not match")
    assert "payload_sha256 is missing" in held_for(payload_sha256="  ")["NCT04363346"].reason


def test_null_status_and_empty_phases_pass_as_in_gx() -> None:
    assert held_for(status=None, phases="") == {}


def test_warning_only_expectations_never_quarantine() -> None:
    # negative enrollment and a completion before the start are findings, not broken records
    assert held_for(enrollment=-1, completion="2019", start_type="PLANNED") == {}


# --- set-level rules ----------------------------------------------------------------------


def fake_held(n: int) -> dict[str, quarantine.Held]:
    return {f"T{i}": quarantine.Held("ctgov", f"T{i}", (), None, ()) for i in range(n)}


def test_most_records_quarantined_is_set_level() -> None:
    def ok(checked: int, held: int) -> bool:
        return quarantine.set_checks(checked, fake_held(held), ["RECRUITING"])[0].success

    assert ok(14, 1) and ok(2, 2)  # one bad record; too few records to call it the whole set
    assert not ok(6, 3) and not ok(3, 3)


def test_all_statuses_null_is_set_level_from_three_records() -> None:
    def ok(statuses: list[str | None]) -> bool:
        return quarantine.set_checks(len(statuses), {}, statuses)[1].success

    assert ok([None, None]) and ok([None, None, "COMPLETED"])
    assert not ok([None, None, None])


# --- through the pipeline -----------------------------------------------------------------


def absurd_among_the_others(tmp_path: Path) -> Path:
    """Every bundled ClinicalTrials.gov document, NCT06482268's with a start in 1985."""
    out = absurd_start_replay(tmp_path)
    bundled = BUNDLED_REPLAY / "ctgov"
    for path in bundled.rglob("NCT*.json"):
        if path.stem != ABSURD:
            target = out / "ctgov" / path.relative_to(bundled)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    return out


def test_absurd_start_is_quarantined_and_the_others_are_published(tmp_path: Path) -> None:
    result = run_pipeline(
        fast_settings(tmp_path), RunRequest(replay_dir=absurd_among_the_others(tmp_path))
    )
    assert result.accepted and result.exit_code == 1  # partial: one trial not checked
    assert result.outcomes["quarantined"] == 1 and result.outcomes["ok"] == 14
    assert result.snapshot_path.parent.name == "snapshots"
    path = result.snapshot_path
    # the others are published; the held record's values are not in `records`
    assert len(rows_of(path, "select * from records")) == 14
    assert rows_of(path, f"select * from records where trial_id = '{ABSURD}'") == []
    ((outcome, detail),) = rows_of(
        path, f"select outcome, detail from outcomes where trial_id = '{ABSURD}'"
    )
    assert outcome == "quarantined" and "start 1985-01-01 is before 1990-01-01" in detail
    # kept with its evidence: the payload it was parsed from and the request it came in
    ((sha,),) = rows_of(path, f"select sha256 from payloads where trial_id = '{ABSURD}'")
    assert b'"1985-01-01"' in snapshot.payload_bodies(path, [sha])[sha]
    assert rows_of(
        path,
        f"select status from evidence join requests using (request_id) where trial_id = '{ABSURD}'",
    ) == [(200,)]
    ((field, value, message, severity),) = rows_of(
        path,
        "select field, registry_value, message, severity from findings where kind = 'quarantined'",
    )
    assert (field, value, severity) == ("start", "1985-01-01", "warning")
    assert message == "start 1985-01-01 is before 1990-01-01: the record's values are not used"
    # its values were not reconciled: no start or phase finding for the held trial
    assert (
        rows_of(
            path, f"select kind from findings where trial_id = '{ABSURD}' and kind != 'quarantined'"
        )
        == []
    )
    held = json.loads(rows_of(path, "select value from _meta where key = 'quarantine'")[0][0])
    assert [h["trial_id"] for h in held["held"]] == [ABSURD]
    assert result.notices == (
        "quality gate: 1 record quarantined, values not used (NCT06482268: start 1985-01-01 is "
        "before 1990-01-01); the other records are published",
    )
    md = result.report_markdown
    assert "## Records held back by the quality gate (quarantined)" in md
    assert "Table 2 row 7, CT1-DAP001 (NCT06482268): start 1985-01-01 is before" in md


def test_quarantined_record_carries_last_good_values_forward(tmp_path: Path) -> None:
    curated = review_subset(tmp_path, SUBSET)
    first = run_pipeline(
        fast_settings(tmp_path, curated), RunRequest(replay_dir=replay_copy(tmp_path, *SUBSET))
    )
    assert first.outcomes == {"ok": 3}
    synthetic = absurd_start_replay(tmp_path)
    for nct in SUBSET[1:]:
        shutil.copy(next((BUNDLED_REPLAY / "ctgov").rglob(f"{nct}.json")), synthetic / "ctgov")
    second = run_pipeline(fast_settings(tmp_path, curated), RunRequest(replay_dir=synthetic))
    assert second.accepted and second.outcomes == {"ok": 2, "quarantined": 1}
    ((start, stale, carried),) = rows_of(
        second.snapshot_path,
        f"select start, stale, carried_from from records where trial_id = '{ABSURD}'",
    )
    assert (stale, carried) == (1, first.run_id) and start != "1985-01-01"
    (message,) = rows_of(
        second.snapshot_path, "select message from findings where kind = 'quarantined'"
    )[0]
    assert message.endswith(f"; last good values from run {first.run_id} used instead")


def test_most_records_failing_rejects_the_run(tmp_path: Path) -> None:
    curated = review_subset(tmp_path, SUBSET)
    bad = run_pipeline(
        fast_settings(tmp_path, curated),
        RunRequest(replay_dir=absurd_start_replay(tmp_path, *SUBSET)),
    )
    assert not bad.accepted and bad.exit_code == 3
    assert bad.snapshot_path.parent.name == "rejected"
    assert (
        "records_mostly_quarantined 3 unexpected (e.g. registry=ctgov trial_id=NCT"
        in (bad.validation["records"]["summary"])
    )
    assert bad.notices[0].endswith("1990-01-01 and 2 more)")  # not "the others are published"


def test_quarantine_and_gx_agree_on_which_records_fail() -> None:
    """The same suite, record by record in Python and over the frame in GX: the same trials."""
    import pandas as pd

    from registry_sync.frames import RECORD_COLUMNS

    broken: dict[str, dict[str, Any]] = {
        "NCT00000001": {"start": "1985-01-01"},
        "NCT00000002": {"status": "WEIRD"},
        "NCT00000003": {"completion": "2021-13"},
        "NCT00000004": {"payload_sha256": "A" * 64},
        "NCT00000005": {"start": "2040"},
        "NCT00000006": {},  # clean
        "NCT00000007": {"enrollment": -3},  # a warning only
    }
    rows = {tid: {**CLEAN, "trial_id": tid, **change} for tid, change in broken.items()}
    states = {tid: TrialState("ctgov", tid, Outcome.OK) for tid in rows}
    held = quarantine.find_held(rows, states, SUITE["expectations"], PARAMETERS)
    frame = pd.DataFrame.from_records(list(rows.values()), columns=list(RECORD_COLUMNS))
    frame["enrollment"] = frame["enrollment"].astype("Int64")
    report = validate.validate_records(frame, EXPECTATIONS, TODAY)
    gx_failed = {
        example.split("trial_id=")[1].split(":")[0]
        for outcome in report.failures("critical")
        for example in outcome.examples
    }
    assert set(held) == gx_failed == {f"NCT0000000{i}" for i in range(1, 6)}
