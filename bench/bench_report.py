"""Size and render time of the drift reports for the whole-review replay snapshot. A script that
prints a table; not a test.

Run from the project root (see bench/README.md):

    .venv/bin/python bench/bench_report.py              # 7 renders per format, median
    .venv/bin/python bench/bench_report.py --repeat 21
    .venv/bin/python bench/bench_report.py --snapshot data/snapshots/latest.sqlite
    .venv/bin/python bench/bench_report.py --trials 100000 --repeat 1
    .venv/bin/python bench/bench_report.py --trials 100000 --keep /tmp/synthetic-100k.sqlite

Without `--snapshot` it first runs the whole bundled review against the bundled replay set
(`data/replay`, on loopback, into a temporary data dir that is deleted afterwards): the same
snapshot `registry-sync run --replay data/replay` makes. That run is not timed. It then reads the
snapshot once (`report.load_content`, timed apart) and renders each format `--repeat` times;
"ms" is the median of those renders, "bytes" the UTF-8 size of one.

With `--trials N` the snapshot is SYNTHETIC instead: the set `bench_scale.py` runs (the four
recorded ClinicalTrials.gov studies in turn, IDs rewritten, an N-row review table), parsed,
reconciled, judged and written in this process (untimed, see `synthetic_snapshot`; `--keep FILE`
keeps that snapshot, and a later run with the same `--keep FILE` reuses it). Then it times
`report.write_reports` (load, md, json, html, written to a temp dir), and each of load and the
four formats apart, with its peak RSS ("+MB": VmHWM reset before the step, minus the RSS when it
began; see bench_pipeline.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from registry_sync import report, report_html, snapshot
from registry_sync.model import RawPayload

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_pipeline as bp
import bench_scale as bs
from registry_sync.pipeline import RunRequest, run_pipeline
from registry_sync.settings import HttpSettings, Settings

ROOT = Path(__file__).resolve().parent.parent
CURATED = ROOT / "data" / "curated" / "review_2025_hpsc.csv"
REPLAY = ROOT / "data" / "replay"
FAST_HTTP = HttpSettings(max_retries=0, backoff_base=0.0, min_interval={})


def replay_snapshot(data_dir: Path) -> Path:
    """The whole review against the bundled replay set, as `run --replay data/replay` does."""
    settings = Settings(
        data_dir=data_dir,
        curated_path=CURATED,
        expectations_dir=ROOT / "expectations",
        http=FAST_HTTP,
    )
    return run_pipeline(settings, RunRequest(replay_dir=REPLAY)).snapshot_path


def median_ms(render: Callable[[], str], repeat: int) -> tuple[float, str]:
    times, text = [], ""
    for _ in range(repeat):
        started = time.perf_counter()
        text = render()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), text


def measure(path: Path, repeat: int) -> None:
    started = time.perf_counter()
    content = report.load_content(path)
    load_ms = (time.perf_counter() - started) * 1000
    print(f"snapshot  {path}")
    print(
        f"content   {len(content.curated)} rows, {len(content.outcomes)} trials, "
        f"{len(content.records)} records, {len(content.findings)} findings; "
        f"load_content {load_ms:.1f} ms (once)"
    )
    print(f"renders   {repeat} per format, median\n")
    print(f"{'format':<12}{'bytes':>10}{'ms':>9}")
    formats: list[tuple[str, Callable[[], str]]] = [
        ("html", lambda: report_html.render_html(content)),
        ("md", lambda: report.render(content, "md")),
        ("json", lambda: report.render(content, "json")),
    ]
    for name, render in formats:
        ms, text = median_ms(render, repeat)
        print(f"{name:<12}{len(text.encode('utf-8')):>10,}{ms:>9.2f}")


def synthetic_snapshot(n: int, store: Path) -> Path:
    """N SYNTHETIC trials as `bench_scale.py` makes them (the four recorded ClinicalTrials.gov
    studies in turn, IDs rewritten; an N-row review table citing them), parsed, reconciled,
    judged (no review metadata) and written with `snapshot.write_snapshot`: the same findings a
    `registry-sync run` of that set writes (~3.75 a trial), without fetching or the gate."""
    from registry_sync import curated, verdict
    from registry_sync.model import PartialDate
    from registry_sync.reconcile import reconcile
    from registry_sync.registries import ctgov

    real = bs.sources()
    review = store / "review_scale_SYNTHETIC.csv"
    store.mkdir(parents=True, exist_ok=True)
    lines, payloads = [], []
    fetched_at = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        text, original = real[i % len(real)]
        nct = f"NCT9{i:07d}"
        body = bp.compact(text.replace(original, nct).encode())
        url = f"https://clinicaltrials.gov/api/v2/studies?filter.ids={nct}"
        payloads.append(RawPayload("ctgov", nct, url, fetched_at, body))
        lines.append(f"{i + 1},1,synthetic {i},,,,,{nct},II,US,2018,SYNTHETIC scale row\n")
    review.write_text(bs.HEADER + "".join(lines), encoding="utf-8")
    rows = curated.load_curated(review).rows
    states = bp.trial_states(payloads, [ctgov.parse(p) for p in payloads])
    today = date.today()
    findings = reconcile(rows, states, PartialDate(today.year, today.month, today.day))
    data = snapshot.SnapshotData(
        run_id=f"bench-{n}",
        meta={"mode": "bench", "synthetic": True, "curated_path": str(review)},
        curated=rows,
        states=list(states.values()),
        findings=verdict.apply_verdicts(findings, rows, states, None),
        payloads=payloads,
        parser_versions={"ctgov": ctgov.REGISTRY.parser_version},
        validation={},
    )
    return snapshot.write_snapshot(store, data, accepted=True)


def measure_large(path: Path) -> None:
    """write_reports once (load + md + json + html) and each step apart, with time and RSS."""
    rows: list[bp.Row] = []
    with tempfile.TemporaryDirectory(prefix="registry-sync-bench-reports-") as tmp:
        out = Path(tmp)
        paths, _ = bp.run_step(
            rows, "write_reports (all)", None, False, lambda: report.write_reports(path, out)
        )
        sizes = ", ".join(
            f"{fmt} {p.stat().st_size / bp.MB:,.1f} MB" for fmt, p in sorted(paths.items())
        )
        rows[-1] = dataclasses.replace(rows[-1], note=sizes)
    content = bp.run_step(
        rows,
        "load_content",
        None,
        False,
        lambda: report.load_content(path),
        lambda c: f"{len(c.outcomes):,} trials, {len(c.findings):,} findings",
    )
    for fmt in ("md", "json", "html", "corrections"):
        bp.run_step(
            rows,
            f"render {fmt}",
            None,
            False,
            lambda fmt=fmt: report.render(content, fmt),  # type: ignore[misc]
            lambda text: f"{len(text.encode('utf-8')) / bp.MB:,.1f} MB",
        )
    print(f"snapshot  {path} ({path.stat().st_size / bp.MB:,.1f} MB)")
    print(bp.format_table(rows, False))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=7, help="renders per format (default 7)")
    parser.add_argument(
        "--snapshot", type=Path, default=None, help="render this snapshot instead of a fresh run"
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=None,
        help="render a synthetic snapshot of N trials instead (time, sizes, peak RSS)",
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="with --trials: keep (or reuse) the snapshot here"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.snapshot is not None:
        measure(args.snapshot, args.repeat)
        return 0
    if args.trials is not None:
        return main_synthetic(args.trials, args.keep)
    with tempfile.TemporaryDirectory(prefix="registry-sync-bench-report-") as tmp:
        measure(replay_snapshot(Path(tmp)), args.repeat)
    return 0


def main_synthetic(n: int, keep: Path | None) -> int:
    if keep is not None and keep.is_file():
        print(f"reusing {keep}")
        measure_large(keep)
        return 0
    with tempfile.TemporaryDirectory(prefix="registry-sync-bench-report-") as tmp:
        started = time.perf_counter()
        path = synthetic_snapshot(n, Path(tmp))
        print(f"built {n:,} synthetic trials in {time.perf_counter() - started:.1f} s (untimed)")
        if keep is not None:
            shutil.copyfile(path, keep)
        gc.collect()
        measure_large(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
