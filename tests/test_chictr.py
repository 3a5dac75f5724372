"""ChiCTR: parser goldens on the real pages, one test per upstream quirk, and fetch tests with
the real `Http` client against the loopback replay server.

Real inputs are in tests/fixtures/chictr/ (provenance and sha256 in its SOURCES.md). Fault
pages are in tests/fixtures/chictr/synthetic/ (derived, see its README); variants of the real
detail page with one value changed are built here and say so.
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

from helpers import BUNDLED_REPLAY
from registry_sync.errors import ParseError
from registry_sync.http import Http
from registry_sync.model import (
    Exchange,
    FetchOutcome,
    Origin,
    Outcome,
    PartialDate,
    RawPayload,
    RegistryRecord,
    Unmapped,
)
from registry_sync.registries import chictr
from registry_sync.replay import Fault, ReplayServer
from registry_sync.replay import chictr as chictr_routes
from registry_sync.replay.server import REGISTRY_ROUTES
from registry_sync.settings import HttpSettings

FIXTURES = Path(__file__).parent / "fixtures" / "chictr"
GOLDEN = FIXTURES / "golden"
SYNTHETIC = FIXTURES / "synthetic"
DETAIL = FIXTURES / "showproj_ChiCTR2400084905_bilingual_2025-11.html"
SEARCH = FIXTURES / "searchproj_results_KRAS-G12C_2025-11.html"
XML = FIXTURES / "xml-download_ChiCTR2000034346_proj55654_2020-07.xml"
WAF_405 = SYNTHETIC / "waf-405_block-page_SYNTHETIC.html"
JS_CHALLENGE = SYNTHETIC / "waf-js-challenge_200_SYNTHETIC.html"
SLIDER = SYNTHETIC / "waf-slider-captcha_200_SYNTHETIC.html"
DAILY_CAP = SYNTHETIC / "showproj_daily-cap-or-no-such-project_SYNTHETIC.html"
NO_HIT = SYNTHETIC / "searchproj_no-hit_SYNTHETIC.html"
DETAIL_ID = "ChiCTR2400084905"  # the recorded detail page
ROW_ID = "ChiCTR2500103114"  # a row of the real search page (proj=273375), no detail recorded
REVIEW_ID = "ChiCTR2400089728"  # the review's, not in the replay set
FETCHED_AT = datetime(2026, 1, 1, tzinfo=UTC)
HTML = "text/html; charset=utf-8"


def payload(
    body: bytes, trial_id: str = DETAIL_ID, url: str = "fixture", ctype: str = HTML
) -> RawPayload:
    return RawPayload("chictr", trial_id, url, FETCHED_AT, body, content_type=ctype)


def detail_with(old: str, new: str) -> bytes:
    """SYNTHETIC: the real detail page with one printed value replaced."""
    text = DETAIL.read_text(encoding="utf-8")
    assert old in text, old
    return text.replace(old, new, 1).encode()


def exchange(body: bytes, status: int = 200) -> Exchange:
    headers = {"Content-Type": HTML}
    return Exchange("r1", "chictr", "GET", "u", status, FETCHED_AT, headers, body)


def jsonable(record: RegistryRecord) -> dict[str, Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, PartialDate):
            return value.iso()
        if isinstance(value, Unmapped):
            return dataclasses.asdict(value)
        if isinstance(value, tuple):
            return [convert(v) for v in value]
        return value

    return {f.name: convert(getattr(record, f.name)) for f in dataclasses.fields(record)}


# ----------------------------------------------------------------- provenance and goldens


def test_chictr_fixtures_match_their_sources_md_sha256() -> None:
    listed = dict(
        re.findall(
            r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|", (FIXTURES / "SOURCES.md").read_text(), re.M
        )
    )
    assert sorted(listed) == sorted(p.name for p in (DETAIL, SEARCH, XML))
    for name, digest in listed.items():
        assert hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize(
    ("path", "trial_id", "ctype"),
    [(DETAIL, DETAIL_ID, HTML), (XML, "ChiCTR2000034346", "application/xml")],
    ids=["detail", "xml"],
)
def test_chictr_golden(path: Path, trial_id: str, ctype: str, update_golden: bool) -> None:
    record = chictr.parse(payload(path.read_bytes(), trial_id, path.name, ctype))
    golden = GOLDEN / f"{path.stem}.json"
    got = json.dumps(jsonable(record), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    if update_golden:
        golden.write_text(got, encoding="utf-8")
    assert got == golden.read_text(encoding="utf-8")


def test_chictr_record_keeps_no_contact_data_ChiCTR2400084905() -> None:
    text = json.dumps(jsonable(chictr.parse(payload(DETAIL.read_bytes()))), ensure_ascii=False)
    for personal in ("@", "+86", "张娇", "程颖", "Jiao Zhang", "cheng ying", "张宁"):
        assert personal not in text


# ------------------------------------------------------------------------ quirks


def test_chictr_bilingual_split_rows_ChiCTR2400084905() -> None:
    record = chictr.parse(payload(DETAIL.read_bytes()))
    assert record.phases == ("PHASE3",) and record.phases_raw == ("III期临床试验", "3")
    assert record.status == "NOT_YET_RECRUITING"
    assert record.status_raw == "尚未开始 Not yet recruiting"
    assert record.lead_sponsor == "Jilin Cancer Hospital"  # English row preferred
    assert record.last_updated == PartialDate(2024, 5, 28)
    assert record.unmapped == ()


def test_chictr_study_execute_time_from_to_ChiCTR2400084905() -> None:
    record = chictr.parse(payload(DETAIL.read_bytes()))
    assert (record.start, record.start_raw) == (PartialDate(2024, 6, 1), "2024-06-01 00:00:00")
    assert record.completion == PartialDate(2029, 10, 1)
    assert record.start_type is None  # the page never says planned or actual


def test_chictr_enrollment_sums_equal_group_sizes_ChiCTR2400084905() -> None:
    assert chictr.parse(payload(DETAIL.read_bytes())).enrollment == 192 * 2 + 276 * 2


def test_chictr_phase_0_is_pilot_not_phase_0_ChiCTR2400084905() -> None:
    body = detail_with("III期临床试验&nbsp;", "探索性研究/预试验")
    body = body.replace(b'<p class="en">3</p>', b'<p class="en">0</p>', 1)
    record = chictr.parse(payload(body))
    assert record.phases == ()
    assert record.unmapped == (Unmapped("phase", "探索性研究/预试验/0"),)


def test_chictr_phase_4_post_marketing_ChiCTR2400084905() -> None:
    body = detail_with("III期临床试验&nbsp;", "上市后药物").replace(
        b'<p class="en">3</p>', b'<p class="en">4</p>', 1
    )
    record = chictr.parse(payload(body))
    assert record.phases == ("PHASE4",) and record.phases_raw == ("上市后药物", "4")


def test_chictr_phase_1_2_is_two_phases_ChiCTR2400084905() -> None:
    body = detail_with("III期临床试验&nbsp;", "I期+II期")
    assert chictr.parse(payload(body)).phases == ("PHASE1", "PHASE2")


def test_chictr_status_cell_with_age_and_sample_size_ChiCTR2400084905() -> None:
    """Notes: older pages print 年龄范围 and 样本量：… in the status cell; both are stripped."""
    body = detail_with(
        '<p class="cn">尚未开始</p>', '<p class="cn">正在进行 年龄范围 18 样本量：60</p>'
    )
    body = body.replace(b"Not yet\n", b"", 1)
    record = chictr.parse(payload(body.replace(b"recruiting</p>", b"</p>", 1)))
    assert (record.status, record.status_raw) == ("RECRUITING", "正在进行")


def test_chictr_unknown_status_is_reported_ChiCTR2400084905() -> None:
    body = detail_with('<p class="cn">尚未开始</p>', '<p class="cn">撤销</p>')
    record = chictr.parse(payload(body.replace(b"Not yet\n", b"Withdrawn ", 1)))
    assert record.status is None
    assert record.unmapped == (Unmapped("status", "撤销 Withdrawn recruiting"),)


def test_chictr_status_english_words_back_up_the_chinese_ChiCTR2400084905() -> None:
    record = chictr.parse(
        payload(detail_with('<p class="cn">尚未开始</p>', '<p class="cn">撤销</p>'))
    )
    assert (record.status, record.unmapped) == ("NOT_YET_RECRUITING", ())


def test_chictr_secondary_ids_split_ChiCTR2400084905() -> None:
    """SYNTHETIC: the page's empty 二级注册号 cell given two IDs (non-empty form from notes)."""
    text = DETAIL.read_text(encoding="utf-8")
    label = text.index("在二级注册机构或其它机构的注册号")
    cell = text.index("<td></td>", label)
    body = text[:cell] + "<td>NCT06119581；CTR20232345</td>" + text[cell + len("<td></td>") :]
    record = chictr.parse(payload(body.encode()))
    assert record.secondary_ids == ("NCT06119581", "CTR20232345")


def test_chictr_evidence_url_uses_the_fetched_proj_ChiCTR2500103114() -> None:
    url = "http://127.0.0.1:1/chictr/showproj.html?proj=273375"
    record = chictr.parse(payload(DETAIL.read_bytes(), url=url))
    assert record.evidence_url == "https://www.chictr.org.cn/showproj.html?proj=273375"


def test_chictr_wrong_trial_page_ChiCTR2400084905() -> None:
    with pytest.raises(ParseError, match="page is for ChiCTR2400084905"):
        chictr.parse(payload(DETAIL.read_bytes(), trial_id=ROW_ID))


def test_chictr_hyphenated_old_id_ChiCTR_IOR_17013052() -> None:
    assert chictr.REGISTRY.id_pattern.fullmatch("ChiCTR-IOR-17013052")
    body = SEARCH.read_bytes().replace(
        b"<td>ChiCTR2500103114</td>", b"<td>ChiCTR-IOR-17013052</td>"
    )
    assert chictr.next_url("ChiCTR-IOR-17013052", exchange(body)) == "showproj.html?proj=273375"


@pytest.mark.parametrize("path", [JS_CHALLENGE, SLIDER, DAILY_CAP, WAF_405], ids=lambda p: p.stem)
def test_chictr_block_page_is_a_parse_error(path: Path) -> None:
    with pytest.raises(ParseError):
        chictr.parse(payload(path.read_bytes()))


def test_chictr_xml_triall_typo_and_old_url_ChiCTR2000034346() -> None:
    record = chictr.parse(payload(XML.read_bytes(), "ChiCTR2000034346", ctype="application/xml"))
    assert record.status == "COMPLETED" and record.start == PartialDate(2020, 4, 10)
    assert record.evidence_url == "http://www.chictr.org.cn/showproj.aspx?proj=55654"
    assert Unmapped("phase", "Retrospective study") in record.unmapped


def test_chictr_xml_sponsor_is_a_contact_name_ChiCTR2000034346() -> None:
    record = chictr.parse_xml(payload(XML.read_bytes(), "ChiCTR2000034346"))
    assert record.lead_sponsor is None
    assert "Jianxing He" not in json.dumps(jsonable(record))
    assert Unmapped("lead_sponsor", "a contact's personal name (not stored)") in record.unmapped


# ------------------------------------------------------------------- page checks


@pytest.mark.parametrize(
    ("path", "status", "word"),
    [
        (WAF_405, 405, "405"),
        (WAF_405, 200, "block page"),
        (JS_CHALLENGE, 200, "acw_sc__v2"),
        (SLIDER, 200, "CAPTCHA"),
        (DAILY_CAP, 200, "当天最大查看次数"),
    ],
    ids=["405", "waf-200", "js", "slider", "daily-cap"],
)
def test_chictr_detect_block(path: Path, status: int, word: str) -> None:
    reason = chictr.detect_block(exchange(path.read_bytes(), status))
    assert reason is not None and word in reason


def test_chictr_detect_block_small_shell_without_left_title() -> None:
    shell = b"<html><body><script>var x=1;</script>" + b" " * 5000 + b"</body></html>"
    assert "without left_title" in (chictr.detect_block(exchange(shell)) or "")


@pytest.mark.parametrize("path", [DETAIL, SEARCH, NO_HIT], ids=lambda p: p.stem)
def test_chictr_real_pages_are_not_blocks(path: Path) -> None:
    assert chictr.detect_block(exchange(path.read_bytes())) is None


def test_chictr_next_url_picks_the_asked_row_ChiCTR2500103114() -> None:
    assert chictr.next_url(ROW_ID, exchange(SEARCH.read_bytes())) == "showproj.html?proj=273375"
    assert chictr.next_url(REVIEW_ID, exchange(SEARCH.read_bytes())) is None
    assert chictr.next_url(ROW_ID, exchange(NO_HIT.read_bytes())) is None


# ------------------------------------------------------------ fetch against the replay


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer(BUNDLED_REPLAY, routes=(*REGISTRY_ROUTES, chictr_routes.ROUTES)) as srv:
        yield srv
    assert srv.errors == []


@pytest.fixture
def http() -> Iterator[Http]:
    client = Http(HttpSettings(max_retries=0, min_interval={}))
    yield client
    client.close()


def fetch(server: ReplayServer, http: Http, *trial_ids: str) -> list[FetchOutcome]:
    return chictr.fetch(list(trial_ids), http, server.base_urls()["chictr"])


def chictr_requests(server: ReplayServer) -> list[str]:
    """The requests sent to ChiCTR's routes (robots.txt aside)."""
    return [r.path for r in server.requests if r.path.startswith("/chictr/")]


def test_chictr_fetch_ok_search_then_detail(server: ReplayServer, http: Http) -> None:
    [outcome] = fetch(server, http, DETAIL_ID)
    assert outcome.outcome is Outcome.OK and outcome.payload is not None
    search, detail = outcome.evidence
    assert search.url.endswith(f"/chictr/searchproj.html?regno={DETAIL_ID}&btngo=btn")
    assert detail.url.endswith(f"/chictr/showproj.html?proj={DETAIL_ID}")
    assert outcome.payload.body == DETAIL.read_bytes()
    record = chictr.parse(outcome.payload)
    assert record.phases == ("PHASE3",)
    assert (record.evidence_url or "").startswith("https://www.chictr.org.cn/searchproj.html?")
    assert server.covers("chictr", DETAIL_ID)
    assert server.origin("chictr", DETAIL_ID) is Origin.RECORDED


def test_chictr_fetch_no_hit_is_not_found(server: ReplayServer, http: Http) -> None:
    [outcome] = fetch(server, http, REVIEW_ID)
    assert outcome.outcome is Outcome.NOT_FOUND
    [search] = outcome.evidence
    assert search.body == NO_HIT.read_bytes()
    assert not server.covers("chictr", REVIEW_ID)  # the pipeline makes this not_in_replay


def test_chictr_fetch_daily_cap_is_blocked_then_host_stops(
    server: ReplayServer, http: Http
) -> None:
    """The real search row links proj=273375; ChiCTR answers the daily-cap page for it."""
    first, second = fetch(server, http, ROW_ID, DETAIL_ID)
    assert first.outcome is Outcome.BLOCKED and "当天最大查看次数" in first.detail
    assert [e.url.split("/chictr/")[1] for e in first.evidence] == [
        f"searchproj.html?regno={ROW_ID}&btngo=btn",
        "showproj.html?proj=273375",
    ]
    assert first.evidence[0].body == SEARCH.read_bytes()
    assert second.outcome is Outcome.BLOCKED and "not sent" in second.detail
    assert len(chictr_requests(server)) == 2


@pytest.mark.parametrize(
    ("fault", "word"),
    [
        (Fault(status=405, body=WAF_405.read_bytes()), "405"),
        (Fault(body=JS_CHALLENGE.read_bytes()), "acw_sc__v2"),
        (Fault(body=SLIDER.read_bytes()), "CAPTCHA"),
    ],
    ids=["405", "js-challenge", "slider"],
)
def test_chictr_fetch_waf_on_search_is_blocked_once(
    server: ReplayServer, http: Http, fault: Fault, word: str
) -> None:
    server.add_fault("/chictr/searchproj.html", fault)
    [outcome] = fetch(server, http, DETAIL_ID)
    assert outcome.outcome is Outcome.BLOCKED and word in outcome.detail
    assert len(outcome.evidence) == 1 and outcome.evidence[0].status == fault.status
    assert len(chictr_requests(server)) == 1  # tried once, never retried


def test_chictr_fetch_slider_on_detail_is_blocked(server: ReplayServer, http: Http) -> None:
    server.add_fault("/chictr/showproj.html", Fault(body=SLIDER.read_bytes()))
    [outcome] = fetch(server, http, DETAIL_ID)
    assert outcome.outcome is Outcome.BLOCKED
    assert [e.status for e in outcome.evidence] == [200, 200]


def test_chictr_fetch_down(server: ReplayServer, http: Http) -> None:
    server.add_fault("/chictr/", Fault(status=503), times=None)
    [outcome] = fetch(server, http, DETAIL_ID)
    assert outcome.outcome is Outcome.REGISTRY_DOWN
    assert [e.status for e in outcome.evidence] == [503]


def test_chictr_fetch_malformed_id_is_not_sent(server: ReplayServer, http: Http) -> None:
    [outcome] = fetch(server, http, "ChiCTR24000849")
    assert outcome.outcome is Outcome.ID_MALFORMED and server.requests == []


def test_chictr_replay_search_needs_a_regno(server: ReplayServer, http: Http) -> None:
    import requests

    answer = requests.get(f"{server.base_urls()['chictr']}/searchproj.html?title=KRAS", timeout=5)
    assert answer.status_code == 400
