"""Verdicts: wrong at publication, changed since, or unknown (rules in verdict.py)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from helpers import BUNDLED_CURATED, fast_settings, replay_copy, review_subset
from registry_sync import report
from registry_sync.curated import parse_review_phase, parse_review_start
from registry_sync.model import (
    CuratedRow,
    Finding,
    Outcome,
    PartialDate,
    RegistryRecord,
    Severity,
    TrialState,
    Verdict,
)
from registry_sync.pipeline import RunRequest, run_pipeline
from registry_sync.reconcile import reconcile
from registry_sync.review_meta import review_meta_path
from registry_sync.verdict import (
    NO_META,
    TrialHistory,
    VersionEntry,
    apply_verdicts,
    count_verdicts,
    history_wanted,
    version_in_effect,
    versions_needed,
)

WINDOW = (date(2025, 10, 1), date(2025, 12, 31))
NCT = "NCT06482268"  # CT1-DAP001, Table 2: the review prints I/II, the registry Phase 1
ROW = CuratedRow(
    line=40, table=2, row=7, product="CT1-DAP001", cell_type="DA progenitor",
    indication="PD", sponsor="CiRA", trial_id=NCT, phase="I/II", nation="CN", start="2024",
    registry="ctgov", phases=parse_review_phase("I/II"), start_date=parse_review_start("2024"),
)  # fmt: skip


def _record(updated: PartialDate | None, phases: tuple[str, ...] = ("PHASE1",)) -> RegistryRecord:
    return RegistryRecord(
        "ctgov", NCT, status="RECRUITING", phases=phases, phases_raw=phases,
        start=PartialDate(2024, 6), lead_sponsor="CiRA", last_updated=updated,
    )  # fmt: skip


def _state(rec: RegistryRecord, **kw: object) -> TrialState:
    fetched = datetime(2026, 11, 1, tzinfo=UTC)
    return replace(TrialState("ctgov", NCT, Outcome.OK, record=rec, fetched_at=fetched), **kw)  # type: ignore[arg-type]


def _judge(state: TrialState, history: TrialHistory | None = None) -> Finding:
    findings = reconcile([ROW], {NCT: state})
    histories = {NCT: history} if history is not None else None
    judged = apply_verdicts(findings, [ROW], {NCT: state}, WINDOW, histories)
    return next(f for f in judged if f.kind == "phase_mismatch")


def test_record_last_updated_before_publication_is_wrong_at_publication() -> None:
    f = _judge(_state(_record(PartialDate(2025, 1, 29))))
    assert f.verdict is Verdict.WRONG_AT_PUBLICATION
    assert "2025-01-29, before the review was published" in f.extra["verdict_why"]


def test_record_updated_after_publication_is_unknown_either_possible() -> None:
    f = _judge(_state(_record(PartialDate(2026, 2, 3))))
    assert f.verdict is Verdict.UNKNOWN
    assert "the registry changed after publication" in f.extra["verdict_why"]
    assert "either is possible" in f.extra["verdict_why"]


def test_update_inside_the_window_or_undated_is_unknown() -> None:
    assert _judge(_state(_record(PartialDate(2025, 11)))).verdict is Verdict.UNKNOWN
    # a month-precision date that reaches into the window is not "before" it
    assert _judge(_state(_record(PartialDate(2025, 10)))).verdict is Verdict.UNKNOWN
    undated = _judge(_state(_record(None)))
    assert (
        undated.verdict is Verdict.UNKNOWN
        and "no last-updated date" in undated.extra["verdict_why"]
    )


def test_ictrp_copy_is_dated_by_its_refresh() -> None:
    rec = replace(_record(None), refreshed=PartialDate(2024, 3, 1))
    f = _judge(_state(rec, source="ictrp"))
    assert f.verdict is Verdict.WRONG_AT_PUBLICATION
    assert "WHO ICTRP's copy was last refreshed 2024-03-01" in f.extra["verdict_why"]


def test_stale_values_read_before_publication_say_nothing_about_it() -> None:
    read = datetime(2025, 9, 1, tzinfo=UTC)
    f = _judge(_state(_record(PartialDate(2025, 1)), stale=True, fetched_at=read))
    assert (
        f.verdict is Verdict.UNKNOWN
        and "stale values were read 2025-09-01" in f.extra["verdict_why"]
    )
    later = datetime(2026, 1, 5, tzinfo=UTC)
    kept = _judge(_state(_record(PartialDate(2025, 1)), stale=True, fetched_at=later))
    assert kept.verdict is Verdict.WRONG_AT_PUBLICATION


def test_review_only_findings_are_wrong_at_publication_and_notes_unknown() -> None:
    bad = replace(ROW, trial_id="jRCT209022038", registry=None, phase="IIT", phases=None)
    state = _state(_record(PartialDate(2025, 1)))
    judged = apply_verdicts(reconcile([bad, ROW], {NCT: state}), [bad, ROW], {NCT: state}, WINDOW)
    verdicts = {f.kind: f.verdict for f in judged}
    assert verdicts["id_malformed"] is Verdict.WRONG_AT_PUBLICATION
    assert verdicts["phase_unparsed"] is Verdict.WRONG_AT_PUBLICATION
    assert verdicts["status"] is Verdict.UNKNOWN  # a note, nothing wrong to date


def test_without_review_metadata_every_verdict_is_unknown() -> None:
    state = _state(_record(PartialDate(2020, 1)))
    bad = replace(ROW, line=41, phase="IIT", phases=None)
    judged = apply_verdicts(reconcile([ROW, bad], {NCT: state}), [ROW, bad], {NCT: state}, None)
    assert judged and {f.verdict for f in judged} == {Verdict.UNKNOWN}
    assert {f.extra["verdict_why"] for f in judged} == {NO_META}


def test_vanished_after_publication_changed_since() -> None:
    f = Finding(2, 40, NCT, "trial_id", "vanished", Severity.WARNING, NCT, None)
    state = _state(_record(None), outcome=Outcome.NOT_FOUND, stale=True)
    judged = apply_verdicts([f], [ROW], {NCT: state}, WINDOW)
    assert judged[0].verdict is Verdict.CHANGED_SINCE


VERSIONS = (
    VersionEntry(0, date(2024, 5, 2), "NOT_YET_RECRUITING"),
    VersionEntry(1, date(2025, 1, 29), "RECRUITING"),
    VersionEntry(2, date(2026, 2, 3), "RECRUITING"),
)


def test_version_in_effect_is_the_latest_posted_on_or_before_the_day() -> None:
    assert version_in_effect(VERSIONS, date(2025, 10, 1)) == VERSIONS[1]
    assert version_in_effect(VERSIONS, date(2026, 2, 3)) == VERSIONS[2]
    assert version_in_effect(VERSIONS, date(2024, 1, 1)) is None
    assert versions_needed(VERSIONS, WINDOW) == [1]
    assert versions_needed(VERSIONS, (date(2024, 6, 1), date(2026, 3, 1))) == [0, 2]


def test_history_agreed_at_publication_means_changed_since() -> None:
    then = _record(PartialDate(2025, 1, 29), ("PHASE1", "PHASE2"))  # agreed with I/II
    history = TrialHistory(NCT, VERSIONS, {1: then})
    f = _judge(_state(_record(PartialDate(2026, 2, 3))), history)
    assert f.verdict is Verdict.CHANGED_SINCE
    assert "version 1 of 2025-01-29, in effect at publication, agreed" in f.extra["verdict_why"]


def test_history_already_differing_at_publication_means_wrong() -> None:
    history = TrialHistory(NCT, VERSIONS, {1: _record(PartialDate(2025, 1, 29))})
    f = _judge(_state(_record(PartialDate(2026, 2, 3))), history)
    assert f.verdict is Verdict.WRONG_AT_PUBLICATION


def test_history_changing_inside_the_window_stays_unknown() -> None:
    versions = (*VERSIONS[:2], VersionEntry(2, date(2025, 11, 20)))
    records = {1: _record(None, ("PHASE1", "PHASE2")), 2: _record(None)}
    f = _judge(_state(_record(PartialDate(2026, 2, 3))), TrialHistory(NCT, versions, records))
    assert (
        f.verdict is Verdict.UNKNOWN
        and "changed during the publication window" in f.extra["verdict_why"]
    )


def test_history_failure_keeps_the_date_verdict_and_adds_a_note() -> None:
    state = _state(_record(PartialDate(2026, 2, 3)))
    failed = TrialHistory(NCT, error="HTTP 503 from …/history")
    findings = reconcile([ROW], {NCT: state})
    judged = apply_verdicts(findings, [ROW], {NCT: state}, WINDOW, {NCT: failed})
    phase = next(f for f in judged if f.kind == "phase_mismatch")
    assert (
        phase.verdict is Verdict.UNKNOWN
        and "could not be read (HTTP 503" in phase.extra["verdict_why"]
    )
    # the finding itself is unchanged: same values and message as without history
    plain = next(f for f in findings if f.kind == "phase_mismatch")
    assert (phase.registry_value, phase.message) == (plain.registry_value, plain.message)
    notes = [f for f in judged if f.kind == "history_unavailable"]
    assert len(notes) == 1 and notes[0].severity is Severity.INFO and "HTTP 503" in notes[0].message
    assert len(judged) == len(findings) + 1


def test_history_is_wanted_only_for_undecided_ctgov_disagreements() -> None:
    recent = _state(_record(PartialDate(2026, 2, 3)))
    old = _state(_record(PartialDate(2024, 2, 3)))
    copy = _state(_record(PartialDate(2026, 2, 3)), source="ictrp")
    for state, wanted in ((recent, [NCT]), (old, []), (copy, [])):
        findings = reconcile([ROW], {NCT: state})
        assert history_wanted(findings, {NCT: state}, WINDOW) == wanted
    assert history_wanted(reconcile([ROW], {NCT: recent}), {NCT: recent}, None) == []


def test_count_verdicts_lists_every_verdict() -> None:
    states = {NCT: _state(_record(PartialDate(2025, 1)))}
    judged = apply_verdicts(reconcile([ROW], states), [ROW], states, WINDOW)
    assert count_verdicts(judged) == {"wrong_at_publication": 1, "changed_since": 0, "unknown": 1}


def test_review_rows_replayed_get_wrong_at_publication(tmp_path: Path) -> None:
    """The review's own rows: CT1-DAP001's phase (record last updated 2025-01-29) and FT516's
    sponsor (2022-04-05) were already in the registry when the review was published."""
    ids = (NCT, "NCT04363346")
    curated = review_subset(tmp_path, ids)
    shutil.copy(review_meta_path(BUNDLED_CURATED), review_meta_path(curated))
    result = run_pipeline(
        fast_settings(tmp_path, curated), RunRequest(replay_dir=replay_copy(tmp_path, *ids))
    )
    conn = sqlite3.connect(result.snapshot_path)
    got = dict(conn.execute("select kind || ':' || trial_id, verdict from findings"))
    meta = {k: json.loads(v) for k, v in conn.execute("select key, value from _meta")}
    conn.close()
    assert got[f"phase_mismatch:{NCT}"] == "wrong_at_publication"
    assert got["sponsor_mismatch:NCT04363346"] == "wrong_at_publication"
    assert got[f"status:{NCT}"] == "unknown"
    assert meta["review"]["published_window"] == ["2025-10-01", "2025-12-31"]
    assert meta["review"]["title"] == ""
    assert meta["history"] == {"asked": False, "trials": {}}
    md = result.report_markdown
    assert "- Verdicts: wrong at publication " in md
    assert f"**warning** [wrong at publication] Table 2 row 7, CT1-DAP001 ({NCT})" in md
    content = report.load_content(result.snapshot_path)
    rows = list(csv.DictReader(io.StringIO(report.render(content, "corrections"))))
    assert {r["trial_id"]: r["verdict"] for r in rows} == {
        NCT: "wrong_at_publication",
        "NCT04363346": "wrong_at_publication",
    }
    doc = json.loads(report.render(content, "json"))
    assert doc["summary"]["verdicts"]["wrong_at_publication"] >= 2
    assert {f["verdict"] for f in doc["findings"] if f["kind"] == "phase_mismatch"} == {
        "wrong_at_publication"
    }


def test_review_without_metadata_runs_with_unknown_verdicts_and_a_note(tmp_path: Path) -> None:
    curated = review_subset(tmp_path, (NCT,))
    result = run_pipeline(
        fast_settings(tmp_path, curated), RunRequest(replay_dir=replay_copy(tmp_path, NCT))
    )
    conn = sqlite3.connect(result.snapshot_path)
    verdicts = {v for (v,) in conn.execute("select verdict from findings")}
    note = json.loads(
        conn.execute("select value from _meta where key='verdict_note'").fetchone()[0]
    )
    conn.close()
    assert verdicts == {"unknown"}
    assert "no review metadata beside" in note
    assert "- Review published: unknown (no review metadata beside" in result.report_markdown
