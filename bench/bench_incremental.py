"""Incremental nights: first (full) run against second run, wall time and requests. A script
that prints figures; not a test (pytest does not collect `bench/`).

    PYTHONPATH=src .venv/bin/python bench/bench_incremental.py [--trials 3000] [--changed 30]

1. The whole review's replay: `data/replay` copied into a temp dir with a SYNTHETIC
   `ctgov/version.json` (the bundled set has none, and without a data timestamp every night is
   full), the bundled review table, two runs.
2. A SYNTHETIC ClinicalTrials.gov set of `--trials` studies derived from the real recorded study
   (as `bench_soak.py` builds it) plus the same `version.json`: a first run, a second with
   nothing changed, and a third after `--changed` studies had their last-update date moved past
   the data timestamp and their phase edited.

Loopback replay, no throttle (politeness intervals are not applied to loopback hosts). Figures:
wall seconds, requests sent, and the `_meta.incremental` counts of each run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_soak import scale_set  # type: ignore[import-not-found]
from registry_sync import snapshot
from registry_sync.pipeline import RunRequest, RunResult, run_pipeline
from registry_sync.settings import HttpSettings, Settings

ROOT = Path(__file__).resolve().parent.parent
REPLAY = ROOT / "data" / "replay"
CURATED = ROOT / "data" / "curated" / "review_2025_hpsc.csv"
EXPECTATIONS = ROOT / "expectations"
VERSION = {"apiVersion": "2.0.5", "dataTimestamp": "2026-09-04T09:00:06"}  # SYNTHETIC
HTTP = HttpSettings(
    max_retries=0, backoff_base=0.0, connect_timeout=2.0, read_timeout=30.0, min_interval={}
)


def timed(settings: Settings, replay: Path, label: str) -> tuple[float, int]:
    clock = time.monotonic()
    result: RunResult = run_pipeline(settings, RunRequest(replay_dir=replay))
    wall = time.monotonic() - clock
    meta = snapshot.read_meta(result.snapshot_path)
    inc = result.incremental
    counts = ", ".join(
        f"{k} {inc[k]}"
        for k in ("asked", "returned", "changed", "unchanged", "fetched_in_full")
        if k in inc
    )
    print(
        f"  {label:<28} {wall:7.2f} s  {meta['requests_sent']:>5} requests  "
        f"{inc.get('mode', '-')}{f' ({counts})' if counts else ''}"
    )
    return wall, int(meta["requests_sent"])


def whole_review(tmp: Path) -> None:
    replay = tmp / "replay"
    shutil.copytree(REPLAY, replay)
    (replay / "ctgov" / "version.json").write_text(json.dumps(VERSION), encoding="utf-8")
    settings = Settings(
        data_dir=tmp / "data", curated_path=CURATED, expectations_dir=EXPECTATIONS, http=HTTP
    )
    print("whole review (bundled table, data/replay + synthetic version.json)")
    first, _ = timed(settings, replay, "first run (full)")
    second, _ = timed(settings, replay, "second run, nothing changed")
    print(f"  second/first: {second / first:.2f}")


def synthetic(tmp: Path, trials: int, changed: int) -> None:
    replay, review, ids = scale_set(tmp, trials)
    (replay / "ctgov" / "version.json").write_text(json.dumps(VERSION), encoding="utf-8")
    settings = Settings(
        data_dir=tmp / "data", curated_path=review, expectations_dir=EXPECTATIONS, http=HTTP
    )
    print(f"synthetic ClinicalTrials.gov set: {trials} studies")
    first, _ = timed(settings, replay, "first run (full)")
    second, _ = timed(settings, replay, "second run, nothing changed")
    for nct in ids[:changed]:
        path = replay / "ctgov" / "synthetic" / f"{nct}.json"
        doc = json.loads(path.read_text(encoding="utf-8"))
        status = doc["protocolSection"]["statusModule"]
        status["lastUpdatePostDateStruct"] = {"date": "2026-09-05", "type": "ACTUAL"}
        doc["protocolSection"]["designModule"]["phases"] = ["PHASE3"]
        path.write_text(json.dumps(doc), encoding="utf-8")
    third, _ = timed(settings, replay, f"third run, {changed} changed")
    print(f"  second/first: {second / first:.2f}; third/first: {third / first:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3000)
    parser.add_argument("--changed", type=int, default=30)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp:
        whole_review(Path(tmp) / "review")
        synthetic(Path(tmp) / "synthetic", args.trials, args.changed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
