"""Soak: 1,000 trials through the loopback server with 10 % random faults. A script that prints
figures and checks its invariants; not a test (pytest does not collect `bench/`).

    .venv/bin/python bench/bench_soak.py [--trials 1000] [--fault-rate 0.1] [--seed 12]

1. A SYNTHETIC scale set is generated into a temp dir: the real recorded ClinicalTrials.gov
   study `data/replay/ctgov/recorded/study_NCT03418623_phase2_completed.json` copied N times as
   `ctgov/synthetic/NCT9xxxxxxx.json`, its one NCT ID rewritten (`NCT90000000`, ...), and a
   review table citing those N IDs. Nothing of it is committed; the temp dir is deleted.
2. A clean baseline run through `run_pipeline` (the real client and adapter, `custom` mode on
   the loopback server). ClinicalTrials.gov is asked one ID per request (`batch_size=1`, a
   `Steps.fetch_registry` override) so that a fault hits one trial, not a batch of 500.
3. The same run with faults: a seeded `--fault-rate` share of the trials get a fault drawn from
   the fault matrix (`replay.matrix.MATRIX_FAULTS`, its `times`: one 503, or every request).
   The registry's own attempts apply (4 for ClinicalTrials.gov); backoff is 0 and Retry-After
   is capped at `--retry-after-cap` seconds; the read timeout is 0.5 s (a `timeout` fault holds
   its answer 1 s); the size cap is lowered to 2 MB and `oversize` pads to just over it.

Checks (printed as PASS/FAIL; exit 1 on a FAIL): every trial has a typed outcome; every trial
`ok` in the baseline has its values in the faulted run (fresh, or stale with the baseline's
values); every trial not `ok` is stale; the run says it is partial. Figures: trials/s, wall
time, outcomes by kind, stale count, faults by kind, requests, peak RSS of this process (the
server runs in it too).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from registry_sync.http import Http
from registry_sync.model import FetchOutcome, Outcome
from registry_sync.pipeline import RunResult, Steps, fetch_registry, run_pipeline
from registry_sync.registries import ctgov
from registry_sync.registry_table import MB
from registry_sync.replay import ReplayServer
from registry_sync.replay.matrix import MATRIX_FAULTS, MatrixFault
from registry_sync.settings import HttpSettings, Settings

ROOT = Path(__file__).resolve().parent.parent
STUDY = ROOT / "data" / "replay" / "ctgov" / "recorded" / "study_NCT03418623_phase2_completed.json"
EXPECTATIONS = ROOT / "expectations"
HEADER = "row,table,product,refs,cell_type,indication,sponsor,trial_id,phase,nation,start,note\n"
STUDIES = "/ctgov/api/v2/studies"
CAP = 2 * MB
READ_TIMEOUT = 0.5
TIMEOUT_DELAY = 1.0
VALUE_COLUMNS = ("status", "phases", "start", "completion", "lead_sponsor", "enrollment")


def scale_set(tmp: Path, n: int) -> tuple[Path, Path, list[str]]:
    """A replay dir of N synthetic studies and a review table citing them."""
    source = STUDY.read_text(encoding="utf-8")
    original = json.loads(source)["protocolSection"]["identificationModule"]["nctId"]
    assert source.count(original) == 1, "the NCT ID must appear once to be rewritten"
    folder = tmp / "replay" / "ctgov" / "synthetic"
    folder.mkdir(parents=True)
    ids = [f"NCT9{i:07d}" for i in range(n)]
    for nct in ids:
        (folder / f"{nct}.json").write_text(source.replace(original, nct), encoding="utf-8")
    rows = [
        f"{i},1,synthetic {i},,,,,{nct},II,US,2018,SYNTHETIC soak row\n"
        for i, nct in enumerate(ids, 1)
    ]
    review = tmp / "review_soak_SYNTHETIC.csv"
    review.write_text(HEADER + "".join(rows), encoding="utf-8")
    return tmp / "replay", review, ids


def one_per_request(key: str, ids: Sequence[str], http: Http, base: str) -> list[FetchOutcome]:
    if key == "ctgov":
        return ctgov.fetch(ids, http, base, batch_size=1)
    return fetch_registry(key, ids, http, base)


def plant_faults(
    server: ReplayServer, ids: Sequence[str], rate: float, seed: int
) -> dict[str, MatrixFault]:
    """A seeded `rate` share of the trials, each with a fault drawn from the matrix."""
    rng = random.Random(seed)
    chosen = rng.sample(list(ids), round(len(ids) * rate))
    planted: dict[str, MatrixFault] = {}
    for nct in chosen:
        fault = rng.choice(MATRIX_FAULTS)
        kind = fault.fault
        if fault.kind == "timeout":
            kind = replace(kind, delay=TIMEOUT_DELAY)
        if fault.kind == "oversize":
            kind = replace(kind, pad_to=CAP + 1)
        server.add_fault(f"{STUDIES}?filter.ids={nct}&", kind, times=fault.times)
        planted[nct] = fault
    return planted


def records(result: RunResult) -> dict[str, dict[str, Any]]:
    conn = sqlite3.connect(f"file:{result.snapshot_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(
            "select o.trial_id, o.outcome, o.stale, r.* from outcomes o "
            "left join records r on r.trial_id = o.trial_id"
        )
        return {str(r[0]): {**dict(r), "outcome": r[1], "stale": r[2]} for r in rows}
    finally:
        conn.close()


def timed_run(settings: Settings, http_settings: HttpSettings) -> tuple[RunResult, float]:
    http = Http(http_settings)
    start = time.perf_counter()
    try:
        result = run_pipeline(settings, steps=Steps(fetch_registry=one_per_request), http=http)
    finally:
        http.close()
    return result, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--retry-after-cap", type=float, default=0.05)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        return soak(tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def soak(tmp: Path, args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    replay_dir, review, ids = scale_set(tmp, args.trials)
    generated = time.perf_counter() - t0
    http_settings = HttpSettings(
        backoff_base=0.0,
        connect_timeout=2.0,
        read_timeout=READ_TIMEOUT,
        retry_after_cap=args.retry_after_cap,
        min_interval={},
        max_bytes={"ctgov": CAP},
    )
    with ReplayServer(replay_dir) as server:
        settings = Settings(
            data_dir=tmp / "data",
            curated_path=review,
            expectations_dir=EXPECTATIONS,
            http=http_settings,
        ).with_base_urls(server.base_urls())
        base, base_s = timed_run(settings, http_settings)
        planted = plant_faults(server, ids, args.fault_rate, args.seed)
        sent_before = len(server.requests)
        faulted, faulted_s = timed_run(settings, http_settings)
        sent = len(server.requests) - sent_before
        errors = list(server.errors)
    first, second = records(base), records(faulted)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    typed = all(Outcome(row["outcome"]) for row in second.values()) and set(second) == set(ids)
    was_ok = [t for t in ids if first[t]["outcome"] == "ok"]
    lost = [
        t
        for t in was_ok
        if second[t]["registry"] is None or any(second[t][c] != first[t][c] for c in VALUE_COLUMNS)
    ]
    not_ok = [t for t in ids if second[t]["outcome"] != "ok"]
    unstale = [t for t in not_ok if not second[t]["stale"]]
    stale = sum(1 for t in ids if second[t]["stale"])
    wrong = {
        t: (f.name, second[t]["outcome"])
        for t, f in planted.items()
        if second[t]["outcome"] != f.outcome_for("ctgov").value
    }

    print(f"soak: {args.trials} synthetic ClinicalTrials.gov trials, one per request, loopback")
    print(f"  generated the scale set in {generated:.1f} s")
    print(
        f"  baseline run: {base_s:.1f} s (fetch {base.timing['fetch_s']} s), "
        f"{args.trials / base_s:.0f} trials/s, {base.outcomes}"
    )
    print(
        f"  faulted run:  {faulted_s:.1f} s (fetch {faulted.timing['fetch_s']} s), "
        f"{args.trials / faulted_s:.0f} trials/s, {sent} requests"
    )
    faults = Counter(f.name for f in planted.values())
    print(f"  faults planted (seed {args.seed}): {len(planted)}: {dict(sorted(faults.items()))}")
    print(f"  outcomes: {dict(sorted(faulted.outcomes.items()))}")
    print(f"  stale (values carried forward): {stale}")
    print(f"  peak RSS (this process, server included): {peak_mb:.0f} MB")
    checks = {
        "every trial has a typed outcome": typed,
        f"no value lost ({len(was_ok)} ok in the baseline)": not lost,
        "every trial not ok is stale": not unstale,
        "each faulted trial ended as the matrix says": not wrong,
        "the run says it is partial": faulted.partial == bool(not_ok),
        "the server raised nothing": not errors,
    }
    for what, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}: {what}")
    for tid, (name, got) in list(wrong.items())[:5]:
        print(f"    {tid}: {name} gave {got}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
