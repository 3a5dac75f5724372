"""Storage per night: the payload store against inline bodies. A script that prints figures;
not a test (it asserts nothing and always exits 0).

Run from the project root (see bench/README.md, "bench_storage.py"):

    .venv/bin/python bench/bench_storage.py            # full-review replay + synthetic 10,000
    .venv/bin/python bench/bench_storage.py --sizes 0  # the full-review replay only

1. The whole bundled review (`data/curated/`, 105 rows) against the bundled replay set
   (`data/replay/`) on loopback, three times into one data dir: night 1, night 2 with nothing
   changed, night 3 likewise; then `prune --keep 1`. Beside it, night 1 once more in another
   data dir with bodies inline (schema 3, as before the store): the "full snapshot".
2. SYNTHETIC: N copies of one real ClinicalTrials.gov record (as `bench_pipeline.py` builds
   them: one payload, record, outcome and curated row each, plus the findings), written as two
   nights with the same payloads into one store, and once inline; then prune.

"growth" of a night is its snapshot file plus what the payload store grew by. Everything is
written under a temporary directory, deleted afterwards.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from registry_sync import payload_store, retention, snapshot
from registry_sync.pipeline import RunRequest, Steps, run_pipeline
from registry_sync.settings import HttpSettings, Settings

ROOT = Path(__file__).resolve().parent.parent
REPLAY = ROOT / "data" / "replay"
CURATED = ROOT / "data" / "curated" / "review_2025_hpsc.csv"
EXPECTATIONS = ROOT / "expectations"
KB = 1024
HTTP = HttpSettings(max_retries=0, backoff_base=0.0, min_interval={})


def kb(n: int) -> str:
    return f"{n / KB:,.1f} KB"


def store_file(data_dir: Path) -> Path:
    return payload_store.default_path(data_dir / "snapshots")


def report(
    label: str,
    full: int,
    first: tuple[int, int],
    nights: list[tuple[int, int]],
    what: tuple[str, ...] = (),
) -> None:
    """`first` and each of `nights`: (snapshot file bytes, store bytes after it); `what`
    changed on each of `nights` (default: nothing)."""
    snap1, store1 = first
    print(f"\n{label}")
    print(f"  full snapshot, bodies inline (schema 3):   {kb(full)}")
    print(f"  night 1: snapshot {kb(snap1)} + store {kb(store1)} = {kb(snap1 + store1)}")
    before = store1
    for i, (snap, store) in enumerate(nights, 2):
        grew = snap + store - before
        changed = what[i - 2] if len(what) > i - 2 else "nothing changed"
        print(
            f"  night {i} ({changed}): snapshot {kb(snap)}, store +{kb(store - before)};"
            f" growth {kb(grew)} = {100 * grew / full:.1f} % of a full snapshot"
            f" (store alone: {100 * (store - before) / full:.2f} %)"
        )
        before = store


def settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir, curated_path=CURATED, expectations_dir=EXPECTATIONS, http=HTTP
    )


def bench_review(tmp: Path) -> None:
    inline = Steps(write_snapshot=functools.partial(snapshot.write_snapshot, inline_payloads=True))
    t = time.perf_counter()
    old = run_pipeline(settings(tmp / "inline"), RunRequest(replay_dir=REPLAY), inline)
    assert old.snapshot_path is not None
    full = old.snapshot_path.stat().st_size
    data = tmp / "store"
    sizes = []
    for _ in range(3):
        result = run_pipeline(settings(data), RunRequest(replay_dir=REPLAY))
        assert result.snapshot_path is not None
        sizes.append((result.snapshot_path.stat().st_size, payload_store.size(store_file(data))))
    print(f"(4 replay runs of the whole review in {time.perf_counter() - t:.1f} s)")
    report("Whole review, bundled replay (105 rows, 103 IDs)", full, sizes[0], sizes[1:])
    bench_prune(data / "snapshots")


def bench_prune(store: Path) -> None:
    before = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    t = time.perf_counter()
    result = retention.prune(store, keep=1)
    took = time.perf_counter() - t
    after = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    checked, problems = retention.verify_all(store)
    print(
        f"  prune --keep 1: {len(result.deleted)} snapshot(s) and {result.bodies_deleted} "
        f"payload(s) deleted, {kb(before)} -> {kb(after)} on disk in {took:.2f} s; "
        f"verify --all: {checked} snapshot(s), {len(problems)} problem(s)"
    )


def bench_synthetic(tmp: Path, n: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_pipeline as bp  # the same synthetic data as the pipeline bench
    from registry_sync.reconcile import reconcile
    from registry_sync.registries import ctgov

    ids = bp.synthetic_ids(n)
    payloads = bp.synthetic_payloads(bp.FIXTURE.read_bytes(), ids)
    records = [ctgov.parse(p) for p in payloads]
    states = bp.trial_states(payloads, records)
    # the night before: every 10th record read differently then (its body differs), so
    # pruning that night frees bodies no later night names
    older = [
        replace(p, body=p.body.replace(b'"COMPLETED"', b'"RECRUITING"')) if i % 10 == 0 else p
        for i, p in enumerate(payloads)
    ]
    curated = bp.synthetic_rows(ids)
    data = snapshot.SnapshotData(
        run_id="20260101T030000Z-0001",
        meta={"mode": "replay", "synthetic": True},
        curated=curated,
        states=list(states.values()),
        findings=reconcile(curated, states),
        payloads=payloads,
        parser_versions={"ctgov": ctgov.REGISTRY.parser_version},
        validation={},
    )
    t = time.perf_counter()
    old = snapshot.write_snapshot(tmp / "inline", data, accepted=True, inline_payloads=True)
    t_inline = time.perf_counter() - t
    store = tmp / "store"
    sizes, times = [], []
    for night in (1, 2, 3):
        this = data
        if night == 1:
            old_states = bp.trial_states(older, records)
            this = replace(data, payloads=older, states=list(old_states.values()))
        t = time.perf_counter()
        path = snapshot.write_snapshot(
            store, replace(this, run_id=f"20260101T03000{night}Z-000{night}"), accepted=True
        )
        times.append(time.perf_counter() - t)
        sizes.append((path.stat().st_size, payload_store.size(payload_store.default_path(store))))
    body_bytes = sum(len(p.body) for p in payloads)
    report(
        f"Synthetic, N = {n:,} (bodies {kb(body_bytes)} raw)",
        old.stat().st_size,
        sizes[0],
        sizes[1:],
        ("10 % of the records changed",),
    )
    print(
        f"  write_snapshot: inline {t_inline:.2f} s; with the store "
        + ", ".join(f"night {i} {t:.2f} s" for i, t in enumerate(times, 1))
    )
    bench_prune(store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000", help="synthetic N values; 0 for none")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="registry-sync-bench-storage-") as tmp:
        bench_review(Path(tmp) / "review")
        for n in (int(s) for s in args.sizes.split(",") if int(s) > 0):
            bench_synthetic(Path(tmp) / f"synthetic-{n}", n)


if __name__ == "__main__":
    main()
