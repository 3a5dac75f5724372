"""JMACCT-CTR (JMA-IIA…), retired in March 2023: `fetch` sends nothing and says `moved`;
`parse` refuses; a jRCT record listing the ID gives it a home (fallback.link_moved).

No JMACCT page exists to record. The jRCT record used below is the real jRCT page with its
secondary ID changed to JMA-IIA00412 (SYNTHETIC, built here).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from registry_sync.errors import ParseError
from registry_sync.fallback import link_moved
from registry_sync.http import Http
from registry_sync.model import Outcome, RawPayload, TrialState
from registry_sync.registries import jma, jrct
from registry_sync.settings import HttpSettings

REVIEW_ID = "JMA-IIA00412"  # the review cites it (table 3, HAES)
JRCT_PAGE = (
    Path(__file__).parent / "fixtures" / "jrct" / "latest-detail_jRCTs051180190_ja_2020-03.html"
)
FETCHED_AT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def http() -> Http:
    return Http(HttpSettings(max_retries=0, min_interval={}))


def test_jma_review_id_is_moved_with_no_request_JMA_IIA00412(http: Http) -> None:
    (outcome,) = jma.fetch([REVIEW_ID], http, "http://127.0.0.1:9/unused")
    assert outcome.outcome is Outcome.MOVED and outcome.moved_to == ""
    assert outcome.detail == (
        "JMACCT-CTR was merged into jRCT in March 2023 (MHLW 2023-12); no jRCT record listing "
        "JMA-IIA00412 is known in this run"
    )
    assert outcome.evidence == () and http.requests_sent == 0 and http.exchanges == []


def test_jma_ids_are_normalized_and_deduplicated_JMA_IIA00412(http: Http) -> None:
    outcomes = jma.fetch(["jma-iia00412", REVIEW_ID, "ＪＭＡ－ＩＩＡ００４１２"], http, "")
    assert [(o.trial_id, o.outcome) for o in outcomes] == [(REVIEW_ID, Outcome.MOVED)]


@pytest.mark.parametrize("bad", ["JMA-IIA0412", "JMA-IIA004120", "JMA-IIB00412"])
def test_jma_malformed_id_is_id_malformed(http: Http, bad: str) -> None:
    (outcome,) = jma.fetch([bad], http, "")
    assert outcome.outcome is Outcome.ID_MALFORMED and http.requests_sent == 0


def test_jma_parse_always_refuses_JMA_IIA00412() -> None:
    payload = RawPayload("jma", REVIEW_ID, "nowhere", FETCHED_AT, b"<html></html>", "text/html")
    with pytest.raises(ParseError, match="retired"):
        jma.parse(payload)


def test_jma_registry_sends_no_requests() -> None:
    assert jma.REGISTRY.requests_for(5) == 0 and jma.REGISTRY.key == "jma"


def test_jma_moved_links_to_a_jrct_record_listing_it_JMA_IIA00412(http: Http) -> None:
    # SYNTHETIC: the real jRCT page with its cross-registration changed to the JMA ID
    body = JRCT_PAGE.read_bytes().replace(b"UMIN000027821", b"JMA-IIA00412")
    payload = RawPayload("jrct", "jRCTs051180190", "fixture", FETCHED_AT, body, "text/html")
    record = jrct.parse(payload)
    (moved,) = jma.fetch([REVIEW_ID], http, "")
    states = {
        REVIEW_ID: TrialState("jma", REVIEW_ID, moved.outcome, moved.detail),
        "jRCTs051180190": TrialState("jrct", "jRCTs051180190", Outcome.OK, record=record),
    }
    linked = link_moved(states)[REVIEW_ID]
    assert linked.moved_to == "jRCTs051180190" and linked.record == record
