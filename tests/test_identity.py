"""Product identity: is the registry record behind a row's ID the product the review names?

Rows are the review's own (data/curated); records are the replayed ClinicalTrials.gov documents
(data/replay/ctgov, the reconstructed ones labelled so) parsed by the real parser. The ctgov
countries test reads a real recorded API answer (tests/fixtures/ctgov, SOURCES.md).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpers import BUNDLED_CURATED, BUNDLED_REPLAY, FIXTURES
from registry_sync.curated import load_curated
from registry_sync.identity import (
    _word_runs,  # the invariant its speed rests on
    nation_names,
    normalize_code,
    product_aliases,
    product_mismatch,
    score_identity,
    which_product,
)
from registry_sync.model import (
    CuratedRow,
    Finding,
    Outcome,
    RawPayload,
    RegistryRecord,
    Severity,
    TrialState,
)
from registry_sync.reconcile import reconcile
from registry_sync.registries import ctgov

RECONSTRUCTED = sorted((BUNDLED_REPLAY / "ctgov" / "reconstructed").glob("NCT*.json"))


def review_rows(trial_id: str) -> list[CuratedRow]:
    return [r for r in load_curated(BUNDLED_CURATED).rows if r.trial_id == trial_id]


def replayed(path: Path) -> RegistryRecord:
    body = path.read_bytes()
    return ctgov.parse(RawPayload("ctgov", path.stem, str(path), datetime.now(UTC), body))


def record_of(nct_id: str) -> RegistryRecord:
    return replayed(BUNDLED_REPLAY / "ctgov" / "reconstructed" / f"{nct_id}.json")


@pytest.mark.parametrize(
    "printed", ["HS001", "HS-001", "HS 001", "hs\u2011001", "HS\u2013001", "ＨＳ－００１"]
)
def test_product_code_variants_normalise_alike_HS001(printed: str) -> None:
    assert normalize_code(printed) == "hs001"


def test_product_aliases_split_parentheses_RG6501_OpRegen() -> None:
    aliases = product_aliases("RG6501(OpRegen)")
    assert "rg6501" in aliases and "opregen" in aliases


def test_product_aliases_keep_the_code_of_a_hyphenated_name_ASP7317_RPE() -> None:
    assert "asp7317" in product_aliases("ASP7317-RPE")
    assert "rpe" not in product_aliases("ASP7317-RPE")  # a cell type, not a code


@pytest.mark.parametrize(
    ("nation", "printed"),
    [
        ("US", "United States"),
        ("KOR", "Korea, Republic of"),
        ("KR", "Korea, Republic of"),
        ("IRAN", "Iran, Islamic Republic of"),
        ("CN", "中国"),
        ("JP", "日本"),
        ("UK", "United Kingdom"),
        ("AU", "Australia"),
    ],
)
def test_review_nations_map_to_registry_country_names(nation: str, printed: str) -> None:
    assert printed in nation_names(nation)


def test_a_code_printed_with_a_space_is_named_RGB_5088() -> None:
    row = review_rows("NCT06731218")[0]
    rec = RegistryRecord("ctgov", "NCT06731218", brief_title="RGB-5088 Islets in T1DM")
    assert score_identity(row, rec).named


def test_a_code_glued_to_chinese_is_named_HSK45030() -> None:
    # the real CTR20252821 page's title (tests/fixtures/ctr golden)
    rec = RegistryRecord(
        "ctr", "CTR20252821", brief_title="HSK45030分散片在健康受试者中的I期临床研究"
    )
    row = replace(review_rows("CTR20252959")[0], product="HSK-45030")
    assert score_identity(row, rec).named


@pytest.mark.parametrize("path", RECONSTRUCTED, ids=lambda p: p.stem)
def test_review_rows_matching_their_replayed_record_stay_silent(path: Path) -> None:
    """Every replayed record of the review's trials fits the row that cites it, except the one
    of each duplicate pair that is another product (next tests)."""
    rec = replayed(path)
    wrong = {("NCT04982081", "Eyecyte\u2011RPE"), ("NCT06978920", "NCR-101")}
    for row in review_rows(path.stem):
        finding = product_mismatch(row, rec)
        assert (finding is not None) == ((path.stem, row.product) in wrong), row.product


def test_duplicate_id_HICM188_record_is_not_Eyecyte_RPE_NCT04982081() -> None:
    rec = record_of("NCT04982081")  # "hiPSC-CM therapy", Help Therapeutics, heart failure
    hicm, eyecyte = review_rows("NCT04982081")
    assert not score_identity(hicm, rec).named  # the record never prints "HICM-188"...
    assert product_mismatch(hicm, rec) is None  # ...but sponsor, indication and cell type fit
    finding = product_mismatch(eyecyte, rec)
    assert finding is not None and finding.severity == "warning"
    assert finding.review_value == "Eyecyte\u2011RPE"
    assert "'Eyecyte\u2011RPE' is not in its titles or interventions" in finding.message
    assert "sponsor does not match" in finding.extra["unmatched"]
    assert int(finding.extra["score_indication"]) < 80
    product, why = which_product([hicm, eyecyte], rec) or ("", "")
    assert product == "HICM-188" and "sponsor matches 'Help Therapeutics' (100)" in why


def test_duplicate_id_NCR201_record_is_not_NCR101_NCT06978920() -> None:
    rec = record_of("NCT06978920")  # names NCR201, Parkinson's disease, Nuwacell
    ncr201, ncr101 = review_rows("NCT06978920")
    assert score_identity(ncr201, rec).named
    finding = product_mismatch(ncr101, rec)
    assert finding is not None
    # the same sponsor is not enough: Nuwacell makes both products
    assert "sponsor matches 'Nuwacell Biotechnologies Co., Ltd.' (100)" in finding.extra["matched"]
    assert "indication does not match" in finding.extra["unmatched"]
    assert int(finding.extra["score_product"]) < 90  # NCR201 against NCR-101: close, not equal
    assert (which_product([ncr201, ncr101], rec) or ("",))[0] == "NCR201"


def test_duplicate_id_finding_says_which_product_and_how_sure() -> None:
    rows = review_rows("NCT04982081")
    state = TrialState("ctgov", "NCT04982081", Outcome.OK, record=record_of("NCT04982081"))
    findings = reconcile(rows, {"NCT04982081": state})
    (dupe,) = [f for f in findings if f.kind == "duplicate_id"]
    assert dupe.registry_value == "HICM-188"
    assert "the registry record is HICM-188 (not named; sponsor matches" in dupe.message
    (mismatch,) = [f for f in findings if f.kind == "product_mismatch"]
    assert (mismatch.table, mismatch.trial_id) == (4, "NCT04982081")
    assert mismatch.evidence_url == "https://clinicaltrials.gov/study/NCT04982081"


def test_record_without_titles_says_nothing() -> None:
    row = review_rows("NCT04982081")[1]
    assert product_mismatch(row, RegistryRecord("ctgov", "NCT04982081")) is None


def test_country_evidence_counts_when_the_registry_gives_it() -> None:
    row = review_rows("NCT05887466")[0]  # A9-DPC, KOR
    rec = RegistryRecord(
        "ctgov", "NCT05887466", brief_title="Dopaminergic Progenitors in PD",
        countries=("Korea, Republic of",),
    )  # fmt: skip
    assert score_identity(row, rec).get("nation").agrees
    assert not score_identity(row, replace(rec, countries=("Japan",))).get("nation").agrees


def test_sponsor_only_in_chinese_is_not_counted_as_a_mismatch() -> None:
    row = review_rows("CTR20252959")[0]  # XS-411, XellSmart
    rec = RegistryRecord("ctr", "CTR20252959", brief_title="XS-411注射液", lead_sponsor="某公司")
    assert not score_identity(row, rec).get("sponsor").known


def test_ctgov_countries_parsed_from_a_real_payload_NCT06171568() -> None:
    path = FIXTURES / "ctgov" / "study_NCT06171568_not-yet-recruiting_observational.json"
    rec = ctgov.parse(RawPayload("ctgov", "NCT06171568", "x", datetime.now(UTC), path.read_bytes()))
    assert rec.countries == ("France",)


def test_ctgov_asks_for_countries_only_not_contacts() -> None:
    location_fields = [f for f in ctgov.FIELDS if "contactsLocationsModule" in f]
    assert location_fields == ["protocolSection.contactsLocationsModule.locations.country"]


def test_field_findings_behind_a_wrong_id_are_notes_Eyecyte_RPE() -> None:
    """Eyecyte-RPE's ID is HICM-188's record: its phase and sponsor disagreements follow from
    the wrong ID, so they are notes pointing at the product_mismatch, which stays a warning;
    HICM-188's own row (same record) keeps its findings as they are."""
    rec = record_of("NCT04982081")
    hicm, eyecyte = review_rows("NCT04982081")
    state = TrialState("ctgov", "NCT04982081", Outcome.OK, record=rec)
    by_line: dict[int, list[Finding]] = {}
    for f in reconcile([hicm, eyecyte], {"NCT04982081": state}):
        by_line.setdefault(f.line, []).append(f)
    eye = {f.kind: f for f in by_line[eyecyte.line]}
    assert eye["product_mismatch"].severity is Severity.WARNING
    assert eye["phase_mismatch"].severity is Severity.INFO
    assert eye["phase_mismatch"].message.endswith(
        "(this record is not Eyecyte\u2011RPE: fix the ID first)"
    )
    assert eye["sponsor_mismatch"].severity is Severity.INFO
    assert all("fix the ID first" not in f.message for f in by_line.get(hicm.line, []))


@pytest.mark.parametrize(
    "title",
    [
        "Effect of HS‑001 (Ｈｉｇｈ dose) on AMD/GA; a Phase 1-2 Study",
        "HSK45030分散片 in 中国 patients, ﬁrst-in-human",
        "Cafe\u0301 au lait  \u2013  RG6501(OpRegen) [PHASE 1]",
    ],
)
def test_word_runs_keys_are_the_codes_of_the_runs_as_printed(title: str) -> None:
    """A run's key is built from its words' codes; it must equal the code of the run as printed
    (what a fuzzy match on the whole run would compare)."""
    keys, printed = _word_runs((title, title.upper()))
    assert keys and "" not in keys
    for key in keys:
        assert key == normalize_code(printed[key])
