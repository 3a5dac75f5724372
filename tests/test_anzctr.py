"""ANZCTR: parser golden on the real review page, one test per upstream quirk, and fetch against
the loopback replay server (ok, not found, blocked, down, wrong trial).

The real page is tests/fixtures/anzctr/TrialReview_ACTRN12605000001695_2018-06.html (provenance
in SOURCES.md there). Fault pages are under tests/fixtures/anzctr/synthetic/ (derived from the
real page, see its README); variants built here change one value of the real page and say so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from helpers import BUNDLED_REPLAY
from registry_sync.errors import ParseError
from registry_sync.http import Http
from registry_sync.model import (
    PHASES,
    STATUSES,
    Outcome,
    PartialDate,
    RawPayload,
    RegistryRecord,
    Unmapped,
)
from registry_sync.registries import anzctr
from registry_sync.replay import Fault, ReplayServer
from registry_sync.replay import anzctr as anzctr_routes
from registry_sync.replay.server import REGISTRY_ROUTES
from registry_sync.settings import HttpSettings

FIXTURES = Path(__file__).parent / "fixtures" / "anzctr"
REAL = FIXTURES / "TrialReview_ACTRN12605000001695_2018-06.html"
REAL_ID = "ACTRN12605000001695"
REVIEW_ID = "ACTRN12620000870954"  # the review's one ANZCTR trial; not in the replay set
SYNTHETIC = FIXTURES / "synthetic"
SHELL = SYNTHETIC / "TrialReview_not-found-shell_SYNTHETIC.html"
BLOCK = SYNTHETIC / "TrialReview_block-page_SYNTHETIC.html"
GOLDEN = FIXTURES / "golden" / "TrialReview_ACTRN12605000001695_2018-06.json"
REVIEW_PATH = "/anzctr/Trial/Registration/TrialReview.aspx"
FETCHED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def jsonable(record: RegistryRecord) -> dict[str, Any]:
    """A record as plain JSON values: dates as ISO partial dates, tuples as lists."""

    def convert(value: Any) -> Any:
        if isinstance(value, PartialDate):
            return value.iso()
        if isinstance(value, Unmapped):
            return dataclasses.asdict(value)
        if isinstance(value, tuple):
            return [convert(v) for v in value]
        return value

    return {f.name: convert(getattr(record, f.name)) for f in dataclasses.fields(record)}


def parse_bytes(body: bytes, trial_id: str = REAL_ID) -> RegistryRecord:
    payload = RawPayload("anzctr", trial_id, "fixture", FETCHED_AT, body, "text/html")
    return anzctr.parse(payload)


def variant(span_id: str, value: str) -> bytes:
    """The real page with one span's value replaced (synthetic, built here)."""
    text = REAL.read_text(encoding="utf-8")
    pattern = re.compile(rf'(<span id="ctl00_body_{span_id}">)[^<]*(</span>)')
    changed, count = pattern.subn(rf"\g<1>{value}\g<2>", text)
    assert count == 1, span_id
    return changed.encode()


# ------------------------------------------------------------------ provenance and golden


def test_anzctr_fixture_matches_its_sources_sha256() -> None:
    sources = (FIXTURES / "SOURCES.md").read_text(encoding="utf-8")
    digest = hashlib.sha256(REAL.read_bytes()).hexdigest()
    assert f"`{REAL.name}`" in sources
    assert digest in sources


def test_anzctr_golden_ACTRN12605000001695(update_golden: bool) -> None:
    got = jsonable(parse_bytes(REAL.read_bytes()))
    if update_golden:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert got == json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_anzctr_real_page_values_ACTRN12605000001695() -> None:
    record = parse_bytes(REAL.read_bytes())
    assert (record.status, record.status_raw) == ("COMPLETED", "Completed")
    assert (record.phases, record.phases_raw) == (("PHASE2",), ("Phase 2",))
    assert record.lead_sponsor == "AGITG/ NHMRC Clinical Trials Centre"
    assert record.enrollment == 45
    assert record.conditions == (
        "Adenocarcinoma of the gallbladder or intra/extrahepatic bile ducts",
    )
    assert record.evidence_url == (
        "https://www.anzctr.org.au/Trial/Registration/TrialReview.aspx?ACTRN=12605000001695"
    )
    assert record.unmapped == ()


def test_anzctr_vocabularies_are_canonical() -> None:
    assert set(anzctr.STATUS_MAP.values()) <= set(STATUSES)
    assert {p for ps in anzctr.PHASE_MAP.values() for p in ps} <= set(PHASES)


# ------------------------------------------------------------------ quirks


def test_anzctr_day_first_unpadded_date_ACTRN12605000001695() -> None:
    record = parse_bytes(REAL.read_bytes())
    assert record.start_raw == "1/02/2005"
    assert record.start == PartialDate(2005, 2, 1)  # 1 February, not 2 January
    assert record.last_updated == PartialDate(2009, 12, 16)


def test_anzctr_anticipated_start_only_is_estimated_ACTRN12605000001695() -> None:
    assert parse_bytes(REAL.read_bytes()).start_type == "ESTIMATED"


def test_anzctr_actual_start_wins_over_anticipated_ACTRN12605000001695() -> None:
    record = parse_bytes(variant("CXACTUALSTARTDATE", "9/03/2005"))  # synthetic variant
    assert (record.start, record.start_raw, record.start_type) == (
        PartialDate(2005, 3, 9),
        "9/03/2005",
        "ACTUAL",
    )


def test_anzctr_stopped_early_is_terminated_ACTRN12605000001695() -> None:
    record = parse_bytes(variant("CXRECRUITMENTSTATUS", "Stopped early"))  # synthetic variant
    assert (record.status, record.status_raw) == ("TERMINATED", "Stopped early")


def test_anzctr_phase_1_2_is_two_phases_ACTRN12605000001695() -> None:
    record = parse_bytes(variant("CXPHASE", "Phase 1 / Phase 2"))  # synthetic variant
    assert record.phases == ("PHASE1", "PHASE2")


def test_anzctr_phase_0_is_reported_unmapped_ACTRN12605000001695() -> None:
    record = parse_bytes(variant("CXPHASE", "Phase 0"))  # synthetic variant
    assert record.phases == ()
    assert record.phases_raw == ("Phase 0",)
    assert Unmapped("phase", "Phase 0") in record.unmapped


def test_anzctr_unknown_status_is_unmapped_not_a_crash_ACTRN12605000001695() -> None:
    record = parse_bytes(variant("CXRECRUITMENTSTATUS", "Closed: follow-up continuing"))
    assert record.status is None
    assert Unmapped("status", "Closed: follow-up continuing") in record.unmapped


def test_anzctr_secondary_sponsor_nil_means_none_ACTRN12605000001695() -> None:
    # the real page lists category `None`, name `nil`
    assert parse_bytes(REAL.read_bytes()).collaborators == ()


def test_anzctr_secondary_id_kept_as_printed_ACTRN12605000001695() -> None:
    # `NCTR570` is the old Australian NCTR number, not a registry ID we know
    record = parse_bytes(REAL.read_bytes())
    assert record.secondary_ids == ("National Clinical Trials Registry: NCTR570",)


def test_anzctr_changed_label_is_reported_ACTRN12605000001695() -> None:
    text = REAL.read_text(encoding="utf-8").replace(
        '<span id="ctl00_body_lbl_CXPHASE">Phase</span>',
        '<span id="ctl00_body_lbl_CXPHASE">Study phase (new)</span>',
    )
    record = parse_bytes(text.encode())  # synthetic variant
    assert Unmapped("label", "CXPHASE: Study phase (new)") in record.unmapped
    assert record.phases == ("PHASE2",)


def test_anzctr_page_for_another_trial_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match=f"page is for {REAL_ID}"):
        parse_bytes(REAL.read_bytes(), trial_id=REVIEW_ID)


def test_anzctr_page_without_the_spans_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="layout has changed"):
        parse_bytes(b"<html><body><p>Trial ID ACTRN12605000001695</p></body></html>")


def test_anzctr_not_found_shell_is_a_parse_error_if_parsed() -> None:
    with pytest.raises(ParseError, match="Trial ID is empty"):
        parse_bytes(SHELL.read_bytes())


def test_anzctr_block_page_is_a_parse_error_if_parsed() -> None:
    with pytest.raises(ParseError, match="challenge or block"):
        parse_bytes(BLOCK.read_bytes())


# ------------------------------------------------------------------ fetch against the replay


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    routes = (*(r for r in REGISTRY_ROUTES if r.key != "anzctr"), anzctr_routes.ROUTES)
    with ReplayServer(BUNDLED_REPLAY, routes=routes) as srv:
        yield srv
    assert srv.errors == []


@pytest.fixture
def http() -> Iterator[Http]:
    client = Http(HttpSettings(max_retries=0, min_interval={}))
    yield client
    client.close()


def base(server: ReplayServer) -> str:
    return server.base_urls()["anzctr"]


def test_anzctr_fetch_real_page_ok_by_digits_without_prefix(
    server: ReplayServer, http: Http
) -> None:
    [outcome] = anzctr.fetch([REAL_ID], http, base(server))
    assert outcome.outcome is Outcome.OK
    assert outcome.payload is not None
    assert outcome.payload.body == REAL.read_bytes()
    assert anzctr.parse(outcome.payload).trial_id == REAL_ID
    [sent] = [r for r in server.requests if r.path == REVIEW_PATH]
    assert sent.query == {"ACTRN": "12605000001695"}  # the digits, no ACTRN prefix
    assert [e.status for e in outcome.evidence] == [200]
    assert server.origin("anzctr", REAL_ID) is not None


def test_anzctr_fetch_review_trial_absent_from_set_is_not_found(
    server: ReplayServer, http: Http
) -> None:
    [outcome] = anzctr.fetch([REVIEW_ID], http, base(server))
    assert outcome.outcome is Outcome.NOT_FOUND
    assert REVIEW_ID in outcome.detail
    assert [e.body for e in outcome.evidence] == [SHELL.read_bytes()]
    assert not server.covers("anzctr", REVIEW_ID)  # the pipeline says not_in_replay


def test_anzctr_fetch_http_404_is_not_found(server: ReplayServer, http: Http) -> None:
    server.add_fault(REVIEW_PATH, Fault(status=404, body=b"Not Found"))
    [outcome] = anzctr.fetch([REAL_ID], http, base(server))
    assert outcome.outcome is Outcome.NOT_FOUND
    assert [e.status for e in outcome.evidence] == [404]


def test_anzctr_fetch_block_page_is_blocked(server: ReplayServer, http: Http) -> None:
    server.add_fault(REVIEW_PATH, Fault(body=BLOCK.read_bytes()))
    [outcome] = anzctr.fetch([REAL_ID], http, base(server))
    assert outcome.outcome is Outcome.BLOCKED
    assert "captcha" in outcome.detail or "access denied" in outcome.detail
    assert [e.body for e in outcome.evidence] == [BLOCK.read_bytes()]


def test_anzctr_fetch_503_is_registry_down(server: ReplayServer, http: Http) -> None:
    server.add_fault(REVIEW_PATH, Fault(status=503), times=None)
    [outcome] = anzctr.fetch([REAL_ID], http, base(server))
    assert outcome.outcome is Outcome.REGISTRY_DOWN
    assert [e.status for e in outcome.evidence] == [503]


def test_anzctr_fetch_wrong_trial_page_is_ok_then_parse_error(
    server: ReplayServer, http: Http
) -> None:
    # the server answers the review's ID with the real page of another trial
    server.add_fault(REVIEW_PATH, Fault(body=REAL.read_bytes()))
    [outcome] = anzctr.fetch([REVIEW_ID], http, base(server))
    assert outcome.outcome is Outcome.OK and outcome.payload is not None
    with pytest.raises(ParseError, match=f"page is for {REAL_ID}"):
        anzctr.parse(outcome.payload)


def test_anzctr_malformed_id_is_not_sent(server: ReplayServer, http: Http) -> None:
    [outcome] = anzctr.fetch(["ACTRN1262000087095"], http, base(server))
    assert outcome.outcome is Outcome.ID_MALFORMED
    assert server.requests == []


def test_anzctr_replay_other_parameters_are_400(server: ReplayServer) -> None:
    answer = requests.get(f"{base(server)}/Trial/Registration/TrialReview.aspx?id=1", timeout=5)
    assert answer.status_code == 400
