"""The payload store: bodies kept once across snapshots, compressed, read back through
`snapshot.payload_bodies`; old snapshots with inline bodies still read; carry-forward re-parses
bodies that live in the store."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from pathlib import Path

import pytest

from helpers import BUNDLED_REPLAY, fast_settings, review_subset
from registry_sync import payload_store, snapshot
from registry_sync.errors import SnapshotError
from registry_sync.pipeline import RunRequest, run_pipeline
from registry_sync.replay import Fault, ReplayServer
from test_snapshot import sample_data

SUBSET = ("NCT06482268", "NCT04363346", "NCT04331613")


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def store_rows(path: Path) -> list[tuple[str, int, bytes]]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute("select sha256, size, data from bodies order by sha256"))
    finally:
        conn.close()


def test_round_trip_compresses_and_keeps_each_body_once(tmp_path: Path) -> None:
    where = tmp_path / "payloads.sqlite"
    page = b'{"studies":[' + b'{"protocolSection":{"x":"recruiting"}},' * 200 + b"{}]}"
    other = b"<html>blocked</html>"
    assert payload_store.put(where, [(sha(page), page), (sha(other), other)])[0] == 2
    assert payload_store.put(where, [(sha(page), page)]) == (0, 0)  # already there: no bytes
    rows = store_rows(where)
    assert [r[0] for r in rows] == sorted([sha(page), sha(other)])
    stored = {digest: data for digest, _, data in rows}
    assert len(stored[sha(page)]) < len(page) / 10  # compressed
    assert payload_store.get(where, [sha(page), sha(other), "0" * 64]) == {
        sha(page): page,
        sha(other): other,
    }
    assert payload_store.check(where, [sha(page), sha(other)]) == []


def test_store_refuses_a_body_under_another_hash(tmp_path: Path) -> None:
    where = tmp_path / "payloads.sqlite"
    with pytest.raises(ValueError, match="does not hash"):
        payload_store.put(where, [(sha(b"a"), b"a"), (sha(b"a"), b"b")])
    assert store_rows(where) == []  # one transaction: nothing of it kept


def test_snapshot_names_the_store_and_keeps_no_body_inline(tmp_path: Path) -> None:
    path = snapshot.write_snapshot(tmp_path, sample_data(), accepted=True)
    meta = snapshot.read_meta(path)
    assert meta["payload_store"] == "payloads/payloads.sqlite"
    assert meta["schema_version"] >= 4  # 4 brought the store; 5 added reviews
    conn = sqlite3.connect(path)
    rows = list(conn.execute("select sha256, size, body from payloads order by sha256"))
    conn.close()
    assert len(rows) == 2 and all(body is None for _, _, body in rows)
    bodies = snapshot.payload_bodies(path)
    assert sorted(bodies) == [r[0] for r in rows]
    for digest, size, _ in rows:
        assert sha(bodies[digest]) == digest and len(bodies[digest]) == size
    assert {r[0] for r in store_rows(tmp_path / "payloads" / "payloads.sqlite")} == set(bodies)


def test_old_snapshot_with_inline_bodies_still_reads(tmp_path: Path) -> None:
    path = snapshot.write_snapshot(tmp_path, sample_data(), accepted=True, inline_payloads=True)
    assert "payload_store" not in snapshot.read_meta(path)
    assert not (tmp_path / "payloads").exists()
    bodies = snapshot.payload_bodies(path)
    assert b'{"protocolSection":{}}' in bodies.values()
    stored = snapshot.load_records(path)["NCT06482268"]
    assert stored.payload is not None and stored.payload.body == b'{"protocolSection":{}}'


def test_a_body_missing_from_the_store_is_a_clear_error(tmp_path: Path) -> None:
    path = snapshot.write_snapshot(tmp_path, sample_data(), accepted=True)
    (tmp_path / "payloads" / "payloads.sqlite").unlink()
    with pytest.raises(SnapshotError, match=r"missing from .*registry-sync verify"):
        snapshot.load_records(path)


def test_two_nights_with_nothing_changed_store_each_body_once(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path, review_subset(tmp_path, SUBSET))
    first = run_pipeline(settings, RunRequest(replay_dir=BUNDLED_REPLAY))
    where = tmp_path / "snapshots" / "payloads" / "payloads.sqlite"
    after_first = store_rows(where)
    second = run_pipeline(settings, RunRequest(replay_dir=BUNDLED_REPLAY))
    assert first.snapshot_path is not None and second.snapshot_path is not None
    assert store_rows(where) == after_first  # nothing added on the second night
    named = [set(snapshot.payload_bodies(p)) for p in (first.snapshot_path, second.snapshot_path)]
    assert named[0] == named[1] == {r[0] for r in after_first}
    conn = sqlite3.connect(second.snapshot_path)
    kinds = dict(conn.execute("select kind, count(*) from payloads group by kind"))
    conn.close()
    assert kinds["extract"] == 3 and sum(kinds.values()) == len(after_first)
    for digest, size, data in after_first:  # every stored body decompresses to its hash
        assert sha(zlib.decompress(data)) == digest and len(zlib.decompress(data)) == size


def test_carry_forward_reparses_bodies_from_the_store(tmp_path: Path) -> None:
    curated = review_subset(tmp_path, SUBSET)
    with ReplayServer(BUNDLED_REPLAY) as server:
        settings = fast_settings(tmp_path, curated, **server.base_urls())
        first = run_pipeline(settings)
        server.add_fault("/ctgov/api/v2/studies", Fault(status=503), times=10)
        second = run_pipeline(settings)
    assert first.snapshot_path is not None and second.snapshot_path is not None
    conn = sqlite3.connect(first.snapshot_path)
    assert conn.execute("select count(*) from payloads where body is not null").fetchone() == (0,)
    conn.close()
    assert second.outcomes == {"registry_down": 3}
    carried = snapshot.load_records(second.snapshot_path)
    assert set(carried) == set(SUBSET)
    for trial_id, stored in carried.items():
        assert stored.row["stale"] == 1 and stored.run_id == first.run_id
        assert stored.payload is not None
        doc = json.loads(stored.payload.body)
        assert doc["protocolSection"]["identificationModule"]["nctId"] == trial_id


def test_a_rejected_snapshot_names_the_same_store_from_its_folder(tmp_path: Path) -> None:
    path = snapshot.write_snapshot(tmp_path, sample_data(), accepted=False)
    assert path.parent.name == "rejected"
    assert snapshot.read_meta(path)["payload_store"] == "../payloads/payloads.sqlite"
    assert snapshot.payload_store_of(path) == tmp_path / "rejected" / "../payloads/payloads.sqlite"
    bodies = snapshot.payload_bodies(path)
    assert b'{"protocolSection":{}}' in bodies.values()
    assert set(bodies) == payload_store.hashes(tmp_path / "payloads" / "payloads.sqlite")
