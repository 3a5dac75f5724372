"""WHO ICTRP: the Trial2 parser and the XML export parser on real pages (goldens, one test per
upstream quirk), and the fallback fetch through the real `Http` client against the loopback
replay server.

Real inputs are in tests/fixtures/ictrp/ (provenance in its SOURCES.md). Fault pages are under
tests/fixtures/ictrp/synthetic/ (README there); variants built here from a real page change one
thing and say so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from helpers import BUNDLED_REPLAY
from registry_sync import registry_table
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
from registry_sync.registries import ictrp
from registry_sync.replay import REGISTRY_ROUTES, Fault, ReplayServer
from registry_sync.replay import ictrp as ictrp_routes
from registry_sync.settings import HttpSettings

FIXTURES = Path(__file__).parent / "fixtures" / "ictrp"
GOLDEN = FIXTURES / "golden"
SYNTHETIC = FIXTURES / "synthetic"
RECORD = FIXTURES / "Trial2_NCT04280705_LF-normalized.html"
SHELL = FIXTURES / "Trial2_empty-shell_ISRCTN11928588_LF-normalized.html"
EXPORT = FIXTURES / "xml-export_97-trials_ChiCTR-JPRN-LBCTR-CTIS_2026-06-29.xml"
ASPNET_ERROR = SYNTHETIC / "aspnet-runtime-error_derived-from-Trial2_NCT04280705.html"
WAF_PAGE = SYNTHETIC / "waf-request-rejected.html"
FETCHED_AT = datetime(2026, 1, 1, tzinfo=UTC)
HTML = "text/html; charset=utf-8"
SHA256 = {
    RECORD: "6b1f9ca6f06376458b1f100eefe266ffddf839e10589e702db5a5806c2c04090",
    SHELL: "c205c6ac1f656ba3343d806fc312448ec91c10c9407c1b690346981ad45e25e1",
    EXPORT: "4f58a8056824b8f2eaf6ec07a316415dc6f99f5f6789a5f5db76da3c0fb75d4b",
}


def jsonable(record: RegistryRecord) -> dict[str, Any]:
    """A record as plain JSON values: dates ISO, tuples as lists."""

    def convert(value: Any) -> Any:
        if isinstance(value, PartialDate):
            return value.iso()
        if isinstance(value, Unmapped):
            return dataclasses.asdict(value)
        if isinstance(value, tuple):
            return [convert(v) for v in value]
        return value

    return {f.name: convert(getattr(record, f.name)) for f in dataclasses.fields(record)}


def payload(registry: str, trial_id: str, body: bytes, url: str = "fixture") -> RawPayload:
    return RawPayload(registry, trial_id, url, FETCHED_AT, body, HTML, source="ictrp")


def record_page(trial_label: str | None = None) -> bytes:
    """The real NCT04280705 page; with `trial_label`, a synthetic copy showing that TrialID."""
    body = RECORD.read_bytes()
    if trial_label is None:
        return body
    old = b'<span id="DataList3_ctl01_TrialIDLabel">NCT04280705</span>'
    assert old in body
    return body.replace(old, old.replace(b"NCT04280705", trial_label.encode()))


def exchange(body: bytes, url: str = "http://127.0.0.1/ictrp/Trial2.aspx?TrialID=X") -> Exchange:
    return Exchange("r-1", "ictrp", "GET", url, 200, FETCHED_AT, {"Content-Type": HTML}, body)


def export_records() -> dict[str, RegistryRecord]:
    return {r.trial_id: r for r in ictrp.parse_export(EXPORT.read_bytes(), EXPORT.name)}


def check_golden(name: str, got: Any, update_golden: bool) -> None:
    golden = GOLDEN / name
    if update_golden:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert golden.exists(), f"no golden {golden.name}: run pytest --update-golden and review it"
    assert got == json.loads(golden.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------ fixtures, goldens


def test_fixture_sha256_match_sources_md() -> None:
    sources = (FIXTURES / "SOURCES.md").read_text(encoding="utf-8")
    for path, digest in SHA256.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, path.name
        assert f"`{path.name}`" in sources and f"`{digest}`" in sources


def test_ictrp_golden_trial2_NCT04280705(update_golden: bool) -> None:
    record = ictrp.parse(payload("ctgov", "NCT04280705", RECORD.read_bytes()))
    check_golden("Trial2_NCT04280705.json", jsonable(record), update_golden)


def test_ictrp_golden_export_chictr_and_jprn_trials(update_golden: bool) -> None:
    records = [r for r in export_records().values() if r.registry in ("chictr", "umin")]
    assert Counter(r.registry for r in records) == {"chictr": 9, "umin": 1}
    check_golden("xml-export_chictr-jprn.json", [jsonable(r) for r in records], update_golden)


def test_ictrp_goldens_hold_no_contact_data() -> None:
    # The export publishes names, e-mails and phones; none may reach a record or golden.
    text = EXPORT.read_text(encoding="utf-8")
    contacts = re.findall(r"<Contact_(?:Email|Tel|Lastname)>([^<]+)<", text)
    values = {c.strip() for c in contacts if len(c.strip()) > 5}
    assert "yangyingchi2004@sina.com" in values
    dumped = json.dumps([jsonable(r) for r in export_records().values()], ensure_ascii=False)
    dumped += "".join(p.read_text(encoding="utf-8") for p in GOLDEN.glob("*.json"))
    assert "@" not in dumped.replace("@example", "")
    assert not [v for v in values if v in dumped]


def test_ictrp_record_values_are_canonical() -> None:
    for record in [
        *export_records().values(),
        ictrp.parse(payload("ctgov", "NCT04280705", RECORD.read_bytes())),
    ]:
        assert record.status is None or record.status in STATUSES
        assert all(p in PHASES for p in record.phases)
        assert record.last_updated is None  # ICTRP does not give the source's update date


# ------------------------------------------------------------------------ Trial2 quirks


def test_ictrp_refreshed_is_ictrp_date_not_last_updated_NCT04280705() -> None:
    record = ictrp.parse(payload("ctgov", "NCT04280705", RECORD.read_bytes()))
    assert record.refreshed == PartialDate(2022, 3, 21)  # `Last refreshed on: 21 March 2022`
    assert record.last_updated is None
    assert record.evidence_url == "https://trialsearch.who.int/Trial2.aspx?TrialID=NCT04280705"


def test_ictrp_enrolment_month_name_form_NCT04280705() -> None:
    record = ictrp.parse(payload("ctgov", "NCT04280705", RECORD.read_bytes()))
    assert (record.start_raw, record.start) == ("February 21, 2020", PartialDate(2020, 2, 21))
    assert record.start_type is None  # ICTRP does not say actual or anticipated


def test_ictrp_unknown_status_is_reported_not_coerced_NCT04280705() -> None:
    # synthetic: the real page with `Pending` (seen on Trial2 in 2026 notes) as its status
    old = b'style="display:inline-block;">Completed</span>'
    body = RECORD.read_bytes().replace(old, old.replace(b"Completed", b"Pending"))
    record = ictrp.parse(payload("ctgov", "NCT04280705", body))
    assert (record.status, record.status_raw) == (None, "Pending")
    assert record.unmapped == (Unmapped("status", "Pending"),)


def test_ictrp_empty_shell_is_not_found_ISRCTN11928588() -> None:
    shell = SHELL.read_bytes()
    assert ictrp.is_not_found(exchange(shell))
    assert not ictrp.is_not_found(exchange(RECORD.read_bytes()))
    assert ictrp.detect_block(exchange(shell)) is None
    with pytest.raises(ParseError, match="empty shell"):
        ictrp.parse(payload("ctgov", "NCT04280705", shell))


def test_ictrp_wrong_trial_page_is_parse_error_NCT04280705() -> None:
    with pytest.raises(ParseError, match="page is for NCT04280705, not NCT04315948"):
        ictrp.parse(payload("ctgov", "NCT04315948", RECORD.read_bytes()))


def test_ictrp_jprn_id_form_jRCTs031190226() -> None:
    # synthetic: the real page with its TrialID label made the JPRN form ICTRP files jRCT under
    body = record_page("JPRN-jRCTs031190226")
    record = ictrp.parse(payload("jrct", "jRCTs031190226", body))
    assert (record.registry, record.trial_id) == ("jrct", "jRCTs031190226")
    assert record.evidence_url == (
        "https://trialsearch.who.int/Trial2.aspx?TrialID=JPRN-jRCTs031190226"
    )
    with pytest.raises(ParseError, match="page is for JPRN-jRCTs031190226, not JPRN-jRCTs0"):
        ictrp.parse(payload("jrct", "jRCTs031190227", body))


def test_ictrp_chictr_id_form_is_bare_ChiCTR2000029949() -> None:
    # synthetic: the real page with a ChiCTR TrialID label (ICTRP adds no prefix for ChiCTR)
    record = ictrp.parse(payload("chictr", "ChiCTR2000029949", record_page("ChiCTR2000029949")))
    assert (record.registry, record.trial_id) == ("chictr", "ChiCTR2000029949")


def test_ictrp_id_forms_per_home_registry() -> None:
    base = "http://h/ictrp"
    assert ictrp.trial_url(base, "jrct", "jRCTs031190226").endswith(
        "/Trial2.aspx?TrialID=JPRN-jRCTs031190226"
    )
    assert ictrp.trial_url(base, "umin", "UMIN000007004").endswith("TrialID=JPRN-UMIN000007004")
    assert ictrp.trial_url(base, "jma", "JMA-IIA00412").endswith("TrialID=JPRN-JMA-IIA00412")
    assert ictrp.trial_url(base, "chictr", "ChiCTR2000029949").endswith("=ChiCTR2000029949")
    assert ictrp.home_of("JPRN-UMIN000007004") == ("umin", "UMIN000007004")
    assert ictrp.home_of("JPRN-JMA-IIA00412") == ("jma", "JMA-IIA00412")
    assert ictrp.home_of("ChiCTR2000029949") == ("chictr", "ChiCTR2000029949")
    assert ictrp.home_of("EUCTR2018-004758-39-IT") == ("ictrp", "EUCTR2018-004758-39-IT")


def test_ictrp_criteria_raw_lt_gt_do_not_shift_values_NCT04280705() -> None:
    real = RECORD.read_bytes()
    assert b"collected < 72 hours" in real and b"results taking >24 hours" in real
    # synthetic: a stray tag start in the criteria, which an HTML parser opens as an element
    broken = real.replace(b"collected < 72 hours", b"collected <Age 72 hours", 1)
    want = ictrp.parse(payload("ctgov", "NCT04280705", real))
    assert ictrp.parse(payload("ctgov", "NCT04280705", broken)) == want
    assert want.conditions == ("COVID-19",)
    assert want.interventions == ("Drug: Remdesivir", "Other: Placebo")


def test_ictrp_source_url_and_countries_NCT04280705() -> None:
    page = payload("ctgov", "NCT04280705", RECORD.read_bytes())
    assert ictrp.source_url(page) == "https://clinicaltrials.gov/show/NCT04280705"
    assert ictrp.countries(page)[:2] == ("Denmark", "Germany") and len(ictrp.countries(page)) == 10
    assert ictrp.source_url(payload("ctgov", "NCT04280705", SHELL.read_bytes())) is None


def test_ictrp_ctr_not_carried_parse_error() -> None:
    with pytest.raises(ParseError, match="does not carry"):
        ictrp.parse(payload("ctr", "CTR20252821", RECORD.read_bytes()))


# ------------------------------------------------------------------------ XML export quirks


def test_ictrp_export_home_registries_and_foreign_trials() -> None:
    records = export_records()
    assert len(records) == 97
    counts = Counter(r.registry for r in records.values())
    assert counts == {"ctgov": 83, "chictr": 9, "umin": 1, "ictrp": 4}
    assert records["UMIN000007004"].evidence_url == (
        "https://trialsearch.who.int/Trial2.aspx?TrialID=JPRN-UMIN000007004"
    )
    assert records["LBCTR2018120174"].registry == "ictrp"  # not a registry we follow


def test_ictrp_status_case_differs_NCT07596290_ChiCTR2600122961() -> None:
    records = export_records()
    assert records["NCT07596290"].status_raw == "Not recruiting"
    assert records["ChiCTR2600122961"].status_raw == "Not Recruiting"
    assert records["NCT07596290"].status == records["ChiCTR2600122961"].status == "NOT_RECRUITING"


def test_ictrp_chictr_phase_0_is_exploratory_not_phase0_ChiCTR2500105882() -> None:
    record = export_records()["ChiCTR2500105882"]
    assert (record.phases_raw, record.phases) == (("0",), ())
    assert Unmapped("phase", "0") in record.unmapped


def test_ictrp_chictr_phase_4_and_na_are_ambiguous_ChiCTR2200058590_ChiCTR2600122961() -> None:
    records = export_records()
    assert records["ChiCTR2200058590"].phases == ()  # `4`: post-marketing or phase IV
    assert Unmapped("phase", "4") in records["ChiCTR2200058590"].unmapped
    assert records["ChiCTR2600122961"].phases == ()  # `N/A`: ChiCTR's "other"
    assert records["ChiCTR2500113784"].phases == ("PHASE2",)  # `2` is unambiguous


def test_ictrp_nct_phase_pair_NCT07596290() -> None:
    record = export_records()["NCT07596290"]
    assert (record.phases_raw, record.phases) == (("Phase 2/Phase 3",), ("PHASE2", "PHASE3"))


def test_ictrp_chictr_target_size_per_group_summed_ChiCTR2500109612() -> None:
    record = export_records()["ChiCTR2500109612"]  # `Group D:57;Group C:57;Group B:57;Group A:57;`
    assert record.enrollment == 228


def test_ictrp_jprn_enrolment_yyyy_slash_and_unselected_phase_UMIN000007004() -> None:
    record = export_records()["UMIN000007004"]
    assert (record.start_raw, record.start) == ("2011/12/02", PartialDate(2011, 12, 2))
    assert record.phases == () and Unmapped("phase", "Not selected") in record.unmapped
    assert record.refreshed == PartialDate(2026, 5, 25)


def test_ictrp_enrolment_slashed_is_day_first_EUCTR2018_004758_39_IT() -> None:
    record = export_records()["EUCTR2018-004758-39-IT"]
    assert (record.start_raw, record.start) == ("12/06/2019", PartialDate(2019, 6, 12))


def test_ictrp_export_lists_split_on_semicolon_and_br_LBCTR2018120174() -> None:
    record = export_records()["LBCTR2018120174"]
    assert record.conditions == (
        "Locally-Advanced Rectal Adenocarcinoma",
        "Locally Advanced Rectal Cancer",
        "Locally Advanced Rectal Cancer",
    )


def test_ictrp_export_rejects_other_xml_and_entities() -> None:
    with pytest.raises(ParseError, match="not <Trials_downloaded_from_ICTRP>"):
        ictrp.parse_export(b"<Trials><Trial/></Trials>")
    root = b"<Trials_downloaded_from_ICTRP>&a;</Trials_downloaded_from_ICTRP>"
    bomb = b'<!DOCTYPE x [<!ENTITY a "aaaa">]>' + root
    with pytest.raises(ParseError, match="safe"):
        ictrp.parse_export(bomb)


# ------------------------------------------------------------------------ block and outage


def test_ictrp_waf_page_is_a_block() -> None:
    assert ictrp.detect_block(exchange(WAF_PAGE.read_bytes())) is not None
    assert ictrp.detect_block(exchange(RECORD.read_bytes())) is None


def test_ictrp_aspnet_error_page_and_empty_body_are_outages() -> None:
    error = exchange(ASPNET_ERROR.read_bytes())
    assert "ASP.NET" in (ictrp.outage_reason(error) or "")
    assert not ictrp.is_not_found(error)  # an outage is not "no such trial"
    assert "empty page" in (ictrp.outage_reason(exchange(b"  \n")) or "")
    assert ictrp.outage_reason(exchange(RECORD.read_bytes())) is None
    assert ictrp.outage_reason(exchange(SHELL.read_bytes())) is None


# ------------------------------------------------------------------------ fetch (loopback)


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    wired = any(r.key == "ictrp" for r in REGISTRY_ROUTES)  # once the lead lists it there
    routes = REGISTRY_ROUTES if wired else (*REGISTRY_ROUTES, ictrp_routes.ROUTES)
    with ReplayServer(BUNDLED_REPLAY, routes=routes) as srv:
        yield srv
    assert srv.errors == []


@pytest.fixture
def http() -> Iterator[Http]:
    client = Http(HttpSettings(max_retries=0, min_interval={}))
    yield client
    client.close()


def fetch(server: ReplayServer, http: Http, *trial_ids: str) -> dict[str, FetchOutcome]:
    got = ictrp.fetch(list(trial_ids), http, server.base_urls()["ictrp"])
    return {o.trial_id: o for o in got}


def trial2_requests(server: ReplayServer) -> list[str]:
    return [r.query.get("TrialID", "") for r in server.requests if r.path.endswith("Trial2.aspx")]


def test_fetch_ok_keeps_home_registry_and_source_NCT04280705(
    replay: ReplayServer, http: Http
) -> None:
    outcome = fetch(replay, http, "NCT04280705")["NCT04280705"]
    assert (outcome.outcome, outcome.registry, outcome.source) == (Outcome.OK, "ctgov", "ictrp")
    assert outcome.payload is not None
    assert (outcome.payload.registry, outcome.payload.source) == ("ctgov", "ictrp")
    assert outcome.payload.request_id == outcome.evidence[-1].request_id
    assert outcome.payload.url.endswith("/ictrp/Trial2.aspx?TrialID=NCT04280705")
    assert all(e.registry == "ictrp" for e in outcome.evidence)  # ICTRP's policy applied
    record = ictrp.parse(outcome.payload)
    assert (record.registry, record.trial_id, record.status) == (
        "ctgov",
        "NCT04280705",
        "COMPLETED",
    )


def test_fetch_empty_shell_is_not_found_jRCTs031190226(replay: ReplayServer, http: Http) -> None:
    outcome = fetch(replay, http, "jRCTs031190226")["jRCTs031190226"]
    assert (outcome.outcome, outcome.registry, outcome.source) == (
        Outcome.NOT_FOUND,
        "jrct",
        "ictrp",
    )
    assert "WHO ICTRP has no jRCTs031190226" in outcome.detail
    assert trial2_requests(replay) == ["JPRN-jRCTs031190226"]
    assert len(outcome.evidence) == 1 and outcome.evidence[0].status == 200


def test_fetch_mixed_registries_in_input_order(replay: ReplayServer, http: Http) -> None:
    asked = ["ChiCTR2000029949", "NCT04280705", "JMA-IIA00412", "CTR20252821", "nonsense"]
    got = ictrp.fetch(asked, http, replay.base_urls()["ictrp"])
    assert [o.trial_id for o in got] == asked
    assert [(o.registry, o.outcome) for o in got] == [
        ("chictr", Outcome.NOT_FOUND),
        ("ctgov", Outcome.OK),
        ("jma", Outcome.NOT_FOUND),
        ("ctr", Outcome.NOT_FOUND),
        ("ictrp", Outcome.ID_MALFORMED),
    ]
    assert all(o.source == "ictrp" for o in got)
    assert trial2_requests(replay) == ["ChiCTR2000029949", "NCT04280705", "JPRN-JMA-IIA00412"]


def test_fetch_ctr_is_not_carried_and_not_asked_CTR20252821(
    replay: ReplayServer, http: Http
) -> None:
    outcome = fetch(replay, http, "CTR20252821")["CTR20252821"]
    assert (outcome.outcome, outcome.registry) == (Outcome.NOT_FOUND, "ctr")
    assert "does not carry" in outcome.detail and outcome.evidence == ()
    assert replay.requests == []


def test_fetch_waf_page_is_blocked(replay: ReplayServer, http: Http) -> None:
    replay.add_fault("/ictrp/Trial2.aspx", Fault(body=WAF_PAGE.read_bytes()), times=None)
    got = fetch(replay, http, "NCT04280705", "ChiCTR2000029949")
    assert got["NCT04280705"].outcome is Outcome.BLOCKED
    assert "WAF" in got["NCT04280705"].detail
    # ICTRP's policy stops after a block: the next trial is not sent
    assert got["ChiCTR2000029949"].outcome is Outcome.BLOCKED
    assert trial2_requests(replay) == ["NCT04280705"]


def test_fetch_http_503_is_registry_down(replay: ReplayServer, http: Http) -> None:
    replay.add_fault("/ictrp/Trial2.aspx", Fault(status=503), times=None)
    outcome = fetch(replay, http, "NCT04280705")["NCT04280705"]
    assert (outcome.outcome, outcome.registry, outcome.source) == (
        Outcome.REGISTRY_DOWN,
        "ctgov",
        "ictrp",
    )
    assert outcome.evidence and outcome.evidence[-1].status == 503


@pytest.mark.parametrize("body", [ASPNET_ERROR.read_bytes(), b""], ids=["aspnet-error", "empty"])
def test_fetch_200_error_page_is_registry_down_not_not_found(
    replay: ReplayServer, http: Http, body: bytes
) -> None:
    replay.add_fault("/ictrp/Trial2.aspx", Fault(body=body), times=None)
    got = fetch(replay, http, "NCT04280705", "ChiCTR2000029949")
    for outcome in got.values():
        assert outcome.outcome is Outcome.REGISTRY_DOWN and outcome.payload is None
        assert outcome.evidence and outcome.evidence[-1].status == 200
    assert len(trial2_requests(replay)) == 2  # an outage is not a block: the next is still asked


def test_fetch_wrong_trial_page_is_ok_then_parse_error(replay: ReplayServer, http: Http) -> None:
    # ICTRP answering the NCT04280705 page for another TrialID: fetched, then refused by parse
    replay.add_fault("/ictrp/Trial2.aspx?TrialID=NCT04315948", Fault(body=RECORD.read_bytes()))
    outcome = fetch(replay, http, "NCT04315948")["NCT04315948"]
    assert outcome.outcome is Outcome.OK and outcome.payload is not None
    with pytest.raises(ParseError, match="page is for NCT04280705"):
        ictrp.parse(outcome.payload)


def test_replay_index_and_routes() -> None:
    server = ReplayServer(BUNDLED_REPLAY, routes=(ictrp_routes.ROUTES,))
    assert server.covers("ictrp", "NCT04280705")
    assert not server.covers("ictrp", "JPRN-jRCTs031190226")
    store = server.stores["ictrp"]
    assert store.lookup(ictrp_routes.SHELL, "") is not None
    assert registry_table.ictrp_id("ctgov", "NCT04280705") in store.trials
