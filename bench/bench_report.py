"""Size and render time of the drift reports for the whole-review replay snapshot. A script that
prints a table; not a test.

Run from the project root (see bench/README.md):

    .venv/bin/python bench/bench_report.py              # 7 renders per format, median
    .venv/bin/python bench/bench_report.py --repeat 21
    .venv/bin/python bench/bench_report.py --snapshot data/snapshots/latest.sqlite

Without `--snapshot` it first runs the whole bundled review against the bundled replay set
(`data/replay`, on loopback, into a temporary data dir that is deleted afterwards): the same
snapshot `registry-sync run --replay data/replay` makes. That run is not timed. It then reads the
snapshot once (`report.load_content`, timed apart) and renders each format `--repeat` times;
"ms" is the median of those renders, "bytes" the UTF-8 size of one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from registry_sync import report, report_html
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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=7, help="renders per format (default 7)")
    parser.add_argument(
        "--snapshot", type=Path, default=None, help="render this snapshot instead of a fresh run"
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
    with tempfile.TemporaryDirectory(prefix="registry-sync-bench-report-") as tmp:
        measure(replay_snapshot(Path(tmp)), args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
