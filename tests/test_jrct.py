"""jRCT: the parser on the real 2020 page (golden, one test per quirk) and fetch through the real
`Http` client against the loopback replay server.

The real page is tests/fixtures/jrct/latest-detail_jRCTs051180190_ja_2020-03.html (provenance in
its SOURCES.md). Fault pages are under tests/fixtures/jrct/synthetic/ (README there). Variants
built here from the real page (one value or one layout feature changed) are synthetic and say so.
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
    Exchange,
    FetchOutcome,
    Outcome,
    PartialDate,
    RawPayload,
    RegistryRecord,
    Unmapped,
)
from registry_sync.registries import jrct
from registry_sync.replay import Fault, ReplayServer
from registry_sync.replay import jrct as jrct_routes
from registry_sync.replay.server import REGISTRY_ROUTES
from registry_sync.settings import HttpSettings

FIXTURES = Path(__file__).parent / "fixtures" / "jrct"
GOLDEN = FIXTURES / "golden"
SYNTHETIC = FIXTURES / "synthetic"
REAL = FIXTURES / "latest-detail_jRCTs051180190_ja_2020-03.html"
REAL_PAGES = sorted(FIXTURES.glob("latest-detail_*.html"))
JRCT_ID = "jRCTs051180190"
REVIEW_ID = "jRCT2033200431"  # one of the review's IDs; not in the replay set
HTML_TYPE = "text/html; charset=utf-8"
FETCHED_AT = datetime(2026, 1, 1, tzinfo=UTC)
# The blank `最終公表日` cell of the real page, as printed (a value is put after it in variants).
LAST_PUBLISHED_CELL = (
    '<label>最終公表日</label>\n            </th>\n            <td class="col-sm-8 col-md-8 space">'
)


def real_text() -> str:
    return REAL.read_text(encoding="utf-8")


def parse_text(text: str, trial_id: str = JRCT_ID) -> RegistryRecord:
    body = text.encode("utf-8")
    return jrct.parse(RawPayload("jrct", trial_id, "fixture", FETCHED_AT, body, HTML_TYPE))


def variant(*pairs: tuple[str, str]) -> RegistryRecord:
    """SYNTHETIC: the real page with each (old, new) replaced everywhere (old must occur)."""
    text = real_text()
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    return parse_text(text)


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


def exchange(body: bytes, status: int = 200) -> Exchange:
    headers = {"Content-Type": HTML_TYPE}
    return Exchange("r1", "jrct", "GET", f"http://x/latest-detail/{JRCT_ID}", status,
                    FETCHED_AT, headers, body)  # fmt: skip


# ------------------------------------------------------------------------------ fixtures


def test_jrct_fixture_matches_sources_md_sha256() -> None:
    sources = (FIXTURES / "SOURCES.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `([^`]+\.html)` .*\| `([0-9a-f]{64})` \|$", sources, re.M))
    on_disk = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in REAL_PAGES}
    assert listed == on_disk and len(on_disk) == 1


def test_jrct_replay_set_holds_the_same_bytes() -> None:
    replay = BUNDLED_REPLAY / "jrct"
    assert (replay / "recorded" / REAL.name).read_bytes() == REAL.read_bytes()
    name = "error-500_generic-page_unknown-id_SYNTHETIC.html"
    assert (replay / "synthetic" / name).read_bytes() == (SYNTHETIC / name).read_bytes()


def test_jrct_synthetic_pages_say_so() -> None:
    for path in SYNTHETIC.glob("*.html"):
        assert "SYNTHETIC" in path.name and "<!-- SYNTHETIC" in path.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------- goldens


@pytest.mark.parametrize("path", REAL_PAGES, ids=lambda p: p.stem)
def test_jrct_golden(path: Path, update_golden: bool) -> None:
    trial_id = re.findall(r"jRCT[0-9a-z]\d{9}", path.name)[0]
    got = jsonable(parse_text(path.read_text(encoding="utf-8"), trial_id))
    golden = GOLDEN / f"{path.stem}.json"
    if update_golden:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert golden.exists(), f"no golden {golden.name}: run pytest --update-golden and review it"
    assert got == json.loads(golden.read_text(encoding="utf-8"))


def test_jrct_record_on_the_real_page_jRCTs051180190() -> None:
    rec = parse_text(real_text())
    assert (rec.status, rec.status_raw) == ("RECRUITING", "募集中")
    assert (rec.phases, rec.phases_raw) == (("PHASE2",), ("2",))
    assert rec.completion == PartialDate(2030, 6, 30)
    assert rec.enrollment == 66
    assert rec.brief_title == "AML-SCT15 (AML-SCT15)"
    assert rec.official_title and rec.official_title.startswith("Phase II study of allogeneic")
    assert rec.conditions == ("acute myeloid leukemia (AML)",)
    assert rec.interventions[0] == "シクロホスファミド水和物" and len(rec.interventions) == 5
    assert rec.evidence_url == f"https://jrct.mhlw.go.jp/latest-detail/{JRCT_ID}"
    assert rec.unmapped == ()
    assert rec.status in STATUSES and set(rec.phases) <= set(PHASES)


# -------------------------------------------------------------------- one test per quirk


def test_jrct_kanji_date_first_enrolment_is_actual_start_jRCTs051180190() -> None:
    rec = parse_text(real_text())
    assert (rec.start, rec.start_raw, rec.start_type) == (
        PartialDate(2017, 9, 15), "2017年09月15日", "ACTUAL"
    )  # fmt: skip


def test_jrct_start_falls_back_to_planned_first_enrolment_jRCTs051180190() -> None:
    rec = variant(("2017年09月15日", ""))  # 第1症例登録日 blank: not enrolled yet
    assert (rec.start, rec.start_type) == (PartialDate(2017, 7, 1), "ESTIMATED")


def test_jrct_start_falls_back_to_period_start_without_type_jRCTs051180190() -> None:
    rec = variant(("2017年09月15日", ""), ("症例登録開始予定日", "（削除）"))
    assert (rec.start, rec.start_type) == (PartialDate(2017, 7, 1), None)


def test_jrct_blank_last_published_date_is_none_not_first_published_jRCTs051180190() -> None:
    rec = parse_text(real_text())  # 最終公表日 is blank, 初回公表日 is 平成31年3月26日
    assert rec.last_updated is None and rec.unmapped == ()


def test_jrct_era_date_heisei_jRCTs051180190() -> None:
    blank = LAST_PUBLISHED_CELL
    rec = variant((blank, blank + "平成31年4月26日"))
    assert rec.last_updated == PartialDate(2019, 4, 26)


def test_jrct_era_date_reiwa_gannen_jRCTs051180190() -> None:
    blank = LAST_PUBLISHED_CELL
    rec = variant((blank, blank + "令和元年5月7日"))
    assert rec.last_updated == PartialDate(2019, 5, 7)


def test_jrct_unreadable_date_is_unmapped_jRCTs051180190() -> None:
    rec = variant(("2030年06月30日", "未定"))
    assert rec.completion is None and Unmapped("completion", "未定") in rec.unmapped


def test_jrct_bare_digit_phase_jRCTs051180190() -> None:
    rec = parse_text(real_text())
    assert rec.phases == ("PHASE2",) and rec.phases_raw == ("2",)


@pytest.mark.parametrize(
    ("raw", "phases"),
    [("1-2", ("PHASE1", "PHASE2")), ("2-3", ("PHASE2", "PHASE3")), ("Not applicable", ("NA",))],
)
def test_jrct_phase_range_and_not_applicable_jRCTs051180190(
    raw: str, phases: tuple[str, ...]
) -> None:
    rec = variant(('space">2</td>', f'space">{raw}</td>'), ('colspan="2">2</td>', f">{raw}</td>"))
    assert (rec.phases, rec.phases_raw) == (phases, (raw,))


def test_jrct_unknown_phase_is_unmapped_jRCTs051180190() -> None:
    rec = variant(('space">2</td>', 'space">第2相</td>'))
    assert rec.phases == () and Unmapped("phase", "第2相") in rec.unmapped


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("募集前", "NOT_YET_RECRUITING"),
        ("募集終了", "NOT_RECRUITING"),
        ("募集中断", "SUSPENDED"),
        ("研究終了", "COMPLETED"),
    ],
)
def test_jrct_statuses_from_notes_jRCTs051180190(raw: str, status: str) -> None:
    rec = variant(("募集中", raw))
    assert (rec.status, rec.status_raw) == (status, raw)


def test_jrct_unknown_status_is_unmapped_jRCTs051180190() -> None:
    rec = variant(("募集中", "限定募集中"))
    assert rec.status is None and rec.status_raw == "限定募集中"
    assert Unmapped("status", "限定募集中") in rec.unmapped


def test_jrct_bilingual_label_rows_alone_jRCTs051180190() -> None:
    # SYNTHETIC: the JA-only summary table removed; the `JA / EN` rows must carry the values
    text = real_text()
    start = text.index('<table class="table table-bordered">')
    text = text[:start] + text[text.index("</table>", start) + len("</table>") :]
    rec = parse_text(text)
    assert (rec.status, rec.phases) == ("RECRUITING", ("PHASE2",))
    assert rec.start == PartialDate(2017, 9, 15)
    assert rec.lead_sponsor is None  # the institution row is in the summary table only


def test_jrct_ja_only_labels_jRCTs051180190() -> None:
    # SYNTHETIC: every ` / English` half of a label removed (a JA-only layout)
    def strip(match: re.Match[str]) -> str:
        return re.sub(r"\s+/\s+(?:<label>)?[^<]*[A-Za-z][^<]*(?:</label>)?", "", match[0])

    text = re.sub(r"<th[^>]*>.*?</th>", strip, real_text(), flags=re.S)
    assert "Recruitment status" not in text and "Scientific Title" not in text
    assert jsonable(parse_text(text)) == jsonable(parse_text(real_text()))


def test_jrct_sponsor_is_pi_institution_in_english_never_a_person_jRCTs051180190() -> None:
    rec = parse_text(real_text())
    assert rec.lead_sponsor == "Tokai University, School of Medicine"
    dumped = json.dumps(jsonable(rec), ensure_ascii=False)
    for personal in ("矢部", "YABE", "@", "0463-93-1121", "石田"):
        assert personal not in dumped


def test_jrct_sponsor_falls_back_to_japanese_institution_jRCTs051180190() -> None:
    rec = variant(("Tokai University, School of Medicine", ""))
    assert rec.lead_sponsor == "東海大学医学部"


def test_jrct_cross_registration_umin_secondary_id_jRCTs051180190() -> None:
    assert parse_text(real_text()).secondary_ids == ("UMIN000027821",)


def test_jrct_secondary_ids_split_and_normalized_jRCTs051180190() -> None:
    rec = variant(("UMIN000027821", "UMIN000027821、jma-iia00412 / なし"))
    assert rec.secondary_ids == ("UMIN000027821", "JMA-IIA00412")


def test_jrct_english_labels_from_notes_unverified() -> None:
    # SYNTHETIC: an English page in the real page's markup; labels and values from the notes
    rows = [
        ("Trial ID", "jRCT2033200431"),
        ("Recruitment Status", "Not Recruiting"),
        ("Phase", "1-2"),
        ("Date of First Enrolment", "Aug. 06, 2019"),
        ("Last modified on", "April. 27, 2024"),
        ("Public Title", "iPSC-derived NK cells"),
        ("Secondary ID No.", "JMA-IIA00412"),
    ]
    cells = "".join(
        f'<tr><th class="info col-sm-4 col-md-4"><label>{k}</label></th>'
        f'<td class="col-sm-8 col-md-8 space">{v}</td></tr>'
        for k, v in rows
    )
    rec = parse_text(f"<html><body><table><tbody>{cells}</tbody></table></body></html>", REVIEW_ID)
    assert (rec.status, rec.phases) == ("NOT_RECRUITING", ("PHASE1", "PHASE2"))
    assert (rec.start, rec.start_type) == (PartialDate(2019, 8, 6), "ESTIMATED")
    assert rec.last_updated == PartialDate(2024, 4, 27)
    assert rec.brief_title == "iPSC-derived NK cells"
    assert rec.secondary_ids == ("JMA-IIA00412",) and rec.unmapped == ()


def test_jrct_wrong_trial_page_is_parse_error_jRCTs051180190() -> None:
    text = (SYNTHETIC / "wrong-trial_shows-jRCTs031190226_SYNTHETIC.html").read_text("utf-8")
    with pytest.raises(ParseError, match="page is for jRCTs031190226"):
        parse_text(text)


def test_jrct_block_page_is_parse_error_and_detected() -> None:
    body = (SYNTHETIC / "block_access-denied_SYNTHETIC.html").read_bytes()
    assert jrct.detect_block(exchange(body)) is not None
    assert jrct.detect_block(exchange(REAL.read_bytes())) is None
    with pytest.raises(ParseError, match="block page"):
        parse_text(body.decode("utf-8"))


def test_jrct_generic_page_without_labels_is_parse_error() -> None:
    body = (SYNTHETIC / "error-500_generic-page_unknown-id_SYNTHETIC.html").read_text("utf-8")
    with pytest.raises(ParseError, match="nor any jRCT label"):
        parse_text(body)


# ------------------------------------------------------------------ fetch through replay


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer(BUNDLED_REPLAY, routes=(*REGISTRY_ROUTES, jrct_routes.ROUTES)) as srv:
        yield srv
    assert srv.errors == []


@pytest.fixture
def http() -> Iterator[Http]:
    client = Http(HttpSettings(max_retries=0, min_interval={}))
    yield client
    client.close()


def fetch_one(server: ReplayServer, http: Http, trial_id: str) -> FetchOutcome:
    (outcome,) = jrct.fetch([trial_id], http, server.base_urls()["jrct"])
    return outcome


def detail_requests(server: ReplayServer) -> list[str]:
    return [r.path for r in server.requests if "detail" in r.path]


def test_jrct_fetch_ok_jRCTs051180190(server: ReplayServer, http: Http) -> None:
    outcome = fetch_one(server, http, JRCT_ID)
    assert outcome.outcome is Outcome.OK and outcome.payload is not None
    assert outcome.payload.body == REAL.read_bytes()
    assert [e.status for e in outcome.evidence] == [200]
    assert jrct.parse(outcome.payload).status == "RECRUITING"
    assert detail_requests(server) == [f"/jrct/latest-detail/{JRCT_ID}"]
    assert all(e.registry == "jrct" for e in http.exchanges)  # the table's policy applied


def test_jrct_unknown_id_http500_generic_page_is_not_found_jRCT2033200431(
    server: ReplayServer, http: Http
) -> None:
    outcome = fetch_one(server, http, REVIEW_ID)
    assert outcome.outcome is Outcome.NOT_FOUND, outcome.detail
    assert [e.status for e in outcome.evidence] == [500]
    assert "HTTP 500" in outcome.detail and REVIEW_ID in outcome.detail


def test_jrct_http500_that_shows_the_trial_is_registry_down_jRCTs051180190(
    server: ReplayServer, http: Http
) -> None:
    server.add_fault(f"/jrct/latest-detail/{JRCT_ID}", Fault(status=500))  # the real page, 500
    outcome = fetch_one(server, http, JRCT_ID)
    assert outcome.outcome is Outcome.REGISTRY_DOWN
    assert "shows jRCTs051180190" in outcome.detail
    assert [e.status for e in outcome.evidence] == [500]


def test_jrct_http503_is_registry_down_jRCTs051180190(server: ReplayServer, http: Http) -> None:
    server.add_fault("/jrct/", Fault(status=503), times=None)
    outcome = fetch_one(server, http, JRCT_ID)
    assert outcome.outcome is Outcome.REGISTRY_DOWN and outcome.evidence[-1].status == 503


def test_jrct_block_page_is_blocked_and_stops_the_run(server: ReplayServer, http: Http) -> None:
    body = (SYNTHETIC / "block_access-denied_SYNTHETIC.html").read_bytes()
    server.add_fault("/jrct/", Fault(status=200, headers={"Content-Type": HTML_TYPE}, body=body))
    outcomes = jrct.fetch([JRCT_ID, REVIEW_ID], http, server.base_urls()["jrct"])
    assert [o.outcome for o in outcomes] == [Outcome.BLOCKED, Outcome.BLOCKED]
    assert outcomes[0].evidence[0].body == body
    assert outcomes[1].evidence == () and "not sent" in outcomes[1].detail
    assert len(detail_requests(server)) == 1  # stop-after-block (registry table)


def test_jrct_malformed_review_id_jRCT209022038_is_never_sent(
    server: ReplayServer, http: Http
) -> None:
    outcome = fetch_one(server, http, "jRCT209022038")  # printed so in the review
    assert outcome.outcome is Outcome.ID_MALFORMED and server.requests == []


def test_jrct_fetches_only_the_ids_asked_serially_once_each(
    server: ReplayServer, http: Http
) -> None:
    asked = [REVIEW_ID, JRCT_ID, "jrcts051180190", REVIEW_ID]
    outcomes = jrct.fetch(asked, http, server.base_urls()["jrct"])
    assert [o.trial_id for o in outcomes] == [REVIEW_ID, JRCT_ID]
    assert detail_requests(server) == [
        f"/jrct/latest-detail/{REVIEW_ID}",
        f"/jrct/latest-detail/{JRCT_ID}",
    ]


def test_jrct_replay_english_route(server: ReplayServer, http: Http) -> None:
    base = server.base_urls()["jrct"]
    known = requests.get(f"{base}/en-latest-detail/{JRCT_ID}", timeout=5)
    unknown = requests.get(f"{base}/en-latest-detail/{REVIEW_ID}", timeout=5)
    assert known.status_code == 404 and "no English page" in known.text
    assert unknown.status_code == 500 and REVIEW_ID not in unknown.text
    assert server.covers("jrct", JRCT_ID) and not server.covers("jrct", REVIEW_ID)
