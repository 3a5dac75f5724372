"""The real `Http` client against loopback servers: retries, typed errors, evidence, policy.

Faults come from the replay server; cookies, POST bodies and a 50 MB stream from tiny
`http.server` handlers in this file; a non-loopback host (politeness is skipped on loopback)
from `SyntheticAdapter`, a `requests` transport that answers from a dict. Every body built
here is synthetic.
"""

from __future__ import annotations

import email.utils
import io
import json
import resource
import threading
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from registry_sync.errors import (
    BlockedError,
    FetchError,
    NotFoundError,
    ResponseTooLargeError,
    TransientFetchError,
)
from registry_sync.http import HEAD_BYTES, Http, HttpResponse, is_loopback
from registry_sync.model import Exchange
from registry_sync.registry_table import MB
from registry_sync.replay import Fault, ReplayServer
from registry_sync.settings import CONTACT, HttpSettings

REPLAY = Path(__file__).resolve().parents[1] / "data" / "replay"
STUDY_PATH = "/ctgov/api/v2/studies/NCT03418623"

MakeHttp = Callable[..., Http]


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_http(sleeps: list[float]) -> Iterator[MakeHttp]:
    """An `Http` that records its sleeps instead of sleeping; no backoff, no throttle."""
    made: list[Http] = []

    def make(
        clock: Callable[[], float] | None = None,
        session_factory: Callable[[], requests.Session] | None = None,
        max_bytes: dict[str, int] | None = None,
        **settings: object,
    ) -> Http:
        options: dict[str, object] = {"backoff_base": 0.0, "min_interval": {}, **settings}
        extra: dict[str, object] = {"max_bytes": max_bytes}
        if clock is not None:
            extra["clock"] = clock
        if session_factory is not None:
            extra["session_factory"] = session_factory
        http = Http(HttpSettings(**options), sleep=sleeps.append, **extra)  # type: ignore[arg-type]
        made.append(http)
        return http

    yield make
    for http in made:
        http.close()


def _study_url(server: ReplayServer, nct_id: str = "NCT03418623") -> str:
    return f"{server.base_urls()['ctgov']}/studies/{nct_id}"


def _nct_id(body: bytes) -> str:
    return str(json.loads(body)["protocolSection"]["identificationModule"]["nctId"])


def test_429_retry_after_seconds_then_success(
    server: ReplayServer, make_http: MakeHttp, sleeps: list[float]
) -> None:
    server.add_fault(STUDY_PATH, Fault(status=429, headers={"Retry-After": "7"}))
    resp = make_http().get(_study_url(server))
    assert resp.status == 200 and _nct_id(resp.body) == "NCT03418623"
    assert sleeps == [7.0]
    assert len(server.requests) == 2


def test_429_retry_after_http_date(
    server: ReplayServer, make_http: MakeHttp, sleeps: list[float]
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    date = email.utils.format_datetime(when, usegmt=True)
    server.add_fault(STUDY_PATH, Fault(status=429, headers={"Retry-After": date}))
    assert make_http().get(_study_url(server)).status == 200
    [slept] = sleeps
    assert 100.0 < slept <= 120.0


def test_retry_after_is_capped_by_retry_after_cap(
    server: ReplayServer, make_http: MakeHttp, sleeps: list[float]
) -> None:
    server.add_fault(STUDY_PATH, Fault(status=503, headers={"Retry-After": "86400"}))
    assert make_http(retry_after_cap=30.0).get(_study_url(server)).status == 200
    assert sleeps == [30.0]


def test_503_once_then_success_after_one_retry(server: ReplayServer, make_http: MakeHttp) -> None:
    server.add_fault(STUDY_PATH, Fault(status=503, body=b"Service Unavailable"))
    http = make_http()
    assert http.get(_study_url(server)).status == 200
    assert len(server.requests) == 2 and http.requests_sent == 2


def test_503_persisting_gives_transient_error_after_max_retries_plus_one(
    server: ReplayServer, make_http: MakeHttp
) -> None:
    server.add_fault(STUDY_PATH, Fault(status=503), times=10)
    with pytest.raises(TransientFetchError) as caught:
        make_http(max_retries=2).get(_study_url(server))
    assert caught.value.status == 503
    assert len(server.requests) == 3


def test_read_timeout_is_transient_and_retried(server: ReplayServer, make_http: MakeHttp) -> None:
    server.add_fault(STUDY_PATH, Fault(delay=1.0), times=2)
    with pytest.raises(TransientFetchError, match="timed out"):
        make_http(read_timeout=0.2, max_retries=1).get(_study_url(server))
    assert len(server.requests) == 2


def test_read_timeout_then_success(server: ReplayServer, make_http: MakeHttp) -> None:
    server.add_fault(STUDY_PATH, Fault(delay=1.0))
    resp = make_http(read_timeout=0.2, max_retries=1).get(_study_url(server))
    assert _nct_id(resp.body) == "NCT03418623"


def test_truncated_body_is_transient(server: ReplayServer, make_http: MakeHttp) -> None:
    server.add_fault(STUDY_PATH, Fault(truncate_to=100), times=2)
    with pytest.raises(TransientFetchError):
        make_http(max_retries=1).get(_study_url(server))
    assert len(server.requests) == 2


def test_dropped_connection_is_transient(server: ReplayServer, make_http: MakeHttp) -> None:
    server.add_fault(STUDY_PATH, Fault(drop=True), times=2)
    with pytest.raises(TransientFetchError, match="cannot connect"):
        make_http(max_retries=1).get(_study_url(server))
    assert len(server.requests) == 2


def test_404_unknown_study_is_not_found_and_not_retried(
    server: ReplayServer, make_http: MakeHttp
) -> None:
    with pytest.raises(NotFoundError) as caught:
        make_http(max_retries=3).get(_study_url(server, "NCT99999999"))
    assert caught.value.status == 404
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [401, 403, 405, 451])
def test_refusal_is_blocked_and_not_retried(
    status: int, server: ReplayServer, make_http: MakeHttp
) -> None:
    server.add_fault(STUDY_PATH, Fault(status=status, body=b"<html>denied</html>"), times=5)
    with pytest.raises(BlockedError) as caught:
        make_http(max_retries=3).get(_study_url(server))
    assert caught.value.status == status
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_followed_and_url_is_the_final_one(
    status: int, server: ReplayServer, make_http: MakeHttp
) -> None:
    target = _study_url(server, "NCT04207047")
    moved = Fault(status=status, headers={"Location": target}, body=b"")
    server.add_fault(STUDY_PATH, moved)
    resp = make_http().get(_study_url(server))
    assert resp.url == target
    assert _nct_id(resp.body) == "NCT04207047"
    assert [r.path for r in server.requests] == [STUDY_PATH, "/ctgov/api/v2/studies/NCT04207047"]


def test_url_keeps_the_query_string_sent(server: ReplayServer, make_http: MakeHttp) -> None:
    url = f"{server.base_urls()['ctgov']}/studies"
    resp = make_http().get(url, params={"filter.ids": "NCT03418623", "pageSize": "5"})
    assert resp.url == f"{url}?filter.ids=NCT03418623&pageSize=5"


def test_user_agent_names_registry_sync_and_a_contact(
    server: ReplayServer, make_http: MakeHttp
) -> None:
    make_http().get(_study_url(server))
    agent = server.requests[0].header("User-Agent") or ""
    assert agent.startswith("registry-sync/")
    assert CONTACT in agent


def test_content_type_header_is_case_insensitive(server: ReplayServer, make_http: MakeHttp) -> None:
    # servers behind HTTP/2 proxies send lower-case header names
    lower = Fault(headers={"content-type": "application/json; charset=utf-8"})
    server.add_fault(STUDY_PATH, lower)
    resp = make_http().get(_study_url(server))
    assert resp.content_type == "application/json"
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"


def test_redirect_loop_is_not_retried(server: ReplayServer, make_http: MakeHttp) -> None:
    url = _study_url(server)
    server.add_fault(STUDY_PATH, Fault(status=302, headers={"Location": STUDY_PATH}), times=100)
    with pytest.raises(FetchError, match="cannot request") as info:
        make_http(max_retries=3).get(url)
    assert not isinstance(info.value, TransientFetchError)
    assert len(server.requests) == 31  # requests' redirect limit (30) + the first, tried once


def test_bad_base_url_is_not_retried(make_http: MakeHttp) -> None:
    http = make_http(max_retries=3)
    with pytest.raises(FetchError, match="cannot request") as info:
        http.get("htp://clinicaltrials.gov/api/v2/studies")
    assert not isinstance(info.value, TransientFetchError)
    assert http.requests_sent == 1


def test_contact_from_the_environment_goes_into_the_user_agent() -> None:
    from registry_sync.settings import Settings

    ua = Settings.from_env({"REGISTRY_SYNC_CONTACT": "mailto:curator@example.org"}).http.user_agent
    assert ua.startswith("registry-sync/") and "+mailto:curator@example.org;" in ua
    assert Settings.from_env({}).http.user_agent.startswith("registry-sync/")


# ---------------------------------------------------------------------------- test servers

FAKE = "https://registry.example"  # a non-loopback host, answered by SyntheticAdapter
Route = tuple[int, dict[str, str], bytes]


class SyntheticAdapter(BaseAdapter):
    """A `requests` transport answering `FAKE` from a dict path -> (status, headers, body);
    404 for anything else. Records what was sent. Nothing leaves the process."""

    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        super().__init__()
        self.routes = dict(routes or {})
        self.sent: list[str] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        path = urlsplit(request.url or "").path
        self.sent.append(path)
        status, headers, body = self.routes.get(path, (404, {}, b"synthetic: not here"))
        resp = requests.Response()
        resp.status_code, resp.reason = status, "synthetic"
        resp.headers = CaseInsensitiveDict(headers)
        resp.raw = io.BytesIO(body)
        resp.url, resp.request = request.url or "", request
        return resp

    def close(self) -> None:
        pass


def synthetic_sessions(adapter: SyntheticAdapter) -> Callable[[], requests.Session]:
    def make() -> requests.Session:
        session = requests.Session()
        session.mount(FAKE, adapter)
        return session

    return make


class _EchoHandler(BaseHTTPRequestHandler):
    """Answers every request with what it received (method, cookie, body) as JSON, and sets
    a session cookie; /robots.txt is 404 (no rules)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._echo(b"")

    def do_POST(self) -> None:
        self._echo(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _echo(self, received: bytes) -> None:
        if self.path == "/robots.txt":
            self._send(404, b"no robots.txt")
            return
        seen = {
            "method": self.command,
            "cookie": self.headers.get("Cookie"),
            "content_type": self.headers.get("Content-Type"),
            "body": received.decode(),
        }
        self._send(200, json.dumps(seen).encode(), {"Set-Cookie": "session=synthetic; Path=/"})

    def _send(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _HugeHandler(BaseHTTPRequestHandler):
    """Streams 50 MB of synthetic bytes with no Content-Length (HTTP/1.0, ends on close),
    generated chunk by chunk so the server side holds only 64 KB."""

    protocol_version = "HTTP/1.0"
    total = 50 * MB

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        chunk = b"x" * (64 * 1024)
        try:
            for _ in range(self.total // len(chunk)):
                self.wfile.write(chunk)
        except OSError:  # the client stopped reading at its cap and closed
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def echo() -> Iterator[str]:
    yield from _serve(_EchoHandler)


@pytest.fixture
def huge() -> Iterator[str]:
    yield from _serve(_HugeHandler)


def _jrct_url(server: ReplayServer, trial_id: str = "jRCTs051180190") -> str:
    return f"{server.url}/jrct/latest-detail/{trial_id}"


def _paths(server: ReplayServer) -> list[str]:
    return [r.path for r in server.requests]


SYNTHETIC_PAGE = b"<html><body>synthetic trial page</body></html>"


# ---------------------------------------------------------------------------- exchanges


def test_answer_is_an_exchange_with_id_method_and_headers(
    server: ReplayServer, make_http: MakeHttp
) -> None:
    http = make_http()
    first = http.get(_study_url(server), registry="ctgov")
    second = http.get(_study_url(server), registry="ctgov")
    assert isinstance(first, Exchange) and HttpResponse is Exchange
    assert (first.method, first.registry, first.status, first.error) == ("GET", "ctgov", 200, None)
    assert first.request_id != second.request_id and len(first.request_id) == 16
    assert first.headers["content-type"] == first.headers["Content-Type"]
    assert first.fetched_at.tzinfo is not None
    assert http.exchanges == [first, second]


def test_failed_attempts_are_kept_with_status_none_and_the_error(
    server: ReplayServer, make_http: MakeHttp
) -> None:
    server.add_fault(STUDY_PATH, Fault(delay=1.0))
    http = make_http(read_timeout=0.2, max_retries=1)
    answer = http.get(_study_url(server))
    timed_out, ok = http.exchanges
    assert timed_out.status is None and timed_out.body == b""
    assert timed_out.error and "timed out" in timed_out.error.lower()
    assert ok is answer and ok.status == 200


def test_error_carries_the_exchange_of_the_failing_answer(
    server: ReplayServer, make_http: MakeHttp
) -> None:
    with pytest.raises(NotFoundError) as caught:
        make_http().get(_study_url(server, "NCT99999999"))
    exchange = caught.value.exchange
    assert exchange is not None and exchange.status == 404 and exchange.body
    assert exchange.url == _study_url(server, "NCT99999999")


def test_error_without_an_answer_carries_an_exchange_without_status(
    server: ReplayServer, make_http: MakeHttp
) -> None:
    server.add_fault(STUDY_PATH, Fault(drop=True))
    with pytest.raises(TransientFetchError) as caught:
        make_http(max_retries=0).get(_study_url(server))
    assert caught.value.exchange is not None and caught.value.exchange.status is None


def test_error_answer_body_is_capped_at_64_kb(server: ReplayServer, make_http: MakeHttp) -> None:
    big_error = b"<html>" + b"e" * (200 * 1024) + b"</html>"  # synthetic error page
    server.add_fault(STUDY_PATH, Fault(status=503, body=big_error))
    with pytest.raises(TransientFetchError) as caught:
        make_http(max_retries=0).get(_study_url(server))
    exchange = caught.value.exchange
    assert exchange is not None and exchange.truncated
    assert exchange.body == big_error[:HEAD_BYTES]


# ---------------------------------------------------------------------------- attempts


@pytest.mark.parametrize(
    ("registry", "attempts"), [("chictr", 1), ("jrct", 1), ("umin", 3), ("", 4)]
)
def test_attempts_come_from_the_registry_table(
    registry: str, attempts: int, server: ReplayServer, make_http: MakeHttp
) -> None:
    server.add_fault("/jrct/", Fault(status=503), times=10)
    with pytest.raises(TransientFetchError):
        make_http().get(_jrct_url(server), registry=registry)
    assert _paths(server).count("/jrct/latest-detail/jRCTs051180190") == attempts


def test_max_retries_setting_overrides_every_registry(
    server: ReplayServer, make_http: MakeHttp
) -> None:
    server.add_fault("/jrct/", Fault(status=503), times=10)
    with pytest.raises(TransientFetchError):
        make_http(max_retries=2).get(_jrct_url(server), registry="chictr")
    assert _paths(server).count("/jrct/latest-detail/jRCTs051180190") == 3


# ---------------------------------------------------------------------------- politeness


def test_loopback_never_waits_even_with_an_interval(
    server: ReplayServer, make_http: MakeHttp, sleeps: list[float]
) -> None:
    http = make_http(clock=lambda: 50.0, min_interval={"ctgov": 2.0})
    for _ in range(3):
        http.get(_study_url(server), registry="ctgov")
    assert sleeps == []
    assert is_loopback("http://127.0.0.2:8/x") and is_loopback("http://[::1]:8/x")
    assert is_loopback("http://localhost/x") and not is_loopback("https://registry.example/x")


def test_throttle_sleeps_the_interval_between_two_quick_requests_to_one_host(
    make_http: MakeHttp, sleeps: list[float]
) -> None:
    adapter = SyntheticAdapter({"/study": (200, {}, b"{}")})
    now = [1000.0]
    http = make_http(
        clock=lambda: now[0],
        min_interval={"ctgov": 2.0},
        session_factory=synthetic_sessions(adapter),
    )
    http.get(f"{FAKE}/study", registry="ctgov")
    now[0] += 0.5
    http.get(f"{FAKE}/study", registry="ctgov")
    assert sleeps == [pytest.approx(1.5)]
    now[0] += 10.0  # long after: no wait
    http.get(f"{FAKE}/study", registry="ctgov")
    assert len(sleeps) == 1


def test_throttle_same_instant_waits_the_full_interval(
    make_http: MakeHttp, sleeps: list[float]
) -> None:
    adapter = SyntheticAdapter({"/study": (200, {}, b"{}")})
    http = make_http(
        clock=lambda: 50.0, min_interval={"ctgov": 2.0}, session_factory=synthetic_sessions(adapter)
    )
    for _ in range(3):
        http.get(f"{FAKE}/study", registry="ctgov")
    assert sleeps == [pytest.approx(2.0), pytest.approx(4.0)]  # queued one interval apart


def test_interval_comes_from_the_table_unless_the_settings_name_the_registry(
    make_http: MakeHttp, sleeps: list[float]
) -> None:
    adapter = SyntheticAdapter({"/study": (200, {}, b"{}")})
    table = make_http(clock=lambda: 50.0, session_factory=synthetic_sessions(adapter))
    table.get(f"{FAKE}/study", registry="ctgov")
    table.get(f"{FAKE}/study", registry="ctgov")
    assert sleeps == [pytest.approx(1.2)]  # REGISTRY_TABLE["ctgov"].min_interval
    sleeps.clear()
    custom = make_http(
        clock=lambda: 50.0,
        min_interval={"ctgov": 0.25},
        session_factory=synthetic_sessions(adapter),
    )
    custom.get(f"{FAKE}/study", registry="ctgov")
    custom.get(f"{FAKE}/study", registry="ctgov")
    assert sleeps == [pytest.approx(0.25)]


def test_throttle_different_hosts_do_not_wait_on_each_other(
    make_http: MakeHttp, sleeps: list[float]
) -> None:
    adapter = SyntheticAdapter({"/study": (200, {}, b"{}")})

    def sessions() -> requests.Session:
        session = synthetic_sessions(adapter)()
        session.mount("https://other.example", adapter)
        return session

    http = make_http(clock=lambda: 50.0, min_interval={"ctgov": 2.0}, session_factory=sessions)
    http.get(f"{FAKE}/study", registry="ctgov")
    http.get("https://other.example/study", registry="ctgov")
    assert sleeps == []


def test_throttle_is_serial_across_threads(make_http: MakeHttp, sleeps: list[float]) -> None:
    adapter = SyntheticAdapter({"/study": (200, {}, b"{}")})
    http = make_http(
        clock=lambda: 50.0, min_interval={"ctgov": 1.0}, session_factory=synthetic_sessions(adapter)
    )
    threads = [
        threading.Thread(target=http.get, args=(f"{FAKE}/study",), kwargs={"registry": "ctgov"})
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(sleeps) == [pytest.approx(float(n)) for n in range(1, 8)]  # one slot each


# ---------------------------------------------------------------------------- cookies


@pytest.mark.parametrize(("registry", "kept"), [("jrct", True), ("ctr", True), ("chictr", False)])
def test_cookie_policy_from_the_table(
    registry: str, kept: bool, echo: str, make_http: MakeHttp
) -> None:
    http = make_http()
    first = json.loads(http.get(f"{echo}/page", registry=registry).body)
    second = json.loads(http.get(f"{echo}/page", registry=registry).body)
    assert first["cookie"] is None
    assert second["cookie"] == ("session=synthetic" if kept else None)


def test_each_registry_has_its_own_cookies(echo: str, make_http: MakeHttp) -> None:
    http = make_http()
    http.get(f"{echo}/page", registry="jrct")
    assert json.loads(http.get(f"{echo}/page", registry="ctr").body)["cookie"] is None


# ---------------------------------------------------------------------------- POST


def test_post_sends_a_form_and_returns_the_exchange(echo: str, make_http: MakeHttp) -> None:
    answer = make_http().post(f"{echo}/search", data={"q": "UMIN000027821", "x": "é"})
    seen = json.loads(answer.body)
    assert answer.method == "POST" and seen["method"] == "POST"
    assert seen["body"] == "q=UMIN000027821&x=%C3%A9"
    assert seen["content_type"] == "application/x-www-form-urlencoded"


def test_post_sends_raw_bytes_with_a_content_type(echo: str, make_http: MakeHttp) -> None:
    answer = make_http().post(f"{echo}/api", data=b'{"q": 1}', content_type="application/json")
    seen = json.loads(answer.body)
    assert (seen["body"], seen["content_type"]) == ('{"q": 1}', "application/json")


def test_post_is_retried_like_get(server: ReplayServer, make_http: MakeHttp) -> None:
    server.add_fault("/search", Fault(status=503), times=1)
    server.add_fault("/search", Fault(status=200, body=b"<html>synthetic hits</html>"), times=1)
    answer = make_http().post(f"{server.url}/search", data={"q": "x"}, registry="umin")
    assert answer.body == b"<html>synthetic hits</html>"
    assert [r.method for r in server.requests if r.path == "/search"] == ["POST", "POST"]


# ---------------------------------------------------------------------------- blocks


def test_block_stops_every_further_request_to_that_host(
    server: ReplayServer, make_http: MakeHttp
) -> None:
    server.add_fault("/jrct/latest-detail/jRCTs051180190", Fault(status=403, body=b"denied"))
    http = make_http()
    with pytest.raises(BlockedError, match="HTTP 403"):
        http.get(_jrct_url(server), registry="jrct")
    sent = len(server.requests)
    with pytest.raises(
        BlockedError, match=r"not sent: 127\.0\.0\.1:\d+ blocked us earlier"
    ) as caught:
        http.get(_jrct_url(server, "jRCT1030200001"), registry="jrct")
    assert "(HTTP 403 from" in str(caught.value) and caught.value.exchange is None
    assert len(server.requests) == sent, "nothing reached the server after the block"


def test_block_noted_by_the_caller_stops_the_host(
    server: ReplayServer, make_http: MakeHttp
) -> None:
    server.add_fault("/jrct/", Fault(status=200, body=SYNTHETIC_PAGE), times=1)
    http = make_http()
    page = http.get(_jrct_url(server), registry="jrct", accept="text/html")
    http.note_block(page.url, "challenge page", registry="jrct")
    sent = len(server.requests)
    with pytest.raises(BlockedError, match=r"blocked us earlier in this run \(challenge page\)"):
        http.get(_jrct_url(server, "jRCT1030200001"), registry="jrct")
    assert len(server.requests) == sent


def test_block_is_kept_per_registry_and_ignored_where_the_table_says_so(
    server: ReplayServer, make_http: MakeHttp
) -> None:
    http = make_http()
    http.note_block(f"{server.url}/x", "challenge page", registry="chictr")
    http.note_block(f"{server.url}/x", "challenge page", registry="ctgov")
    server.add_fault("/jrct/", Fault(status=200, body=SYNTHETIC_PAGE), times=1)
    assert http.get(_jrct_url(server), registry="jrct").status == 200  # another registry
    assert http.get(_study_url(server), registry="ctgov").status == 200  # stop_after_block False


def test_block_noted_without_a_registry_stops_every_stopping_registry(
    server: ReplayServer, make_http: MakeHttp
) -> None:
    http = make_http()
    http.note_block(f"{server.url}/x", "challenge page")
    with pytest.raises(BlockedError, match="not sent"):
        http.get(_jrct_url(server), registry="umin")
    assert http.get(_study_url(server), registry="ctgov").status == 200


# ---------------------------------------------------------------------------- size cap


def test_answer_over_the_cap_is_too_large_and_not_retried(
    server: ReplayServer, make_http: MakeHttp
) -> None:
    big = b"[" + b"0," * (300 * 1024) + b"0]"  # synthetic 600 KB JSON
    server.add_fault(STUDY_PATH, Fault(body=big), times=5)
    with pytest.raises(ResponseTooLargeError, match=r"larger than the 0\.25 MB cap") as caught:
        make_http(max_bytes={"ctgov": 256 * 1024}).get(_study_url(server), registry="ctgov")
    exchange = caught.value.exchange
    assert exchange is not None and exchange.truncated and exchange.status == 200
    assert exchange.body == big[:HEAD_BYTES]  # Content-Length said too big: the head only
    assert caught.value.limit == 256 * 1024
    assert len(server.requests) == 1


def test_answer_at_the_cap_is_read_whole(server: ReplayServer, make_http: MakeHttp) -> None:
    body = b"x" * 1000  # synthetic
    server.add_fault(STUDY_PATH, Fault(body=body))
    answer = make_http(max_bytes={"ctgov": 1000}).get(_study_url(server), registry="ctgov")
    assert answer.body == body and not answer.truncated


def test_50_mb_stream_stops_at_the_cap_in_bounded_memory(huge: str, make_http: MakeHttp) -> None:
    http = make_http(max_bytes={"ctgov": 1 * MB})
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLargeError) as caught:
            http.get(f"{huge}/studies", registry="ctgov")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    exchange = caught.value.exchange
    assert exchange is not None and exchange.truncated and len(exchange.body) == HEAD_BYTES
    assert peak < 4 * MB, f"peak Python allocation {peak / MB:.1f} MB"
    assert rss_growth * 1024 < 10 * MB, f"RSS grew {rss_growth / 1024:.1f} MB"


# ---------------------------------------------------------------------------- robots.txt


ROBOTS = "/robots.txt"


def test_robots_disallow_refuses_without_sending(server: ReplayServer, make_http: MakeHttp) -> None:
    rules = b"User-agent: registry-sync\nDisallow: /jrct/latest-detail/\n"  # synthetic
    server.add_fault(ROBOTS, Fault(body=rules, headers={"Content-Type": "text/plain"}))
    http = make_http()
    with pytest.raises(BlockedError) as caught:
        http.get(_jrct_url(server), registry="jrct")
    host = urlsplit(server.url).netloc
    assert str(caught.value) == (
        f"robots.txt of {host} disallows /jrct/latest-detail/jRCTs051180190 for registry-sync"
    )
    assert _paths(server) == [ROBOTS]
    assert [e.url for e in http.exchanges] == [f"{server.url}{ROBOTS}"]


def test_robots_allow_is_fetched_once_per_host(server: ReplayServer, make_http: MakeHttp) -> None:
    rules = b"User-agent: *\nDisallow: /private/\n"  # synthetic
    server.add_fault(ROBOTS, Fault(body=rules))
    server.add_fault("/jrct/", Fault(body=SYNTHETIC_PAGE), times=2)
    http = make_http()
    http.get(_jrct_url(server), registry="jrct")
    http.get(_jrct_url(server, "jRCT1030200001"), registry="jrct")
    assert _paths(server).count(ROBOTS) == 1 and len(server.requests) == 3
    with pytest.raises(BlockedError, match="disallows /private/x"):
        http.get(f"{server.url}/private/x", registry="jrct")


@pytest.mark.parametrize(
    ("status", "allowed"),
    [(401, False), (403, False), (404, True), (410, True), (418, True), (503, True)],
)
def test_robots_status_decides_for_the_whole_host(
    status: int, allowed: bool, server: ReplayServer, make_http: MakeHttp
) -> None:
    server.add_fault(ROBOTS, Fault(status=status, body=b"synthetic"), times=5)
    server.add_fault("/jrct/", Fault(body=SYNTHETIC_PAGE))
    http = make_http(max_retries=0)
    if allowed:
        assert http.get(_jrct_url(server), registry="jrct").status == 200
    else:
        with pytest.raises(BlockedError, match=r"robots\.txt of \S+ disallows"):
            http.get(_jrct_url(server), registry="jrct")
        assert _paths(server) == [ROBOTS]


def test_robots_unanswered_allows_for_this_run(server: ReplayServer, make_http: MakeHttp) -> None:
    server.add_fault(ROBOTS, Fault(drop=True))
    server.add_fault("/jrct/", Fault(body=SYNTHETIC_PAGE))
    assert make_http(max_retries=0).get(_jrct_url(server), registry="jrct").status == 200


def test_robots_not_read_for_an_official_api(server: ReplayServer, make_http: MakeHttp) -> None:
    server.add_fault(ROBOTS, Fault(body=b"User-agent: *\nDisallow: /\n"))
    assert make_http().get(_study_url(server), registry="ctgov").status == 200
    assert ROBOTS not in _paths(server)


def test_robots_crawl_delay_raises_the_interval(make_http: MakeHttp, sleeps: list[float]) -> None:
    rules = b"User-agent: *\nCrawl-delay: 30\nDisallow: /private/\n"  # synthetic
    adapter = SyntheticAdapter({ROBOTS: (200, {}, rules), "/trial": (200, {}, SYNTHETIC_PAGE)})
    http = make_http(clock=lambda: 50.0, session_factory=synthetic_sessions(adapter))
    http.get(f"{FAKE}/trial", registry="umin")  # umin's interval is 1 s
    http.get(f"{FAKE}/trial", registry="umin")
    assert adapter.sent == [ROBOTS, "/trial", "/trial"]
    assert sleeps == [pytest.approx(30.0), pytest.approx(60.0)]
