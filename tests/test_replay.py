"""The replay server against the bundled set in data/replay: ClinicalTrials.gov API v2 quirks."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from registry_sync.http import Http
from registry_sync.registry_table import ALL_KEYS
from registry_sync.replay import Fault, ReplayServer, ReplaySetError
from registry_sync.settings import HttpSettings

REPLAY = Path(__file__).resolve().parents[1] / "data" / "replay"
RECORDED = REPLAY / "ctgov" / "recorded"
RECONSTRUCTED = REPLAY / "ctgov" / "reconstructed"
STUDIES = "/ctgov/api/v2/studies"


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as sess:
        yield sess


def _ids(page: dict[str, Any]) -> list[str]:
    return [s["protocolSection"]["identificationModule"]["nctId"] for s in page["studies"]]


def _get(sess: requests.Session, srv: ReplayServer, path: str, **params: str) -> requests.Response:
    return sess.get(srv.url + path, params=params, timeout=5)


def test_bundled_set_indexes_recorded_and_reconstructed_studies_only(server: ReplayServer) -> None:
    docs = server.stores["ctgov"].docs
    assert len(docs) == 4 + 15
    assert {"NCT00763412", "NCT03418623", "NCT04207047", "NCT06171568"} <= set(docs)
    # the phelan list pages are skipped: none of their studies enters the set through them
    page = json.loads(next((RECORDED / "list-pages").glob("*page1*")).read_bytes())
    assert not set(_ids(page)) & set(docs)


def test_ctgov_filter_ids_absent_id_is_simply_absent(
    server: ReplayServer, session: requests.Session
) -> None:
    resp = _get(session, server, STUDIES, **{"filter.ids": "NCT03418623,NCT99999999,NCT04207047"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    page = resp.json()
    assert _ids(page) == ["NCT03418623", "NCT04207047"]
    assert "nextPageToken" not in page and "totalCount" not in page


def test_ctgov_filter_ids_pipe_separated(server: ReplayServer, session: requests.Session) -> None:
    ids = "NCT00763412|NCT06171568,NCT04363346"
    page = _get(session, server, STUDIES, **{"filter.ids": ids}).json()
    assert _ids(page) == ["NCT00763412", "NCT06171568", "NCT04363346"]


def test_ctgov_page_size_1_walks_pages_total_count_on_first_only(
    server: ReplayServer, session: requests.Session
) -> None:
    params = {"filter.ids": "NCT00763412,NCT03418623,NCT06171568", "pageSize": "1"}
    pages = [_get(session, server, STUDIES, **params, countTotal="true").json()]
    while "nextPageToken" in pages[-1]:
        token = pages[-1]["nextPageToken"]
        pages.append(_get(session, server, STUDIES, **params, pageToken=token).json())
        assert len(pages) <= 3
    assert [_ids(p) for p in pages] == [["NCT00763412"], ["NCT03418623"], ["NCT06171568"]]
    assert pages[0]["totalCount"] == 3
    assert all("totalCount" not in p for p in pages[1:])


def test_ctgov_total_count_needs_count_total_true(
    server: ReplayServer, session: requests.Session
) -> None:
    page = _get(session, server, STUDIES, pageSize="1").json()
    assert "totalCount" not in page and "nextPageToken" in page


def test_ctgov_page_token_with_other_params_is_400(
    server: ReplayServer, session: requests.Session
) -> None:
    first = _get(session, server, STUDIES, pageSize="1").json()
    resp = _get(session, server, STUDIES, pageSize="2", pageToken=first["nextPageToken"])
    assert resp.status_code == 400
    assert _get(session, server, STUDIES, pageSize="1", pageToken="garbage").status_code == 400


def test_ctgov_page_size_defaults_to_10_and_is_coerced_down_to_1000(
    server: ReplayServer, session: requests.Session
) -> None:
    first = _get(session, server, STUDIES).json()
    assert len(first["studies"]) == 10 and "nextPageToken" in first
    everything = _get(session, server, STUDIES, pageSize="5000").json()
    assert len(everything["studies"]) == 19 and "nextPageToken" not in everything


def test_ctgov_unimplemented_parameter_is_400_not_a_silent_full_list(
    server: ReplayServer, session: requests.Session
) -> None:
    resp = _get(session, server, STUDIES, **{"query.cond": "Phelan-McDermid Syndrome"})
    assert resp.status_code == 400
    assert "query.cond" in resp.text


def test_ctgov_single_study_is_the_recorded_bytes(
    server: ReplayServer, session: requests.Session
) -> None:
    resp = _get(session, server, f"{STUDIES}/NCT00763412", fields="NCTId")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    recorded = RECORDED / "study_NCT00763412_month-precision-start_with-results.json"
    assert resp.content == recorded.read_bytes()  # `fields` is ignored: the full document


def test_ctgov_single_study_lowercase_nct_path(
    server: ReplayServer, session: requests.Session
) -> None:
    resp = _get(session, server, f"{STUDIES}/nct03418623")
    assert resp.status_code == 200
    assert resp.json()["protocolSection"]["identificationModule"]["nctId"] == "NCT03418623"


def test_ctgov_unknown_study_is_404_text_plain(
    server: ReplayServer, session: requests.Session
) -> None:
    resp = _get(session, server, f"{STUDIES}/NCT99999999")
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith("text/plain")


def test_unknown_path_is_404_text_plain(server: ReplayServer, session: requests.Session) -> None:
    resp = _get(session, server, "/jma/jmactr/Default_Eng.aspx")  # retired: never asked
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert resp.text == "the replay set has no routes for jma"
    assert _get(session, server, "/elsewhere/studies").status_code == 404


def test_ctgov_reconstructed_nct04363346_is_served(
    server: ReplayServer, session: requests.Session
) -> None:
    resp = _get(session, server, f"{STUDIES}/NCT04363346")
    assert resp.content == (RECONSTRUCTED / "NCT04363346.json").read_bytes()
    ident = resp.json()["protocolSection"]["identificationModule"]
    assert ident["briefTitle"].startswith("Study of FT516")


def test_ctgov_version_is_404_when_the_set_has_none(
    server: ReplayServer, session: requests.Session
) -> None:
    assert not (REPLAY / "ctgov" / "version.json").exists()
    assert _get(session, server, "/ctgov/api/v2/version").status_code == 404


def test_ctgov_version_served_when_present(tmp_path: Path, session: requests.Session) -> None:
    (tmp_path / "ctgov").mkdir()
    stamp = b'{"apiVersion":"2.0.5","dataTimestamp":"2026-09-04T09:00:06"}'
    (tmp_path / "ctgov" / "version.json").write_bytes(stamp)
    with ReplayServer(tmp_path) as srv:
        resp = _get(session, srv, "/ctgov/api/v2/version")
    assert resp.status_code == 200 and resp.content == stamp


def test_covers_knows_the_set_not_the_registry(server: ReplayServer) -> None:
    assert server.covers("ctgov", "NCT04363346")
    assert server.covers("ctgov", "nct04363346")
    assert not server.covers("ctgov", "NCT99999999")
    assert server.covers("jrct", "jRCTs051180190")  # a recorded page of another trial
    assert not server.covers("jrct", "jRCT2053190081")  # the review's: not in the set
    assert not server.covers("nope", "NCT04363346")


def test_base_urls_point_every_registry_at_the_server(server: ReplayServer) -> None:
    urls = server.base_urls()
    assert list(urls) == list(ALL_KEYS)  # a replay run never reaches a live registry
    assert urls["ctgov"] == f"{server.url}/ctgov/api/v2"
    assert urls["jma"] == f"{server.url}/jma"  # no routes: 404 under it
    assert server.url.startswith("http://127.0.0.1:")


def test_duplicate_nct_id_in_a_set_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "ctgov" / "a").mkdir(parents=True)
    (tmp_path / "ctgov" / "b").mkdir()
    shutil.copy(RECONSTRUCTED / "NCT04363346.json", tmp_path / "ctgov" / "a")
    shutil.copy(RECONSTRUCTED / "NCT04363346.json", tmp_path / "ctgov" / "b")
    with pytest.raises(ReplaySetError, match="NCT04363346 is in the replay set twice"):
        ReplayServer(tmp_path)


def test_missing_replay_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReplaySetError, match="does not exist"):
        ReplayServer(tmp_path / "nowhere")


def test_fault_fires_times_then_stops(server: ReplayServer, session: requests.Session) -> None:
    server.add_fault(f"{STUDIES}/NCT03418623", Fault(status=503, body=b"busy"), times=2)
    statuses = [_get(session, server, f"{STUDIES}/NCT03418623").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_faults_are_fifo_and_match_by_prefix(
    server: ReplayServer, session: requests.Session
) -> None:
    server.add_fault(STUDIES, Fault(status=429, headers={"Retry-After": "2"}))
    server.add_fault(STUDIES, Fault(status=502))
    assert _get(session, server, "/ctgov/api/v2/version").status_code == 404  # no prefix match
    first = _get(session, server, f"{STUDIES}/NCT03418623")
    assert (first.status_code, first.headers["Retry-After"]) == (429, "2")
    assert _get(session, server, STUDIES, **{"filter.ids": "NCT03418623"}).status_code == 502
    assert _get(session, server, STUDIES, **{"filter.ids": "NCT03418623"}).status_code == 200


def test_fault_headers_replace_the_normal_ones(
    server: ReplayServer, session: requests.Session
) -> None:
    server.add_fault(STUDIES, Fault(headers={"content-type": "text/html"}, body=b"<html>"))
    resp = _get(session, server, f"{STUDIES}/NCT03418623")
    assert resp.headers["Content-Type"] == "text/html"
    assert resp.content == b"<html>"


def test_requests_are_recorded_with_user_agent(server: ReplayServer) -> None:
    http = Http(HttpSettings(min_interval={}))
    try:
        http.get(f"{server.base_urls()['ctgov']}/studies", params={"filter.ids": "NCT03418623"})
    finally:
        http.close()
    [seen] = server.requests
    assert (seen.method, seen.path) == ("GET", STUDIES)
    assert seen.query == {"filter.ids": "NCT03418623"}
    assert seen.header("user-agent") == HttpSettings().user_agent
    assert seen.header("Accept") == "application/json"


def test_sources_md_names_every_replay_file_with_its_sha256() -> None:
    """Every payload of the replay set is listed, with its sha256, in data/replay/SOURCES.md or
    in its registry folder's own SOURCES.md (a `| `name` | `sha256` |` row)."""
    listed: dict[str, str] = {}
    for sources in REPLAY.rglob("SOURCES.md"):
        for name, digest in re.findall(
            r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|", sources.read_text(), re.M
        ):
            assert listed.setdefault(Path(name).name, digest) == digest, f"{name}: two sha256s"
    files = [
        p for p in REPLAY.rglob("*") if p.is_file() and p.parent != REPLAY and p.suffix != ".md"
    ]
    assert sorted(p.name for p in files if p.name not in listed) == []
    for path in files:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == listed[path.name], path
