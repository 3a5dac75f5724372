"""CTR (chinadrugtrials.org.cn): parser goldens and quirks on the real pages, and fetch through
the real `Http` client against the loopback replay server (anti-bot gate included).

Inputs are the real pages in tests/fixtures/ctr/ (provenance in its SOURCES.md). Variants built
here from the real detail page change one value each and say so; the one hand-built page is
tests/fixtures/ctr/synthetic/ (see its README).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

from helpers import BUNDLED_REPLAY
from registry_sync.errors import ParseError
from registry_sync.http import Http
from registry_sync.model import (
    PHASES,
    STATUSES,
    Exchange,
    FetchOutcome,
    Outcome,
    PartialDate,
    RawPayload,
    RegistryRecord,
    Unmapped,
)
from registry_sync.registries import ctr
from registry_sync.registries._html import clean, document
from registry_sync.replay import Fault, ReplayServer
from registry_sync.replay import ctr as ctr_routes
from registry_sync.replay.routes import HTML
from registry_sync.replay.server import REGISTRY_ROUTES
from registry_sync.settings import HttpSettings

FIXTURES = Path(__file__).parent / "fixtures" / "ctr"
GOLDEN = FIXTURES / "golden"
DETAIL = FIXTURES / "detail_CTR20252821_completed_phase1_contacts-redacted_2026-08-13.html"
CHALLENGE = FIXTURES / "challenge_HTTP202_antibot_searchlist-keywords-FSHD_2026-08-13.html"
ZERO = (
    FIXTURES / "searchlist_zero-results_keywords-FSHD_2026-08-13_LF-normalized-NOT-byte-exact.html"
)
KRAS1 = FIXTURES / "searchlist_keywords-KRAS_state-ongoing_page1_2025-05-29.html"
KRAS3 = FIXTURES / "searchlist_keywords-KRAS_state-ongoing_page3-last_2025-05-29.html"
ONE_ROW = FIXTURES / "synthetic" / "searchlist_reg_no-CTR20252821_one-row_SYNTHETIC.html"
FETCHED_AT = datetime(2026, 8, 13, tzinfo=UTC)
REVIEW_IDS = ("CTR20252340", "CTR20252712", "CTR20252959", "CTR20253094")  # the review's CTR IDs
SEARCH = "/ctr/clinicaltrials.searchlist.dhtml"
DETAIL_PATH = "/ctr/clinicaltrials.searchlistdetail.dhtml"
# What openrd overwrote the contact and investigator values with: none may reach a record.
REDACTED = ("redacted@example.invalid", "000-00000000", "已在夹具中抹去", "00000000000")


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


def parse_text(text: str, trial_id: str = "CTR20252821") -> RegistryRecord:
    body = text.encode("utf-8")
    return ctr.parse(RawPayload("ctr", trial_id, "fixture", FETCHED_AT, body, "text/html"))


def detail_variant(*replacements: tuple[str, str]) -> RegistryRecord:
    """Synthetic: the real CTR20252821 page with each `old` (occurring once) made `new`."""
    text = DETAIL.read_text(encoding="utf-8")
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return parse_text(text)


def exchange(path: Path, status: int = 200, url: str = "fixture") -> Exchange:
    headers = CaseInsensitiveDict({"Content-Type": "text/html;charset=UTF-8"})
    return Exchange("r1", "ctr", "POST", url, status, FETCHED_AT, headers, path.read_bytes())


# ------------------------------------------------------------------------------ fixtures


def test_ctr_fixtures_match_sources_md_sha256() -> None:
    sources = (FIXTURES / "SOURCES.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `([^`]+\.html)` .*\| `([0-9a-f]{64})` \|$", sources, re.M))
    on_disk = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in FIXTURES.glob("*.html")}
    assert len(on_disk) == 5
    assert listed == on_disk


def test_ctr_replay_set_holds_the_same_real_pages() -> None:
    for path in (BUNDLED_REPLAY / "ctr" / "recorded").glob("*.html"):
        assert path.read_bytes() == (FIXTURES / path.name).read_bytes(), path.name
    synthetic = BUNDLED_REPLAY / "ctr" / "synthetic" / ONE_ROW.name
    assert synthetic.read_bytes() == ONE_ROW.read_bytes()


# ------------------------------------------------------------------------------- goldens


def test_ctr_golden_detail_CTR20252821(update_golden: bool) -> None:
    got = record_to_jsonable(parse_text(DETAIL.read_text(encoding="utf-8")))
    golden = GOLDEN / f"{DETAIL.stem}.json"
    if update_golden:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert golden.exists(), f"no golden {golden.name}: run pytest --update-golden and review it"
    assert got == json.loads(golden.read_text(encoding="utf-8"))


def test_ctr_record_holds_no_contact_or_investigator_data_CTR20252821() -> None:
    record = record_to_jsonable(parse_text(DETAIL.read_text(encoding="utf-8")))
    text = json.dumps(record, ensure_ascii=False)
    assert not [r for r in REDACTED if r in text]
    assert "瑞金医院" not in text  # the investigator's site is not the sponsor


# -------------------------------------------------------------------------------- quirks


def test_ctr_domestic_prefixed_dates_CTR20252821() -> None:
    # `国内：2025-08-12；` + NBSPs: the 国内 (domestic) date is taken
    record = parse_text(DETAIL.read_text(encoding="utf-8"))
    assert record.start == PartialDate(2025, 8, 12) and record.start_type == "ACTUAL"
    assert record.start_raw == "国内：2025-08-12；"
    assert record.completion == PartialDate(2025, 12, 31)
    assert record.enrollment == 76  # 目标入组人数 `国内: 76 ；`, not 已入组 58


def test_ctr_domestic_date_wins_over_international_CTR20252821() -> None:
    # synthetic: the real page with an international date added after the domestic one
    record = detail_variant(("国内：2025-08-12；", "国内：2025-08-12；国际：2024-01-02；"))
    assert record.start == PartialDate(2025, 8, 12)


def test_ctr_international_date_only_is_unmapped_CTR20252821() -> None:
    # synthetic: an international-only first enrolment: not the China start, so reported
    record = detail_variant(("国内：2025-08-12；", "国际：2024-01-02；"))
    assert record.start is None and record.start_type is None
    assert Unmapped("start", "国际：2024-01-02；") in record.unmapped


def test_ctr_no_last_updated_field_CTR20252821() -> None:
    record = parse_text(DETAIL.read_text(encoding="utf-8"))
    assert "2025-07-17" in DETAIL.read_text(encoding="utf-8")  # 首次公示信息日期 is there...
    assert record.last_updated is None  # ...and is never used as the last update


def test_ctr_sponsor_from_basic_panel_not_applicant_row_number_CTR20252821() -> None:
    record = parse_text(DETAIL.read_text(encoding="utf-8"))
    assert record.lead_sponsor == "西藏海思科制药有限公司"  # not `1` from 二、申请人信息


def test_ctr_drug_name_drops_former_name_tail_CTR20252821() -> None:
    record = parse_text(DETAIL.read_text(encoding="utf-8"))
    assert record.interventions == ("HSK45030分散片",)  # `HSK45030分散片 曾用名:`


def test_ctr_phase_other_with_free_text_is_unmapped_CTR20252821() -> None:
    # synthetic: 其它 + 其他说明 free text, as the notes describe (e.g. bioequivalence)
    raw = "其它 其他说明:生物等效性试验"
    record = detail_variant(("\t\t\t\t\t\t\t\t\tI期\n", f"{raw}\n"))
    assert record.phases == () and record.phases_raw == (raw,)
    assert record.unmapped == (Unmapped("phase", raw),)


def test_ctr_phase_one_two_is_two_phases_CTR20252821() -> None:
    # synthetic: `I/II期`
    record = detail_variant(("\t\t\t\t\t\t\t\t\tI期\n", "I/II期\n"))
    assert record.phases == ("PHASE1", "PHASE2") and record.unmapped == ()


def test_ctr_ongoing_status_takes_sub_value_from_section_six_CTR20252821() -> None:
    # synthetic: basic panel `进行中`, section 六 `进行中（招募中）` (the notes' spelling)
    record = detail_variant(
        ('<td width="35%">已完成</td>', '<td width="35%">进行中</td>'),
        ("\t\t\t\t\t\t已完成\n", "\t\t\t\t\t\t进行中（招募中）\n"),
    )
    assert (record.status, record.status_raw) == ("RECRUITING", "进行中 招募中")


def test_ctr_bare_ongoing_status_is_unmapped_CTR20252821() -> None:
    # synthetic: `进行中` without a sub-value does not say whether the trial recruits
    record = detail_variant(
        ('<td width="35%">已完成</td>', '<td width="35%">进行中</td>'),
        ("\t\t\t\t\t\t已完成\n", "\t\t\t\t\t\t进行中\n"),
    )
    assert record.status is None and record.unmapped == (Unmapped("status", "进行中"),)


def test_ctr_every_state_of_the_real_search_form_is_mapped() -> None:
    options = [
        clean(o.text()) for o in document(KRAS1.read_bytes()).css("select#state option[value]")
    ]
    subs = {"尚未招募", "招募中", "招募完成"}
    words = [f"进行中 {o}" if o in subs else o for o in options if o not in ("所有状态", "进行中")]
    assert len(words) == 10
    assert {w: ctr.STATUS_MAP.get(w) for w in words} == {w: ctr.STATUS_MAP[w] for w in words}
    assert set(ctr.STATUS_MAP.values()) <= set(STATUSES)
    assert {p for ps in ctr.PHASE_MAP.values() for p in ps} <= set(PHASES)


def test_ctr_list_status_cell_nbsp_matches_the_vocabulary_CTR20233476() -> None:
    # the list writes `进行中&nbsp;招募中`
    cells = [clean(a.text()) for a in document(KRAS3.read_bytes()).css("table.searchTable a")]
    assert "进行中 招募中" in cells and "进行中 招募中" in ctr.STATUS_MAP


def test_ctr_wrong_trial_page_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="page is for CTR20252821"):
        parse_text(DETAIL.read_text(encoding="utf-8"), "CTR20252959")


def test_ctr_challenge_page_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="challenge"):
        parse_text(CHALLENGE.read_text(encoding="utf-8"))


def test_ctr_detect_block_on_the_real_challenge() -> None:
    assert ctr.detect_block(exchange(CHALLENGE, 202)) is not None
    assert ctr.detect_block(exchange(CHALLENGE, 200)) is not None  # the page even without 202
    for page in (DETAIL, ZERO, KRAS1, KRAS3, ONE_ROW):  # real pages carry the token too
        assert ctr.detect_block(exchange(page)) is None, page.name


def test_ctr_zero_results_is_not_found_but_a_list_is_not() -> None:
    assert ctr.is_not_found(exchange(ZERO))
    for page in (KRAS1, KRAS3, ONE_ROW, DETAIL, CHALLENGE):
        assert not ctr.is_not_found(exchange(page)), page.name


def test_ctr_detail_link_from_the_row_with_that_id_CTR20233476() -> None:
    link = ctr.detail_link("CTR20233476", exchange(KRAS3))
    assert link == "clinicaltrials.searchlistdetail.dhtml?id=4c26575d4aca457aa919483d46d1009f"
    assert ctr.detail_link("CTR20252821", exchange(KRAS3)) is None


def test_ctr_search_form_is_the_real_searchfrm() -> None:
    root = document(KRAS1.read_bytes())
    real = {n.attributes.get("name") for n in root.css("#searchfrm [name]")}
    target = ctr.search_target("https://example.invalid/", "CTR20252821")
    assert isinstance(target.data, dict)
    assert set(target.data) == real
    assert target.data["reg_no"] == "CTR20252821"
    assert target.url == "https://example.invalid/clinicaltrials.searchlist.dhtml"


# ------------------------------------------------------------------------- fetch (replay)


@pytest.fixture
def ctr_server() -> Iterator[ReplayServer]:
    routes = (*(r for r in REGISTRY_ROUTES if r.key != "ctr"), ctr_routes.ROUTES)
    with ReplayServer(BUNDLED_REPLAY, routes=routes) as srv:
        yield srv
    assert srv.errors == []


@pytest.fixture
def http() -> Iterator[Http]:
    client = Http(HttpSettings(max_retries=0, min_interval={}))
    yield client
    client.close()


def fetch(server: ReplayServer, http: Http, *ids: str) -> dict[str, FetchOutcome]:
    outcomes = ctr.fetch(list(ids), http, server.base_urls()["ctr"])
    assert len(outcomes) == len(set(ids))
    return {o.trial_id: o for o in outcomes}


def ctr_requests(server: ReplayServer) -> list[tuple[str, str, dict[str, str]]]:
    return [
        (r.method, r.path, dict(r.cookies)) for r in server.requests if r.path.startswith("/ctr")
    ]


def challenge_fault(*, cookie: bool = True) -> Fault:
    headers = {"Content-Type": HTML}
    if cookie:
        headers["Set-Cookie"] = f"{ctr_routes.CHALLENGE_COOKIE}=from-the-fault; Path=/"
    return Fault(status=202, headers=headers, body=CHALLENGE.read_bytes())


def test_ctr_fetch_passes_the_gate_with_one_cookie_retry_CTR20252821(
    ctr_server: ReplayServer, http: Http
) -> None:
    outcome = fetch(ctr_server, http, "CTR20252821")["CTR20252821"]
    assert outcome.outcome is Outcome.OK and outcome.payload is not None
    assert [(e.method, e.status) for e in outcome.evidence] == [
        ("POST", 202),  # the challenge, kept as evidence
        ("POST", 200),  # the same search with the cookie it set
        ("GET", 200),  # the detail page its row points at
    ]
    sent = ctr_requests(ctr_server)
    cookie = {ctr_routes.CHALLENGE_COOKIE: "replay-gate-cookie"}
    assert [c for _, _, c in sent] == [{}, cookie, cookie]  # only the server's cookie, once
    assert outcome.url and outcome.url.endswith("?id=eebd483a55a146c2b7181ba84e8a7e51")
    record = ctr.parse(outcome.payload)
    assert (record.status, record.phases) == ("COMPLETED", ("PHASE1",))


def test_ctr_fetch_review_ids_absent_from_the_set_are_not_found(
    ctr_server: ReplayServer, http: Http
) -> None:
    outcomes = fetch(ctr_server, http, *REVIEW_IDS)
    assert {o.outcome for o in outcomes.values()} == {Outcome.NOT_FOUND}
    for outcome in outcomes.values():
        assert outcome.evidence[-1].status == 200 and b"\xe6\x9a\x82\xe6\x97\xa0" in (
            outcome.evidence[-1].body  # 暂无 (the zero-results row)
        )
    assert ctr_server.covers("ctr", "CTR20252821")
    assert not any(ctr_server.covers("ctr", t) for t in REVIEW_IDS)  # -> not_in_replay in runs


def test_ctr_fetch_challenged_twice_is_blocked_and_the_host_stopped(
    ctr_server: ReplayServer, http: Http
) -> None:
    ctr_server.add_fault("/ctr/", challenge_fault(), times=None)
    outcomes = fetch(ctr_server, http, "CTR20252821", *REVIEW_IDS)
    assert {o.outcome for o in outcomes.values()} == {Outcome.BLOCKED}
    sent = ctr_requests(ctr_server)
    assert [(m, p) for m, p, _ in sent] == [("POST", SEARCH), ("POST", SEARCH)]  # one retry
    assert sent[1][2] == {ctr_routes.CHALLENGE_COOKIE: "from-the-fault"}  # its cookie only
    first = outcomes["CTR20252821"]
    assert [e.status for e in first.evidence] == [202, 202]
    assert "202" in first.detail
    assert all(not outcomes[t].evidence for t in REVIEW_IDS)  # never sent
    assert all("not sent" in outcomes[t].detail for t in REVIEW_IDS)


def test_ctr_fetch_challenge_without_cookies_is_blocked_without_retry(
    tmp_path: Path, http: Http
) -> None:
    # a set without the challenge page has no gate; the fault's challenge sets no cookie
    shutil.copytree(BUNDLED_REPLAY / "ctr", tmp_path / "ctr")
    (tmp_path / "ctr" / "recorded" / CHALLENGE.name).unlink()
    with ReplayServer(tmp_path, routes=(ctr_routes.ROUTES,)) as server:
        server.add_fault("/ctr/", challenge_fault(cookie=False), times=None)
        outcomes = fetch(server, http, "CTR20252821", "CTR20252959")
        assert {o.outcome for o in outcomes.values()} == {Outcome.BLOCKED}
        assert len(ctr_requests(server)) == 1  # nothing to carry: no second request
    assert server.errors == []


def test_ctr_fetch_registry_down_on_503(ctr_server: ReplayServer, http: Http) -> None:
    ctr_server.add_fault("/ctr/", Fault(status=503), times=None)
    outcomes = fetch(ctr_server, http, "CTR20252821", "CTR20252959")
    assert {o.outcome for o in outcomes.values()} == {Outcome.REGISTRY_DOWN}
    assert all(o.evidence and o.evidence[0].status == 503 for o in outcomes.values())


def test_ctr_fetch_malformed_id_is_not_sent(ctr_server: ReplayServer, http: Http) -> None:
    outcome = fetch(ctr_server, http, "CTR2025")["CTR2025"]
    assert outcome.outcome is Outcome.ID_MALFORMED
    assert ctr_requests(ctr_server) == []


def test_ctr_replay_serves_the_recorded_list_pages_for_their_query(
    ctr_server: ReplayServer, http: Http
) -> None:
    url = ctr_server.base_urls()["ctr"] + "/clinicaltrials.searchlist.dhtml"
    form = {**ctr.SEARCH_FORM, "keywords": "KRAS", "state": "进行中", "currentpage": "3"}
    http.post(url, data=form, registry="ctr")  # the gate
    page = http.post(url, data=form, registry="ctr")
    assert page.status == 200 and page.body == KRAS3.read_bytes()
    detail = http.get(
        ctr_server.base_urls()["ctr"] + "/clinicaltrials.searchlistdetail.dhtml",
        params={"id": "eebd483a55a146c2b7181ba84e8a7e51"},
        registry="ctr",
    )
    assert detail.body == DETAIL.read_bytes()
    assert ctr_server.origin("ctr", "CTR20252821") is not None
    assert [p for _, p, _ in ctr_requests(ctr_server)] == [SEARCH, SEARCH, DETAIL_PATH]
