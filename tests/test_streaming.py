"""A large ClinicalTrials.gov set is fetched in shares, each parsed and its bodies put in the
payload store before the next share is asked for: a run never holds every body at once."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest

from helpers import BUNDLED_REPLAY, fast_settings
from registry_sync import payload_store, pipeline
from registry_sync.http import Http
from registry_sync.model import FetchOutcome
from registry_sync.pipeline import RunRequest, Steps, run_pipeline
from registry_sync.registries import ctgov

HEADER = "row,table,product,refs,cell_type,indication,sponsor,trial_id,phase,nation,start,note\n"


def synthetic_set(tmp: Path, n: int) -> tuple[Path, Path]:
    """SYNTHETIC: N copies of a real recorded study, its NCT ID rewritten, and a table citing
    them (as bench/bench_scale.py builds them)."""
    source = next((BUNDLED_REPLAY / "ctgov" / "recorded").glob("study_NCT03418623_*.json"))
    text = source.read_text(encoding="utf-8")
    folder = tmp / "replay" / "ctgov" / "synthetic"
    folder.mkdir(parents=True)
    rows = []
    for i in range(n):
        nct = f"NCT9{i:07d}"
        (folder / f"{nct}.json").write_text(text.replace("NCT03418623", nct), encoding="utf-8")
        rows.append(f"{i + 1},1,synthetic {i},,,,,{nct},II,US,2018,SYNTHETIC\n")
    table = tmp / "review_stream_SYNTHETIC.csv"
    table.write_text(HEADER + "".join(rows), encoding="utf-8")
    return tmp / "replay", table


def test_shares_are_full_batches_in_order() -> None:
    wanted = [f"NCT9{i:07d}" for i in range(5000)]
    cut = ctgov.shares(wanted, "https://clinicaltrials.gov/api/v2")
    assert [t for share in cut for t in share] == wanted
    per_batch = len(ctgov.batches(wanted, "https://clinicaltrials.gov/api/v2")[0])
    assert [len(s) for s in cut[:-1]] == [ctgov.BATCHES_PER_SHARE * per_batch] * (len(cut) - 1)


def test_each_share_is_stored_before_the_next_is_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ctgov, "BATCHES_PER_SHARE", 1)  # one batch a share: 4 shares
    monkeypatch.setattr(pipeline, "JOBS_AT_ONCE", 1)  # one share in flight
    replay, table = synthetic_set(tmp_path, 1800)
    settings = fast_settings(tmp_path / "data", table)
    store = payload_store.default_path(settings.snapshots_dir)
    stored_at_start: list[int] = []

    def fetch(key: str, ids: Sequence[str], http: Http, base_url: str) -> list[FetchOutcome]:
        stored_at_start.append(len(payload_store.hashes(store)))
        return pipeline.fetch_registry(key, ids, http, base_url)

    result = run_pipeline(settings, RunRequest(replay_dir=replay), Steps(fetch_registry=fetch))
    assert result.outcomes == {"ok": 1800}
    assert len(stored_at_start) == 4
    # nothing stored before the first share; then each share's page and its studies
    assert stored_at_start[0] == 0
    assert all(b > a for a, b in itertools.pairwise(stored_at_start))
    assert stored_at_start[-1] >= 1800 * 3 // 4  # three shares' extracts already on disk
