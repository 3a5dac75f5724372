"""Snapshots: schema pinned by a golden, immutable files, atomic writes, the latest pointer."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpers import FIXTURES
from registry_sync import snapshot
from registry_sync import snapshot_schema as schema
from registry_sync.errors import SnapshotError
from registry_sync.model import (
    CuratedRow,
    Exchange,
    Finding,
    Outcome,
    RawPayload,
    RegistryRecord,
    Severity,
    TrialState,
)

SCHEMA_GOLDEN = FIXTURES / "snapshot_schema.json"
WHEN = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def sample_data(
    run_id: str = "20261125T030000Z-0001", status: str = "RECRUITING"
) -> snapshot.SnapshotData:
    page = Exchange(
        request_id="r-0001",
        registry="ctgov",
        method="GET",
        url="http://127.0.0.1:1/ctgov/api/v2/studies?filter.ids=NCT06482268",
        status=200,
        fetched_at=WHEN,
        headers={"Content-Type": "application/json", "Set-Cookie": "secret=1"},
        body=b'{"studies":[{"protocolSection":{}}]}',
    )
    payload = RawPayload(
        "ctgov",
        "NCT06482268",
        page.url,
        WHEN,
        b'{"protocolSection":{}}',
        container_sha256=page.sha256,
        request_id=page.request_id,
    )
    record = RegistryRecord(
        registry="ctgov",
        trial_id="NCT06482268",
        status=status,
        status_raw=status,
        phases=("PHASE1",),
        phases_raw=("PHASE1",),
    )
    state = TrialState(
        "ctgov",
        "NCT06482268",
        Outcome.OK,
        record=record,
        fetched_at=WHEN,
        source_url=payload.url,
        payload_sha256=payload.sha256,
        source="ctgov",
        evidence=(page.request_id,),
    )
    row = CuratedRow(
        line=2,
        table=2,
        product="CT1-DAP001",
        cell_type="hiPSC-DA",
        indication="PD",
        sponsor="University of California",
        trial_id="NCT06482268",
        phase="I/II",
        nation="US",
        start="2024",
        registry="ctgov",
        phases=frozenset({"PHASE1", "PHASE2"}),
    )
    finding = Finding(
        2,
        2,
        "NCT06482268",
        "phase",
        "phase_mismatch",
        Severity.WARNING,
        "I/II",
        "PHASE1",
        "https://clinicaltrials.gov/study/NCT06482268",
        "review says Phase I/II; registry says PHASE1",
    )
    return snapshot.SnapshotData(
        run_id=run_id,
        meta={"mode": "live", "partial": False},
        curated=[row],
        states=[state],
        findings=[finding],
        payloads=[payload],
        parser_versions={"ctgov": 1},
        validation={},
        exchanges=[page],
        endpoints={"ctgov": "live"},
    )


def schema_of(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "select name from sqlite_master where type = 'table' order by name"
            )
        ]
        return {t: [c[1] for c in conn.execute(f"pragma table_info([{t}])")] for t in tables}
    finally:
        conn.close()


def test_snapshot_schema_matches_golden(tmp_path: Path, update_golden: bool) -> None:
    path = snapshot.write_snapshot(tmp_path, sample_data(), accepted=True)
    schema = schema_of(path)
    if update_golden:
        SCHEMA_GOLDEN.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    assert schema == json.loads(SCHEMA_GOLDEN.read_text(encoding="utf-8"))


def test_empty_run_has_the_same_tables_and_columns(tmp_path: Path) -> None:
    empty = replace(sample_data(), curated=[], states=[], findings=[], payloads=[], exchanges=[])
    path = snapshot.write_snapshot(tmp_path, empty, accepted=True)
    golden = json.loads(SCHEMA_GOLDEN.read_text(encoding="utf-8"))
    assert schema_of(path) == golden  # every table, every column, in order


def test_each_request_stored_once_and_the_extract_refers_to_it(tmp_path: Path) -> None:
    path = snapshot.write_snapshot(tmp_path, sample_data(), accepted=True)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        [req] = conn.execute("select request_id, status, headers, body_sha256 from requests")
        kinds = dict(conn.execute("select kind, request_id from payloads"))
        evidence = list(conn.execute("select trial_id, request_id from evidence"))
        [(record_payload,)] = conn.execute("select payload_sha256 from records")
        [(extract_request,)] = conn.execute(
            "select request_id from payloads where sha256 = ?", [record_payload]
        )
    finally:
        conn.close()
    page = sample_data().exchanges[0]
    assert req[0] == "r-0001" and req[1] == 200 and req[3] == page.sha256
    assert json.loads(req[2]) == {"Content-Type": "application/json"}  # no cookie values kept
    assert kinds == {"served": "r-0001", "extract": "r-0001"}  # the page as served + its extract
    assert evidence == [("NCT06482268", "r-0001")]
    assert extract_request == "r-0001"


def test_list_columns_are_json_in_every_table(tmp_path: Path) -> None:
    path = snapshot.write_snapshot(tmp_path, sample_data(), accepted=True)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        [(curated_phases,)] = conn.execute("select phases from curated")
        [(record_phases,)] = conn.execute("select phases from records")
    finally:
        conn.close()
    assert json.loads(curated_phases) == ["PHASE1", "PHASE2"]
    assert json.loads(record_phases) == ["PHASE1"]


def test_finished_at_is_stamped_after_the_reports_are_rendered(tmp_path: Path) -> None:
    seen: list[dict[str, object]] = []

    def render(tmp: Path) -> None:
        assert tmp.name.startswith(".") and not (tmp_path / "latest").exists()
        seen.append(snapshot.read_meta(tmp))

    path = snapshot.write_snapshot(tmp_path, sample_data(), accepted=True, before_publish=render)
    assert "finished_at" not in seen[0]
    finished = datetime.fromisoformat(str(snapshot.read_meta(path)["finished_at"]))
    assert finished >= WHEN


def test_failing_render_publishes_nothing(tmp_path: Path) -> None:
    def render(tmp: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        snapshot.write_snapshot(tmp_path, sample_data(), accepted=True, before_publish=render)
    # no snapshot, temp file or pointer; only bodies in the payload store, which no snapshot
    # names (prune collects them)
    assert [p.name for p in tmp_path.iterdir()] == ["payloads"]


def test_snapshot_is_never_overwritten(tmp_path: Path) -> None:
    path = snapshot.write_snapshot(tmp_path, sample_data(), accepted=True)
    before = path.read_bytes()
    with pytest.raises(SnapshotError, match="never overwritten"):
        snapshot.write_snapshot(tmp_path, sample_data(status="COMPLETED"), accepted=True)
    assert path.read_bytes() == before


def test_snapshot_file_mode_is_read_only(tmp_path: Path) -> None:
    path = snapshot.write_snapshot(tmp_path, sample_data(), accepted=True)
    assert path.stat().st_mode & 0o777 == 0o444


def test_crash_mid_write_leaves_no_file_and_keeps_latest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = snapshot.write_snapshot(tmp_path, sample_data(), accepted=True)

    def crash(*args: object) -> dict[str, object]:
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(schema, "finding_row", crash)
    with pytest.raises(RuntimeError, match="killed mid-write"):
        snapshot.write_snapshot(tmp_path, sample_data("20261126T030000Z-0002"), accepted=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        good.name,
        "latest",
        "latest-live",
        "latest.sqlite",
        "payloads",  # the payload store (see payload_store.py)
    ]
    assert snapshot.latest_snapshot(tmp_path) == good


def test_rejected_snapshot_goes_apart_and_latest_stays(tmp_path: Path) -> None:
    good = snapshot.write_snapshot(tmp_path, sample_data(), accepted=True)
    bad = replace(sample_data("20261126T030000Z-0002"), validation={"records": {"success": False}})
    rejected = snapshot.write_snapshot(tmp_path, bad, accepted=False)
    assert rejected.parent == tmp_path / "rejected"
    report = tmp_path / "rejected" / "20261126T030000Z-0002.validation.json"
    assert json.loads(report.read_text(encoding="utf-8")) == {"records": {"success": False}}
    assert snapshot.latest_snapshot(tmp_path) == good
    assert (tmp_path / "latest.sqlite").resolve() == good.resolve()
    infos = snapshot.list_snapshots(tmp_path)
    assert [(i.run_id, i.accepted) for i in infos] == [
        ("20261125T030000Z-0001", True),
        ("20261126T030000Z-0002", False),
    ]
    assert snapshot.latest_of_mode(tmp_path, "live") == good


def test_content_hash_ignores_provenance_and_sees_values(tmp_path: Path) -> None:
    a = schema.record_row(sample_data().states[0], {"ctgov": 1})
    moved = replace(sample_data().states[0], source_url="http://elsewhere", fetched_at=None)
    b = schema.record_row(moved, {"ctgov": 1})
    c = schema.record_row(sample_data(status="COMPLETED").states[0], {"ctgov": 1})
    assert a["content_hash"] == b["content_hash"] != c["content_hash"]


def test_open_snapshot_rejects_foreign_files(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("create table t (x)").connection.close()
    with pytest.raises(SnapshotError, match="not a registry-sync snapshot"):
        snapshot.open_snapshot(other)
    with pytest.raises(SnapshotError, match="no such snapshot"):
        snapshot.open_snapshot(tmp_path / "missing.sqlite")


def test_latest_of_mode_follows_its_own_pointer(tmp_path: Path) -> None:
    live = snapshot.write_snapshot(tmp_path, sample_data(), accepted=True)
    replay = replace(sample_data("20261126T030000Z-0002"), meta={"mode": "replay"})
    replayed = snapshot.write_snapshot(tmp_path, replay, accepted=True)
    assert snapshot.latest_snapshot(tmp_path) == replayed  # newest of any mode
    assert snapshot.latest_of_mode(tmp_path, "live") == live  # what a live run carries from
    assert snapshot.latest_of_mode(tmp_path, "replay") == replayed
    (tmp_path / "latest-live").unlink()  # a store from before per-mode pointers is scanned
    assert snapshot.latest_of_mode(tmp_path, "live") == live


def test_load_records_reads_only_the_trials_asked_for(tmp_path: Path) -> None:
    path = snapshot.write_snapshot(tmp_path, sample_data(), accepted=True)
    assert snapshot.load_records(path, ["NCT00000000"]) == {}
    assert list(snapshot.load_records(path, ["NCT06482268"])) == ["NCT06482268"]


def test_stored_records_round_trip_their_payload(tmp_path: Path) -> None:
    path = snapshot.write_snapshot(tmp_path, sample_data(), accepted=True)
    stored = snapshot.load_records(path)["NCT06482268"]
    assert stored.payload is not None
    assert stored.payload.body == b'{"protocolSection":{}}'
    assert stored.payload.fetched_at == WHEN
    assert stored.run_id == "20261125T030000Z-0001"


KILLED_WRITER = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_snapshot import sample_data
from registry_sync import snapshot, snapshot_schema

def slow(*args):
    print("writing", flush=True)
    time.sleep(60)

snapshot_schema.finding_row = slow
snapshot.write_snapshot(Path({store!r}), sample_data("20261126T030000Z-0002"), accepted=True)
"""


def test_killed_writer_leaves_no_snapshot_and_latest_untouched(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    good = snapshot.write_snapshot(tmp_path, sample_data(), accepted=True)
    script = KILLED_WRITER.format(tests=str(Path(__file__).parent), store=str(tmp_path))
    cmd = [sys.executable, "-c", script]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "writing"  # mid-write, inside the transaction
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert not (tmp_path / "20261126T030000Z-0002.sqlite").exists()
    assert snapshot.latest_snapshot(tmp_path) == good
    assert [i.run_id for i in snapshot.list_snapshots(tmp_path)] == ["20261125T030000Z-0001"]
    assert [p.name for p in snapshot.leftover_temp_files(tmp_path)] == [
        ".20261126T030000Z-0002.sqlite.tmp"
    ]


def test_a_pointer_that_is_not_ours_names_nothing(tmp_path: Path) -> None:
    """A copied store can hold `latest.sqlite` as a file, and a pointer can be garbage: neither
    is read as a snapshot name (nor crashes the run that restores reports)."""
    (tmp_path / "latest").write_bytes(b"SQLite format 3\x00\xf8\xff")
    (tmp_path / "latest-live").write_text("../../etc/passwd\n", encoding="utf-8")
    assert snapshot.latest_snapshot(tmp_path) is None
    assert snapshot.latest_snapshot(tmp_path, "latest-live") is None
