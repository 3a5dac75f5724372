"""The adapter contract, held by the pipeline: whatever an adapter does, every trial ends with one
outcome, the run completes, and values already known are never wiped by a suspect answer.

Stub adapters here are test doubles of registries that are not built yet (their trials are real
IDs of the bundled review); ClinicalTrials.gov runs with its real adapter against the loopback
replay server.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpers import BUNDLED_REPLAY, fast_settings, review_subset
from registry_sync import snapshot
from registry_sync.errors import NotFoundError
from registry_sync.http import Http
from registry_sync.model import FetchOutcome, Outcome, RawPayload, RegistryRecord
from registry_sync.pipeline import RunRequest, run_pipeline
from registry_sync.registries import REGISTRIES, ctgov
from registry_sync.registries.base import Registry
from registry_sync.registry_table import REGISTRY_TABLE
from registry_sync.replay import Fault, ReplayServer

CTGOV_IDS = ("NCT06482268", "NCT04363346", "NCT04331613")
JRCT_IDS = ("jRCT2053190081", "jRCTa050190117")


def stub_registry(key: str, fetch: object, parse: object = None) -> Registry:
    def no_parse(payload: RawPayload) -> RegistryRecord:
        return RegistryRecord(registry=key, trial_id=payload.trial_id, status="RECRUITING")

    return Registry(
        key=key,
        name=REGISTRY_TABLE[key].name,
        id_pattern=REGISTRY_TABLE[key].id_pattern,  # type: ignore[arg-type]
        parser_version=1,
        fetch=fetch,  # type: ignore[arg-type]
        parse=parse or no_parse,  # type: ignore[arg-type]
    )


def ok(key: str, tid: str) -> FetchOutcome:
    payload = RawPayload(key, tid, f"https://example.invalid/{tid}", _now(), b"<html>stub</html>")
    return FetchOutcome(key, tid, Outcome.OK, payload=payload)


def _now() -> datetime:
    return datetime.now(UTC)


def run(tmp_path: Path, server: ReplayServer, ids: Sequence[str], **kwargs: object):  # type: ignore[no-untyped-def]
    settings = fast_settings(
        tmp_path, review_subset(tmp_path, ids), ctgov=server.base_urls()["ctgov"]
    )
    return run_pipeline(settings, RunRequest(**kwargs))  # type: ignore[arg-type]


def outcomes_of(path: Path) -> dict[str, tuple[str, str]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            t: (o, d) for t, o, d in conn.execute("select trial_id, outcome, detail from outcomes")
        }
    finally:
        conn.close()


# --- every requested ID gets exactly one outcome --------------------------------------------


def test_adapter_that_drops_an_id_gets_parse_error_for_it(
    tmp_path: Path, server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped: list[str] = []

    def drops_one(ids: Sequence[str], http: Http, base: str) -> list[FetchOutcome]:
        dropped.append(ids[0])
        return [ok("jrct", t) for t in ids[1:]] + [ok("jrct", "jRCT9999999999")]  # and one extra

    monkeypatch.setitem(REGISTRIES, "jrct", stub_registry("jrct", drops_one))
    result = run(tmp_path, server, (*CTGOV_IDS, *JRCT_IDS))
    got = outcomes_of(result.snapshot_path)
    [kept] = set(JRCT_IDS) - set(dropped)
    assert got[dropped[0]] == ("parse_error", "the adapter returned no outcome")
    assert got[kept][0] == "ok"
    assert "jRCT9999999999" not in got  # the extra one is dropped...
    notes = snapshot.read_meta(result.snapshot_path)["notes"]
    assert any("not asked for" in n for n in notes)  # ...and logged
    assert any("no outcome for 1 ID" in n for n in notes)
    assert all(got[t][0] == "ok" for t in CTGOV_IDS)


def test_adapter_that_raises_is_confined_to_its_registry(
    tmp_path: Path, server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def raises(ids: Sequence[str], http: Http, base: str) -> list[FetchOutcome]:
        nothing: list[FetchOutcome] = []
        return [nothing[1]]  # IndexError, as a buggy adapter would

    monkeypatch.setitem(REGISTRIES, "jrct", stub_registry("jrct", raises))
    result = run(tmp_path, server, (*CTGOV_IDS, *JRCT_IDS))
    got = outcomes_of(result.snapshot_path)
    for tid in JRCT_IDS:
        assert got[tid][0] == "registry_down"
        assert "adapter raised IndexError" in got[tid][1]
    assert all(got[t][0] == "ok" for t in CTGOV_IDS)  # the other registry is not lost
    assert result.partial and result.accepted


def test_parser_that_raises_is_confined_to_its_trial(
    tmp_path: Path, server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fetch(ids: Sequence[str], http: Http, base: str) -> list[FetchOutcome]:
        return [ok("jrct", t) for t in ids]

    def parse(payload: RawPayload) -> RegistryRecord:
        if payload.trial_id == JRCT_IDS[0]:
            raise KeyError("Phase")
        return RegistryRecord(registry="jrct", trial_id=payload.trial_id)

    monkeypatch.setitem(REGISTRIES, "jrct", stub_registry("jrct", fetch, parse))
    got = outcomes_of(run(tmp_path, server, JRCT_IDS).snapshot_path)
    assert got[JRCT_IDS[0]] == ("parse_error", "parser raised KeyError: 'Phase'")
    assert got[JRCT_IDS[1]][0] == "ok"


def test_data_timestamp_that_raises_leaves_a_note(
    tmp_path: Path, server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(http: Http, base: str) -> str | None:
        raise ValueError("bad stamp")

    monkeypatch.setitem(REGISTRIES, "ctgov", replace(ctgov.REGISTRY, data_timestamp=boom))
    result = run(tmp_path, server, CTGOV_IDS)
    meta = snapshot.read_meta(result.snapshot_path)
    assert meta["data_timestamps"] == {"ctgov": None}
    assert any("ValueError: bad stamp" in n for n in meta["notes"])
    assert result.outcomes == {"ok": 3}


# --- suspect answers never wipe values ------------------------------------------------------


def test_page_for_another_trial_is_a_parse_error(
    tmp_path: Path, server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry answering the asked ID with another trial's record (NCT04363346's page for
    NCT06482268) must not be believed."""
    real_fetch = ctgov.fetch

    def swapped(ids: Sequence[str], http: Http, base: str) -> list[FetchOutcome]:
        outs = real_fetch(ids, http, base)
        other = next(o for o in outs if o.trial_id == "NCT04363346")
        assert other.payload is not None
        wrong = replace(other.payload, trial_id="NCT06482268")
        return [replace(o, payload=wrong) if o.trial_id == "NCT06482268" else o for o in outs]

    monkeypatch.setitem(REGISTRIES, "ctgov", replace(ctgov.REGISTRY, fetch=swapped))
    got = outcomes_of(run(tmp_path, server, CTGOV_IDS).snapshot_path)
    assert got["NCT06482268"][0] == "parse_error"
    assert "page is for NCT04363346" in got["NCT06482268"][1]


def test_empty_answer_keeps_last_values_as_vanished(tmp_path: Path, server: ReplayServer) -> None:
    first = run(tmp_path, server, CTGOV_IDS)
    assert first.outcomes == {"ok": 3}
    server.add_fault("/ctgov/api/v2/studies", Fault(status=200, body=b'{"studies":[]}'), times=5)
    second = run(tmp_path, server, CTGOV_IDS)
    assert second.outcomes == {"not_found": 3}
    conn = sqlite3.connect(f"file:{second.snapshot_path}?mode=ro", uri=True)
    try:
        records = dict(conn.execute("select trial_id, stale from records"))
        kinds = [k for (k,) in conn.execute("select kind from findings where kind = 'vanished'")]
        not_found = list(conn.execute("select 1 from findings where kind = 'not_found'"))
    finally:
        conn.close()
    assert records == dict.fromkeys(CTGOV_IDS, 1)  # every value kept, marked stale
    assert len(kinds) == 3 and not_found == []
    # a third night with the same glitch still says so, from the carried values
    third = run(tmp_path, server, CTGOV_IDS)
    md = third.report_paths["md"].read_text(encoding="utf-8")
    assert md.count("no longer shows") == 3


def test_oversized_answer_is_a_typed_outcome_and_keeps_values(
    tmp_path: Path, server: ReplayServer
) -> None:
    run(tmp_path, server, CTGOV_IDS)
    real = BUNDLED_REPLAY / "ctgov" / "recorded" / "study_NCT03418623_phase2_completed.json"
    study = real.read_bytes().strip()
    copies = 40 * 1024 * 1024 // len(study) + 1  # synthetic: ~40 MB of one real study, repeated
    body = b'{"studies":[' + b",".join([study] * copies) + b"]}"
    server.add_fault("/ctgov/api/v2/studies", Fault(status=200, body=body), times=5)
    settings = fast_settings(
        tmp_path, review_subset(tmp_path, CTGOV_IDS), ctgov=server.base_urls()["ctgov"]
    )
    small_cap = replace(settings.http, max_bytes={"ctgov": 4 * 1024 * 1024})
    result = run_pipeline(replace(settings, http=small_cap), RunRequest())
    got = outcomes_of(result.snapshot_path)
    assert {o for o, _ in got.values()} == {"parse_error"}
    assert all("cap" in d and "kept, marked stale" in d for _, d in got.values())


# --- registries side by side ----------------------------------------------------------------


def test_registries_are_fetched_side_by_side(
    tmp_path: Path, server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans: dict[str, tuple[float, float]] = {}

    def slow(key: str):  # type: ignore[no-untyped-def]
        def fetch(ids: Sequence[str], http: Http, base: str) -> list[FetchOutcome]:
            start = time.monotonic()
            out = []
            for tid in ids:
                with contextlib.suppress(NotFoundError):  # a real request, answered after 0.5 s
                    http.get(f"{base}/slow/{tid}", registry=key)
                out.append(ok(key, tid))
            spans[key] = (start, time.monotonic())
            return out

        return fetch

    server.add_fault("/jrct/slow/", Fault(status=404, delay=0.5), times=2)
    server.add_fault("/umin/slow/", Fault(status=404, delay=0.5), times=2)
    monkeypatch.setitem(REGISTRIES, "jrct", stub_registry("jrct", slow("jrct")))
    monkeypatch.setitem(REGISTRIES, "umin", stub_registry("umin", slow("umin")))
    umin_ids = ("UMIN000011929", "UMIN000026003")
    settings = fast_settings(
        tmp_path,
        review_subset(tmp_path, (*JRCT_IDS, *umin_ids)),
        jrct=f"{server.url}/jrct",
        umin=f"{server.url}/umin",
    )
    started = time.monotonic()
    run_pipeline(settings, RunRequest())
    (a0, a1), (b0, b1) = spans["jrct"], spans["umin"]
    assert a0 < b1 and b0 < a1  # the two fetches overlapped in time
    assert max(a1, b1) - min(a0, b0) < 1.8  # ~1 s side by side, not ~2 s one after another
    assert time.monotonic() - started > 0.9


# --- replay and custom endpoints are closed and labelled ------------------------------------


class Watcher:
    """A loopback port standing in for a live registry: it accepts and counts connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.1)
        self.connections = 0
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


def test_replay_never_reaches_a_live_url(tmp_path: Path) -> None:
    """Every registry's base URL in the settings is a watched port standing in for the live
    site; in a replay run no connection reaches it. jMA has no replay routes (404: its trial is
    `moved`, asked of ICTRP on loopback), jRCT's set lacks the review's trials (`not_in_replay`)."""
    watcher = Watcher()
    try:
        table = review_subset(tmp_path, (*CTGOV_IDS, *JRCT_IDS, "JMA-IIA00412"))
        live = dict.fromkeys(REGISTRY_TABLE, watcher.url)
        settings = fast_settings(tmp_path, table, **live)
        result = run_pipeline(settings, RunRequest(replay_dir=BUNDLED_REPLAY))
    finally:
        watcher.close()
    assert watcher.connections == 0
    got = outcomes_of(result.snapshot_path)
    assert {got[t][0] for t in JRCT_IDS} == {"not_in_replay"}
    assert {got[t][0] for t in CTGOV_IDS} == {"ok"}
    assert got["JMA-IIA00412"][0] == "moved" and "WHO ICTRP" in got["JMA-IIA00412"][1]
    assert result.mode == "replay"


def test_custom_base_url_never_feeds_live(tmp_path: Path, server: ReplayServer) -> None:
    store = tmp_path / "snapshots"
    first = run(tmp_path, server, CTGOV_IDS)
    assert first.mode == "custom"
    assert snapshot.latest_of_mode(store, "live") is None  # a stand-in never becomes latest-live
    meta = snapshot.read_meta(first.snapshot_path)
    assert meta["endpoints"] == {"ctgov": "custom"}
    assert meta["carry_key"].startswith("custom-")
    # the same base URLs carry forward from it...
    server.add_fault("/ctgov/api/v2/studies", Fault(status=503), times=10)
    second = run(tmp_path, server, CTGOV_IDS)
    assert snapshot.read_meta(second.snapshot_path)["carried_from"] == first.snapshot_path.name
    # ...other base URLs do not
    with ReplayServer(BUNDLED_REPLAY) as other:
        other.add_fault("/ctgov/api/v2/studies", Fault(status=503), times=10)
        third = run(tmp_path, other, CTGOV_IDS)
    assert snapshot.read_meta(third.snapshot_path)["carried_from"] is None
    assert outcomes_of(third.snapshot_path)["NCT06482268"][1].count("stale") == 0


def test_reconstructed_records_are_labelled(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path, review_subset(tmp_path, ("NCT06482268", "NCT03418623")))
    result = run_pipeline(settings, RunRequest(replay_dir=BUNDLED_REPLAY))
    conn = sqlite3.connect(f"file:{result.snapshot_path}?mode=ro", uri=True)
    try:
        records = dict(conn.execute("select trial_id, origin from records"))
        payloads = dict(
            conn.execute("select trial_id, origin from payloads where kind = 'extract'")
        )
    finally:
        conn.close()
    assert records["NCT06482268"] == "reconstructed"  # rebuilt by hand from archived pages
    assert payloads["NCT06482268"] == "reconstructed"
    md = result.report_paths["md"].read_text(encoding="utf-8")
    assert "reconstructed" in md.lower()
    assert json.loads(json.dumps(snapshot.read_meta(result.snapshot_path)["endpoints"])) == {
        "ctgov": "replay"
    }


PEAK_RSS = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(done.stdout, end="")
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def test_50_mb_batch_answer_keeps_the_run_small(tmp_path: Path, server: ReplayServer) -> None:
    """The whole CLI run, in its own process, against a synthetic 50 MB answer (one real study
    repeated): the read stops at ctgov's 32 MB cap and the run stays under a few hundred MB."""
    real = BUNDLED_REPLAY / "ctgov" / "recorded" / "study_NCT03418623_phase2_completed.json"
    study = real.read_bytes().strip()
    body = b'{"studies":[' + b",".join([study] * (50 * 2**20 // len(study) + 1)) + b"]}"
    server.add_fault("/ctgov/api/v2/studies", Fault(status=200, body=body), times=None)
    cli = Path(sys.executable).parent / "registry-sync"
    cmd = [str(cli), "run", "--curated", str(review_subset(tmp_path, CTGOV_IDS))]
    cmd += ["--base-url", f"ctgov={server.base_urls()['ctgov']}", "--data-dir", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *cmd], capture_output=True, text=True, check=True
    )
    *out, peak_kb = done.stdout.splitlines()
    assert "trials: parse_error 3" in out
    assert int(peak_kb) < 400 * 1024  # KB; a run without the cap held the whole body and more
