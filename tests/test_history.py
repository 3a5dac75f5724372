"""ClinicalTrials.gov version history: parse, version choice, cache, and `--history` against the
loopback replay server, including a failing history endpoint.

No real history payload was ever recorded (registry-samples/SOURCES.md lists none), so every
payload here is SYNTHETIC: derived at test time from the real study document
`tests/fixtures/ctgov/study_NCT03418623_phase2_completed.json` (an AACT fixture), in the shape
`ropensci/cthist` and `rfhb/ctrdata` read (see history.py). The live shape is unverified.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from helpers import BUNDLED_CURATED, FIXTURES, fast_settings
from registry_sync.errors import ParseError
from registry_sync.history import history_base, parse_version, parse_version_list
from registry_sync.model import Outcome
from registry_sync.pipeline import run_pipeline
from registry_sync.replay import ReplayServer
from registry_sync.replay.ctgov_history import ROUTES as HISTORY_ROUTES
from registry_sync.replay.faults import Fault
from registry_sync.replay.server import REGISTRY_ROUTES
from registry_sync.review_meta import review_meta_path
from registry_sync.settings import Settings
from registry_sync.verdict import VersionEntry

NCT = "NCT03418623"
REAL = FIXTURES / "ctgov" / "study_NCT03418623_phase2_completed.json"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _study(phases: list[str], updated: str) -> dict[str, Any]:
    """The real study with its phases and last update changed (synthetic)."""
    doc: dict[str, Any] = json.loads(REAL.read_text(encoding="utf-8"))
    doc = copy.deepcopy(doc)
    doc["protocolSection"]["designModule"]["phases"] = phases
    doc["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {
        "date": updated, "type": "ACTUAL"
    }  # fmt: skip
    return doc


# version -> (posted, phases): phase 1/2 until 2026, then phase 2 (the real record's value)
CHANGED_SINCE = {0: ("2018-01-31", ["PHASE1", "PHASE2"]), 1: ("2019-06-04", ["PHASE1", "PHASE2"]),
                 2: ("2026-01-15", ["PHASE2"])}  # fmt: skip


def _list_body(versions: dict[int, tuple[str, list[str]]]) -> bytes:
    changes = [{"version": n, "date": d, "status": "COMPLETED"} for n, (d, _) in versions.items()]
    return json.dumps({"history": {"changes": changes}}).encode()


def _version_body(n: int, versions: dict[int, tuple[str, list[str]]]) -> bytes:
    posted, phases = versions[n]
    return json.dumps({"studyVersion": n, "study": _study(phases, posted)}).encode()


def synthetic_set(tmp: Path, versions: dict[int, tuple[str, list[str]]]) -> Path:
    """A replay dir: the current document (synthetic: last updated 2026-01-15, after the
    review's publication) and its synthetic version history."""
    root = tmp / "replay"
    (root / "ctgov" / "synthetic").mkdir(parents=True)
    current = _study(["PHASE2"], "2026-01-15")
    (root / "ctgov" / "synthetic" / f"{NCT}.json").write_text(json.dumps(current))
    folder = root / "ctgov_history" / "synthetic"
    folder.mkdir(parents=True)
    (folder / f"{NCT}.history.json").write_bytes(_list_body(versions))
    for n in versions:
        (folder / f"{NCT}.v{n}.json").write_bytes(_version_body(n, versions))
    return root


def synthetic_curated(tmp: Path) -> Path:
    """One synthetic row for the real trial: the review prints phase I/II."""
    header = BUNDLED_CURATED.read_text(encoding="utf-8").splitlines()[0]
    row = f"1,1,GET73,1,small molecule,AUD,Laboratorio Farmaceutico CT,{NCT},I/II,IT,2018,synthetic"
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "curated.csv"
    path.write_text(f"{header}\n{row}\n", encoding="utf-8")
    review_meta_path(path).write_text(review_meta_path(BUNDLED_CURATED).read_text("utf-8"))
    return path


def test_parse_version_list_reads_history_changes() -> None:
    entries = parse_version_list(_list_body(CHANGED_SINCE))
    assert entries[0] == VersionEntry(0, date(2018, 1, 31), "COMPLETED")
    assert [e.version for e in entries] == [0, 1, 2]


@pytest.mark.parametrize(
    "body",
    [b"<html>", b"[]", b'{"history": {}}', b'{"history": {"changes": [{"version": "1"}]}}',
     b'{"history": {"changes": [{"version": 1, "date": "15/01/2026"}]}}'],
)  # fmt: skip
def test_parse_version_list_rejects_other_shapes(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_version_list(body)


def test_parse_version_reads_the_study_object_as_the_v2_parser_does() -> None:
    rec = parse_version(_version_body(1, CHANGED_SINCE), NCT, 1, "u", NOW)
    assert rec.phases == ("PHASE1", "PHASE2")
    assert rec.lead_sponsor == "Laboratorio Farmaceutico Ct S.r.l."
    with pytest.raises(ParseError, match="asked for version 2, got 1"):
        parse_version(_version_body(1, CHANGED_SINCE), NCT, 2, "u", NOW)
    with pytest.raises(ParseError, match="page is for NCT03418623, not NCT00000001"):
        parse_version(_version_body(1, CHANGED_SINCE), "NCT00000001", 1, "u", NOW)


def test_history_base_is_the_internal_api_beside_v2() -> None:
    assert (
        history_base("https://clinicaltrials.gov/api/v2/") == "https://clinicaltrials.gov/api/int"
    )
    assert history_base("http://127.0.0.1:1/ctgov/api/v2") == "http://127.0.0.1:1/ctgov/api/int"


def test_history_env_and_default() -> None:
    assert Settings.from_env({}).history is False
    assert Settings.from_env({"REGISTRY_SYNC_HISTORY": "1"}).history is True


def _run(tmp: Path, server: ReplayServer, history: bool = True) -> tuple[Any, dict[str, Any]]:
    settings = fast_settings(tmp, synthetic_curated(tmp), **server.base_urls())
    result = run_pipeline(dataclasses.replace(settings, history=history))
    conn = sqlite3.connect(result.snapshot_path)
    conn.row_factory = sqlite3.Row
    out = {
        "findings": [dict(r) for r in conn.execute("select * from findings order by id")],
        "meta": {r["key"]: json.loads(r["value"]) for r in conn.execute("select * from _meta")},
        "records": [dict(r) for r in conn.execute("select * from records")],
        "requests": [dict(r) for r in conn.execute("select url, status from requests")],
    }
    conn.close()
    return result, out


def _phase(snap: dict[str, Any]) -> dict[str, Any]:
    return next(f for f in snap["findings"] if f["kind"] == "phase_mismatch")


def test_history_over_loopback_tells_changed_since_and_caches_versions(tmp_path: Path) -> None:
    root = synthetic_set(tmp_path, CHANGED_SINCE)
    with ReplayServer(root, routes=(*REGISTRY_ROUTES, HISTORY_ROUTES)) as server:
        first, snap = _run(tmp_path, server)
        asked = [r.path for r in server.requests if "/api/int/" in r.path]
        second, _ = _run(tmp_path, server)
        again = [r.path for r in server.requests if "/api/int/" in r.path][len(asked) :]
    assert first.outcomes == {"ok": 1}
    phase = _phase(snap)
    assert phase["verdict"] == "changed_since"
    assert "version 1 of 2019-06-04" in json.loads(phase["details"])["verdict_why"]
    assert snap["meta"]["history"] == {"asked": True, "trials": {NCT: "read"}}
    # the list, then the one version in effect through the window (2025-10-01..12-31)
    assert asked == [f"/ctgov/api/int/studies/{NCT}", f"/ctgov/api/int/studies/{NCT}/history/1"]
    assert any("/api/int/" in r["url"] and r["status"] == 200 for r in snap["requests"])
    (cached,) = (tmp_path / "cache" / "ctgov-history").rglob(f"{NCT}/*")
    assert cached.name == "v1.json"
    assert b"Raymond F Anton" not in cached.read_bytes()  # the official's name: never kept
    # next run: the list again (it may have grown), the version from the cache
    assert again == [f"/ctgov/api/int/studies/{NCT}"]
    assert second.findings == first.findings


def test_history_already_differing_says_wrong_at_publication(tmp_path: Path) -> None:
    versions = {0: ("2018-01-31", ["PHASE2"]), 1: ("2026-01-15", ["PHASE2"])}
    with ReplayServer(
        synthetic_set(tmp_path, versions), routes=(*REGISTRY_ROUTES, HISTORY_ROUTES)
    ) as server:
        _, snap = _run(tmp_path, server)
    assert _phase(snap)["verdict"] == "wrong_at_publication"


def test_failing_history_endpoint_leaves_the_main_outcome_alone(tmp_path: Path) -> None:
    root = synthetic_set(tmp_path, CHANGED_SINCE)
    with ReplayServer(root, routes=(*REGISTRY_ROUTES, HISTORY_ROUTES)) as server:
        plain, without = _run(tmp_path / "a", server, history=False)
        server.add_fault("/ctgov/api/int/", Fault(status=503), times=None)
        failed, snap = _run(tmp_path / "b", server)
    assert failed.outcomes == plain.outcomes == {"ok": 1}
    assert failed.exit_code == plain.exit_code
    phase, before = _phase(snap), _phase(without)
    keep = ("kind", "severity", "review_value", "registry_value", "message", "verdict")
    assert {k: phase[k] for k in keep} == {k: before[k] for k in keep}
    assert phase["verdict"] == "unknown"
    assert "could not be read" in json.loads(phase["details"])["verdict_why"]
    strip = ("run_id", "fetched_at", "payload_sha256", "request_id", "source_url")
    same = [{k: v for k, v in r.items() if k not in strip} for r in snap["records"]]
    assert same == [{k: v for k, v in r.items() if k not in strip} for r in without["records"]]
    notes = [f for f in snap["findings"] if f["kind"] == "history_unavailable"]
    assert len(notes) == 1 and notes[0]["severity"] == "info" and "503" in notes[0]["message"]
    assert snap["meta"]["history"]["trials"][NCT].startswith("HTTP 503")
    assert {r["status"] for r in snap["requests"] if "/api/int/" in r["url"]} == {503}
    assert "## Version history that could not be read" in failed.report_markdown
    assert failed.outcomes.get(Outcome.OK.value) == 1
