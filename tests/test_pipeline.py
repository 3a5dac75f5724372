"""End to end through `run_pipeline`: the real Http, the real adapter, a loopback server."""

from __future__ import annotations

import json
import sqlite3
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest

from helpers import (
    BUNDLED_REPLAY,
    absurd_start_replay,
    fast_settings,
    replay_copy,
    review_subset,
)
from registry_sync import snapshot
from registry_sync.errors import CuratedTableError
from registry_sync.pipeline import RunRequest, run_pipeline
from registry_sync.replay import Fault, ReplayServer

SUBSET = ("NCT06482268", "NCT04363346", "NCT04331613")


def rows_of(path: Path, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def small_curated(tmp_path: Path, ids: tuple[str, ...] = SUBSET) -> Path:
    return review_subset(tmp_path, ids)


def test_replay_of_bundled_review_covers_every_row(tmp_path: Path) -> None:
    result = run_pipeline(fast_settings(tmp_path), RunRequest(replay_dir=BUNDLED_REPLAY))
    # every registry has an adapter: the review's own trials are not in the recorded set, but
    # the reconstructed ClinicalTrials.gov ones; JMACCT is retired (moved); one ID is malformed
    assert result.outcomes == {"ok": 15, "not_in_replay": 86, "moved": 1, "id_malformed": 1}
    assert sum(result.outcomes.values()) == 103  # every distinct ID of the 105 rows
    # none of these is a registry that could not be checked: not partial (see `coverage`)
    assert not result.partial and result.accepted and result.exit_code == 0
    assert snapshot.latest_snapshot(tmp_path / "snapshots") == result.snapshot_path
    md = result.report_paths["md"].read_text(encoding="utf-8")
    assert (
        "Table 2 row 7, CT1-DAP001 (NCT06482268): review says Phase I/II; "
        "registry says Phase I (PHASE1) (last updated 2025-01-29) [RECONSTRUCTED]"
    ) in md
    assert "| JMA-IIA00412 | JMACCT (JMA-IIA) | moved |" in md
    assert "WHO ICTRP: not_found" in md  # asked of ICTRP, which (in this set) has no copy


def test_ids_restrict_an_adhoc_run(tmp_path: Path) -> None:
    result = run_pipeline(
        fast_settings(tmp_path),
        RunRequest(ids=("NCT06482268", "jrct2053190081"), replay_dir=BUNDLED_REPLAY),
    )
    assert result.outcomes == {"ok": 1, "not_in_replay": 1}
    trials = rows_of(result.snapshot_path, "select trial_id from outcomes order by trial_id")
    assert trials == [("NCT06482268",), ("jRCT2053190081",)]


def test_registry_filter_keeps_only_that_registry(tmp_path: Path) -> None:
    result = run_pipeline(
        fast_settings(tmp_path), RunRequest(registries=("umin",), replay_dir=BUNDLED_REPLAY)
    )
    assert result.outcomes == {"not_in_replay": 3}


def test_unknown_id_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NCT99999999"):
        run_pipeline(fast_settings(tmp_path), RunRequest(ids=("NCT99999999",)))


def test_no_network_completes_partial_with_registry_down(tmp_path: Path) -> None:
    settings = fast_settings(
        tmp_path, small_curated(tmp_path), ctgov="http://127.0.0.1:9/api/v2"
    )  # nothing listens on port 9
    result = run_pipeline(settings)
    assert result.outcomes == {"registry_down": 3}
    assert result.partial and result.exit_code == 1
    detail = rows_of(result.snapshot_path, "select detail from outcomes")[0][0]
    assert "cannot connect" in str(detail)


def test_down_registry_carries_last_good_values_forward_marked_stale(tmp_path: Path) -> None:
    curated = small_curated(tmp_path)
    with ReplayServer(replay_copy(tmp_path, *SUBSET)) as server:
        settings = fast_settings(tmp_path, curated, **server.base_urls())
        first = run_pipeline(settings)
        assert first.outcomes == {"ok": 3} and not first.partial
        server.add_fault("/ctgov/api/v2/studies", Fault(status=503), times=10)
        second = run_pipeline(settings)
    assert second.outcomes == {"registry_down": 3} and second.partial
    stale = rows_of(
        second.snapshot_path, "select trial_id, stale, carried_from, status from records order by 1"
    )
    assert [(t, s, c) for t, s, c, _ in stale] == [(t, 1, first.run_id) for t in sorted(SUBSET)]
    assert all(status for *_, status in stale)  # values kept, never blanked
    phase = rows_of(
        second.snapshot_path, "select stale from findings where kind = 'phase_mismatch'"
    )
    assert phase == [(1,)]
    # the carried payloads travel with the new snapshot, so it stands alone
    payloads = rows_of(second.snapshot_path, "select count(*) from payloads where kind = 'extract'")
    assert payloads == [(3,)]
    # the 503 answers are kept as evidence of why the values are stale; the request the kept
    # values came in (run 1's 200) travels with them
    sql = "select distinct registry, status from requests join evidence using (request_id)"
    # ClinicalTrials.gov answered 503; WHO ICTRP, asked next, had no copy in this replay set
    assert sorted(rows_of(second.snapshot_path, sql)) == [("ctgov", 503), ("ictrp", 404)]
    sql = "select status from requests join payloads using (request_id) where kind = 'extract'"
    assert set(rows_of(second.snapshot_path, sql)) == {(200,)}
    assert "[STALE: values fetched 20" in second.report_markdown
    assert "0 days before this run]" in second.report_markdown


def test_failing_quality_gate_rejects_and_keeps_latest(tmp_path: Path) -> None:
    curated = small_curated(tmp_path)
    replay = replay_copy(tmp_path, *SUBSET)
    good = run_pipeline(fast_settings(tmp_path, curated), RunRequest(replay_dir=replay))
    # every record fails a per-record expectation: the answer as a whole is implausible
    synthetic = absurd_start_replay(tmp_path, *SUBSET)
    bad = run_pipeline(fast_settings(tmp_path, curated), RunRequest(replay_dir=synthetic))
    assert not bad.accepted and bad.exit_code == 3
    assert bad.snapshot_path.parent.name == "rejected"
    assert snapshot.latest_snapshot(tmp_path / "snapshots") == good.snapshot_path
    assert "records_mostly_quarantined" in bad.validation["records"]["summary"]
    assert "start 1985-01-01 is before 1990-01-01" in json.dumps(bad.validation["records"])


def test_broken_table_stops_before_anything_is_written(tmp_path: Path) -> None:
    run_pipeline(
        fast_settings(tmp_path), RunRequest(ids=("NCT06482268",), replay_dir=BUNDLED_REPLAY)
    )
    before = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
    broken = tmp_path / "broken.csv"
    broken.write_text("table,product\n1,FT500\n", encoding="utf-8")
    with pytest.raises(CuratedTableError, match=r"broken\.csv"):
        run_pipeline(fast_settings(tmp_path, broken), RunRequest(replay_dir=BUNDLED_REPLAY))
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == before


def test_snapshot_is_read_only_and_has_provenance(tmp_path: Path) -> None:
    result = run_pipeline(
        fast_settings(tmp_path), RunRequest(ids=SUBSET, replay_dir=BUNDLED_REPLAY)
    )
    mode = result.snapshot_path.stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    prov = rows_of(
        result.snapshot_path,
        "select v.url, v.fetched_at, v.payload_sha256, p.sha256, r.source_url "
        "from provenance v join payloads p on p.sha256 = v.payload_sha256 "
        "join records r on r.trial_id = v.trial_id",
    )
    assert len(prov) == 3
    for url, fetched_at, sha, psha, own in prov:
        assert str(url).startswith("http://127.0.0.1:") and "filter.ids=" in str(url)
        assert fetched_at and sha == psha and len(str(sha)) == 64
        assert own is None  # the batch URL is kept once, in `requests`
    batch_url = prov[0][0]
    stored = rows_of(
        result.snapshot_path,
        "select (select count(*) from requests where url = ?)"
        " + (select count(*) from payloads where url = ?)"
        " + (select count(*) from outcomes where url = ?)",
        [batch_url] * 3,
    )
    assert stored == [(1,)]
    assert not list((tmp_path / "snapshots").glob(".*.tmp"))
