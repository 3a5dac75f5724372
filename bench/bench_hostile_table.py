"""Figures for `registry-sync check` on hostile ~50 MB tables. A script that prints; not a test.

    .venv/bin/python bench/bench_hostile_table.py            # ~1-2 min
    .venv/bin/python bench/bench_hostile_table.py --mb 10 --skip-cli

Every table is SYNTHETIC, derived from the bundled review (data/curated/review_2025_hpsc.csv),
and written to a temporary directory that is deleted afterwards:

- `repeated-rows`: the review's 105 rows repeated verbatim to ~50 MB (the hostile tester's
  table): refused at the first repeated row.
- `repeated-ids`: 100,000 rows (the loader's cap), each a review row with its `row` number made
  unique, so every ID and product repeats ~950 times; each note padded to ~350 characters and
  every 1,000th indication 9,000 characters long (under the 10,000 cap): loaded, gated and
  reconciled in full, so duplicate-ID grouping, product consistency and ID suggestions run at
  scale, and the printed findings are capped.
- `too-many-rows`: ~50 MB of short distinct rows (~460,000): refused at row 100,001.
- `long-cell`: the review with one 200,000-character cell (beyond the csv module's limit)
  appended ~50 MB into the file: refused naming line and column.

Each is checked in-process (`load_curated` + the gate + `reconcile`, the calls `check` makes)
and as the CLI in a subprocess. Printed: wall seconds, peak RSS (in-process: VmHWM reset before
each case through /proc/self/clear_refs, else ru_maxrss since start; CLI: the child's maximum RSS
as /usr/bin/time reports it: a child forked from this big process inherits its peak), and the
CLI's output size in bytes and lines.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from registry_sync import frames, validate
from registry_sync.curated import MAX_ROWS, load_curated
from registry_sync.errors import CuratedTableError
from registry_sync.reconcile import reconcile

ROOT = Path(__file__).resolve().parents[1]
REVIEW = ROOT / "data" / "curated" / "review_2025_hpsc.csv"
EXPECTATIONS = ROOT / "expectations"
MB = 1_000_000
TIME = "/usr/bin/time"


def review_lines() -> tuple[str, list[list[str]]]:
    import csv

    with REVIEW.open(encoding="utf-8", newline="") as handle:
        records = list(csv.reader(handle))
    return ",".join(records[0]), records[1:]


def csv_line(cells: list[str]) -> str:
    return ",".join(
        '"' + c.replace('"', '""') + '"' if any(x in c for x in ',"\n') else c for c in cells
    )


def repeated_rows(path: Path, size: int) -> None:
    lines = REVIEW.read_text(encoding="utf-8").splitlines(keepends=True)
    body = "".join(lines[1:])
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(lines[0])
        written = len(lines[0])
        while written < size:
            out.write(body)
            written += len(body.encode())


def repeated_ids(path: Path, size: int) -> None:
    header, rows = review_lines()
    names = header.split(",")
    row_i, note_i, ind_i = names.index("row"), names.index("note"), names.index("indication")
    pad = max(0, size // MAX_ROWS - 150)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(header + "\n")
        for n in range(MAX_ROWS):
            cells = list(rows[n % len(rows)])
            cells[row_i] = str(n + 1)
            cells[note_i] = (cells[note_i] + " " + "x" * pad)[: pad + 40]
            if n % 1000 == 999:
                cells[ind_i] = "i" * 9_000
            out.write(csv_line(cells) + "\n")


def too_many_rows(path: Path, size: int) -> None:
    header, rows = review_lines()
    row_i = header.split(",").index("row")
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(header + "\n")
        written, n = 0, 0
        while written < size:
            cells = list(rows[n % len(rows)])
            cells[row_i] = str(n + 1)
            line = csv_line(cells) + "\n"
            out.write(line)
            written += len(line)
            n += 1


def long_cell(path: Path, size: int) -> None:
    repeated_ids(path, size)  # a big valid table, then one row whose sponsor is 200,000 chars
    header, rows = review_lines()
    cells = list(rows[0])
    cells[header.split(",").index("sponsor")] = "s" * 200_000
    with path.open("a", encoding="utf-8", newline="") as out:
        out.write(csv_line(cells) + "\n")


CASES: dict[str, Callable[[Path, int], None]] = {
    "repeated-rows": repeated_rows,
    "repeated-ids": repeated_ids,
    "too-many-rows": too_many_rows,
    "long-cell": long_cell,
}


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_process(path: Path) -> tuple[float, float, str]:
    """What `check` does, in this process: (seconds, peak RSS MB, outcome)."""
    reset_peak()
    start = time.perf_counter()
    try:
        table = load_curated(path)
        gate = validate.validate_curated(frames.curated_frame(table.rows), EXPECTATIONS)
        findings = reconcile(table.rows, {}) if gate.success else []
        outcome = f"{len(table.rows):,} rows, gate {'passed' if gate.success else 'FAILED'}, "
        outcome += f"{len(findings):,} findings"
    except CuratedTableError as exc:
        outcome = "refused: " + str(exc).replace(str(path), "<table>")
    return time.perf_counter() - start, peak_mb(), outcome


def as_cli(path: Path) -> tuple[float, float, int, int, int]:
    """`registry-sync check` in a subprocess: (seconds, peak RSS MB, exit, bytes, lines)."""
    command = [sys.executable, "-m", "registry_sync.cli", "check", "--curated", str(path)]
    env = {**os.environ, "REGISTRY_SYNC_EXPECTATIONS_DIR": str(EXPECTATIONS)}
    with tempfile.TemporaryDirectory() as tmp:
        # A child forked from this (big) process inherits its RSS peak; /usr/bin/time is small.
        peak_file = Path(tmp) / "peak"
        if Path(TIME).exists():
            command = [TIME, "-f", "%M", "-o", str(peak_file), *command]
        with (Path(tmp) / "out").open("w+b") as sink:
            start = time.perf_counter()
            child = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
            _, status, usage = os.wait4(child.pid, 0)
            seconds = time.perf_counter() - start
            sink.seek(0)
            output = sink.read()
        peak_kb = int(peak_file.read_text().split()[-1]) if peak_file.exists() else usage.ru_maxrss
    code = os.waitstatus_to_exitcode(status)
    return seconds, peak_kb / 1024, code, len(output), output.count(b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=50, help="table size in MB (default 50)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--skip-cli", action="store_true", help="in-process figures only")
    args = parser.parse_args()
    size = int(args.mb * MB)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; table ~{args.mb:g} MB")
    print("warming up (GX import, first validate: a fixed ~3 s not counted below) ...")
    in_process(REVIEW)
    header = f"{'case':<14} {'MB':>6} {'where':<10} {'seconds':>8} {'peak RSS MB':>12}  outcome"
    print(header + "\n" + "-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            path = Path(tmp) / f"{name}.csv"
            CASES[name](path, size)
            file_mb = path.stat().st_size / MB
            seconds, peak, outcome = in_process(path)
            figures = f"{seconds:>8.2f} {peak:>12,.0f}"
            print(f"{name:<14} {file_mb:>6.1f} {'in-process':<10} {figures}  {outcome}")
            if not args.skip_cli:
                seconds, peak, code, size_b, lines = as_cli(path)
                print(
                    f"{'':<14} {'':>6} {'CLI':<10} {seconds:>8.2f} {peak:>12,.0f}  "
                    f"exit {code}, output {size_b:,} bytes in {lines:,} lines"
                )
            path.unlink()


if __name__ == "__main__":
    main()
