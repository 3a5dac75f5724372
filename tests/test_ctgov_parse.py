"""ClinicalTrials.gov parser: goldens on the real samples, and one test per upstream quirk.

Every input is a real API answer from tests/fixtures/ctgov/ (provenance in its SOURCES.md).
Synthetic variants are built here from a real study, one field changed, and say so.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry_sync.errors import ParseError
from registry_sync.model import (
    PHASES,
    STATUSES,
    Exchange,
    Outcome,
    PartialDate,
    Precision,
    RawPayload,
    RegistryRecord,
    Unmapped,
)
from registry_sync.registries import REGISTRIES, ctgov

FIXTURES = Path(__file__).parent / "fixtures" / "ctgov"
GOLDEN = FIXTURES / "golden"
STUDY_FILES = sorted(FIXTURES.glob("study_NCT*.json"))
PAGE1 = FIXTURES / "list_query-cond-phelan_pageSize5_page1_with-nextPageToken_2026-08-11.json"
PAGE2 = FIXTURES / "list_query-cond-phelan_pageSize5_page2-via-pageToken_2026-08-11.json"
FETCHED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def record_to_jsonable(record: RegistryRecord) -> dict[str, Any]:
    """A RegistryRecord as plain JSON values: dates as ISO partial dates, tuples as lists."""

    def convert(value: Any) -> Any:
        if isinstance(value, PartialDate):
            return value.iso()
        if isinstance(value, Unmapped):
            return dataclasses.asdict(value)
        if isinstance(value, tuple):
            return [convert(v) for v in value]
        return value

    return {f.name: convert(getattr(record, f.name)) for f in dataclasses.fields(record)}


def nct_of(path: Path) -> str:
    match = re.search(r"NCT\d{8}", path.name)
    assert match, path
    return match.group(0)


def payload(nct_id: str, body: bytes, url: str = "fixture") -> RawPayload:
    return RawPayload("ctgov", nct_id, url, FETCHED_AT, body)


def parse_file(path: Path) -> RegistryRecord:
    return ctgov.parse(payload(nct_of(path), path.read_bytes(), path.name))


def load_study(nct_id: str) -> dict[str, Any]:
    (path,) = FIXTURES.glob(f"study_{nct_id}_*.json")
    study: dict[str, Any] = json.loads(path.read_bytes())
    return study


def parse_study(study: dict[str, Any], nct_id: str) -> RegistryRecord:
    return ctgov.parse(payload(nct_id, json.dumps(study).encode()))


def page_studies(path: Path) -> dict[str, dict[str, Any]]:
    studies, _ = ctgov.split_page(path.read_bytes())
    return {s["protocolSection"]["identificationModule"]["nctId"]: s for s in studies}


# ------------------------------------------------------------------------------ fixtures


def test_ctgov_fixtures_match_sources_md_sha256() -> None:
    sources = (FIXTURES / "SOURCES.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `([^`]+\.json)` .*\| `([0-9a-f]{64})` \|$", sources, re.M))
    on_disk = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in FIXTURES.glob("*.json")}
    assert len(on_disk) == 6
    assert listed == on_disk


# ------------------------------------------------------------------------------- goldens


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.stem)
def test_ctgov_golden(path: Path, update_golden: bool) -> None:
    got = record_to_jsonable(parse_file(path))
    golden = GOLDEN / f"{path.stem}.json"
    if update_golden:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert golden.exists(), f"no golden {golden.name}: run pytest --update-golden and review it"
    assert got == json.loads(golden.read_text(encoding="utf-8"))


def test_ctgov_golden_for_every_study_sample() -> None:
    assert len(STUDY_FILES) == 4
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == [p.stem for p in STUDY_FILES]


# -------------------------------------------------------------------------------- quirks


def test_ctgov_month_precision_start_NCT00763412() -> None:
    record = parse_file(FIXTURES / "study_NCT00763412_month-precision-start_with-results.json")
    assert record.start == PartialDate(2006, 11)
    assert record.start is not None and record.start.precision is Precision.MONTH
    assert record.start_raw == "2006-11"
    assert record.start_type is None  # old record: the struct has no `type` at all
    assert record.unmapped == ()


def test_ctgov_unknown_status_keeps_last_known_NCT04207047() -> None:
    record = parse_file(FIXTURES / "study_NCT04207047_unknown-status_lastKnownStatus.json")
    assert (record.status, record.status_raw) == ("UNKNOWN", "UNKNOWN")
    assert record.last_known_status == "ACTIVE_NOT_RECRUITING"
    assert record.phases == ("NA",)


def test_ctgov_observational_has_no_phases_NCT06171568() -> None:
    record = parse_file(FIXTURES / "study_NCT06171568_not-yet-recruiting_observational.json")
    assert record.phases == () and record.phases_raw == ()
    assert record.status == "NOT_YET_RECRUITING"
    assert record.start == PartialDate(2024, 2, 1) and record.start_type == "ESTIMATED"
    assert record.unmapped == ()


def test_ctgov_phase1_2_is_two_phases_NCT05105685() -> None:
    record = parse_study(page_studies(PAGE1)["NCT05105685"], "NCT05105685")
    assert record.phases == ("PHASE1", "PHASE2")


def test_ctgov_fields_restricted_start_has_no_type_NCT01525901() -> None:
    # `fields=StartDate` returns `startDateStruct.date` only; here a month-precision one.
    record = parse_study(page_studies(PAGE1)["NCT01525901"], "NCT01525901")
    assert record.start == PartialDate(2012, 2) and record.start_type is None


def test_ctgov_parse_every_study_of_the_list_pages() -> None:
    studies = {**page_studies(PAGE1), **page_studies(PAGE2)}
    assert len(studies) == 10
    for nct_id, study in studies.items():
        record = parse_study(study, nct_id)
        assert record.status in STATUSES
        assert record.phases and set(record.phases) <= set(PHASES)
        assert record.start is not None and record.lead_sponsor
        assert record.unmapped == ()
        assert record.evidence_url == f"https://clinicaltrials.gov/study/{nct_id}"


def test_ctgov_secondary_ids_and_collaborators_NCT06171568() -> None:
    record = parse_file(FIXTURES / "study_NCT06171568_not-yet-recruiting_observational.json")
    assert record.secondary_ids == ("2023-A00386-39",)
    assert record.collaborators == (
        "SBT Human(s) Matter",
        "Clinical Research Unit Saint Louis Lariboisière",
    )


def test_ctgov_unmapped_status_reported_not_raised() -> None:
    # synthetic: real NCT03418623 with an overallStatus value the OAS enum does not have
    study = load_study("NCT03418623")
    study["protocolSection"]["statusModule"]["overallStatus"] = "PAUSED"
    record = parse_study(study, "NCT03418623")
    assert record.status is None and record.status_raw == "PAUSED"
    assert record.unmapped == (Unmapped("status", "PAUSED"),)


def test_ctgov_unmapped_phase_kept_raw_and_reported() -> None:
    # synthetic: real NCT03418623 with a second, unknown phase value
    study = load_study("NCT03418623")
    study["protocolSection"]["designModule"]["phases"] = ["PHASE2", "PHASE2B"]
    record = parse_study(study, "NCT03418623")
    assert record.phases == ("PHASE2",)
    assert record.phases_raw == ("PHASE2", "PHASE2B")
    assert record.unmapped == (Unmapped("phase", "PHASE2B"),)


def test_ctgov_unparsable_date_reported_not_raised() -> None:
    # synthetic: real NCT00763412 with a start date in a shape the API does not document
    study = load_study("NCT00763412")
    study["protocolSection"]["statusModule"]["startDateStruct"] = {"date": "November 2006"}
    record = parse_study(study, "NCT00763412")
    assert record.start is None and record.start_raw == "November 2006"
    assert Unmapped("start", "November 2006") in record.unmapped


def test_ctgov_missing_modules_are_empty_not_errors() -> None:
    # synthetic: real NCT03418623 cut down to its identification module
    study = load_study("NCT03418623")
    study = {
        "protocolSection": {
            "identificationModule": study["protocolSection"]["identificationModule"]
        }
    }
    record = parse_study(study, "NCT03418623")
    assert record.brief_title and record.status is None and record.phases == ()
    assert (record.start, record.enrollment, record.lead_sponsor) == (None, None, None)
    assert record.unmapped == ()


def test_ctgov_wrong_trial_raises_parse_error() -> None:
    body = (FIXTURES / "study_NCT00763412_month-precision-start_with-results.json").read_bytes()
    with pytest.raises(ParseError, match=r"page is for NCT00763412, not NCT03418623$"):
        ctgov.parse(payload("NCT03418623", body))


@pytest.mark.parametrize("cut", [0, 100, 5000])
def test_ctgov_truncated_body_raises_parse_error(cut: int) -> None:
    body = (FIXTURES / "study_NCT03418623_phase2_completed.json").read_bytes()[:cut]
    with pytest.raises(ParseError, match="not JSON"):
        ctgov.parse(payload("NCT03418623", body))


def test_ctgov_json_array_raises_parse_error() -> None:
    with pytest.raises(ParseError, match="not a JSON object"):
        ctgov.parse(payload("NCT03418623", b"[]"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(
    module=st.sampled_from(
        [
            "statusModule",
            "designModule",
            "sponsorCollaboratorsModule",
            "conditionsModule",
            "armsInterventionsModule",
        ]
    ),
    value=json_values,
)
def test_ctgov_odd_module_shapes_never_crash(module: str, value: Any) -> None:
    # synthetic: a real study with one module replaced by an arbitrary JSON value
    study = copy.deepcopy(load_study("NCT04207047"))
    study["protocolSection"][module] = value
    record = parse_study(study, "NCT04207047")
    assert record.trial_id == "NCT04207047" and record.brief_title


# ------------------------------------------------------------------ pages (pure helpers)


def test_ctgov_split_page_returns_studies_and_token_phelan() -> None:
    studies1, token1 = ctgov.split_page(PAGE1.read_bytes())
    studies2, token2 = ctgov.split_page(PAGE2.read_bytes())
    assert len(studies1) == len(studies2) == 5
    assert token1 == "ZVt07cGHkvI2wRk2CJf6_LLq14bEL8swd7KrgP4dnDeTsPkw"
    assert token2 is not None and token2 != token1


def test_ctgov_split_page_last_page_has_no_token() -> None:
    # synthetic: real page 2 with its nextPageToken removed, as the last page of a query is
    page = json.loads(PAGE2.read_bytes())
    del page["nextPageToken"]
    studies, token = ctgov.split_page(json.dumps(page).encode())
    assert len(studies) == 5 and token is None


@pytest.mark.parametrize("body", [b"", b"<html>busy</html>", b'{"totalCount": 3}', b"[]"])
def test_ctgov_split_page_rejects_non_pages(body: bytes) -> None:
    with pytest.raises(ValueError):
        ctgov.split_page(body)


def test_ctgov_split_page_rejects_truncated_page() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        ctgov.split_page(PAGE1.read_bytes()[:4000])


def _exchange(url: str, body: bytes) -> Exchange:
    """A synthetic exchange around a real page's bytes, as `Http` would have kept it."""
    return Exchange("synthetic-id", "ctgov", "GET", url, 200, FETCHED_AT, {}, body)


def _page_response(path: Path) -> Exchange:
    return _exchange("http://replay/studies?x=1", path.read_bytes())


def test_ctgov_match_studies_payload_is_canonical_study() -> None:
    resp = _page_response(PAGE1)
    found = ctgov.match_studies(
        ["NCT05105685", "NCT00000000"], ctgov.split_page(resp.body)[0], resp
    )
    assert list(found) == ["NCT05105685"]
    outcome = found["NCT05105685"]
    assert outcome.outcome is Outcome.OK and outcome.payload is not None
    study = page_studies(PAGE1)["NCT05105685"]
    canonical = json.dumps(study, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert outcome.payload.body == canonical.encode()
    assert outcome.payload.container_sha256 == hashlib.sha256(PAGE1.read_bytes()).hexdigest()
    assert outcome.payload.url == resp.url and outcome.payload.fetched_at == FETCHED_AT
    assert ctgov.parse(outcome.payload).phases == ("PHASE1", "PHASE2")


def test_ctgov_match_studies_alias_is_moved() -> None:
    # synthetic: a real page-1 study given an nctIdAliases entry, as merged records carry
    page = json.loads(PAGE1.read_bytes())
    page["studies"][0]["protocolSection"]["identificationModule"]["nctIdAliases"] = ["NCT99999999"]
    body = json.dumps(page).encode()
    resp = _exchange("http://replay/studies", body)
    found = ctgov.match_studies(["NCT99999999"], ctgov.split_page(body)[0], resp)
    assert found["NCT99999999"].outcome is Outcome.MOVED
    assert "NCT02710084" in found["NCT99999999"].detail


# ---------------------------------------------------------------------------- contract


def test_ctgov_registry_contract() -> None:
    assert REGISTRIES["ctgov"] is ctgov.REGISTRY
    assert ctgov.REGISTRY.parse is ctgov.parse and ctgov.REGISTRY.data_timestamp is not None
    assert ctgov.REGISTRY.id_pattern.fullmatch("NCT04207047")
    assert set(ctgov.STATUS_MAP.values()) <= set(STATUSES)
    assert set(ctgov.PHASE_MAP.values()) <= set(PHASES)
