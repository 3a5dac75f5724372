"""`registry-sync verify` finds a missing or corrupt payload and a damaged snapshot;
`registry-sync prune --keep N` keeps the newest N of each kind and every pointed snapshot,
collects the bodies nobody names, takes the run lock, and leaves everything verifying."""

from __future__ import annotations

import sqlite3
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import BUNDLED_REPLAY, fast_settings, review_subset
from registry_sync import payload_store, retention, runlock, snapshot
from registry_sync.cli import main
from registry_sync.pipeline import RunRequest, run_pipeline
from test_snapshot import sample_data


def night(store: Path, run_id: str, body: bytes, mode: str = "live") -> Path:
    """A snapshot whose trial extract is `body` (its batch page shared by every night)."""
    data = sample_data(run_id)
    payload = replace(data.payloads[0], body=body)
    state = replace(data.states[0], payload_sha256=payload.sha256)
    data = replace(data, payloads=[payload], states=[state], meta={"mode": mode})
    return snapshot.write_snapshot(store, data, accepted=True)


def stored(store: Path) -> set[str]:
    return payload_store.hashes(payload_store.default_path(store))


def sha(body: bytes) -> str:
    return payload_store.sha256(body)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("REGISTRY_SYNC_LOCK_WAIT", "0")
    return CliRunner()


def test_verify_passes_on_a_whole_store_and_names_a_missing_or_corrupt_payload(
    tmp_path: Path, runner: CliRunner
) -> None:
    store = tmp_path / "snapshots"
    path = night(store, "20261125T030000Z-0001", b'{"n":1}')
    ok = runner.invoke(main, ["verify", "--data-dir", str(tmp_path)])
    assert ok.exit_code == 0 and ok.stdout == "", ok.output
    assert "verified 1 snapshot(s): 0 problem(s)" in ok.stderr
    conn = sqlite3.connect(payload_store.default_path(store))
    with conn:  # a flipped body (still valid zlib) and a lost one
        conn.execute(
            "update bodies set data = ? where sha256 = ?",
            [zlib.compress(b'{"n":2}'), sha(b'{"n":1}')],
        )
        page = sample_data().exchanges[0].sha256
        conn.execute("delete from bodies where sha256 = ?", [page])
    conn.close()
    flipped = sha(b'{"n":1}')
    bad = runner.invoke(main, ["verify", str(path)])
    assert bad.exit_code == 4
    lines = bad.stdout.splitlines()
    assert len(lines) == 2, lines
    assert any(f"payload {flipped} corrupt" in line for line in lines)
    assert any(f"payload {page} missing" in line for line in lines)
    assert all(line.startswith(f"{path}: ") for line in lines)


def test_verify_catches_a_tampered_inline_body_and_a_damaged_file(tmp_path: Path) -> None:
    store = tmp_path / "snapshots"
    old = snapshot.write_snapshot(store, sample_data(), accepted=True, inline_payloads=True)
    assert retention.verify(old) == []
    old.chmod(0o644)
    conn = sqlite3.connect(old)
    with conn:
        conn.execute("update payloads set body = ? where kind = 'extract'", [b"tampered"])
    conn.close()
    (problem,) = retention.verify(old)
    assert "inline bytes hash to " + sha(b"tampered") in problem.message
    junk = store / "20261126T030000Z-0002.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    checked, problems = retention.verify_all(store)
    assert checked == 2 and {p.path for p in problems} == {old, junk}


def test_prune_keeps_the_newest_of_each_kind_and_pointed_ones(tmp_path: Path) -> None:
    store = tmp_path / "snapshots"
    reports = tmp_path / "reports"
    reports.mkdir()
    live = [night(store, f"20261125T03000{i}Z-000{i}", f'{{"n":{i}}}'.encode()) for i in (1, 2, 3)]
    replay = night(store, "20261124T030000Z-0009", b'{"replay":1}', mode="replay")
    for path in live:
        snapshot.report_paths(reports, path)["md"].write_text("report", encoding="utf-8")
    # a pointer naming the oldest live one (e.g. a human pinned it): it must stay
    snapshot.write_text_atomic(store / "latest-live", live[0].name + "\n")
    assert len(stored(store)) == 5  # the shared batch page once, four extracts
    result = retention.prune(store, keep=1, reports_dir=reports)
    assert result.deleted == (live[1],)
    assert set(result.kept) == {live[0], live[2], replay}
    assert not live[1].exists() and not snapshot.report_paths(reports, live[1])["md"].exists()
    assert snapshot.report_paths(reports, live[2])["md"].exists()
    assert result.bodies_deleted == 1 and sha(b'{"n":2}') not in stored(store)
    assert sha(b'{"n":1}') in stored(store) and sha(b'{"n":3}') in stored(store)
    assert sample_data().exchanges[0].sha256 in stored(store)  # still named: kept
    checked, problems = retention.verify_all(store)
    assert (checked, problems) == (3, [])
    assert snapshot.load_records(live[0])["NCT06482268"].payload is not None


def test_prune_skips_collecting_when_a_snapshot_cannot_be_read(tmp_path: Path) -> None:
    store = tmp_path / "snapshots"
    for i in (1, 2):
        night(store, f"20261125T03000{i}Z-000{i}", f'{{"n":{i}}}'.encode())
    (store / "20261126T030000Z-0003.sqlite").write_bytes(b"garbage" * 50)
    result = retention.prune(store, keep=1)
    assert len(result.deleted) == 1 and "unreadable" in result.skipped_collect
    assert sha(b'{"n":1}') in stored(store)  # not collected: the unreadable one might name it


def test_prune_waits_for_the_run_lock(tmp_path: Path, runner: CliRunner) -> None:
    store = tmp_path / "snapshots"
    paths = [night(store, f"20261125T03000{i}Z-000{i}", f"{i}".encode()) for i in (1, 2)]
    with runlock.hold(tmp_path, wait=0):
        refused = runner.invoke(main, ["prune", "--keep", "1", "--data-dir", str(tmp_path)])
    assert refused.exit_code == 4 and "another run holds" in refused.stderr
    assert all(p.exists() for p in paths)
    dry = runner.invoke(main, ["prune", "--keep", "1", "--dry-run", "--data-dir", str(tmp_path)])
    assert dry.exit_code == 0 and dry.stdout == f"would delete {paths[0]}\n"
    assert paths[0].exists()
    bad = runner.invoke(main, ["prune", "--keep", "0", "--data-dir", str(tmp_path)])
    assert bad.exit_code == 2


def test_prune_after_real_runs_keeps_latest_verifying_and_carrying(
    tmp_path: Path, runner: CliRunner
) -> None:
    settings = fast_settings(tmp_path, review_subset(tmp_path, ("NCT06482268", "NCT04363346")))
    runs = [run_pipeline(settings, RunRequest(replay_dir=BUNDLED_REPLAY)) for _ in range(3)]
    latest = runs[-1].snapshot_path
    assert latest is not None and snapshot.latest_snapshot(tmp_path / "snapshots") == latest
    pruned = runner.invoke(main, ["prune", "--keep", "1", "--data-dir", str(tmp_path)])
    assert pruned.exit_code == 0, pruned.output
    assert "deleted 2 snapshot(s), kept 1" in pruned.stderr
    assert [i.path for i in snapshot.list_snapshots(tmp_path / "snapshots")] == [latest]
    verified = runner.invoke(main, ["verify", "--all", "--data-dir", str(tmp_path)])
    assert verified.exit_code == 0, verified.output
    # the next night carries from what is left
    again = run_pipeline(settings, RunRequest(replay_dir=BUNDLED_REPLAY))
    assert again.accepted and again.outcomes == runs[0].outcomes
