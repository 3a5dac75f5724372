"""IRCT: the parser on SYNTHETIC pages, one test per noted quirk, and fetch (search -> trial page)
against the loopback replay server (ok, not found, blocked, down, wrong trial).

No real IRCT page exists in our samples. Every page here is under tests/fixtures/irct/synthetic/
(see its README): written from the label notes (REGISTRIES.md §7), with values from the real
IRCT rows of the ICTRP COVID-19 CSV (2020-04-07). These tests pin our reading of the notes, not
IRCT's real layout; the first real capture must replace them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpers import BUNDLED_REPLAY
from registry_sync.errors import ParseError
from registry_sync.http import Http
from registry_sync.model import (
    PHASES,
    STATUSES,
    Exchange,
    Outcome,
    PartialDate,
    RawPayload,
    RegistryRecord,
    Unmapped,
)
from registry_sync.registries import irct
from registry_sync.replay import Fault, ReplayServer
from registry_sync.replay import irct as irct_routes
from registry_sync.replay.server import REGISTRY_ROUTES
from registry_sync.settings import HttpSettings

SYNTHETIC = Path(__file__).parent / "fixtures" / "irct" / "synthetic"
# ICTRP CSV data row 558: Recruiting, phase 2-3, registered 2020-03-19, enrolment 2020-03-15
N28 = SYNTHETIC / "trial-46538_IRCT20100228003449N28_recruiting_phase2-3_SYNTHETIC.html"
# data row 576: ICTRP "Not Recruiting", enrolment 2020-03-26 after ICTRP's 2020-03-24 refresh
N2 = SYNTHETIC / "trial-46463_IRCT20200128046294N2_not-yet-recruiting_phase3_SYNTHETIC.html"
# data row 559: status printed lower case (DIRECCT), a time after the last-update date
N1 = SYNTHETIC / (
    "trial-46576_IRCT20160625028622N1_lowercase-recruiting_phase2_time-in-last-update_SYNTHETIC.html"
)
BLOCK = SYNTHETIC / "trial-46538_block-page_SYNTHETIC.html"
OTHER_LAYOUT = SYNTHETIC / "trial-46538_other-layout_SYNTHETIC.html"
REVIEW_ID = "IRCT20160704028786N2"  # the review's one IRCT trial; no page of it exists here
SEARCH = "/irct/search/result"
TRIAL = "/irct/trial/"
FETCHED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def parse_file(
    path: Path, trial_id: str, url: str = "https://en.irct.ir/trial/46538"
) -> RegistryRecord:
    payload = RawPayload("irct", trial_id, url, FETCHED_AT, path.read_bytes(), "text/html")
    return irct.parse(payload)


def parse_text(text: str, trial_id: str) -> RegistryRecord:
    payload = RawPayload("irct", trial_id, "fixture", FETCHED_AT, text.encode(), "text/html")
    return irct.parse(payload)


def with_value(path: Path, old: str, new: str) -> str:
    """A synthetic page with one printed value changed (built here)."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    return text.replace(old, new)


# ------------------------------------------------------------------ parser (synthetic pages)


def test_irct_vocabularies_are_canonical() -> None:
    assert set(irct.STATUS_MAP.values()) <= set(STATUSES)
    assert {p for ps in irct.PHASE_MAP.values() for p in ps} <= set(PHASES)


def test_irct_synthetic_page_values_from_ictrp_row_IRCT20100228003449N28() -> None:
    record = parse_file(N28, "IRCT20100228003449N28")
    assert (record.status, record.status_raw) == ("RECRUITING", "Recruiting")
    assert record.lead_sponsor == "Tehran University of Medical Sciences"
    assert record.brief_title == "Interferon in treatment of COVID-19"
    assert record.enrollment == 30
    assert record.conditions == ("COVID-19 pneumonia.",)
    assert record.last_updated == PartialDate(2020, 3, 19)
    assert record.secondary_ids == ()
    assert record.evidence_url == "https://en.irct.ir/trial/46538"
    assert record.unmapped == ()


def test_irct_phase_2_3_is_two_phases_IRCT20100228003449N28() -> None:
    record = parse_file(N28, "IRCT20100228003449N28")
    assert (record.phases, record.phases_raw) == (("PHASE2", "PHASE3"), ("2-3",))


def test_irct_empty_means_missing_expected_start_is_estimated_IRCT20100228003449N28() -> None:
    record = parse_file(N28, "IRCT20100228003449N28")
    assert (record.start, record.start_type) == (PartialDate(2020, 3, 15), "ESTIMATED")
    assert record.completion is None  # `Trial completion date` prints `empty`


def test_irct_actual_start_wins_IRCT20100228003449N28() -> None:
    old = "<dt>Actual recruitment start date</dt>\n    <dd><strong>empty</strong></dd>"
    new = "<dt>Actual recruitment start date</dt>\n    <dd><strong>2020-03-17</strong></dd>"
    record = parse_text(with_value(N28, old, new), "IRCT20100228003449N28")
    assert (record.start, record.start_type) == (PartialDate(2020, 3, 17), "ACTUAL")


def test_irct_not_yet_recruiting_IRCT20200128046294N2() -> None:
    record = parse_file(N2, "IRCT20200128046294N2", "https://en.irct.ir/trial/46463")
    assert record.status == "NOT_YET_RECRUITING"
    assert record.phases == ("PHASE3",)


def test_irct_lowercase_recruiting_IRCT20160625028622N1() -> None:
    record = parse_file(N1, "IRCT20160625028622N1", "https://en.irct.ir/trial/46576")
    assert (record.status, record.status_raw) == ("RECRUITING", "recruiting")


def test_irct_time_after_last_update_date_IRCT20160625028622N1() -> None:
    record = parse_file(N1, "IRCT20160625028622N1", "https://en.irct.ir/trial/46576")
    assert record.last_updated == PartialDate(2020, 3, 22)


def test_irct_recruitment_complete_is_active_not_recruiting_IRCT20200128046294N2() -> None:
    text = with_value(
        N2, "<strong>Not yet recruiting</strong>", "<strong>Recruitment complete</strong>"
    )
    record = parse_text(text, "IRCT20200128046294N2")
    assert (record.status, record.status_raw) == ("ACTIVE_NOT_RECRUITING", "Recruitment complete")


def test_irct_phase_na_IRCT20200128046294N2() -> None:
    text = with_value(
        N2,
        "<dt>Phase</dt>\n    <dd><strong>3</strong>",
        "<dt>Phase</dt>\n    <dd><strong>N/A</strong>",
    )
    assert parse_text(text, "IRCT20200128046294N2").phases == ("NA",)


def test_irct_unknown_status_is_unmapped_IRCT20200128046294N2() -> None:
    text = with_value(
        N2, "<strong>Not yet recruiting</strong>", "<strong>Recruitment stopped</strong>"
    )
    record = parse_text(text, "IRCT20200128046294N2")
    assert record.status is None
    assert Unmapped("status", "Recruitment stopped") in record.unmapped


def test_irct_other_layout_is_a_parse_error_asking_for_a_capture() -> None:
    with pytest.raises(ParseError, match="capture a real page"):
        parse_file(OTHER_LAYOUT, "IRCT20100228003449N28")


def test_irct_page_for_another_trial_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="page is for IRCT20100228003449N28"):
        parse_file(N28, REVIEW_ID)


def test_irct_block_page_is_a_parse_error_if_parsed() -> None:
    with pytest.raises(ParseError, match="challenge or block"):
        parse_file(BLOCK, "IRCT20100228003449N28")


def test_irct_search_link_naming_the_trial_wins() -> None:
    body = (
        b'<div><a href="/trial/1">IRCT20100228003449N27</a></div>'
        b'<div><a href="https://en.irct.ir/trial/46538">IRCT20100228003449N28</a></div>'
    )  # synthetic search answer: two hits
    search = Exchange(
        "r1",
        "irct",
        "GET",
        "http://127.0.0.1:1/irct/search/result?query=x",
        200,
        FETCHED_AT,
        {},
        body,
    )
    link = irct.trial_link("IRCT20100228003449N28", search)
    assert link == "http://127.0.0.1:1/irct/trial/46538"  # on the search page's own base


# ------------------------------------------------------------------ fetch against the replay


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    routes = (*(r for r in REGISTRY_ROUTES if r.key != "irct"), irct_routes.ROUTES)
    with ReplayServer(BUNDLED_REPLAY, routes=routes) as srv:
        yield srv
    assert srv.errors == []


@pytest.fixture
def http() -> Iterator[Http]:
    client = Http(HttpSettings(max_retries=0, min_interval={}))
    yield client
    client.close()


def base(server: ReplayServer) -> str:
    return server.base_urls()["irct"]


def test_irct_fetch_search_then_trial_page_ok(server: ReplayServer, http: Http) -> None:
    [outcome] = irct.fetch(["IRCT20100228003449N28"], http, base(server))
    assert outcome.outcome is Outcome.OK and outcome.payload is not None
    assert [e.url.split("/irct", 1)[1] for e in outcome.evidence] == [
        "/search/result?query=IRCT20100228003449N28",
        "/trial/46538",
    ]
    record = irct.parse(outcome.payload)
    assert record.evidence_url == "https://en.irct.ir/trial/46538"
    assert record.phases == ("PHASE2", "PHASE3")


def test_irct_synthetic_pages_are_never_called_recorded(server: ReplayServer) -> None:
    assert server.origin("irct", "IRCT20100228003449N28") is None
    assert not server.covers("irct", "IRCT20100228003449N28")


def test_irct_fetch_review_trial_no_search_hit_is_not_found(
    server: ReplayServer, http: Http
) -> None:
    [outcome] = irct.fetch([REVIEW_ID], http, base(server))
    assert outcome.outcome is Outcome.NOT_FOUND
    assert "no hit" in outcome.detail
    assert len(outcome.evidence) == 1
    assert not server.covers("irct", REVIEW_ID)  # the pipeline says not_in_replay


def test_irct_fetch_trial_page_404_is_not_found(server: ReplayServer, http: Http) -> None:
    server.add_fault(TRIAL, Fault(status=404, body=b"Not Found"))
    [outcome] = irct.fetch(["IRCT20100228003449N28"], http, base(server))
    assert outcome.outcome is Outcome.NOT_FOUND
    assert [e.status for e in outcome.evidence] == [200, 404]


def test_irct_fetch_block_page_is_blocked(server: ReplayServer, http: Http) -> None:
    server.add_fault(SEARCH, Fault(body=BLOCK.read_bytes()))
    [outcome] = irct.fetch(["IRCT20100228003449N28"], http, base(server))
    assert outcome.outcome is Outcome.BLOCKED
    assert [e.body for e in outcome.evidence] == [BLOCK.read_bytes()]


def test_irct_fetch_503_is_registry_down(server: ReplayServer, http: Http) -> None:
    server.add_fault(SEARCH, Fault(status=503), times=None)
    [outcome] = irct.fetch(["IRCT20100228003449N28"], http, base(server))
    assert outcome.outcome is Outcome.REGISTRY_DOWN
    assert [e.status for e in outcome.evidence] == [503]


def test_irct_fetch_wrong_trial_page_is_ok_then_parse_error(
    server: ReplayServer, http: Http
) -> None:
    server.add_fault(TRIAL, Fault(body=N2.read_bytes()))
    [outcome] = irct.fetch(["IRCT20100228003449N28"], http, base(server))
    assert outcome.outcome is Outcome.OK and outcome.payload is not None
    with pytest.raises(ParseError, match="page is for IRCT20200128046294N2"):
        irct.parse(outcome.payload)


def test_irct_fetch_other_layout_is_ok_then_parse_error(server: ReplayServer, http: Http) -> None:
    server.add_fault(TRIAL, Fault(body=OTHER_LAYOUT.read_bytes()))
    [outcome] = irct.fetch(["IRCT20100228003449N28"], http, base(server))
    assert outcome.outcome is Outcome.OK and outcome.payload is not None
    with pytest.raises(ParseError, match="no IRCT labels found"):
        irct.parse(outcome.payload)
