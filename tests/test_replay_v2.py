"""Replay server v2: every key routed, whole requests for handlers, key spaces and origins,
injectable routes, named faults and `serve-replay --fault`.

All against the loopback server with the real `requests`/`Http` clients; no network.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from click.testing import CliRunner

from helpers import BUNDLED_REPLAY
from registry_sync.cli import main
from registry_sync.http import Http
from registry_sync.model import Origin
from registry_sync.registry_table import ALL_KEYS
from registry_sync.replay import (
    FAULT_KINDS,
    REGISTRY_ROUTES,
    Fault,
    RegistryRoutes,
    ReplayPortInUse,
    ReplayRequest,
    ReplayServer,
    ReplaySetError,
    Reply,
    Route,
    Store,
    StoredDoc,
    parse_fault_spec,
)
from registry_sync.replay.routes import (
    HTML,
    JSON,
    Headers,
    KeySpaces,
    add_doc,
    load_doc,
    parse_cookies,
    text_reply,
)
from registry_sync.settings import HttpSettings

STUDIES = "/ctgov/api/v2/studies"
STUDY = f"{STUDIES}/NCT03418623"
RECORDED_STUDY = BUNDLED_REPLAY / "ctgov" / "recorded" / "study_NCT03418623_phase2_completed.json"
UMIN_RECORDED = BUNDLED_REPLAY / "umin" / "recorded"
UMIN_ID, RECPTNO = "UMIN000027821", "R000031865"


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as sess:
        yield sess


@pytest.fixture
def http_client() -> Iterator[Http]:
    client = Http(HttpSettings(min_interval={}, max_retries=0))
    yield client
    client.close()


# --- every registry key points at the server ---------------------------------------------------


@pytest.mark.parametrize("key", [k for k in ALL_KEYS if k not in {r.key for r in REGISTRY_ROUTES}])
def test_unrouted_registry_answers_404_under_its_own_base_url(
    key: str, server: ReplayServer, session: requests.Session
) -> None:
    base = server.base_urls()[key]
    assert base == f"{server.url}/{key}"
    for resp in (
        session.get(f"{base}/Trial2.aspx", params={"TrialID": "JPRN-jRCTs031190226"}, timeout=5),
        session.post(f"{base}/search", data={"q": "KRAS"}, timeout=5),
    ):
        assert resp.status_code == 404
        assert resp.headers["Content-Type"].startswith("text/plain")
        assert resp.text == f"the replay set has no routes for {key}"


def test_a_key_is_matched_as_a_whole_path_segment(
    server: ReplayServer, session: requests.Session
) -> None:
    # "/ctrx" is not under "/ctr": it is simply not a route
    resp = session.get(f"{server.url}/ctrx/studies", timeout=5)
    assert resp.status_code == 404 and "no routes for" not in resp.text


# --- key spaces and origins ----------------------------------------------------------------------


def test_origin_recorded_or_reconstructed_by_folder(server: ReplayServer) -> None:
    assert server.origin("ctgov", "NCT00763412") is Origin.RECORDED  # ctgov/recorded/
    assert server.origin("ctgov", "NCT04363346") is Origin.RECONSTRUCTED  # ctgov/reconstructed/
    assert server.origin("ctgov", "nct04363346") is Origin.RECONSTRUCTED
    assert server.origin("ctgov", "NCT99999999") is None
    assert server.origin("jrct", "jRCTs051180190") is Origin.RECORDED  # jrct/recorded/
    assert server.origin("jrct", "jRCT2053190081") is None
    assert server.origin("nope", "NCT04363346") is None


def test_reconstructed_folder_counts_at_any_depth_a_file_name_does_not(tmp_path: Path) -> None:
    nested = tmp_path / "ctgov" / "2024" / "reconstructed"
    nested.mkdir(parents=True)
    shutil.copy(RECORDED_STUDY, nested / "NCT03418623.json")
    named = (
        BUNDLED_REPLAY
        / "ctgov"
        / "recorded"
        / "study_NCT00763412_month-precision-start_with-results.json"
    )
    shutil.copy(named, tmp_path / "ctgov" / "reconstructed.json")
    srv = ReplayServer(tmp_path)
    assert srv.origin("ctgov", "NCT03418623") is Origin.RECONSTRUCTED
    assert srv.origin("ctgov", "NCT00763412") is Origin.RECORDED
    assert srv.covers("ctgov", "NCT03418623") and not srv.covers("ctgov", "NCT04363346")


def test_ctgov_store_has_one_key_space_by_nct_id(server: ReplayServer) -> None:
    store = server.stores["ctgov"]
    assert list(store.spaces) == ["nct_id"] and store.primary == "nct_id"
    doc = store.lookup("nct_id", "NCT03418623")
    assert doc is not None and doc.body == RECORDED_STUDY.read_bytes()
    assert doc.path == RECORDED_STUDY and doc.origin is Origin.RECORDED
    assert store.lookup("nct_id", "NCT99999999") is None
    with pytest.raises(KeyError):
        store.lookup("recptno", RECPTNO)  # a space ctgov never declared is a bug, not a miss


def test_an_index_filling_an_undeclared_space_is_an_error(tmp_path: Path) -> None:
    routes = RegistryRoutes(
        key="umin", base_path="/umin", index=lambda folder: {"typo": {}}, routes=(), spaces=("id",)
    )
    with pytest.raises(ReplaySetError, match="undeclared key spaces"):
        ReplayServer(tmp_path, routes=(routes,))


# --- injectable routes: a test-only UMIN-like registry, two pages, two key spaces ---------------

_UMIN_FILE = re.compile(
    r"(?:index_search_ctrno_(?P<umin>UMIN\d{9})|ctr_view_recptno_(?P<r>R\d{9}))"
)


def _index_fake_umin(folder: Path) -> KeySpaces:
    """Search pages by UMIN ID, view pages by receipt number, from the recorded file names."""
    spaces: KeySpaces = {"umin_id": {}, "recptno": {}}
    for path in sorted(folder.rglob("*.html")):
        if match := _UMIN_FILE.match(path.name):
            space, key = ("umin_id", match["umin"]) if match["umin"] else ("recptno", match["r"])
            add_doc(spaces[space], key, load_doc(folder, path))
    return spaces


def _fake_umin_page(space: str, param: str) -> Route:
    def handler(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
        doc = store.lookup(space, request.query.get(param, "").upper())
        return text_reply(404, "no such trial") if doc is None else Reply(200, doc.body, HTML)

    name = "index" if space == "umin_id" else "ctr_view"
    return Route(re.compile(rf"/{name}\.cgi"), handler)


FAKE_UMIN = RegistryRoutes(
    key="umin",
    base_path="/umin/cgi-open-bin/ctr",
    index=_index_fake_umin,
    routes=(_fake_umin_page("umin_id", "ctrno"), _fake_umin_page("recptno", "recptno")),
    spaces=("umin_id", "recptno"),
    normalize=str.upper,
)


def test_injected_routes_serve_umin_search_then_view_page_by_two_key_spaces(
    http_client: Http,
) -> None:
    with ReplayServer(BUNDLED_REPLAY, routes=(FAKE_UMIN,)) as srv:
        base = srv.base_urls()["umin"]
        search = http_client.get(f"{base}/index.cgi", params={"ctrno": UMIN_ID}, accept=HTML)
        link = re.search(rb'href="(\./ctr_view\.cgi\?recptno=R\d{9})"', search.body)
        assert link is not None
        view = http_client.get(urljoin(search.url, link[1].decode()), accept=HTML)
        assert srv.errors == []
    assert (
        search.body
        == (UMIN_RECORDED / "index_search_ctrno_UMIN000027821_ja_2020-03.html").read_bytes()
    )
    assert view.status == 200 and view.content_type == "text/html"
    assert view.body == (UMIN_RECORDED / "ctr_view_recptno_R000031865_ja_2020-03.html").read_bytes()
    assert [r.query for r in srv.requests] == [{"ctrno": UMIN_ID}, {"recptno": RECPTNO}]
    assert srv.covers("umin", "umin000027821") and srv.origin("umin", UMIN_ID) is Origin.RECORDED
    assert not srv.covers("umin", RECPTNO)  # covers/origin read the primary space only
    assert srv.stores["umin"].lookup("recptno", RECPTNO) is not None
    # the default routes are not served: ctgov is now an unrouted key like any other
    assert not srv.covers("ctgov", "NCT03418623")


def test_injected_routes_keep_every_other_key_pointed_at_the_server() -> None:
    with ReplayServer(BUNDLED_REPLAY, routes=(FAKE_UMIN,)) as srv:
        urls = srv.base_urls()
    assert list(urls) == list(ALL_KEYS)
    assert urls["umin"].endswith("/umin/cgi-open-bin/ctr") and urls["ctgov"].endswith("/ctgov")


# --- handlers see the whole request --------------------------------------------------------------


def _echo(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
    seen = {
        "method": request.method,
        "path": request.path,
        "query": dict(request.query),
        "cookies": dict(request.cookies),
        "form": request.form,
        "x_test": request.header("x-TEST"),
        "body": request.body.decode("latin-1"),
    }
    return Reply(200, json.dumps(seen).encode(), JSON)


ECHO = RegistryRoutes(
    key="echo",
    base_path="/echo/v1",
    index=lambda folder: {},
    routes=(Route(re.compile(r"/(?P<rest>.*)"), _echo, frozenset({"GET", "POST", "HEAD"})),),
)


@pytest.fixture
def echo_server(tmp_path: Path) -> Iterator[ReplayServer]:
    with ReplayServer(tmp_path, routes=(ECHO,)) as srv:
        yield srv
    assert srv.errors == []


def test_post_form_cookies_and_headers_reach_the_handler(
    echo_server: ReplayServer, session: requests.Session
) -> None:
    url = f"{echo_server.base_urls()['echo']}/Trial2.aspx?TrialID=JPRN-UMIN000027821"
    form = {"__VIEWSTATE": "abc/+=", "q": "幹細胞"}
    headers = {"X-Test": "yes", "Cookie": 'ASP.NET_SessionId=s1; pref="ja"'}
    seen = session.post(url, data=form, headers=headers, timeout=5).json()
    assert seen["method"] == "POST" and seen["path"] == "/Trial2.aspx"
    assert seen["query"] == {"TrialID": "JPRN-UMIN000027821"}
    assert seen["form"] == form
    assert seen["cookies"] == {"ASP.NET_SessionId": "s1", "pref": "ja"}
    assert seen["x_test"] == "yes"
    [recorded] = echo_server.requests
    assert recorded.path == "/echo/v1/Trial2.aspx"  # recorded: the full path
    assert recorded.cookies == {"ASP.NET_SessionId": "s1", "pref": "ja"}
    assert recorded.body.startswith(b"__VIEWSTATE=abc%2F%2B%3D&q=")
    assert recorded.header("content-type") == "application/x-www-form-urlencoded"


def test_form_is_empty_for_a_json_body(
    echo_server: ReplayServer, session: requests.Session
) -> None:
    url = f"{echo_server.base_urls()['echo']}/search"
    seen = session.post(url, json={"a": "1"}, timeout=5).json()
    assert seen["form"] == {} and seen["body"] == '{"a": "1"}'


def test_form_honours_the_charset_of_the_content_type() -> None:
    body = "q=" + "".join(f"%{b:02X}" for b in "臨床".encode("shift_jis"))
    request = ReplayRequest(
        "POST",
        "/",
        {},
        {"content-type": "application/x-www-form-urlencoded; charset=Shift_JIS"},
        body=body.encode(),
    )
    assert request.form == {"q": "臨床"}


def test_head_sends_headers_only_with_the_get_length(
    server: ReplayServer, session: requests.Session
) -> None:
    resp = session.head(server.url + STUDY, timeout=5)
    assert resp.status_code == 200 and resp.content == b""
    assert int(resp.headers["Content-Length"]) == len(RECORDED_STUDY.read_bytes())
    # keep-alive survives a HEAD: the next GET on the same connection is whole
    assert session.get(server.url + STUDY, timeout=5).content == RECORDED_STUDY.read_bytes()
    assert [r.method for r in server.requests] == ["HEAD", "GET"]


def test_post_to_a_read_only_ctgov_route_is_405_with_allow(
    server: ReplayServer, session: requests.Session
) -> None:
    resp = session.post(server.url + STUDIES, data={"filter.ids": "NCT03418623"}, timeout=5)
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "GET, HEAD"


def test_a_failing_handler_answers_500_and_is_kept(tmp_path: Path) -> None:
    def broken(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
        raise RuntimeError("boom")

    routes = RegistryRoutes("bad", "/bad", lambda folder: {}, (Route(re.compile("/x"), broken),))
    with ReplayServer(tmp_path, routes=(routes,)) as srv:
        resp = requests.get(f"{srv.url}/bad/x", timeout=5)
    assert resp.status_code == 500 and "boom" in resp.text
    assert [str(e) for e in srv.errors] == ["boom"]


def test_headers_look_up_in_any_case_and_keep_names_as_sent() -> None:
    headers = Headers([("User-Agent", "a"), ("ACCEPT", "text/html"), ("user-agent", "b")])
    assert headers["USER-AGENT"] == "b" and headers.get("accept") == "text/html"
    assert sorted(headers) == ["ACCEPT", "user-agent"] and len(headers) == 2


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, {}),
        ("a=1", {"a": "1"}),
        ('a=1; b="two words"; ; junk; c=', {"a": "1", "b": "two words", "c": ""}),
        ("JSESSIONID=x=y", {"JSESSIONID": "x=y"}),
    ],
)
def test_parse_cookies_is_lenient(header: str | None, expected: dict[str, str]) -> None:
    assert parse_cookies(header) == expected


# --- faults --------------------------------------------------------------------------------------


def test_fault_with_times_none_fires_on_every_request(
    server: ReplayServer, session: requests.Session
) -> None:
    server.add_fault(STUDIES, Fault(status=503), times=None)
    statuses = {session.get(server.url + STUDY, timeout=5).status_code for _ in range(5)}
    assert statuses == {503}
    assert [r.left for r in server.faults] == [None]


def test_fault_restricted_to_a_method_leaves_others_alone(
    echo_server: ReplayServer, session: requests.Session
) -> None:
    echo_server.add_fault("/echo/v1/search", Fault(status=403), times=None, method="post")
    url = f"{echo_server.base_urls()['echo']}/search"
    assert session.get(url, timeout=5).status_code == 200
    assert session.post(url, data={"q": "x"}, timeout=5).status_code == 403
    assert session.get(url, timeout=5).status_code == 200


def test_fault_times_below_one_is_refused(server: ReplayServer) -> None:
    with pytest.raises(ValueError, match="times must be at least 1"):
        server.add_fault(STUDIES, Fault(status=503), times=0)


@pytest.mark.parametrize(
    ("kind", "status", "body_check"),
    [
        ("503", 503, b"Service Unavailable"),
        ("429", 429, b"Too Many Requests"),
        ("403", 403, b"Forbidden"),
        ("405", 405, b"Method Not Allowed"),
        ("404", 404, b"Not Found"),
        ("empty", 200, b""),
    ],
)
def test_fault_kinds_answer_their_status(
    kind: str, status: int, body_check: bytes, server: ReplayServer, session: requests.Session
) -> None:
    server.add_fault(STUDIES, FAULT_KINDS[kind])
    resp = session.get(server.url + STUDY, timeout=5)
    assert (resp.status_code, resp.content) == (status, body_check)
    if status != 200:
        assert resp.headers["Content-Type"].startswith("text/plain")  # not the JSON type
    assert session.get(server.url + STUDY, timeout=5).status_code == 200


def test_fault_kind_429_says_retry_after_1(server: ReplayServer, session: requests.Session) -> None:
    server.add_fault(STUDIES, FAULT_KINDS["429"])
    assert session.get(server.url + STUDY, timeout=5).headers["Retry-After"] == "1"


def test_fault_kind_html_block_is_a_synthetic_block_page(
    server: ReplayServer, session: requests.Session
) -> None:
    server.add_fault(STUDIES, FAULT_KINDS["html-block"])
    resp = session.get(server.url + STUDY, timeout=5)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    assert b"Access Denied" in resp.content and b"synthetic" in resp.content


def test_fault_kind_truncate_sends_half_the_announced_body(server: ReplayServer) -> None:
    server.add_fault(STUDIES, FAULT_KINDS["truncate"])
    full = RECORDED_STUDY.read_bytes()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request("GET", STUDY)
        resp = conn.getresponse()
        assert int(resp.headers["Content-Length"]) == len(full)
        with pytest.raises(http.client.IncompleteRead) as cut:
            resp.read()
    finally:
        conn.close()
    assert cut.value.partial == full[: len(full) // 2]


def test_fault_kind_drop_closes_without_an_answer(
    server: ReplayServer, session: requests.Session
) -> None:
    server.add_fault(STUDIES, FAULT_KINDS["drop"])
    with pytest.raises(requests.ConnectionError):
        session.get(server.url + STUDY, timeout=5)


def test_fault_kind_timeout_outwaits_any_read_timeout() -> None:
    # not served here: a 120 s sleep would outlive the test; `Fault(delay=...)` is tested live
    # in test_http.py (test_read_timeout_is_transient_and_retried)
    assert FAULT_KINDS["timeout"] == Fault(delay=120.0)


@pytest.mark.parametrize(
    ("spec", "prefix", "kind", "times"),
    [
        ("/ctgov/api/v2/studies=503:2", "/ctgov/api/v2/studies", "503", 2),
        ("/ctgov=html-block", "/ctgov", "html-block", None),
        (
            "/ctgov/api/v2/studies?filter.ids=NCT03418623=429",
            "/ctgov/api/v2/studies?filter.ids=NCT03418623",
            "429",
            None,
        ),
    ],
)
def test_parse_fault_spec(spec: str, prefix: str, kind: str, times: int | None) -> None:
    parsed = parse_fault_spec(spec)
    assert (parsed.prefix, parsed.kind, parsed.times) == (prefix, kind, times)
    assert parsed.fault is FAULT_KINDS[kind]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("/ctgov=502", "unknown fault kind '502'"),
        ("/ctgov=503:0", "positive integer"),
        ("/ctgov=503:two", "positive integer"),
        ("/ctgov", "expected PATH_PREFIX=KIND"),
        ("ctgov=503", "starting with /"),
    ],
)
def test_bad_fault_spec_names_itself_and_the_kinds(spec: str, problem: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_fault_spec(spec)
    assert repr(spec) in str(err.value) and problem in str(err.value)
    assert "known kinds: 503, 429, timeout, drop, truncate" in str(err.value)


def test_pending_faults_describe_themselves(server: ReplayServer) -> None:
    server.add_fault(STUDIES, FAULT_KINDS["503"], times=2)
    server.add_fault("/jrct", Fault(status=418, delay=0.5), times=None, method="POST")
    assert [r.describe() for r in server.faults] == [
        "/ctgov/api/v2/studies -> 503, 2 more time(s)",
        "POST /jrct -> 418 delay 0.5s, every request",
    ]


# --- serve-replay -------------------------------------------------------------------------------


def test_serve_replay_applies_cli_faults_and_prints_them(monkeypatch: pytest.MonkeyPatch) -> None:
    statuses: list[int] = []

    def one_check_then_stop(self: ReplayServer, seconds: float | None = None) -> None:
        for _ in range(3):
            statuses.append(requests.get(self.url + STUDY, timeout=5).status_code)

    monkeypatch.setattr(ReplayServer, "wait", one_check_then_stop)
    args = ["serve-replay", str(BUNDLED_REPLAY), "--port", "0", "--fault", f"{STUDIES}=503:2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert statuses == [503, 503, 200]
    exports = result.stdout.splitlines()  # stdout holds the export lines only
    assert [line.split("=")[0] for line in exports] == [
        f"export REGISTRY_SYNC_{key.upper()}_URL" for key in ALL_KEYS
    ]
    assert "faults: 1\n  /ctgov/api/v2/studies -> 503, 2 more time(s)\n" in result.stderr


def test_serve_replay_without_faults_says_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ReplayServer, "wait", lambda self, seconds=None: None)
    result = CliRunner().invoke(main, ["serve-replay", str(BUNDLED_REPLAY), "--port", "0"])
    assert result.exit_code == 0 and "faults: none" in result.stderr


def test_serve_replay_bad_fault_is_a_usage_error() -> None:
    args = ["serve-replay", str(BUNDLED_REPLAY), "--fault", "/ctgov=teapot"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "'/ctgov=teapot'" in result.output and "html-block" in result.output


def test_serve_replay_on_a_busy_port_is_one_line_and_exit_4() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            main, ["serve-replay", str(BUNDLED_REPLAY), "--port", str(port)]
        )
    assert result.exit_code == 4
    assert result.output.startswith(f"Error: port {port} is in use: ")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_replay_server_busy_port_is_a_typed_error(server: ReplayServer) -> None:
    with pytest.raises(ReplayPortInUse, match=f"port {server.port} is in use"):
        ReplayServer(BUNDLED_REPLAY, port=server.port).start()


def test_serve_replay_help_lists_every_fault_kind() -> None:
    result = CliRunner().invoke(main, ["serve-replay", "--help"], terminal_width=400)
    flat = " ".join(result.output.split())
    assert all(kind in flat for kind in FAULT_KINDS)


def test_stored_doc_is_what_the_handlers_get(server: ReplayServer) -> None:
    doc = server.stores["ctgov"].trials["NCT04363346"]
    assert isinstance(doc, StoredDoc) and doc.origin is Origin.RECONSTRUCTED
