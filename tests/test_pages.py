"""The one-page-per-trial kit: `decode_text` on real recorded pages, and `fetch_each`'s
outcome mapping through the real `Http` client against the loopback replay server.

Real pages are read from data/replay/*/recorded/ (provenance in data/replay/SOURCES.md) and
served through replay faults at the paths their registries use; bodies built here (challenge
pages, not-found shells, oversized answers) are synthetic and named so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry_sync.charset import codec_for, decode_text, header_charset, meta_charset
from registry_sync.http import Http
from registry_sync.model import Exchange, FetchOutcome, Outcome
from registry_sync.registries import ctgov, pages
from registry_sync.registries.pages import Post, fetch_each
from registry_sync.registry_table import REGISTRY_TABLE
from registry_sync.replay import Fault, ReplayServer
from registry_sync.settings import HttpSettings

REPLAY = Path(__file__).resolve().parents[1] / "data" / "replay"
UMIN_SEARCH = REPLAY / "umin/recorded/index_search_ctrno_UMIN000027821_ja_2020-03.html"
UMIN_VIEW = REPLAY / "umin/recorded/ctr_view_recptno_R000031865_ja_2020-03.html"
JRCT_PAGE = REPLAY / "jrct/recorded/latest-detail_jRCTs051180190_ja_2020-03.html"
CHICTR_SEARCH = REPLAY / "chictr/recorded/searchproj_results_KRAS-G12C_2025-11.html"
CHICTR_PAGE = REPLAY / "chictr/recorded/showproj_ChiCTR2400084905_bilingual_2025-11.html"

JRCT_ID = "jRCTs051180190"
HTML = {"Content-Type": "text/html; charset=utf-8"}
# synthetic pages, in the manner of a WAF challenge and a registry's "no such trial" shell
SYNTHETIC_CHALLENGE = b"<html><title>Just a moment</title><!-- synthetic challenge --></html>"
SYNTHETIC_NOT_FOUND = b"<html><p>synthetic: no trial with that number</p></html>"


# ---------------------------------------------------------------------------- decode_text


def test_umin_page_declares_ja_then_utf8_and_decodes_as_utf8() -> None:
    # UMIN's 2020 pages open with `<meta charset="ja">` (not an encoding), then an
    # http-equiv Content-Type declaring UTF-8: the unknown label is skipped.
    for path in (UMIN_SEARCH, UMIN_VIEW):
        body = path.read_bytes()
        assert b'<meta charset="ja"/>' in body[:4096]
        assert meta_charset(body) == "utf-8"
        text = decode_text(body, "text/html")
        assert text == body.decode("utf-8") and "\ufffd" not in text
    assert "UMIN000027821" in decode_text(UMIN_SEARCH.read_bytes(), "")
    assert "試験" in decode_text(UMIN_VIEW.read_bytes(), "text/html")


def test_umin_page_served_as_shift_jis_decodes_by_the_header() -> None:
    # synthetic: the real page's text re-encoded to Shift_JIS and served with that header;
    # the header outranks the page's own (now wrong) UTF-8 declaration.
    text = UMIN_SEARCH.read_bytes().decode("utf-8")
    sjis = text.encode("cp932", errors="strict")
    assert decode_text(sjis, "text/html; charset=Shift_JIS") == text
    assert decode_text(sjis, 'text/html; charset="shift_jis"') == text


def test_jrct_page_decodes_from_its_meta_charset() -> None:
    body = JRCT_PAGE.read_bytes()
    assert meta_charset(body) == "utf-8"
    text = decode_text(body, "text/html")
    assert text == body.decode("utf-8") and JRCT_ID in text and "臨床" in text


@pytest.mark.parametrize("path", [CHICTR_SEARCH, CHICTR_PAGE], ids=["search", "detail"])
def test_chictr_pages_decode_as_utf8(path: Path) -> None:
    body = path.read_bytes()
    assert meta_charset(body) == "utf-8"
    text = decode_text(body, "text/html")
    assert text == body.decode("utf-8") and "ChiCTR" in text and "试验" in text


def test_unknown_header_charset_falls_back_to_the_meta() -> None:
    body = JRCT_PAGE.read_bytes()
    assert header_charset("text/html; charset=x-no-such-charset") is None
    assert decode_text(body, "text/html; charset=x-no-such-charset") == body.decode("utf-8")


def test_no_known_charset_anywhere_is_utf8() -> None:
    body = '<meta charset="ja"><p>臨床研究</p>'.encode()  # synthetic
    assert decode_text(body, "text/html; charset=bogus") == body.decode("utf-8")


def test_non_text_codecs_are_not_charsets() -> None:
    assert codec_for("base64") is None and codec_for("rot13") is None
    assert codec_for("Shift_JIS") == "cp932" and codec_for("GB2312") == "gb18030"


def test_bom_outranks_every_label() -> None:
    text = "<p>臨床研究</p>"  # synthetic
    assert decode_text(b"\xef\xbb\xbf" + text.encode(), "text/html; charset=cp932") == text
    assert decode_text(text.encode("utf-16"), "") == text


def test_meta_declaring_utf16_is_read_as_utf8() -> None:
    body = '<meta charset="utf-16"><p>é</p>'.encode()  # synthetic; readable as ASCII
    assert decode_text(body, "") == body.decode("utf-8")


def test_meta_after_the_first_4_kb_is_not_read() -> None:
    text = " " * 5000 + '<meta charset="euc-jp"><p>臨床</p>'  # synthetic
    assert decode_text(text.encode("utf-8"), "") == text


def test_decode_text_never_raises_on_bad_bytes() -> None:
    assert decode_text(b"ok \xff\xfe\xfd", "text/html; charset=utf-8").startswith("ok ")
    assert "\ufffd" in decode_text(b"\x81", "text/html; charset=shift_jis")


def test_pages_reexports_decode_text() -> None:
    assert pages.decode_text is decode_text


# ---------------------------------------------------------------------------- fetch_each


@pytest.fixture
def http() -> Iterator[Http]:
    client = Http(HttpSettings(backoff_base=0.0, min_interval={}), sleep=lambda _: None)
    yield client
    client.close()


def jrct_url(server: ReplayServer) -> pages.UrlFor:
    return lambda trial_id: f"{server.url}/jrct/latest-detail/{trial_id}"


def challenge(exchange: Exchange) -> str | None:
    return "challenge page" if b"synthetic challenge" in exchange.body else None


def no_such_trial(exchange: Exchange) -> bool:
    return b"synthetic: no trial" in exchange.body


def only(outcomes: list[FetchOutcome]) -> FetchOutcome:
    (outcome,) = outcomes
    return outcome


def page_requests(server: ReplayServer) -> list[str]:
    return [r.path for r in server.requests if r.path != "/robots.txt"]


def test_fetch_each_ok_payload_is_the_page_with_its_exchange(
    server: ReplayServer, http: Http
) -> None:
    server.add_fault("/jrct/latest-detail/", Fault(body=JRCT_PAGE.read_bytes(), headers=HTML))
    outcome = only(fetch_each([JRCT_ID], http, registry="jrct", url_for=jrct_url(server)))
    payload = outcome.payload
    assert outcome.outcome is Outcome.OK and payload is not None
    (exchange,) = outcome.evidence
    assert payload.body == JRCT_PAGE.read_bytes() and payload.request_id == exchange.request_id
    assert payload.content_type == "text/html; charset=utf-8"  # kept whole for decode_text
    assert payload.url == outcome.url == f"{server.url}/jrct/latest-detail/{JRCT_ID}"
    assert (payload.registry, payload.trial_id, payload.source) == ("jrct", JRCT_ID, "")
    assert exchange in http.exchanges


def test_fetch_each_normalizes_dedupes_and_skips_malformed(
    server: ReplayServer, http: Http
) -> None:
    server.add_fault("/jrct/latest-detail/", Fault(body=JRCT_PAGE.read_bytes(), headers=HTML))
    outcomes = fetch_each(
        [" jrcts051180190", JRCT_ID, "jRCT05118"], http, registry="jrct", url_for=jrct_url(server)
    )
    assert [(o.trial_id, o.outcome) for o in outcomes] == [
        (JRCT_ID, Outcome.OK),
        ("jRCT05118", Outcome.ID_MALFORMED),
    ]
    assert outcomes[1].evidence == () and page_requests(server) == [
        f"/jrct/latest-detail/{JRCT_ID}"
    ]


def test_fetch_each_challenge_page_is_blocked_and_stops_the_host(
    server: ReplayServer, http: Http
) -> None:
    server.add_fault("/jrct/", Fault(body=SYNTHETIC_CHALLENGE, headers=HTML), times=5)
    outcomes = fetch_each(
        [JRCT_ID, "jRCT1030200001"],
        http,
        registry="jrct",
        url_for=jrct_url(server),
        detect_block=challenge,
    )
    first, second = outcomes
    assert (first.outcome, first.detail) == (Outcome.BLOCKED, "challenge page")
    assert [e.body for e in first.evidence] == [SYNTHETIC_CHALLENGE]
    assert second.outcome is Outcome.BLOCKED and second.detail.startswith("not sent:")
    assert second.evidence == ()
    assert page_requests(server) == [f"/jrct/latest-detail/{JRCT_ID}"], "one request only"


def test_fetch_each_not_found_shell_is_not_found(server: ReplayServer, http: Http) -> None:
    server.add_fault("/jrct/", Fault(body=SYNTHETIC_NOT_FOUND, headers=HTML))
    outcome = only(
        fetch_each(
            [JRCT_ID], http, registry="jrct", url_for=jrct_url(server), is_not_found=no_such_trial
        )
    )
    assert outcome.outcome is Outcome.NOT_FOUND and "jRCT has no jRCTs051180190" in outcome.detail
    assert [e.status for e in outcome.evidence] == [200] and outcome.payload is None


@pytest.mark.parametrize(
    ("fault", "times", "expected", "detail"),
    [
        (Fault(status=404, body=b"synthetic not found"), 1, Outcome.NOT_FOUND, "HTTP 404"),
        (Fault(status=403, body=b"synthetic forbidden"), 1, Outcome.BLOCKED, "HTTP 403"),
        (Fault(status=503, body=b"synthetic busy"), 1, Outcome.REGISTRY_DOWN, "HTTP 503"),
        (Fault(status=400, body=b"synthetic bad request"), 1, Outcome.REGISTRY_DOWN, "HTTP 400"),
    ],
    ids=["404", "403", "503", "400"],
)
def test_fetch_each_http_errors_map_to_outcomes_with_their_exchange(
    fault: Fault,
    times: int,
    expected: Outcome,
    detail: str,
    server: ReplayServer,
    http: Http,
) -> None:
    server.add_fault("/jrct/", fault, times=times)  # jRCT: 1 attempt in the registry table
    outcome = only(fetch_each([JRCT_ID], http, registry="jrct", url_for=jrct_url(server)))
    assert outcome.outcome is expected and detail in outcome.detail
    (exchange,) = outcome.evidence
    assert exchange.status == fault.status and exchange.body == fault.body
    assert len(page_requests(server)) == times


def test_fetch_each_no_answer_is_registry_down(server: ReplayServer, http: Http) -> None:
    server.add_fault("/jrct/", Fault(drop=True), times=2)
    outcome = only(fetch_each([JRCT_ID], http, registry="jrct", url_for=jrct_url(server)))
    assert outcome.outcome is Outcome.REGISTRY_DOWN and "cannot connect" in outcome.detail
    assert [e.status for e in outcome.evidence] == [None]


def test_fetch_each_answer_over_the_cap_is_parse_error(server: ReplayServer) -> None:
    http = Http(HttpSettings(min_interval={}), max_bytes={"jrct": 128 * 1024})
    server.add_fault("/jrct/", Fault(body=JRCT_PAGE.read_bytes(), headers=HTML))  # 282 KB
    outcome = only(fetch_each([JRCT_ID], http, registry="jrct", url_for=jrct_url(server)))
    assert outcome.outcome is Outcome.PARSE_ERROR
    assert outcome.detail.startswith("answer larger than the 0.125 MB cap")
    (exchange,) = outcome.evidence
    assert exchange.truncated and len(exchange.body) == 64 * 1024
    assert len(page_requests(server)) == 1, "not retried"


# ---------------------------------------------------------------------------- two steps

UMIN_ID = "UMIN000027821"
UMIN_SEARCH_PATH = "/umin/cgi-open-bin/ctr/index.cgi"
UMIN_VIEW_PATH = "/umin/cgi-open-bin/ctr/ctr_view.cgi"
_UMIN_VIEW_LINK = re.compile(r'href="(\./ctr_view\.cgi\?recptno=R\d{9})"')


def umin_search(server: ReplayServer) -> pages.UrlFor:
    return lambda t: f"{server.url}{UMIN_SEARCH_PATH}?sort=03&function=04&ctrno={t}"


def umin_view_link(trial_id: str, search: Exchange) -> str | None:
    """A test stand-in for the UMIN adapter's hook: the view link in the trial's result row."""
    text = decode_text(search.body, search.headers.get("Content-Type", ""))
    at = text.find(trial_id)
    match = _UMIN_VIEW_LINK.search(text, at) if at >= 0 else None
    return match.group(1) if match else None


def serve_umin(server: ReplayServer) -> None:
    server.add_fault(UMIN_SEARCH_PATH, Fault(body=UMIN_SEARCH.read_bytes(), headers=HTML))
    server.add_fault(UMIN_VIEW_PATH, Fault(body=UMIN_VIEW.read_bytes(), headers=HTML))


def test_fetch_each_two_steps_search_then_detail(server: ReplayServer, http: Http) -> None:
    serve_umin(server)
    outcome = only(
        fetch_each(
            [UMIN_ID], http, registry="umin", url_for=umin_search(server), next_url=umin_view_link
        )
    )
    assert outcome.outcome is Outcome.OK and outcome.payload is not None
    search, detail = outcome.evidence
    assert search.body == UMIN_SEARCH.read_bytes() and detail.body == UMIN_VIEW.read_bytes()
    assert detail.url == f"{server.url}{UMIN_VIEW_PATH}?recptno=R000031865"  # ./ resolved
    assert outcome.payload.request_id == detail.request_id and outcome.url == detail.url
    assert page_requests(server) == [UMIN_SEARCH_PATH, UMIN_VIEW_PATH]


def test_fetch_each_search_without_a_hit_is_not_found(server: ReplayServer, http: Http) -> None:
    serve_umin(server)  # the real answer for UMIN000027821, asked about another ID
    outcome = only(
        fetch_each(
            ["UMIN000099999"],
            http,
            registry="umin",
            url_for=umin_search(server),
            next_url=umin_view_link,
        )
    )
    assert outcome.outcome is Outcome.NOT_FOUND and outcome.detail.startswith("no hit for")
    assert [e.body for e in outcome.evidence] == [UMIN_SEARCH.read_bytes()]
    assert page_requests(server) == [UMIN_SEARCH_PATH]


def test_fetch_each_block_on_the_detail_step_keeps_both_exchanges(
    server: ReplayServer, http: Http
) -> None:
    server.add_fault(UMIN_SEARCH_PATH, Fault(body=UMIN_SEARCH.read_bytes(), headers=HTML))
    server.add_fault(UMIN_VIEW_PATH, Fault(status=405, body=b"synthetic: not allowed"))
    outcome = only(
        fetch_each(
            [UMIN_ID], http, registry="umin", url_for=umin_search(server), next_url=umin_view_link
        )
    )
    assert outcome.outcome is Outcome.BLOCKED
    assert [e.status for e in outcome.evidence] == [200, 405]


CHICTR_ID = "ChiCTR2500103114"  # a row of the real KRAS search answer
_CHICTR_ROW = r'<td>{}</td>\s*<td>\s*<a\s+href="(showproj\.html\?proj=\d+)"'


def chictr_detail_link(trial_id: str, search: Exchange) -> str | None:
    """A test stand-in for the ChiCTR adapter's hook: the row's `showproj.html?proj=` link."""
    text = decode_text(search.body, search.headers.get("Content-Type", ""))
    match = re.search(_CHICTR_ROW.format(re.escape(trial_id)), text)
    return match.group(1) if match else None


def test_fetch_each_chictr_search_then_challenge(server: ReplayServer, http: Http) -> None:
    server.add_fault("/chictr/searchproj.html", Fault(body=CHICTR_SEARCH.read_bytes()))
    server.add_fault("/chictr/showproj.html", Fault(body=SYNTHETIC_CHALLENGE, headers=HTML))
    outcome = only(
        fetch_each(
            [CHICTR_ID],
            http,
            registry="chictr",
            url_for=lambda t: f"{server.url}/chictr/searchproj.html?regno={t}&btngo=btn",
            next_url=chictr_detail_link,
            detect_block=challenge,
        )
    )
    assert outcome.outcome is Outcome.BLOCKED and outcome.detail == "challenge page"
    search, detail = outcome.evidence
    assert search.body == CHICTR_SEARCH.read_bytes()
    assert detail.url == f"{server.url}/chictr/showproj.html?proj=273375"


def test_fetch_each_posts_a_form_for_a_source(server: ReplayServer, http: Http) -> None:
    server.add_fault("/ictrp/Trial2.aspx", Fault(body=CHICTR_PAGE.read_bytes(), headers=HTML))
    outcome = only(
        fetch_each(
            ["ChiCTR2400084905"],
            http,
            registry="chictr",
            source="ictrp",
            url_for=lambda t: Post(f"{server.url}/ictrp/Trial2.aspx", {"TrialID": t}),
        )
    )
    assert outcome.outcome is Outcome.OK and outcome.source == "ictrp"
    assert outcome.payload is not None and outcome.payload.served_by == "ictrp"
    (exchange,) = outcome.evidence
    assert (exchange.method, exchange.registry) == ("POST", "ictrp")  # ictrp's policy applied
    assert [r.method for r in server.requests if r.path == "/ictrp/Trial2.aspx"] == ["POST"]


# ---------------------------------------------------------------------------- contract


def test_registry_info_is_its_table_row() -> None:
    assert ctgov.REGISTRY.info is REGISTRY_TABLE["ctgov"]
    assert ctgov.REGISTRY.detect_block is ctgov.detect_block  # an HTML block page for JSON
