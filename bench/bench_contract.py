"""Figures for the adapter contract: registries side by side vs one after another, and the
memory of a run whose registry answers with a 50 MB body. A script that prints; not a test.

    .venv/bin/python bench/bench_contract.py

1. Side by side: two registries (jRCT and UMIN-CTR keys) served by stand-in adapters that fetch
   each of the review's IDs for them from the loopback replay server, every answer held back
   `--delay` seconds (a slow registry). The same run with `fetch_workers=1` (one registry after
   another) and with the default (one worker per registry). Stand-ins, because those adapters
   are not built yet; the HTTP client, the pipeline and the server are the real ones.
2. Oversized answer: `registry-sync run --registry ctgov --base-url ctgov=<loopback>` in a
   subprocess, first normally, then with every `/studies` answer replaced by a SYNTHETIC 50 MB
   body (one real study, tests/fixtures/ctgov/study_NCT03418623_phase2_completed.json, repeated).
   Prints wall time, the outcomes and the subprocess's peak RSS (`ru_maxrss` of the child).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from registry_sync import registries
from registry_sync.errors import FetchError
from registry_sync.http import Http
from registry_sync.model import FetchOutcome, Outcome, RawPayload, RegistryRecord
from registry_sync.pipeline import RunRequest, run_pipeline
from registry_sync.registries.base import Registry
from registry_sync.registry_table import REGISTRY_TABLE
from registry_sync.replay import Fault, ReplayServer
from registry_sync.settings import HttpSettings, Settings

ROOT = Path(__file__).resolve().parent.parent
REPLAY = ROOT / "data" / "replay"
CURATED = ROOT / "data" / "curated" / "review_2025_hpsc.csv"
STUDY = ROOT / "tests" / "fixtures" / "ctgov" / "study_NCT03418623_phase2_completed.json"


def stand_in(key: str) -> Registry:
    """A registry adapter stand-in: one GET per ID through the real client."""

    def fetch(ids: Sequence[str], http: Http, base: str) -> list[FetchOutcome]:
        out = []
        for tid in ids:
            try:
                resp = http.get(f"{base}/slow/{tid}", registry=key, accept="text/html")
            except FetchError as exc:
                out.append(FetchOutcome(key, tid, Outcome.REGISTRY_DOWN, str(exc)))
                continue
            payload = RawPayload(key, tid, resp.url, datetime.now(UTC), resp.body)
            out.append(FetchOutcome(key, tid, Outcome.OK, payload=payload))
        return out

    def parse(payload: RawPayload) -> RegistryRecord:
        return RegistryRecord(registry=key, trial_id=payload.trial_id)

    info = REGISTRY_TABLE[key]
    assert info.id_pattern is not None
    return Registry(key, info.name, info.id_pattern, 1, fetch, parse)


def side_by_side(delay: float) -> None:
    for key in ("jrct", "umin"):
        registries.REGISTRIES[key] = stand_in(key)
    http = HttpSettings(max_retries=0)
    with ReplayServer(REPLAY) as server, tempfile.TemporaryDirectory() as tmp:
        for key in ("jrct", "umin"):
            slow = Fault(status=200, body=b"<html></html>", delay=delay)
            server.add_fault(f"/{key}/slow/", slow, times=None)
        base = {k: f"{server.url}/{k}" for k in ("jrct", "umin")}
        print(f"\n1. two slow registries (every answer after {delay} s), the review's IDs")
        print(f"{'fetch':<22}{'run s':>8}{'fetch s':>9}  per registry (s)")
        cases = (("warm-up (not shown)", None), ("one after another", 1), ("side by side", None))
        for label, workers in cases:
            settings = Settings(
                data_dir=Path(tmp) / label.replace(" ", "-"),
                curated_path=CURATED,
                expectations_dir=ROOT / "expectations",
                http=http,
                fetch_workers=workers,
            ).with_base_urls(base)
            started = time.monotonic()
            result = run_pipeline(settings, RunRequest(registries=("jrct", "umin")))
            wall = time.monotonic() - started
            seconds = _fetch_seconds(result.snapshot_path)
            fetch = _fetch_wall(result.snapshot_path)
            if not label.startswith("warm-up"):
                print(f"{label:<22}{wall:>8.2f}{fetch:>9.2f}  {seconds}")


def _fetch_seconds(path: Path) -> dict[str, float]:
    from registry_sync import snapshot

    return dict(snapshot.read_meta(path)["fetch_seconds"])


def _fetch_wall(path: Path) -> float:
    """From the first request of the run to the last answer: the fetch stage's wall time."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        first, last = conn.execute(
            "select min(fetched_at), max(fetched_at) from requests"
        ).fetchone()
    finally:
        conn.close()
    return (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()


def oversized(size_mb: int) -> None:
    study = STUDY.read_bytes().strip()
    copies = size_mb * 1024 * 1024 // len(study) + 1
    body = b'{"studies":[' + b",".join([study] * copies) + b"]}"
    print(f"\n2. ClinicalTrials.gov batch answer of {len(body) / 2**20:.0f} MB (cap 32 MB)")
    print(f"{'answer':<22}{'wall s':>8}{'peak RSS MB':>13}  outcomes")
    with ReplayServer(REPLAY) as server, tempfile.TemporaryDirectory() as tmp:
        for label, fault in (("normal", None), (f"{size_mb} MB body", body)):
            if fault is not None:
                server.add_fault("/ctgov/api/v2/studies", Fault(status=200, body=fault), times=99)
            cmd = [
                str(Path(sys.executable).parent / "registry-sync"),
                "run",
                "--registry",
                "ctgov",
                "--base-url",
                f"ctgov={server.base_urls()['ctgov']}",
                "--data-dir",
                str(Path(tmp) / label.replace(" ", "-")),
            ]
            started = time.monotonic()
            # a wrapper process per case, so ru_maxrss of its children is this run's alone
            done = subprocess.run(
                [sys.executable, "-c", WRAPPER, *cmd],
                capture_output=True,
                text=True,
                cwd=ROOT,
                check=False,
            )
            wall = time.monotonic() - started
            *out, peak_kb = done.stdout.splitlines() or ["0"]
            trials = next((ln for ln in out if ln.startswith("trials:")), done.stderr[-200:])
            print(f"{label:<22}{wall:>8.2f}{int(peak_kb) / 1024:>13.0f}  {trials}")


WRAPPER = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(done.stdout, end="")
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.3, help="seconds per slow answer")
    parser.add_argument("--size-mb", type=int, default=50, help="the oversized answer, MB")
    args = parser.parse_args()
    side_by_side(args.delay)
    oversized(args.size_mb)


if __name__ == "__main__":
    main()
