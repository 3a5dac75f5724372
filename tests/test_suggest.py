"""id_suspect: an ID that looks like a mistyped or truncated form of a real one.

Rows come from the review's table (helpers.BUNDLED_CURATED); records are built in the test (no
payload): `jRCT2090220384` is cited as a secondary ID here to stand for "an ID the run knows".
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from helpers import BUNDLED_CURATED
from registry_sync import corrections
from registry_sync.curated import load_curated
from registry_sync.ids import registry_of
from registry_sync.model import CuratedRow, Outcome, RegistryRecord, Severity, TrialState
from registry_sync.reconcile import reconcile
from registry_sync.snapshot_schema import finding_row
from registry_sync.suggest import (
    describe_edit,
    find_suspects,
    known_ids,
    lookalike_repair,
    pattern_advice,
    rank_candidates,
    search_url,
)

TRUNCATED = "jRCT209022038"  # printed so in Table 2 row 3 (Raguneprocel)


@pytest.fixture(scope="module")
def review() -> list[CuratedRow]:
    return list(load_curated(BUNDLED_CURATED).rows)


def one(rows: list[CuratedRow], trial_id: str) -> CuratedRow:
    (found,) = [r for r in rows if r.trial_id == trial_id]
    return found


def reprinted(r: CuratedRow, trial_id: str) -> CuratedRow:
    """A review row with its ID printed otherwise (the typo under test)."""
    return replace(r, trial_id=trial_id, registry=registry_of(trial_id))


def citing(*secondary: str, trial_id: str = "NCT04982081") -> dict[str, TrialState]:
    rec = RegistryRecord(
        "ctgov",
        trial_id,
        secondary_ids=secondary,
        evidence_url=f"https://clinicaltrials.gov/study/{trial_id}",
    )
    return {trial_id: TrialState("ctgov", trial_id, Outcome.OK, record=rec)}


def test_jRCT209022038_one_digit_short_names_no_invented_id(review: list[CuratedRow]) -> None:
    (f,) = find_suspects(review, {})
    assert (f.table, f.line, f.trial_id) == (2, one(review, TRUNCATED).line, TRUNCATED)
    assert f.kind == "id_suspect" and f.severity is Severity.WARNING
    assert "one digit short of jRCT's pattern" in f.message
    assert "13 characters where it needs 14" in f.message
    assert "no ID known to this run fits" in f.message
    assert not any(k.startswith("candidate_") for k in f.extra) and "suggested" not in f.extra
    assert f.extra["search_url"] == "https://jrct.mhlw.go.jp/search" == f.evidence_url
    assert f.registry_value is None


def test_a_known_id_one_edit_away_is_the_strong_candidate(review: list[CuratedRow]) -> None:
    (f,) = find_suspects(review, citing("JPRN-jRCT2090220384"))
    assert f.extra["candidate_1"] == "jRCT2090220384" == f.extra["suggested"] == f.registry_value
    assert f.extra["candidate_1_strength"] == "strong"
    why = f.extra["candidate_1_why"]
    assert "one character short: jRCT2090220384 has '4' at 14" in why
    assert "cited as a secondary ID of NCT04982081 (ClinicalTrials.gov)" in why
    assert f.evidence_url == "https://clinicaltrials.gov/study/NCT04982081"
    assert "candidates: 1. jRCT2090220384" in f.message
    assert "one digit short of jRCT's pattern" in f.message  # the pattern still says why


def test_two_strong_candidates_suggest_neither(review: list[CuratedRow]) -> None:
    (f,) = find_suspects(review, citing("jRCT2090220384", "jRCT2090220385"))
    assert [f.extra["candidate_1"], f.extra["candidate_2"]] == ["jRCT2090220384", "jRCT2090220385"]
    assert "suggested" not in f.extra and f.registry_value is None


def test_candidates_known_from_more_places_rank_first() -> None:
    known = known_ids(
        [],
        citing("jRCT2090220385")
        | citing("jRCT2090220384", "jRCT2090220385", trial_id="NCT01344993"),
    )
    ranked = rank_candidates(TRUNCATED, known)
    assert [c.trial_id for c in ranked] == ["jRCT2090220385", "jRCT2090220384"]


def test_letter_O_for_zero_is_read_as_the_digit(review: list[CuratedRow]) -> None:
    typo = reprinted(one(review, "NCT03841110"), "NCTO3841110")
    (f,) = find_suspects([typo], {})
    assert f.extra["suggested"] == "NCT03841110"
    assert "letter O for zero" in f.extra["candidate_1_why"]
    assert lookalike_repair("NCT03841110") is None  # a well-formed ID needs no repair


def test_well_formed_but_not_found_near_a_printed_id(review: list[CuratedRow]) -> None:
    """NCT03841101 (two digits swapped) is not in the registry; the review prints NCT03841110."""
    typo = reprinted(one(review, "NCT03841110"), "NCT03841101")
    gone = {"NCT03841101": TrialState("ctgov", "NCT03841101", Outcome.NOT_FOUND, "absent")}
    (f,) = find_suspects([typo, one(review, "NCT03841110")], gone)
    assert f.extra["candidate_1"] == "NCT03841110"
    assert "two adjacent characters swapped at 10-11" in f.extra["candidate_1_why"]
    assert "printed in Table 1 row 1 for FT500" in f.extra["candidate_1_why"]
    assert "pattern" not in f.extra  # it fits its pattern: no pattern advice


def test_not_found_near_nothing_known_gets_no_suspect(review: list[CuratedRow]) -> None:
    r = one(review, "NCT03841110")
    gone = {"NCT03841110": TrialState("ctgov", "NCT03841110", Outcome.NOT_FOUND, "absent")}
    assert find_suspects([r], gone) == []


def test_an_id_the_registry_does_not_know_is_no_candidate(review: list[CuratedRow]) -> None:
    states = citing("jRCT2090220384") | {
        "jRCT2090220384": TrialState("jrct", "jRCT2090220384", Outcome.NOT_FOUND, "absent")
    }
    (f,) = find_suspects(review, states)
    assert "candidate_1" not in f.extra


def test_ids_two_edits_away_are_weak() -> None:
    """NCT05336409 and NCT05635409 are both printed in the review: chance neighbours."""
    (c,) = rank_candidates("NCT05336409", {"NCT05635409": []})
    assert not c.strong and c.distance == 2 and "weak" in c.why


@pytest.mark.parametrize(
    ("printed", "advice"),
    [
        ("NCT0384111", "one digit short of ClinicalTrials.gov's pattern `NCT[0-9]{8}`"),
        ("NCT038411100", "one character too many for ClinicalTrials.gov's pattern"),
        ("UMIN00001192X", "one character off from UMIN-CTR's pattern"),
        ("XYZ123", "more than one character away from any registry's pattern"),
    ],
)
def test_pattern_advice(printed: str, advice: str) -> None:
    assert advice in pattern_advice(printed)[0]


def test_describe_one_replaced_lookalike() -> None:
    assert describe_edit("NCT0I234567", "NCT01234567").endswith("(letter I for one)")


def test_search_url_quotes_the_id_where_the_registry_takes_one() -> None:
    assert search_url("ctgov", "NCT0384111") == "https://clinicaltrials.gov/search?term=NCT0384111"
    assert search_url(None, "x") is None


def snapshot_rows(findings: list) -> list[dict[str, object]]:  # type: ignore[type-arg]
    return [finding_row(i, f) for i, f in enumerate(findings)]


def corrections_for(rows: list[CuratedRow], states: dict[str, TrialState]) -> dict[str, object]:
    findings = snapshot_rows(reconcile(rows, states))
    curated = {r.line: {"row": r.row, "trial_id": r.trial_id} for r in rows}
    (entry,) = [c for c in corrections.rows(findings, curated, {}) if c["column"] == "trial_id"]
    return entry


def test_corrections_suggest_the_one_strong_candidate(review: list[CuratedRow]) -> None:
    entry = corrections_for([one(review, TRUNCATED)], citing("jRCT2090220384"))
    assert entry["printed"] == TRUNCATED and entry["suggested"] == "jRCT2090220384"
    assert "suggested jRCT2090220384: one character short" in str(entry["why"])
    assert entry["severity"] == "error"  # the id_malformed row carries it: one row per cell


def test_corrections_say_check_the_id_without_a_strong_candidate(review: list[CuratedRow]) -> None:
    entry = corrections_for([one(review, TRUNCATED)], {})
    assert entry["suggested"] == ""
    assert "check the ID" in str(entry["why"]) and "one digit short" in str(entry["why"])
    assert entry["evidence_url"] == "https://jrct.mhlw.go.jp/search"


def test_candidates_survive_the_snapshot_as_json(review: list[CuratedRow]) -> None:
    (f,) = find_suspects(review, citing("jRCT2090220384"))
    details = json.loads(finding_row(0, f)["details"])
    assert details["candidate_1"] == "jRCT2090220384" and details["suggested"] == "jRCT2090220384"
