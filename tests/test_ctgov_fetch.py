"""ClinicalTrials.gov fetch: the real `Http` client against the loopback replay server.

The replay set is a tmp copy of the real study documents in tests/fixtures/ctgov/; faults
(503, 403, cut bodies) are injected by the server, never by mocking the client.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from registry_sync.http import Http
from registry_sync.model import FetchOutcome, Outcome, RawPayload
from registry_sync.registries import ctgov
from registry_sync.registry_table import REGISTRY_TABLE
from registry_sync.replay import Fault, ReplayServer
from registry_sync.replay.ctgov import projected
from registry_sync.settings import HttpSettings

FIXTURES = Path(__file__).parent / "fixtures"
REAL = FIXTURES / "ctgov"
SYNTHETIC_VERSION = FIXTURES / "synthetic" / "ctgov" / "version.json"
STUDIES = "/ctgov/api/v2/studies"
# The four real single-study documents in the replay set.
IN_SET = ("NCT00763412", "NCT03418623", "NCT04207047", "NCT06171568")
ABSENT = "NCT99999999"
MODULES = {f.split(".")[1] for f in ctgov.FIELDS if f.count(".") == 1}


@pytest.fixture
def replay_root(tmp_path: Path) -> Path:
    root = tmp_path / "replay"
    (root / "ctgov").mkdir(parents=True)
    for path in REAL.glob("*.json"):
        shutil.copyfile(path, root / "ctgov" / path.name)
    return root


@pytest.fixture
def server(replay_root: Path) -> Iterator[ReplayServer]:
    with ReplayServer(replay_root) as srv:
        yield srv
    assert srv.errors == []


@pytest.fixture
def http() -> Iterator[Http]:
    client = Http(HttpSettings(backoff_base=0.0, max_retries=1, min_interval={}))
    yield client
    client.close()


def base(server: ReplayServer) -> str:
    return server.base_urls()["ctgov"]


def by_id(outcomes: list[FetchOutcome]) -> dict[str, FetchOutcome]:
    result = {o.trial_id: o for o in outcomes}
    assert len(result) == len(outcomes), "one outcome per trial"
    return result


def study_requests(server: ReplayServer) -> list[dict[str, str]]:
    return [dict(r.query) for r in server.requests if r.path == STUDIES]


def recorded_study(nct_id: str) -> dict[str, object]:
    (path,) = REAL.glob(f"study_{nct_id}_*.json")
    study: dict[str, object] = json.loads(path.read_bytes())
    return study


def test_ctgov_fetch_batches_ids_batch_size_2(server: ReplayServer, http: Http) -> None:
    ids = ["NCT00763412", "NCT03418623", "NCT04207047"]
    outcomes = by_id(ctgov.fetch(ids, http, base(server), batch_size=2))
    assert {o.outcome for o in outcomes.values()} == {Outcome.OK}
    sent = study_requests(server)
    assert [q["filter.ids"] for q in sent] == ["NCT00763412,NCT03418623", "NCT04207047"]
    assert all(q["pageSize"] == "2" and q["format"] == "json" for q in sent)
    assert all(q["fields"] == ",".join(ctgov.FIELDS) for q in sent)
    assert all("pageToken" not in q for q in sent)


def test_ctgov_fetch_payload_is_the_study_with_provenance(server: ReplayServer, http: Http) -> None:
    (outcome,) = ctgov.fetch(["NCT04207047"], http, base(server))
    payload = outcome.payload
    assert outcome.outcome is Outcome.OK and isinstance(payload, RawPayload)
    # the study as the API gives it for our `fields`: only the branches parse() reads, and of
    # the sites only their countries (the replay server projects as the API does)
    study = recorded_study("NCT04207047")
    proto: dict[str, Any] = study["protocolSection"]  # type: ignore[assignment]
    sites = proto["contactsLocationsModule"]["locations"]
    wanted = {
        "hasResults": study["hasResults"],
        "protocolSection": {
            **{k: v for k, v in proto.items() if k in MODULES},
            "contactsLocationsModule": {"locations": [{"country": s["country"]} for s in sites]},
        },
    }
    assert json.loads(payload.body) == wanted
    assert (
        payload.body
        == json.dumps(wanted, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    )
    assert "geoPoint" in json.dumps(proto) and b"geoPoint" not in payload.body
    assert (
        payload.url.startswith(f"{base(server)}/studies?")
        and "filter.ids=NCT04207047" in payload.url
    )
    assert outcome.url == payload.url and payload.fetched_at.tzinfo is not None
    assert payload.container_sha256 is not None and payload.container_sha256 != payload.sha256
    record = ctgov.parse(payload)
    assert record.status == "UNKNOWN" and record.last_known_status == "ACTIVE_NOT_RECRUITING"


def test_ctgov_fetch_container_sha256_is_the_page_body(server: ReplayServer, http: Http) -> None:
    outcomes = ctgov.fetch(["NCT00763412", "NCT03418623"], http, base(server))
    (page_url,) = {o.url for o in outcomes}
    assert page_url is not None
    page = http.get(page_url, registry="ctgov").body
    shas = {o.payload.container_sha256 for o in outcomes if o.payload}
    assert shas == {hashlib.sha256(page).hexdigest()}


def test_ctgov_fetch_follows_next_page_token(server: ReplayServer, http: Http) -> None:
    ids = ["NCT00763412", "NCT03418623", "NCT04207047"]
    outcomes = by_id(ctgov.fetch(ids, http, base(server), batch_size=3, page_size=1))
    assert {o.outcome for o in outcomes.values()} == {Outcome.OK}
    sent = study_requests(server)
    assert len(sent) == 3
    assert "pageToken" not in sent[0] and all("pageToken" in q for q in sent[1:])
    same = [{k: v for k, v in q.items() if k != "pageToken"} for q in sent]
    assert same == [same[0]] * 3, "every page repeats the first page's parameters"
    assert len({o.url for o in outcomes.values()}) == 3, "each payload names its own page"


def test_ctgov_fetch_absent_id_is_not_found(server: ReplayServer, http: Http) -> None:
    outcomes = by_id(ctgov.fetch(["NCT03418623", ABSENT], http, base(server)))
    assert outcomes["NCT03418623"].outcome is Outcome.OK
    missing = outcomes[ABSENT]
    assert missing.outcome is Outcome.NOT_FOUND and missing.payload is None
    assert missing.url is not None and missing.url in missing.detail
    assert "filter.ids=NCT03418623%2CNCT99999999" in missing.detail


def test_ctgov_fetch_normalizes_and_dedupes_ids(server: ReplayServer, http: Http) -> None:
    outcomes = ctgov.fetch([" nct03418623", "NCT03418623", "ＮＣＴ03418623"], http, base(server))
    assert [(o.trial_id, o.outcome) for o in outcomes] == [("NCT03418623", Outcome.OK)]
    assert [q["filter.ids"] for q in study_requests(server)] == ["NCT03418623"]


def test_ctgov_fetch_malformed_id_is_not_sent(server: ReplayServer, http: Http) -> None:
    outcomes = by_id(ctgov.fetch(["NCT0420704", "NCT04207047"], http, base(server)))
    assert outcomes["NCT0420704"].outcome is Outcome.ID_MALFORMED
    assert outcomes["NCT04207047"].outcome is Outcome.OK
    assert [q["filter.ids"] for q in study_requests(server)] == ["NCT04207047"]


def test_ctgov_fetch_persistent_503_is_registry_down(server: ReplayServer, http: Http) -> None:
    server.add_fault(STUDIES, Fault(status=503, body=b"Service Unavailable"), times=2)
    outcomes = ctgov.fetch(["NCT03418623", ABSENT], http, base(server))
    assert {o.outcome for o in outcomes} == {Outcome.REGISTRY_DOWN}
    assert all("HTTP 503" in o.detail for o in outcomes)
    assert len(study_requests(server)) == 2, "Http retried once, then gave up"


def test_ctgov_fetch_one_503_is_retried_to_ok(server: ReplayServer, http: Http) -> None:
    server.add_fault(STUDIES, Fault(status=503), times=1)
    outcomes = by_id(ctgov.fetch(["NCT03418623", ABSENT], http, base(server)))
    assert outcomes["NCT03418623"].outcome is Outcome.OK
    assert outcomes[ABSENT].outcome is Outcome.NOT_FOUND


def test_ctgov_fetch_403_is_blocked_not_retried(server: ReplayServer, http: Http) -> None:
    server.add_fault(STUDIES, Fault(status=403, body=b"Forbidden"), times=5)
    outcomes = ctgov.fetch(["NCT03418623", "NCT04207047"], http, base(server))
    assert {o.outcome for o in outcomes} == {Outcome.BLOCKED}
    assert all("HTTP 403" in o.detail for o in outcomes)
    assert len(study_requests(server)) == 1


def test_ctgov_fetch_failure_stays_in_its_batch(server: ReplayServer, http: Http) -> None:
    server.add_fault(STUDIES, Fault(status=403), times=1)  # only the first batch's request
    ids = ["NCT00763412", "NCT03418623", "NCT04207047"]
    outcomes = by_id(ctgov.fetch(ids, http, base(server), batch_size=2))
    assert outcomes["NCT00763412"].outcome is Outcome.BLOCKED
    assert outcomes["NCT03418623"].outcome is Outcome.BLOCKED
    assert outcomes["NCT04207047"].outcome is Outcome.OK


def test_ctgov_fetch_cut_connection_is_registry_down(server: ReplayServer, http: Http) -> None:
    # the server announces the full Content-Length and sends 500 bytes, on both attempts
    server.add_fault(STUDIES, Fault(truncate_to=500), times=2)
    outcomes = ctgov.fetch(["NCT03418623"], http, base(server))
    assert [o.outcome for o in outcomes] == [Outcome.REGISTRY_DOWN]


def test_ctgov_fetch_invalid_json_page_is_registry_down(server: ReplayServer, http: Http) -> None:
    # synthetic: a complete HTTP 200 whose body is a real page cut at 4,000 bytes
    cut = REAL / "list_query-cond-phelan_pageSize5_page1_with-nextPageToken_2026-08-11.json"
    server.add_fault(STUDIES, Fault(body=cut.read_bytes()[:4000]), times=1)
    outcomes = ctgov.fetch(["NCT03418623", ABSENT], http, base(server))
    assert {o.outcome for o in outcomes} == {Outcome.REGISTRY_DOWN}
    assert all(o.detail.startswith(f"invalid JSON from {base(server)}/studies?") for o in outcomes)


def test_ctgov_fetch_page_without_studies_is_registry_down(
    server: ReplayServer, http: Http
) -> None:
    server.add_fault(STUDIES, Fault(body=b'{"totalCount": 1}'), times=1)
    (outcome,) = ctgov.fetch(["NCT03418623"], http, base(server))
    assert outcome.outcome is Outcome.REGISTRY_DOWN and "studies" in outcome.detail


def test_ctgov_fetch_second_page_failure_keeps_first_page(server: ReplayServer, http: Http) -> None:
    ids = ["NCT00763412", "NCT03418623", "NCT04207047"]
    first = {
        "filter.ids": ",".join(ids),
        "fields": ",".join(ctgov.FIELDS),
        "pageSize": "1",
        "format": "json",
    }
    # only requests that carry a pageToken after the first page's exact parameters
    server.add_fault(f"{STUDIES}?{urlencode(first)}&pageToken=", Fault(status=503), times=2)
    outcomes = by_id(ctgov.fetch(ids, http, base(server), batch_size=3, page_size=1))
    assert outcomes["NCT00763412"].outcome is Outcome.OK
    assert outcomes["NCT03418623"].outcome is Outcome.REGISTRY_DOWN
    assert outcomes["NCT04207047"].outcome is Outcome.REGISTRY_DOWN


def test_ctgov_registry_fetch_takes_three_arguments(server: ReplayServer, http: Http) -> None:
    outcomes = ctgov.REGISTRY.fetch(list(IN_SET), http, base(server))
    assert sorted(o.trial_id for o in outcomes if o.outcome is Outcome.OK) == list(IN_SET)
    assert len(study_requests(server)) == 1


def test_ctgov_data_timestamp_from_version(replay_root: Path, http: Http) -> None:
    shutil.copyfile(SYNTHETIC_VERSION, replay_root / "ctgov" / "version.json")
    with ReplayServer(replay_root) as srv:
        assert ctgov.data_timestamp(http, base(srv)) == "2024-01-12T09:07:01"


def test_ctgov_data_timestamp_none_without_version(server: ReplayServer, http: Http) -> None:
    assert ctgov.data_timestamp(http, base(server)) is None  # the set has no version.json: 404


def test_ctgov_data_timestamp_none_on_html(server: ReplayServer, http: Http) -> None:
    server.add_fault("/ctgov/api/v2/version", Fault(body=b"<html>maintenance</html>"), times=1)
    assert ctgov.data_timestamp(http, base(server)) is None


def test_ctgov_data_timestamp_none_when_down(server: ReplayServer, http: Http) -> None:
    server.add_fault("/ctgov/api/v2/version", Fault(status=503), times=2)
    assert ctgov.data_timestamp(http, base(server)) is None


def test_ctgov_fetch_nothing_sends_nothing(server: ReplayServer, http: Http) -> None:
    assert ctgov.fetch([], http, base(server)) == []
    assert server.requests == []


# ---------------------------------------------------------------------------- evidence


def test_ctgov_ok_evidence_is_the_page_it_was_found_on(server: ReplayServer, http: Http) -> None:
    ids = ["NCT00763412", "NCT03418623", ABSENT]
    outcomes = by_id(ctgov.fetch(ids, http, base(server), batch_size=3, page_size=1))
    pages = [e for e in http.exchanges if e.url.startswith(f"{base(server)}/studies?")]
    assert len(pages) == 2  # two studies, one per page; the absent ID ends the listing
    for nct_id, page in zip(("NCT00763412", "NCT03418623"), pages, strict=True):
        outcome = outcomes[nct_id]
        # the page as kept: its redacted copy, naming the bytes as served
        assert [(e.request_id, e.served_sha256) for e in outcome.evidence] == [
            (page.request_id, page.sha256)
        ]
        assert outcome.evidence[0].body == ctgov.redact(page.body)
        assert outcome.payload is not None and outcome.payload.request_id == page.request_id
        assert outcome.payload.container_sha256 == page.sha256
    assert [e.request_id for e in outcomes[ABSENT].evidence] == [p.request_id for p in pages]


def test_ctgov_error_evidence_is_the_failing_exchange(server: ReplayServer, http: Http) -> None:
    server.add_fault(STUDIES, Fault(status=403, body=b"synthetic forbidden"))
    outcomes = ctgov.fetch(["NCT03418623", "NCT04207047"], http, base(server))
    assert {o.outcome for o in outcomes} == {Outcome.BLOCKED}
    first, second = (o.evidence for o in outcomes)
    assert first == second and [(e.status, e.body) for e in first] == [
        (403, b"synthetic forbidden")
    ]


def test_ctgov_invalid_json_page_is_its_own_evidence(server: ReplayServer, http: Http) -> None:
    server.add_fault(STUDIES, Fault(body=b"<html>synthetic maintenance</html>"))
    (outcome,) = ctgov.fetch(["NCT03418623"], http, base(server))
    assert outcome.outcome is Outcome.REGISTRY_DOWN
    assert [e.body for e in outcome.evidence] == [b"<html>synthetic maintenance</html>"]


def test_ctgov_page_over_the_cap_is_parse_error_for_the_rest_of_the_batch(
    server: ReplayServer,
) -> None:
    http = Http(HttpSettings(min_interval={}), max_bytes={"ctgov": 8 * 1024})
    ids = ["NCT00763412", "NCT03418623", "NCT04207047"]
    outcomes = by_id(ctgov.fetch(ids, http, base(server), batch_size=3))
    assert {o.outcome for o in outcomes.values()} == {Outcome.PARSE_ERROR}
    assert all(
        o.detail.startswith("answer larger than the 0.0078125 MB cap") for o in outcomes.values()
    )
    evidence = [o.evidence for o in outcomes.values()]
    assert evidence == [evidence[0]] * 3 and [e.truncated for e in evidence[0]] == [True]
    assert len(study_requests(server)) == 1, "not retried"
    http.close()


def test_ctgov_cap_after_a_good_page_keeps_what_was_found(server: ReplayServer) -> None:
    # the first page (one study, as projected to our `fields`) fits a 4 KB cap; the second
    # page, NCT04207047's, is bigger than that (sizes of the real fixtures)
    small, big = "NCT03418623", "NCT04207047"
    fields = ",".join(ctgov.FIELDS)
    size = {
        t: len(projected(next(REAL.glob(f"study_{t}_*.json")).read_bytes(), fields))
        for t in (small, big)
    }
    assert size[small] + 200 < 4 * 1024 < size[big]
    http = Http(HttpSettings(min_interval={}), max_bytes={"ctgov": 4 * 1024})
    outcomes = by_id(ctgov.fetch([small, big], http, base(server), batch_size=2, page_size=1))
    assert outcomes[small].outcome is Outcome.OK
    assert outcomes[big].outcome is Outcome.PARSE_ERROR and "MB cap" in outcomes[big].detail
    http.close()


def test_batches_keep_every_request_url_within_the_budget() -> None:
    """1,000 IDs a request where the URL allows it; fewer where the 8 KB budget does not; every
    ID once, in order, whatever the cut."""
    wanted = [f"NCT9{i:07d}" for i in range(2500)]
    live = "https://clinicaltrials.gov/api/v2"
    cut = ctgov.batches(wanted, live)
    assert [t for b in cut for t in b] == wanted
    budget = REGISTRY_TABLE["ctgov"].max_url_bytes
    assert budget is not None
    assert all(len(ctgov.request_url(live, b, len(b))) <= budget for b in cut)
    assert len(cut[0]) > 500 and len(cut) == -(-2500 // len(cut[0]))  # as full as allowed
    unbounded = ctgov.batches(wanted, live, max_url=10**9)
    assert [len(b) for b in unbounded] == [1000, 1000, 500]
    with_filter = ctgov.batches(wanted, live, advanced="AREA[LastUpdatePostDate]RANGE[x,MAX]")
    assert len(with_filter[0]) < len(cut[0])  # the filter's bytes count too


def test_a_414_halves_the_batch_until_the_server_takes_it(replay_root: Path, http: Http) -> None:
    """A server whose request-line cap is shorter than our budget: the batch is halved on
    each 414 and every trial still gets its answer."""
    wanted = [*IN_SET, *(f"NCT9{i:07d}" for i in range(300))]
    with ReplayServer(replay_root, max_url_bytes=2500) as srv:
        outcomes = by_id(ctgov.fetch(wanted, http, base(srv)))
        asked = [len(r.query["filter.ids"].split(",")) for r in srv.requests]
    assert {t: outcomes[t].outcome for t in IN_SET} == dict.fromkeys(IN_SET, Outcome.OK)
    assert sum(o.outcome is Outcome.NOT_FOUND for o in outcomes.values()) == 300
    assert len(outcomes) == len(wanted)
    statuses = [ex.status for ex in http.exchanges]
    assert asked[0] == len(wanted) and statuses[0] == 414
    assert asked[1:3] == [len(wanted) // 2] * 2  # halved once: each half fits
    answered = [ex for ex in http.exchanges if ex.status == 200]
    assert sum(asked[i] for i, st in enumerate(statuses) if st == 200) == len(wanted)
    assert all(len(ex.url.split("/ctgov/api/v2", 1)[1]) + 13 <= 2500 for ex in answered)
