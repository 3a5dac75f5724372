"""Cross-registration: one trial under several registries' IDs, linked by secondary IDs.

The real pair: the jRCT page of jRCTs051180190 lists UMIN000027821 among its secondary IDs, and
the UMIN-CTR page R000031865 is that trial (both recorded 2020-03, tests/fixtures). Their
values differ: start 2017-09-15 against 2017-07-01, status recruiting against enrolling by
invitation. Other records here are built in the test from those values (no payload).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from registry_sync.crosslink import (
    find_cross_registrations,
    link_registrations,
    registry_ids,
    strip_ictrp_prefix,
)
from registry_sync.curated import parse_review_phase, parse_review_start
from registry_sync.ids import registry_of
from registry_sync.model import (
    CuratedRow,
    Outcome,
    PartialDate,
    RawPayload,
    RegistryRecord,
    Severity,
    TrialState,
)
from registry_sync.reconcile import reconcile
from registry_sync.registries import jrct, umin

FIXTURES = Path(__file__).parent / "fixtures"
JRCT_PAGE = FIXTURES / "jrct" / "latest-detail_jRCTs051180190_ja_2020-03.html"
UMIN_PAGE = FIXTURES / "umin" / "ctr_view_recptno_R000031865_ja_2020-03.html"
AT = datetime(2026, 1, 1, tzinfo=UTC)


def jrct_record() -> RegistryRecord:
    body = JRCT_PAGE.read_bytes()
    return jrct.parse(RawPayload("jrct", "jRCTs051180190", "fixture", AT, body, "text/html"))


def umin_record() -> RegistryRecord:
    body = UMIN_PAGE.read_bytes()
    return umin.parse(RawPayload("umin", "UMIN000027821", "fixture", AT, body, "text/html"))


def state(rec: RegistryRecord, source: str | None = None) -> TrialState:
    return TrialState(rec.registry, rec.trial_id, Outcome.OK, record=rec, source=source)


def row(trial_id: str, start: str = "2017", phase: str = "II", line: int = 2) -> CuratedRow:
    return CuratedRow(
        line=line,
        table=1,
        product="(a test row)",
        cell_type="",
        indication="",
        sponsor="",
        trial_id=trial_id,
        phase=phase,
        nation="JP",
        start=start,
        row=line - 1,
        registry=registry_of(trial_id),
        phases=parse_review_phase(phase),
        start_date=parse_review_start(start),
    )


@pytest.mark.parametrize(
    ("cited", "ids"),
    [
        ("UMIN000027821", ("UMIN000027821",)),  # as the real jRCT page cites it
        ("JPRN-jRCT2090220384", ("jRCT2090220384",)),  # WHO ICTRP's prefix
        ("jprn-UMIN000027821", ("UMIN000027821",)),
        ("National Clinical Trials Registry: NCTR570", ()),  # the real ANZCTR sample: not ours
        ("P60DK020579", ()),  # a grant number on a real ClinicalTrials.gov record
        ("ChiCTR2000034346", ("ChiCTR2000034346",)),  # not read as CTR20000343 inside it
        ("NCT01344993 / jRCTs051180190", ("NCT01344993", "jRCTs051180190")),
        ("ＮＣＴ０１３４４９９３", ("NCT01344993",)),  # full-width
    ],
)
def test_registry_ids_in_a_secondary_id_string(cited: str, ids: tuple[str, ...]) -> None:
    assert registry_ids(cited) == ids


def test_ictrp_prefix_comes_from_the_registry_table() -> None:
    assert strip_ictrp_prefix("JPRN-jRCTs031190226") == "jRCTs031190226"
    assert strip_ictrp_prefix("NCT01344993") == "NCT01344993"


def test_real_pair_jRCTs051180190_lists_UMIN000027821() -> None:
    jr, um = jrct_record(), umin_record()
    assert "UMIN000027821" in jr.secondary_ids  # the recorded page says so
    groups = link_registrations({jr.trial_id: state(jr), um.trial_id: state(um)})
    assert (
        groups["UMIN000027821"]
        == groups["jRCTs051180190"]
        == {
            "UMIN000027821",
            "jRCTs051180190",
        }
    )


def test_real_pair_disagrees_on_status_and_start_jRCTs051180190() -> None:
    jr, um = jrct_record(), umin_record()
    states = {jr.trial_id: state(jr), um.trial_id: state(um)}
    found = {f.field: f for f in find_cross_registrations([row("jRCTs051180190")], states)}
    assert set(found) == {"status", "start"}  # both say phase 2: no phase finding
    status = found["status"]
    assert status.kind == "cross_registration" and status.severity is Severity.WARNING
    assert "recruiting (募集中)" in status.message
    assert "enrolling by invitation (限定募集中/Enrolling by invitation)" in status.message
    assert "UMIN000027821" in status.message and "jRCTs051180190" in status.message
    assert jr.evidence_url and jr.evidence_url in status.message
    assert um.evidence_url and um.evidence_url in status.message
    assert status.evidence_url == jr.evidence_url
    assert status.extra["sibling_1"] == "UMIN000027821"
    assert status.extra["sibling_1_url"] == um.evidence_url
    assert "jRCTs051180190 lists UMIN000027821 among its secondary IDs" in status.message
    # 2017-09-15 against 2017-07-01: both agree with the year the review prints
    start = found["start"]
    assert start.severity is Severity.INFO
    assert "2017-09-15" in start.message and "2017-07-01" in start.message


def test_start_difference_is_a_warning_when_the_review_prints_the_month() -> None:
    jr, um = jrct_record(), umin_record()
    states = {jr.trial_id: state(jr), um.trial_id: state(um)}
    (start,) = [
        f
        for f in find_cross_registrations([row("jRCTs051180190", "2017.9")], states)
        if f.field == "start"
    ]
    assert start.severity is Severity.WARNING


def test_the_sibling_row_names_the_citing_record_UMIN000027821() -> None:
    """A link counts in both directions: the UMIN row hears of the jRCT record too."""
    jr, um = jrct_record(), umin_record()
    states = {jr.trial_id: state(jr), um.trial_id: state(um)}
    found = find_cross_registrations([row("UMIN000027821")], states)
    assert {f.field for f in found} == {"status", "start"}
    assert all(f.extra["sibling_1"] == "jRCTs051180190" for f in found)


def test_agreeing_registrations_give_no_finding() -> None:
    jr, um = jrct_record(), umin_record()
    same = replace(um, start=jr.start, status=jr.status, status_raw=jr.status_raw)
    states = {jr.trial_id: state(jr), um.trial_id: state(same)}
    assert find_cross_registrations([row("jRCTs051180190")], states) == []


def test_ictrp_coarse_not_recruiting_against_completed_is_precision_only() -> None:
    jr = replace(jrct_record(), status="COMPLETED", status_raw="終了")
    copy = replace(
        umin_record(), start=jr.start, status="NOT_RECRUITING", status_raw="Not recruiting"
    )
    states = {jr.trial_id: state(jr), copy.trial_id: state(copy, source="ictrp")}
    (status,) = find_cross_registrations([row("jRCTs051180190")], states)
    assert status.severity is Severity.INFO
    assert "per WHO ICTRP's copy" in status.message


def test_links_chain_across_three_registries() -> None:
    jr, um = jrct_record(), umin_record()
    nct = RegistryRecord(
        "ctgov",
        "NCT01344993",
        status="RECRUITING",
        phases=("PHASE2",),
        start=PartialDate(2017, 9, 15),
        secondary_ids=("jRCTs051180190",),
        evidence_url="https://clinicaltrials.gov/study/NCT01344993",
    )
    states = {r.trial_id: state(r) for r in (jr, um, nct)}
    groups = link_registrations(states)
    assert groups["NCT01344993"] == {"NCT01344993", "jRCTs051180190", "UMIN000027821"}
    found = find_cross_registrations([row("NCT01344993")], states)
    assert {f.extra["sibling_1"] for f in found} == {"UMIN000027821"}  # jRCT agrees with it
    assert any("other registrations' secondary IDs" in f.message for f in found)


def test_moved_id_carrying_its_new_homes_record_is_no_sibling() -> None:
    """JMA-IIA00412 moved to jRCT: its state holds the jRCT record itself, not a second one."""
    jr = replace(jrct_record(), secondary_ids=("JMA-IIA00412",))
    moved = TrialState("jma", "JMA-IIA00412", Outcome.MOVED, record=jr, moved_to=jr.trial_id)
    states = {jr.trial_id: state(jr), "JMA-IIA00412": moved}
    assert find_cross_registrations([row("JMA-IIA00412"), row(jr.trial_id)], states) == []


def test_reconcile_wires_cross_registration() -> None:
    jr, um = jrct_record(), umin_record()
    states = {jr.trial_id: state(jr), um.trial_id: state(um)}
    kinds = [f.kind for f in reconcile([row("jRCTs051180190")], states)]
    assert kinds.count("cross_registration") == 2
