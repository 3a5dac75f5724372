"""UMIN-CTR: parser goldens on the real view page, one test per upstream quirk, and fetch tests
through the real `Http` client against the loopback replay server.

Real inputs are tests/fixtures/umin/*.html (provenance in its SOURCES.md). Fault pages are
under tests/fixtures/umin/synthetic/ (built from the real ones, see its README); variants made
in a test from a real page say so where they are made.
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
from registry_sync.registries import umin
from registry_sync.replay import Fault, ReplayServer
from registry_sync.replay import umin as umin_routes
from registry_sync.replay.faults import SYNTHETIC_BLOCK_PAGE
from registry_sync.replay.server import REGISTRY_ROUTES
from registry_sync.settings import HttpSettings

FIXTURES = Path(__file__).parent / "fixtures" / "umin"
GOLDEN = FIXTURES / "golden"
SYNTHETIC = FIXTURES / "synthetic"
VIEW = FIXTURES / "ctr_view_recptno_R000031865_ja_2020-03.html"
SEARCH = FIXTURES / "index_search_ctrno_UMIN000027821_ja_2020-03.html"
NO_HIT = SYNTHETIC / "index_search_no-hit_UMIN000099999_SYNTHETIC.html"
WRONG_LINK = SYNTHETIC / "index_search_wrong-link_UMIN000099999_SYNTHETIC.html"
ABSOLUTE_LINK = SYNTHETIC / "index_search_absolute-upload-link_UMIN000027821_SYNTHETIC.html"
BLOCK_PAGE = SYNTHETIC / "block-page_waf-style_SYNTHETIC.html"
SECONDARY_JRCT = SYNTHETIC / "ctr_view_recptno_R000031865_secondary-id-jRCT_SYNTHETIC.html"
TRIAL = "UMIN000027821"  # the real sample; receipt number R000031865
ABSENT = "UMIN000099999"
REVIEW_IDS = ("UMIN000011929", "UMIN000026003", "UMIN000036539")  # the review's, not recorded
FETCHED_AT = datetime(2026, 1, 1, tzinfo=UTC)
SEARCH_PATH = "/umin/cgi-open-bin/ctr/index.cgi"
VIEW_PATH = "/umin/cgi-open-bin/ctr/ctr_view.cgi"
HTML = {"Content-Type": "text/html"}


def parse_bytes(body: bytes, trial_id: str = TRIAL, content_type: str = "") -> RegistryRecord:
    return umin.parse(RawPayload("umin", trial_id, "fixture", FETCHED_AT, body, content_type))


def variant(old: str, new: str, body: bytes | None = None) -> bytes:
    """The real view page with one printed value changed (a synthetic variant, built here)."""
    page = VIEW.read_bytes() if body is None else body
    assert page.count(old.encode()) >= 1, old
    return page.replace(old.encode(), new.encode())


def record_to_jsonable(record: RegistryRecord) -> dict[str, Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, PartialDate):
            return value.iso()
        if isinstance(value, Unmapped):
            return dataclasses.asdict(value)
        if isinstance(value, tuple):
            return [convert(v) for v in value]
        return value

    return {f.name: convert(getattr(record, f.name)) for f in dataclasses.fields(record)}


def exchange(
    body: bytes, url: str = "http://127.0.0.1:1/umin/cgi-open-bin/ctr/index.cgi"
) -> Exchange:
    return Exchange("r1", "umin", "GET", url, 200, FETCHED_AT, HTML, body)


# ------------------------------------------------------------------------------ fixtures


def test_umin_fixtures_match_sources_md_sha256() -> None:
    sources = (FIXTURES / "SOURCES.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `([^`]+\.html)` .*\| `([0-9a-f]{64})` \|$", sources, re.M))
    on_disk = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in FIXTURES.glob("*.html")}
    assert len(on_disk) == 2
    assert listed == on_disk


def test_umin_replay_recorded_pages_are_the_fixtures() -> None:
    for path in (VIEW, SEARCH):
        assert (BUNDLED_REPLAY / "umin" / "recorded" / path.name).read_bytes() == path.read_bytes()
    served = BUNDLED_REPLAY / "umin" / umin_routes.NO_HIT
    assert served.read_bytes() == NO_HIT.read_bytes()


def test_umin_golden(update_golden: bool) -> None:
    got = record_to_jsonable(parse_bytes(VIEW.read_bytes()))
    golden = GOLDEN / f"{VIEW.stem}.json"
    if update_golden:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert golden.exists(), f"no golden {golden.name}: run pytest --update-golden and review it"
    assert got == json.loads(golden.read_text(encoding="utf-8"))


# -------------------------------------------------------------------------------- quirks


def test_umin_bilingual_status_cell_maps_english_half_UMIN000027821() -> None:
    record = parse_bytes(VIEW.read_bytes())
    assert record.status_raw == "限定募集中/Enrolling by invitation"  # both halves kept raw
    assert record.status == "ENROLLING_BY_INVITATION"
    assert record.unmapped == ()


@pytest.mark.parametrize("raw", sorted(umin.STATUS_MAP))
def test_umin_status_vocabulary_from_notes_UMIN000027821(raw: str) -> None:
    record = parse_bytes(variant(">限定募集中/Enrolling by invitation<", f">試験状況/{raw}<"))
    assert record.status == umin.STATUS_MAP[raw] and record.status in STATUSES


def test_umin_unknown_status_is_unmapped_UMIN000027821() -> None:
    raw = "試験中止/Withdrawn after approval"
    record = parse_bytes(variant(">限定募集中/Enrolling by invitation<", f">{raw}<"))
    assert record.status is None and record.status_raw == raw
    assert Unmapped("status", raw) in record.unmapped


def test_umin_full_width_roman_phase_UMIN000027821() -> None:
    record = parse_bytes(VIEW.read_bytes())
    assert "Ⅱ" in record.phases_raw[0]  # U+2161, not the letters II
    assert (record.phases, record.phases_raw) == (("PHASE2",), ("第Ⅱ相/Phase II",))


@pytest.mark.parametrize(
    ("raw", "phases"),
    [
        ("第Ⅰ相/Phase I", ("PHASE1",)),
        ("第Ⅰ・Ⅱ相/Phase I,II", ("PHASE1", "PHASE2")),
        ("第Ⅲ相/Phase III", ("PHASE3",)),
        ("第Ⅳ相/Phase IV", ("PHASE4",)),
        ("該当せず/Not applicable", ("NA",)),
        ("第Ⅰ・Ⅱ相", ("PHASE1", "PHASE2")),  # a JA-only cell: the full-width numerals map
    ],
)
def test_umin_phase_vocabulary_from_notes_UMIN000027821(raw: str, phases: tuple[str, ...]) -> None:
    record = parse_bytes(variant(">第Ⅱ相/Phase II<", f">{raw}<"))
    assert record.phases == phases and set(phases) <= set(PHASES)
    assert record.phases_raw == (raw,) and record.unmapped == ()


def test_umin_unknown_phase_is_unmapped_UMIN000027821() -> None:
    record = parse_bytes(variant(">第Ⅱ相/Phase II<", ">第Ⅴ相/Phase V<"))
    assert record.phases == () and Unmapped("phase", "第Ⅴ相/Phase V") in record.unmapped


def test_umin_split_date_cells_start_anticipated_UMIN000027821() -> None:
    record = parse_bytes(VIEW.read_bytes())
    assert record.start_raw == "2017 年 07 月 01 日"  # `2017 | 年 | 07 | 月 | 01 | 日` cells
    assert record.start == PartialDate(2017, 7, 1)
    assert record.start_type == "ESTIMATED"  # the label says 予定 / Anticipated
    assert record.last_updated == PartialDate(2017, 12, 19)


def test_umin_start_label_saying_actual_is_actual_UMIN000027821() -> None:
    # synthetic, hypothetical label: no page saying "actual" has been seen
    body = variant("登録・組入れ開始（予定）日/Anticipated", "登録・組入れ開始日/Actual")
    assert parse_bytes(body).start_type == "ACTUAL"


def test_umin_header_slash_date_is_the_last_update_fallback_UMIN000027821() -> None:
    # synthetic: the body's split `最終更新日/Last modified on` row relabelled, so only the
    # header's `最終更新日` `2017/12/19` is left
    record = parse_bytes(variant("最終更新日/Last modified on", "（削除）"))
    assert record.last_updated == PartialDate(2017, 12, 19)


def test_umin_impossible_date_cell_is_unmapped_UMIN000027821() -> None:
    # synthetic: the body's last-modified month cell 12 -> 13
    cell = '<td style="background-color:transparent;">{}</td>\n'
    old = cell.format("12") + cell.format("月") + cell.format("19")
    new = cell.format("13") + cell.format("月") + cell.format("19")
    record = parse_bytes(variant(old, new))
    assert record.last_updated is None
    assert record.unmapped == (Unmapped("last_updated", "2017 年 13 月 19 日"),)


def test_umin_two_cell_values_keep_the_english_cell_UMIN000027821() -> None:
    record = parse_bytes(VIEW.read_bytes())
    assert record.conditions == ("acute myeloid leukemia (AML)",)  # not 急性白血病
    assert record.brief_title is not None and record.brief_title.startswith("Phase II study")
    assert record.official_title is not None and record.official_title.startswith("Phase II")
    assert len(record.interventions) == 2 and record.interventions[0].startswith("FLAMEL")
    assert record.enrollment == 66


def test_umin_sponsor_institute_english_cell_UMIN000027821() -> None:
    record = parse_bytes(VIEW.read_bytes())
    assert record.lead_sponsor == "Japan Children's Cancer Group (JCCG)"
    assert record.collaborators == ("Japan Agency for Medical Research and Development",)


def test_umin_sponsor_other_defers_to_free_text_row_UMIN000027821() -> None:
    # synthetic: the EN cell emptied, so the JA `その他` ("Other") is all the row says
    body = variant(">Japan Children&#39;s Cancer Group (JCCG)<", "><")
    assert parse_bytes(body).lead_sponsor == "日本小児がん研究グループ"


def test_umin_secondary_ids_no_on_the_real_page_UMIN000027821() -> None:
    # the 2017 record says `いいえ/NO`; only the later jRCT page links the two registrations
    assert parse_bytes(VIEW.read_bytes()).secondary_ids == ()


def test_umin_secondary_id_cross_registration_jRCTs051180190() -> None:
    record = parse_bytes(SECONDARY_JRCT.read_bytes())
    assert record.secondary_ids == ("jRCTs051180190",)


def test_umin_bogus_meta_charset_ja_decodes_as_utf8_UMIN000027821() -> None:
    # `<meta charset="ja">` comes first; served with no header charset, UTF-8 must still win
    record = parse_bytes(VIEW.read_bytes(), content_type="text/html")
    assert record.status_raw == "限定募集中/Enrolling by invitation"


def test_umin_record_holds_no_personal_data_UMIN000027821() -> None:
    text = json.dumps(record_to_jsonable(parse_bytes(VIEW.read_bytes())), ensure_ascii=False)
    for personal in ("Yabe", "矢部", "Ishida", "yabeh@", "0463-93-1121", "075-311-5311"):
        assert personal not in text


def test_umin_evidence_url_is_the_public_view_page_UMIN000027821() -> None:
    url = parse_bytes(VIEW.read_bytes()).evidence_url
    assert url == "https://upload.umin.ac.jp/cgi-open-bin/ctr/ctr_view.cgi?recptno=R000031865"


def test_umin_registry_value() -> None:
    assert (umin.REGISTRY.key, umin.REGISTRY.name) == ("umin", "UMIN-CTR")
    assert umin.REGISTRY.id_pattern.fullmatch(TRIAL) and umin.REGISTRY.detect_block is not None
    assert umin.REGISTRY.parse is umin.parse and umin.REGISTRY.fetch is umin.fetch


# ----------------------------------------------------------------------- structural errors


def test_umin_page_for_another_trial_is_a_parse_error_UMIN000027821() -> None:
    with pytest.raises(ParseError, match="page is for UMIN000027821"):
        parse_bytes(VIEW.read_bytes(), trial_id=ABSENT)


def test_umin_block_page_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="challenge or block page"):
        parse_bytes(BLOCK_PAGE.read_bytes())


def test_umin_search_page_has_none_of_the_view_labels_UMIN000027821() -> None:
    with pytest.raises(ParseError, match="none of the expected labels"):
        parse_bytes(SEARCH.read_bytes())


# -------------------------------------------------------------------- pure fetch helpers


def test_umin_detect_block() -> None:
    assert umin.detect_block(exchange(SEARCH.read_bytes())) is None
    assert umin.detect_block(exchange(VIEW.read_bytes())) is None
    assert "Access Denied".casefold() in (
        umin.detect_block(exchange(BLOCK_PAGE.read_bytes())) or ""
    )
    assert umin.detect_block(exchange(SYNTHETIC_BLOCK_PAGE)) is not None
    assert "not a UMIN-CTR page" in (umin.detect_block(exchange(b"<html>hello</html>")) or "")


def test_umin_view_link_relative_as_printed_UMIN000027821() -> None:
    assert (
        umin.view_link(TRIAL, exchange(SEARCH.read_bytes())) == "./ctr_view.cgi?recptno=R000031865"
    )


def test_umin_view_link_absolute_upload_host_is_rebased_UMIN000027821() -> None:
    search_url = "http://127.0.0.1:8/umin/cgi-open-bin/ctr/index.cgi?ctrno=" + TRIAL
    link = umin.view_link(TRIAL, exchange(ABSOLUTE_LINK.read_bytes(), search_url))
    assert link == "http://127.0.0.1:8/umin/cgi-open-bin/ctr/ctr_view.cgi?recptno=R000031865"


def test_umin_view_link_no_row_for_the_trial_is_no_hit() -> None:
    assert umin.view_link(ABSENT, exchange(NO_HIT.read_bytes())) is None
    assert umin.view_link(ABSENT, exchange(SEARCH.read_bytes())) is None  # 27821's row only


# ----------------------------------------------------------------- fetch against the replay


@pytest.fixture
def http() -> Iterator[Http]:
    client = Http(HttpSettings(max_retries=0, min_interval={}))
    yield client
    client.close()


def replay(root: Path = BUNDLED_REPLAY) -> ReplayServer:
    return ReplayServer(root, routes=(*REGISTRY_ROUTES, umin_routes.ROUTES))


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with replay() as srv:
        yield srv
    assert srv.errors == []


def base(server: ReplayServer) -> str:
    return server.base_urls()["umin"]


def paths(server: ReplayServer) -> list[str]:
    return [r.path for r in server.requests if not r.path.endswith("/robots.txt")]


def one(outcomes: list[FetchOutcome]) -> FetchOutcome:
    assert len(outcomes) == 1
    return outcomes[0]


def test_umin_fetch_ok_keeps_search_and_view_pages_UMIN000027821(
    server: ReplayServer, http: Http
) -> None:
    outcome = one(umin.fetch([TRIAL], http, base(server)))
    assert outcome.outcome is Outcome.OK and outcome.payload is not None
    search, view = outcome.evidence
    assert search.body == SEARCH.read_bytes() and view.body == VIEW.read_bytes()
    assert search.url == f"{server.url}{SEARCH_PATH}?sort=03&function=04&ctrno={TRIAL}"
    assert view.url == f"{server.url}{VIEW_PATH}?recptno=R000031865"
    assert outcome.payload.request_id == view.request_id
    assert umin.parse(outcome.payload).status == "ENROLLING_BY_INVITATION"
    assert paths(server) == [SEARCH_PATH, VIEW_PATH]
    assert server.origin("umin", TRIAL) is not None


def test_umin_fetch_no_hit_is_not_found_UMIN000099999(server: ReplayServer, http: Http) -> None:
    outcome = one(umin.fetch([ABSENT], http, base(server)))
    assert outcome.outcome is Outcome.NOT_FOUND and outcome.detail.startswith("no hit for")
    [search] = outcome.evidence
    assert search.status == 200 and f'value="{ABSENT}"'.encode() in search.body
    assert paths(server) == [SEARCH_PATH]


def test_umin_review_ids_are_not_in_the_replay_set(server: ReplayServer, http: Http) -> None:
    outcomes = umin.fetch(list(REVIEW_IDS), http, base(server))
    assert [o.outcome for o in outcomes] == [Outcome.NOT_FOUND] * 3
    assert not any(server.covers("umin", t) for t in REVIEW_IDS)  # -> not_in_replay in a run


def test_umin_fetch_malformed_id_is_not_sent(server: ReplayServer, http: Http) -> None:
    outcome = one(umin.fetch(["UMIN00002782"], http, base(server)))
    assert outcome.outcome is Outcome.ID_MALFORMED and paths(server) == []


def test_umin_fetch_block_page_on_the_view_step_is_blocked_and_stops(
    server: ReplayServer, http: Http
) -> None:
    server.add_fault(VIEW_PATH, Fault(headers=HTML, body=BLOCK_PAGE.read_bytes()))
    first, second = umin.fetch([TRIAL, ABSENT], http, base(server))
    assert first.outcome is Outcome.BLOCKED and "Access Denied".casefold() in first.detail
    assert [e.status for e in first.evidence] == [200, 200]  # search and block page kept
    assert second.outcome is Outcome.BLOCKED  # stop_after_block: nothing more was sent
    assert paths(server) == [SEARCH_PATH, VIEW_PATH]


def test_umin_fetch_registry_down(server: ReplayServer, http: Http) -> None:
    server.add_fault("/umin/", Fault(status=503), times=None)
    outcome = one(umin.fetch([TRIAL], http, base(server)))
    assert outcome.outcome is Outcome.REGISTRY_DOWN
    assert [e.status for e in outcome.evidence] == [503]


def test_umin_fetch_view_down_after_search_keeps_both(server: ReplayServer, http: Http) -> None:
    server.add_fault(VIEW_PATH, Fault(status=503), times=None)
    outcome = one(umin.fetch([TRIAL], http, base(server)))
    assert outcome.outcome is Outcome.REGISTRY_DOWN
    assert [e.status for e in outcome.evidence] == [200, 503]


def built_replay(tmp_path: Path, search_page: Path) -> Path:
    """A tmp replay set: the recorded view page, the no-hit page and one built search page."""
    root = tmp_path / "replay"
    shutil.copytree(BUNDLED_REPLAY / "umin", root / "umin")
    (root / "umin" / "recorded" / SEARCH.name).unlink()
    (root / "umin" / "built").mkdir()
    shutil.copyfile(search_page, root / "umin" / "built" / search_page.name)
    return root


def test_umin_fetch_wrong_trial_ends_in_parse_error_UMIN000027821(
    tmp_path: Path, http: Http
) -> None:
    with replay(built_replay(tmp_path, WRONG_LINK)) as srv:
        outcome = one(umin.fetch([ABSENT], http, base(srv)))
    assert outcome.outcome is Outcome.OK and outcome.payload is not None
    with pytest.raises(ParseError, match=f"page is for {TRIAL}, not {ABSENT}"):
        umin.parse(outcome.payload)


def test_umin_fetch_absolute_upload_link_is_served_from_the_same_base_UMIN000027821(
    tmp_path: Path, http: Http
) -> None:
    with replay(built_replay(tmp_path, ABSOLUTE_LINK)) as srv:
        outcome = one(umin.fetch([TRIAL], http, base(srv)))
        view_url = f"{srv.url}{VIEW_PATH}?recptno=R000031865"
    assert outcome.outcome is Outcome.OK
    assert outcome.evidence[1].url == view_url


# ------------------------------------------------------------------------- replay routes


def test_umin_replay_key_spaces(server: ReplayServer) -> None:
    store = server.stores["umin"]
    assert sorted(store.space(umin_routes.UMIN_ID)) == [TRIAL]
    assert sorted(store.space(umin_routes.RECPTNO)) == ["R000031865"]


def test_umin_replay_answers(server: ReplayServer, http: Http) -> None:
    from registry_sync.errors import FetchError

    page = http.get(f"{server.url}{VIEW_PATH}?recptno=R000031865", registry="umin")
    assert page.headers["Content-Type"] == "text/html"
    with pytest.raises(FetchError):
        http.get(f"{server.url}{VIEW_PATH}?recptno=R000000001", registry="umin")
    with pytest.raises(FetchError):
        http.get(f"{server.url}{SEARCH_PATH}?function=02&title_s=x", registry="umin")
