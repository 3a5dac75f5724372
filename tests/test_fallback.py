"""The fallback stage over trial states (pure): which trials go to WHO ICTRP, how a copy is
merged, which of a stale own value and a fresh copy wins, and how a retired registry's trial is
linked to its new home. IDs are the review's; records are built here (test doubles)."""

from __future__ import annotations

from datetime import UTC, datetime

from registry_sync import fallback
from registry_sync.model import CuratedRow, Outcome, PartialDate, RegistryRecord, TrialState
from registry_sync.reconcile import reconcile

WHEN = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def state(registry: str, tid: str, outcome: Outcome, **kw: object) -> TrialState:
    return TrialState(registry, tid, outcome, **kw)  # type: ignore[arg-type]


def copy_of(registry: str, tid: str, refreshed: PartialDate | None) -> TrialState:
    record = RegistryRecord(
        registry=registry, trial_id=tid, status="RECRUITING", phases=("PHASE1",),
        refreshed=refreshed,
    )  # fmt: skip
    return state(
        registry, tid, Outcome.OK, record=record, source="ictrp", evidence=("r-ictrp",),
        fetched_at=WHEN, source_url="https://trialsearch.who.int/Trial2.aspx?TrialID=X",
    )  # fmt: skip


def test_who_is_asked_of_ictrp() -> None:
    states = {
        "ChiCTR2100052988": state("chictr", "ChiCTR2100052988", Outcome.BLOCKED),
        "jRCT2053190081": state("jrct", "jRCT2053190081", Outcome.REGISTRY_DOWN),
        "CTR20252340": state("ctr", "CTR20252340", Outcome.BLOCKED),  # ICTRP lacks CTR
        "JMA-IIA00412": state("jma", "JMA-IIA00412", Outcome.MOVED),
        "NCT04982081": state("ctgov", "NCT04982081", Outcome.NOT_FOUND),
        "NCT01234567": state("ctgov", "NCT01234567", Outcome.MOVED, moved_to="NCT07654321"),
    }
    assert fallback.ictrp_requests(states) == {
        "chictr": ["ChiCTR2100052988"],
        "jrct": ["jRCT2053190081"],
        "jma": ["JMA-IIA00412"],
    }


def test_a_copy_keeps_the_outcome_and_says_where_values_came_from() -> None:
    primary = state("chictr", "ChiCTR2100052988", Outcome.BLOCKED, detail="HTTP 405",
                    evidence=("r-405",))  # fmt: skip
    merged = fallback.merge_ictrp(
        {"ChiCTR2100052988": primary},
        {"ChiCTR2100052988": copy_of("chictr", "ChiCTR2100052988", PartialDate(2025, 6, 1))},
    )["ChiCTR2100052988"]
    assert merged.outcome is Outcome.BLOCKED and merged.source == "ictrp"
    assert merged.detail == "HTTP 405; values from WHO ICTRP (refreshed 2025-06-01)"
    assert merged.evidence == ("r-405", "r-ictrp")  # both answers kept as evidence


def test_a_failed_copy_only_adds_why() -> None:
    primary = state("jrct", "jRCT2053190081", Outcome.REGISTRY_DOWN, detail="HTTP 503")
    empty = state("jrct", "jRCT2053190081", Outcome.NOT_FOUND, detail="empty shell",
                  source="ictrp")  # fmt: skip
    merged = fallback.merge_ictrp({"jRCT2053190081": primary}, {"jRCT2053190081": empty})
    assert merged["jRCT2053190081"].record is None
    assert merged["jRCT2053190081"].detail == "HTTP 503; WHO ICTRP: not_found (empty shell)"


def test_stale_own_values_newer_than_the_copy_win() -> None:
    copy = copy_of("chictr", "ChiCTR2100052988", PartialDate(2025, 6, 1))
    stale = state("chictr", "ChiCTR2100052988", Outcome.BLOCKED, stale=True,
                  carried_from="20260101T030000Z-0001",
                  fetched_at=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    kept = fallback.prefer_newer(copy, stale)
    assert kept.stale and kept.source is None
    assert "older than the registry's own values fetched 2026-01-01" in kept.detail


def test_a_copy_newer_than_stale_own_values_wins() -> None:
    copy = copy_of("chictr", "ChiCTR2100052988", PartialDate(2026, 10))
    stale = state("chictr", "ChiCTR2100052988", Outcome.BLOCKED, stale=True,
                  fetched_at=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    kept = fallback.prefer_newer(copy, stale)
    assert kept.source == "ictrp" and not kept.stale
    assert "newer than the registry's own values fetched 2026-01-01" in kept.detail


def test_retired_registry_trial_is_linked_to_the_record_listing_it() -> None:
    jrct = RegistryRecord(registry="jrct", trial_id="jRCT2033200116",
                          secondary_ids=("JMA-IIA00412",))  # fmt: skip
    states = {
        "jRCT2033200116": state("jrct", "jRCT2033200116", Outcome.OK, record=jrct),
        "JMA-IIA00412": state("jma", "JMA-IIA00412", Outcome.MOVED, detail="merged"),
    }
    linked = fallback.link_moved(states)["JMA-IIA00412"]
    assert linked.moved_to == "jRCT2033200116" and linked.record is jrct
    assert linked.source == "jrct"
    assert fallback.ictrp_requests({**states, "JMA-IIA00412": linked}) == {}


def test_findings_on_a_copy_say_so() -> None:
    row = CuratedRow(
        line=2, table=1, product="P", cell_type="", indication="", sponsor="", phase="II",
        trial_id="ChiCTR2100052988", nation="", start="2021", registry="chictr",
        phases=frozenset({"PHASE2"}), start_date=PartialDate(2021),
    )  # fmt: skip
    merged = fallback.merge_ictrp(
        {"ChiCTR2100052988": state("chictr", "ChiCTR2100052988", Outcome.BLOCKED)},
        {"ChiCTR2100052988": copy_of("chictr", "ChiCTR2100052988", PartialDate(2025, 6, 1))},
    )
    [phase] = [f for f in reconcile([row], merged) if f.kind == "phase_mismatch"]
    assert phase.message.endswith("[per WHO ICTRP's copy, refreshed 2025-06-01]")
    assert phase.extra["source"] == "ictrp"
