"""The real `Http` client against the replay server's faults: retries, typed errors, politeness."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from registry_sync.errors import BlockedError, FetchError, NotFoundError, TransientFetchError
from registry_sync.http import Http
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

    def make(clock: Callable[[], float] | None = None, **settings: object) -> Http:
        options: dict[str, object] = {"backoff_base": 0.0, "min_interval": {}, **settings}
        extra = {} if clock is None else {"clock": clock}
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


def test_throttle_sleeps_the_interval_between_two_quick_requests_to_one_host(
    server: ReplayServer, make_http: MakeHttp, sleeps: list[float]
) -> None:
    now = [1000.0]
    http = make_http(clock=lambda: now[0], min_interval={"ctgov": 2.0})
    http.get(_study_url(server), registry="ctgov")
    now[0] += 0.5
    http.get(_study_url(server), registry="ctgov")
    assert sleeps == [pytest.approx(1.5)]
    now[0] += 10.0  # long after: no wait
    http.get(_study_url(server), registry="ctgov")
    assert len(sleeps) == 1


def test_throttle_same_instant_waits_the_full_interval(
    server: ReplayServer, make_http: MakeHttp, sleeps: list[float]
) -> None:
    http = make_http(clock=lambda: 50.0, min_interval={"ctgov": 2.0})
    for _ in range(3):
        http.get(_study_url(server), registry="ctgov")
    assert sleeps == [pytest.approx(2.0), pytest.approx(4.0)]  # queued one interval apart


def test_throttle_different_hosts_do_not_wait_on_each_other(
    server: ReplayServer, make_http: MakeHttp, sleeps: list[float]
) -> None:
    http = make_http(clock=lambda: 50.0, min_interval={"ctgov": 2.0})
    by_ip = _study_url(server)
    by_name = by_ip.replace("127.0.0.1", "localhost")
    http.get(by_ip, registry="ctgov")
    http.get(by_name, registry="ctgov")
    assert sleeps == []
    assert len(server.requests) == 2


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
