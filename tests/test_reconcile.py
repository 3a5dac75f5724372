"""Reconcile rules: precision-aware dates, phase sets, loose sponsors, the review's own errors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from registry_sync.curated import parse_review_phase, parse_review_start
from registry_sync.ids import registry_of
from registry_sync.model import (
    CuratedRow,
    Outcome,
    PartialDate,
    RegistryRecord,
    TrialState,
    Unmapped,
)
from registry_sync.reconcile import reconcile, sponsor_matches


def row(
    trial_id: str = "NCT04630769",
    phase: str = "I",
    start: str = "2021",
    sponsor: str = "Fate",
    product: str = "FT516",
    line: int = 3,
    table: int = 1,
) -> CuratedRow:
    return CuratedRow(
        line=line,
        table=table,
        product=product,
        cell_type="iNK",
        indication="ovarian cancer",
        sponsor=sponsor,
        trial_id=trial_id,
        phase=phase,
        nation="US",
        start=start,
        registry=registry_of(trial_id),
        phases=parse_review_phase(phase),
        start_date=parse_review_start(start),
    )


def record(trial_id: str = "NCT04630769", **kw: object) -> RegistryRecord:
    base = RegistryRecord(
        registry="ctgov",
        trial_id=trial_id,
        status="COMPLETED",
        status_raw="COMPLETED",
        phases=("PHASE1",),
        phases_raw=("PHASE1",),
        start=PartialDate(2021, 6, 14),
        start_type="ACTUAL",
        last_updated=PartialDate(2024, 3, 5),
        lead_sponsor="Fate Therapeutics",
        evidence_url=f"https://clinicaltrials.gov/study/{trial_id}",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def ok(rec: RegistryRecord, stale: bool = False) -> TrialState:
    return TrialState(
        "ctgov",
        rec.trial_id,
        Outcome.OK,
        record=rec,
        stale=stale,
        fetched_at=datetime(2026, 1, 2, tzinfo=UTC),
    )


def kinds(findings: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(f.kind for f in findings)


def test_agreeing_row_gets_only_its_status() -> None:
    findings = reconcile([row()], {"NCT04630769": ok(record())})
    assert kinds(findings) == ["status"]
    assert findings[0].registry_value == "Completed (COMPLETED)"  # words first, then the enum
    assert findings[0].severity == "info"


def test_review_year_agrees_with_registry_day_NCT04630769() -> None:
    assert "start_mismatch" not in kinds(
        reconcile([row(start="2021")], {"NCT04630769": ok(record())})
    )


def test_review_month_disagrees_with_registry_month() -> None:
    findings = reconcile([row(start="2021.3")], {"NCT04630769": ok(record())})
    mismatch = [f for f in findings if f.kind == "start_mismatch"]
    assert len(mismatch) == 1
    assert mismatch[0].review_value == "2021.3"
    assert mismatch[0].registry_value == "2021-06-14 (actual)"


def test_registry_month_precision_agrees_with_review_day() -> None:
    rec = record(start=PartialDate(2006, 11))
    findings = reconcile([row(start="2006-11-20")], {"NCT04630769": ok(rec)})
    assert "start_mismatch" not in kinds(findings)


def test_review_I_II_agrees_with_two_registry_phases() -> None:
    rec = record(phases=("PHASE1", "PHASE2"))
    assert "phase_mismatch" not in kinds(reconcile([row(phase="I/II")], {"NCT04630769": ok(rec)}))


def test_review_I_II_disagrees_with_phase2_only_and_says_last_update() -> None:
    rec = record(phases=("PHASE2",))
    findings = reconcile([row(phase="I/II")], {"NCT04630769": ok(rec)})
    (mismatch,) = [f for f in findings if f.kind == "phase_mismatch"]
    assert mismatch.message == "review says Phase I/II; registry says Phase II (PHASE2)"
    assert mismatch.registry_value == "PHASE2"
    assert mismatch.extra["last_updated"] == "2024-03-05"
    assert mismatch.evidence_url == "https://clinicaltrials.gov/study/NCT04630769"


def test_early_phase1_counts_as_phase_I() -> None:
    rec = record(phases=("EARLY_PHASE1",))
    assert "phase_mismatch" not in kinds(reconcile([row(phase="I")], {"NCT04630769": ok(rec)}))


def test_registry_without_phase_is_missing_not_a_mismatch() -> None:
    """NCT06171568-style records (observational) carry no phase: nothing to compare."""
    rec = record(phases=(), phases_raw=())
    findings = reconcile([row(phase="I")], {"NCT04630769": ok(rec)})
    assert "phase_mismatch" not in kinds(findings)
    (missing,) = [f for f in findings if f.kind == "registry_missing"]
    assert missing.field == "phase" and missing.severity.value == "info"


def test_registry_without_start_is_missing_not_a_mismatch() -> None:
    findings = reconcile([row()], {"NCT04630769": ok(record(start=None, start_raw=None))})
    assert [f.field for f in findings if f.kind == "registry_missing"] == ["start"]


def test_unmapped_registry_phase_is_reported_once_not_as_missing() -> None:
    rec = record(phases=(), phases_raw=("0",))
    findings = reconcile([row(phase="I")], {"NCT04630769": ok(rec)})
    assert "registry_missing" not in kinds(findings) and "phase_mismatch" not in kinds(findings)


def test_review_phase_IIT_is_unparsed_not_compared_jRCT2053190081() -> None:
    r = row(trial_id="jRCT2053190081", phase="IIT")
    findings = reconcile([r], {})
    assert kinds(findings) == ["phase_unparsed"]


def test_truncated_jrct_id_is_malformed_jRCT209022038() -> None:
    findings = reconcile([row(trial_id="jRCT209022038")], {})
    assert kinds(findings) == ["id_malformed", "id_suspect"]  # the suspect: test_suggest.py
    (f,) = [x for x in findings if x.kind == "id_malformed"]
    assert f.severity == "error"
    assert "jRCT" in f.message


def test_not_found_is_an_error_finding() -> None:
    state = TrialState("ctgov", "NCT04630769", Outcome.NOT_FOUND, "absent from answer")
    (f,) = reconcile([row()], {"NCT04630769": state})
    assert (f.kind, f.severity) == ("not_found", "error")


def test_unsupported_registry_gives_no_drift_finding() -> None:
    state = TrialState("umin", "UMIN000011929", Outcome.UNSUPPORTED, "no adapter")
    assert reconcile([row(trial_id="UMIN000011929")], {"UMIN000011929": state}) == []


def test_same_id_for_two_products_is_a_review_inconsistency_NCT04982081() -> None:
    rows = [
        row(trial_id="NCT04982081", product="HICM-188", line=28),
        row(trial_id="NCT04982081", product="Eyecyte-RPE", line=89, table=4),
    ]
    (dupe,) = [f for f in reconcile(rows, {}) if f.kind == "duplicate_id"]  # one per problem
    assert "Table 1 (line 28) HICM-188; Table 4 (line 89) Eyecyte-RPE" in dupe.message
    assert "could not be read" in dupe.message
    # with the registry record, the finding says which product it is (title names HICM-188)
    rec = record(trial_id="NCT04982081", brief_title="HICM-188 in Heart Failure")
    (dupe,) = [f for f in reconcile(rows, {"NCT04982081": ok(rec)}) if f.kind == "duplicate_id"]
    assert "the registry record is HICM-188 (named in its titles or interventions" in dupe.message
    assert dupe.registry_value == "HICM-188"


def test_notable_status_is_a_warning_and_shows_last_known() -> None:
    rec = record(status="UNKNOWN", status_raw="UNKNOWN", last_known_status="RECRUITING")
    (status,) = [f for f in reconcile([row()], {"NCT04630769": ok(rec)}) if f.kind == "status"]
    assert status.severity == "warning"
    assert status.registry_value == "Unknown (UNKNOWN), last known: Recruiting"


def test_unmapped_value_is_reported_not_dropped() -> None:
    rec = record(
        status=None,
        status_raw="PAUSED_FOR_REVIEW",
        unmapped=(Unmapped("status", "PAUSED_FOR_REVIEW"),),
    )
    findings = reconcile([row()], {"NCT04630769": ok(rec)})
    (u,) = [f for f in findings if f.kind == "unmapped_value"]
    assert u.registry_value == "PAUSED_FOR_REVIEW"


def test_stale_record_marks_its_findings_stale() -> None:
    findings = reconcile([row(phase="II")], {"NCT04630769": ok(record(), stale=True)})
    assert findings and all(f.stale for f in findings)
    assert all("stale_since" in f.extra for f in findings)


@pytest.mark.parametrize(
    ("review", "registry"),
    [
        ("Fate", ["Fate Therapeutics"]),
        ("CSU", ["Central South University"]),
        ("HUST", ["Huazhong University of Science and Technology"]),
        ("Kyoto University Hospital", ["Kyoto University"]),
        ("Cyto Pty Limited/ISCO", ["International Stem Cell Corporation", "Cyto Therapeutics"]),
        ("Stanford University", ["Stanford University"]),
    ],
)
def test_sponsor_loose_matches(review: str, registry: list[str]) -> None:
    assert sponsor_matches(review, registry)


@pytest.mark.parametrize(
    ("review", "registry"),
    [
        ("QIHAN", ["Institute of Hematology & Blood Diseases Hospital"]),
        ("HUST", ["Chinese Academy of Sciences"]),
    ],
)
def test_sponsor_mismatches(review: str, registry: list[str]) -> None:
    assert not sponsor_matches(review, registry)


def test_sponsor_mismatch_is_info_and_collaborators_count() -> None:
    rec = record(lead_sponsor="Masonic Cancer Center", collaborators=("Fate Therapeutics",))
    assert "sponsor_mismatch" not in kinds(reconcile([row()], {"NCT04630769": ok(rec)}))
    rec = record(lead_sponsor="Masonic Cancer Center")
    (f,) = [f for f in reconcile([row()], {"NCT04630769": ok(rec)}) if f.kind == "sponsor_mismatch"]
    assert f.severity == "info"


def test_one_product_printed_with_another_start_year_MA09_hRPE() -> None:
    """Table 4 prints MA09-hRPE's three trials as started 2011, 2011 and 2021 (the third with a
    non-breaking hyphen in its name, as printed): the odd one out is noted, the others not."""
    rows = [
        row(trial_id="NCT01344993", product="MA09‑hRPE", start="2011", line=70, table=4),
        row(trial_id="NCT01345006", product="MA09‑hRPE", start="2011", line=71, table=4),
        row(trial_id="NCT01469832", product="MA09-hRPE", start="2021", line=72, table=4),
    ]
    rows = [replace(r, start_date=PartialDate(int(r.start))) for r in rows]
    odd = [f for f in reconcile(rows, {}) if f.kind == "review_inconsistent"]
    assert [(f.trial_id, f.field, f.severity.value) for f in odd] == [
        ("NCT01469832", "start", "info")
    ]
    assert "2011" in odd[0].message and "check this row" in odd[0].message


def test_products_that_agree_are_not_noted() -> None:
    rows = [row(trial_id="NCT01344993", line=70), row(trial_id="NCT01345006", line=71)]
    assert [f for f in reconcile(rows, {}) if f.kind == "review_inconsistent"] == []


AS_OF = PartialDate(2026, 11, 25)


def test_active_status_unconfirmed_for_two_years_is_flagged() -> None:
    rec = record(status="RECRUITING", status_verified=PartialDate(2023, 5))
    found = [f for f in reconcile([row()], {"NCT04630769": ok(rec)}, AS_OF)]
    (stale,) = [f for f in found if f.kind == "status_unverified"]
    assert "2023-05" in stale.message and stale.severity.value == "warning"
    fresh = record(status="RECRUITING", status_verified=PartialDate(2025, 6))
    again = reconcile([row()], {"NCT04630769": ok(fresh)}, AS_OF)
    assert "status_unverified" not in kinds(again)
    done = record(status="COMPLETED", status_verified=PartialDate(2019, 1))  # final: no check
    assert "status_unverified" not in kinds(reconcile([row()], {"NCT04630769": ok(done)}, AS_OF))


def test_start_still_estimated_or_in_the_future_is_flagged_NCT04945018() -> None:
    estimated = record(start=PartialDate(2022, 4, 19), start_type="ESTIMATED")
    (f,) = [
        f
        for f in reconcile([row(start="2022")], {"NCT04630769": ok(estimated)}, AS_OF)
        if f.kind == "start_not_actual"
    ]
    assert f.message.endswith("is still an estimate")
    future = record(start=PartialDate(2027, 2), start_type="ACTUAL")
    found = reconcile([row(start="2027")], {"NCT04630769": ok(future)}, AS_OF)
    assert [
        f.message.endswith("is in the future") for f in found if f.kind == "start_not_actual"
    ] == [True]


def test_status_finding_shows_why_stopped_enrollment_and_results() -> None:
    rec = record(
        status="TERMINATED",
        why_stopped="Sponsor decision",
        enrollment=12,
        enrollment_type="ACTUAL",
        has_results=True,
    )
    (status,) = [f for f in reconcile([row()], {"NCT04630769": ok(rec)}) if f.kind == "status"]
    assert status.message == (
        "registry status Terminated (TERMINATED); why stopped: Sponsor decision; "
        "enrollment 12 (actual); results posted"
    )
