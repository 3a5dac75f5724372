"""Speed and memory of registry-sync's steps at N records. A script that prints a table; not a test.

Run from the project root (see bench/README.md):

    .venv/bin/python bench/bench_pipeline.py --quick        # N = 1,000 only
    .venv/bin/python bench/bench_pipeline.py                # N = 1,000 / 10,000 / 100,000
    .venv/bin/python bench/bench_pipeline.py --sizes 2000,20000 --fetch-max 20000

Inputs are SYNTHETIC: N copies of ONE real ClinicalTrials.gov record (the fixture
tests/fixtures/ctgov/study_NCT03418623_phase2_completed.json), each with its NCT ID rewritten to
NCT9xxxxxxx (with `--distinct-titles`, each record's brief title also gets its ID appended, so
no two records share a title: the per-record cost of product identity, not a memo's hit rate).
They live in memory, and for the fetch step in a temporary replay directory that
is deleted afterwards; nothing is written into the project. The curated rows are built in code.

Steps at each N: `ctgov.parse`; `validate_curated` (the review's gate over N curated rows, frame
built included); `quarantine_records` (the per-record critical expectations, as `pipeline` runs
them before reconciling); `reconcile`; `frames.records_frame`; `validate.validate_records` (the
Great Expectations import and first call are timed once, apart); `snapshot.write_snapshot`
into a temp dir; and, for N <= --fetch-max, `ctgov.fetch` through the real `Http` client against
`replay.ReplayServer` on loopback, with politeness throttling off (`min_interval={}`, else the
0.5 s per request for ctgov would dominate). The server is a thread of this process, so the fetch
figure includes serving the pages; writing the N files and the server's index are not timed.

"peak RSS MB" is the whole process's resident-set high-water mark during the step: on Linux it
is reset through /proc/self/clear_refs before the step and read from VmHWM after; elsewhere it
is `resource.getrusage` ru_maxrss, the peak since the process started. It includes what earlier
steps still hold (the N payloads, records, ...); "+MB" is that peak minus the RSS when the step
began, the step's own extra need. `--tracemalloc` adds the peak of Python allocations made during
each step, at a large cost in speed: timings of such a run are not comparable with a plain run.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import re
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TypeVar

from registry_sync import frames, payload_store, pipeline, snapshot, validate
from registry_sync.curated import parse_review_phase, parse_review_start
from registry_sync.http import Http
from registry_sync.ids import registry_of
from registry_sync.model import (
    CuratedRow,
    FetchOutcome,
    Outcome,
    RawPayload,
    RegistryRecord,
    TrialState,
)
from registry_sync.reconcile import reconcile
from registry_sync.registries import ctgov
from registry_sync.replay import ReplayServer
from registry_sync.settings import HttpSettings

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "ctgov" / "study_NCT03418623_phase2_completed.json"
FIXTURE_ID = "NCT03418623"
EXPECTATIONS = ROOT / "expectations"
DEFAULT_SIZES = (1_000, 10_000, 100_000)
DEFAULT_FETCH_MAX = 10_000  # slowest step, and ~9 KB of temp files per record: skipped above
MAX_N = 9_999_999  # NCT9 + 7 digits
MB = 1024 * 1024
TITLE_NEEDLE = re.compile(rb'"briefTitle": ?"[^"]*"')

T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    """One line of the result table."""

    step: str
    n: int | None
    seconds: float
    start_rss_mb: float
    peak_rss_mb: float
    py_peak_mb: float | None
    note: str = ""


@dataclass
class Timing:
    """Filled in when a `measure` block ends."""

    seconds: float = 0.0
    start_rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    py_peak_mb: float | None = None


# --- memory and time -----------------------------------------------------------------------


def reset_rss_peak() -> bool:
    """Reset the process's RSS high-water mark to its current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def proc_status_mb(field: str) -> float | None:
    """A kB field of /proc/self/status (VmRSS, VmHWM) in MB; None where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_peak_mb() -> float:
    """VmHWM when there is one, else ru_maxrss (kB on Linux, bytes on macOS)."""
    peak = proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / MB if sys.platform == "darwin" else maxrss / 1024


@contextmanager
def measure(trace: bool) -> Iterator[Timing]:
    """Time the block and record the memory peaks it reached."""
    gc.collect()
    timing = Timing()
    reset_rss_peak()
    timing.start_rss_mb = proc_status_mb("VmRSS") or rss_peak_mb()
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        yield timing
    finally:
        timing.seconds = time.perf_counter() - start
        if trace:
            timing.py_peak_mb = tracemalloc.get_traced_memory()[1] / MB
            tracemalloc.stop()
        timing.peak_rss_mb = rss_peak_mb()


def run_step(
    rows: list[Row],
    step: str,
    n: int | None,
    trace: bool,
    fn: Callable[[], T],
    note: Callable[[T], str] = lambda _: "",
) -> T:
    """Call `fn` under `measure`, append its row (with `note(result)`) to `rows`, return it."""
    with measure(trace) as timing:
        result = fn()
    peaks = (timing.start_rss_mb, timing.peak_rss_mb, timing.py_peak_mb)
    rows.append(Row(step, n, timing.seconds, *peaks, note(result)))
    return result


# --- synthetic inputs ----------------------------------------------------------------------


def synthetic_ids(n: int) -> list[str]:
    """NCT90000000, NCT90000001, ...: valid IDs (8 digits), far above any assigned so far."""
    return [f"NCT9{i:07d}" for i in range(n)]


def synthetic_bodies(
    template: bytes, trial_ids: Sequence[str], distinct_titles: bool = False
) -> list[bytes]:
    """The real document once per ID, its nctId (the only occurrence of the ID) rewritten; with
    `distinct_titles`, the ID appended to the brief title too."""
    needle = f'"{FIXTURE_ID}"'.encode()
    if template.count(needle) != 1:
        raise SystemExit(f"{FIXTURE}: expected {FIXTURE_ID} exactly once; update the benchmark")
    title = TITLE_NEEDLE.search(template) if distinct_titles else None
    if distinct_titles and title is None:
        raise SystemExit(f"{FIXTURE}: no briefTitle to make distinct; update the benchmark")
    out = []
    for tid in trial_ids:
        body = template.replace(needle, f'"{tid}"'.encode())
        if title is not None:
            body = body.replace(title.group(0), title.group(0)[:-1] + f' {tid}"'.encode(), 1)
        out.append(body)
    return out


def compact(document: bytes) -> bytes:
    """The study as `ctgov.fetch` stores it in a payload: sorted keys, no whitespace."""
    study = json.loads(document)
    return json.dumps(study, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def synthetic_payloads(
    template: bytes, trial_ids: Sequence[str], distinct_titles: bool = False
) -> list[RawPayload]:
    fetched_at = datetime(2026, 1, 1, tzinfo=UTC)
    bodies = synthetic_bodies(compact(template), trial_ids, distinct_titles)
    return [
        RawPayload(
            "ctgov",
            tid,
            f"https://clinicaltrials.gov/api/v2/studies?filter.ids={tid}",
            fetched_at,
            body,
        )
        for tid, body in zip(trial_ids, bodies, strict=True)
    ]


def synthetic_rows(trial_ids: Sequence[str]) -> list[CuratedRow]:
    """One curated row per ID, some disagreeing with the record on phase, start or sponsor."""
    rows = []
    for i, tid in enumerate(trial_ids):
        phase = "I/II" if i % 10 == 0 else "II"
        start = "2019" if i % 7 == 0 else "2018.3"
        sponsor = "Acme Cell Therapeutics" if i % 5 == 0 else "Laboratorio Farmaceutico CT"
        rows.append(
            CuratedRow(
                line=i + 2,
                table=1 + i % 5,
                product=f"Product {i}",
                cell_type="iPSC",
                indication="Alcohol use disorder",
                sponsor=sponsor,
                trial_id=tid,
                phase=phase,
                nation="Italy",
                start=start,
                registry=registry_of(tid),
                phases=parse_review_phase(phase),
                start_date=parse_review_start(start),
            )
        )
    return rows


def trial_states(
    payloads: Sequence[RawPayload], records: Sequence[RegistryRecord]
) -> dict[str, TrialState]:
    """What `pipeline.parse_outcome` builds for each fetched trial."""
    return {
        p.trial_id: TrialState(
            "ctgov",
            p.trial_id,
            Outcome.OK,
            record=r,
            fetched_at=p.fetched_at,
            source_url=p.url,
            payload_sha256=p.sha256,
        )
        for p, r in zip(payloads, records, strict=True)
    }


# --- the steps -----------------------------------------------------------------------------


def bench_gx(rows: list[Row], trace: bool) -> None:
    """The GX import (once per process) and a first validation of one record, apart."""
    if "great_expectations" in sys.modules:
        note = "already imported: not measured"
    else:
        note = "on top of pandas/numpy, already loaded"
    run_step(
        rows,
        "import great_expectations",
        None,
        trace,
        lambda: importlib.import_module("great_expectations"),
        lambda _: note,
    )
    payloads = synthetic_payloads(FIXTURE.read_bytes(), synthetic_ids(1))
    states = trial_states(payloads, [ctgov.parse(p) for p in payloads])
    frame = frames.records_frame(states.values())
    run_step(
        rows,
        "first validate_records",
        1,
        trace,
        lambda: validate.validate_records(frame, EXPECTATIONS, date.today()),
        lambda report: "one-time GX set-up; " + verdict(report),
    )


def verdict(report: validate.ValidationReport) -> str:
    passed = sum(o.success for o in report.outcomes)
    gate = "gate passed" if report.success else "GATE FAILED"
    return f"{passed}/{len(report.outcomes)} expectations, {gate}"


def bench_size(rows: list[Row], n: int, args: argparse.Namespace) -> None:
    """Every step at one N, in pipeline order; each N starts from fresh inputs."""
    template = FIXTURE.read_bytes()
    trial_ids = synthetic_ids(n)
    bench_in_memory(rows, template, trial_ids, args.tracemalloc, args.distinct_titles)
    if n <= args.fetch_max:
        bench_fetch(rows, template, trial_ids, args.tracemalloc)


def bench_in_memory(
    rows: list[Row], template: bytes, trial_ids: list[str], trace: bool, distinct: bool = False
) -> None:
    """parse -> gates -> reconcile -> frame -> validate -> snapshot; inputs are freed on return."""
    n = len(trial_ids)
    payloads = synthetic_payloads(template, trial_ids, distinct)
    records = run_step(rows, "ctgov.parse", n, trace, lambda: [ctgov.parse(p) for p in payloads])
    states = trial_states(payloads, records)
    curated = synthetic_rows(trial_ids)
    run_step(
        rows,
        "validate_curated",
        n,
        trace,
        lambda: validate.validate_curated(frames.curated_frame(curated), EXPECTATIONS),
        verdict,
    )
    started = datetime.now(UTC)
    run_step(
        rows,
        "quarantine_records",
        n,
        trace,
        lambda: pipeline.quarantine_records(states, EXPECTATIONS, started),
        lambda out: f"{len(out[1]):,} held",
    )
    findings = run_step(
        rows,
        "reconcile",
        n,
        trace,
        lambda: reconcile(curated, states),
        lambda found: f"{len(found):,} findings",
    )
    frame = run_step(
        rows, "frames.records_frame", n, trace, lambda: frames.records_frame(states.values())
    )
    report = run_step(
        rows,
        "validate_records",
        n,
        trace,
        lambda: validate.validate_records(frame, EXPECTATIONS, date.today()),
        verdict,
    )
    data = snapshot.SnapshotData(
        run_id=f"bench-{n}",
        meta={"mode": "bench", "synthetic": True},
        curated=curated,
        states=list(states.values()),
        findings=findings,
        payloads=payloads,
        parser_versions={"ctgov": ctgov.REGISTRY.parser_version},
        validation={"records": report.to_dict()},
    )
    bench_snapshot(rows, data, trace)


def bench_snapshot(rows: list[Row], data: snapshot.SnapshotData, trace: bool) -> None:
    """`write_snapshot` into a temp store (deleted afterwards); the note gives the file size."""
    with tempfile.TemporaryDirectory(prefix="registry-sync-bench-") as tmp:
        run_step(
            rows,
            "write_snapshot",
            len(data.states),
            trace,
            lambda: snapshot.write_snapshot(Path(tmp), data, accepted=True),
            lambda path: (
                f"file {path.stat().st_size / MB:,.1f} MB + payload store "
                f"{payload_store.size(payload_store.default_path(Path(tmp))) / MB:,.1f} MB"
            ),
        )


def bench_fetch(rows: list[Row], template: bytes, trial_ids: Sequence[str], trace: bool) -> None:
    """`ctgov.fetch` through `Http` against a loopback replay server over N files."""
    with tempfile.TemporaryDirectory(prefix="registry-sync-bench-replay-") as tmp:
        folder = Path(tmp) / "ctgov"
        folder.mkdir()
        for tid, body in zip(trial_ids, synthetic_bodies(template, trial_ids), strict=True):
            (folder / f"{tid}.json").write_bytes(body)
        started = time.perf_counter()
        server = ReplayServer(Path(tmp))  # indexes (reads and parses) every file: untimed
        index_s = time.perf_counter() - started
        http = Http(HttpSettings(min_interval={}))  # no politeness wait between requests
        with server:
            base = server.base_urls()["ctgov"]
            try:
                run_step(
                    rows,
                    "ctgov.fetch (replay)",
                    len(trial_ids),
                    trace,
                    lambda: ctgov.fetch(trial_ids, http, base),
                    lambda outcomes: fetch_note(outcomes, http, index_s),
                )
            finally:
                http.close()


def fetch_note(outcomes: Sequence[FetchOutcome], http: Http, index_s: float) -> str:
    ok = sum(o.outcome is Outcome.OK for o in outcomes)
    return (
        f"{http.requests_sent} requests, {ok:,} ok, min_interval={{}}; "
        f"server index {index_s:.1f} s untimed"
    )


# --- output --------------------------------------------------------------------------------


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def print_header(args: argparse.Namespace, sizes: Sequence[int]) -> None:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print("registry-sync benchmark")
    print(f"  date        {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"  machine     {platform.platform()}; {os.cpu_count()} CPUs ({affinity} usable)")
    print(f"  python      {platform.python_version()} ({platform.python_implementation()})")
    print(
        "  packages    "
        + ", ".join(
            f"{name} {package_version(name)}"
            for name in (
                "registry-sync",
                "pandas",
                "great-expectations",
                "sqlite-utils",
                "requests",
            )
        )
    )
    print(
        f"  sizes       {', '.join(f'{n:,}' for n in sizes)}; fetch step for N <= "
        f"{args.fetch_max:,}"
    )
    print(
        f"  input       SYNTHETIC: N copies of one real record ({FIXTURE_ID}, "
        f"{FIXTURE.relative_to(ROOT)}), NCT IDs rewritten to NCT9xxxxxxx"
        + ("; each brief title gets its ID appended" if args.distinct_titles else "")
    )
    memory = "VmHWM, reset per step" if reset_rss_peak() else "ru_maxrss since process start"
    print(
        f"  memory      peak RSS = {memory}"
        + ("; py peak = tracemalloc (slows every step)" if args.tracemalloc else "")
    )
    print()


def format_table(rows: Sequence[Row], trace: bool) -> str:
    head = ["step", "N", "seconds", "records/s", "peak RSS MB", "+MB"]
    head += ["py peak MB"] if trace else []
    lines = [[*head, "notes"]]
    for r in rows:
        rate = f"{r.n / r.seconds:,.0f}" if r.n and r.seconds > 0 else "-"
        cells = [
            r.step,
            f"{r.n:,}" if r.n else "-",
            f"{r.seconds:.3f}",
            rate,
            f"{r.peak_rss_mb:,.0f}",
            f"{r.peak_rss_mb - r.start_rss_mb:+,.0f}",
        ]
        cells += [f"{r.py_peak_mb:,.0f}" if r.py_peak_mb is not None else "-"] if trace else []
        lines.append([*cells, r.note])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for line in lines:
        padded = [line[0].ljust(widths[0])]
        padded += [c.rjust(w) for c, w in zip(line[1:-1], widths[1:], strict=True)]
        out.append("  ".join([*padded, line[-1]]).rstrip())
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


# --- command line --------------------------------------------------------------------------


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        message = f"--sizes takes integers like 1000,10000: {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if not sizes or not all(1 <= n <= MAX_N for n in sizes):
        raise argparse.ArgumentTypeError(f"each size must be between 1 and {MAX_N:,}")
    return sizes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="N = 1,000 only")
    group.add_argument(
        "--sizes",
        type=parse_sizes,
        default=DEFAULT_SIZES,
        help="comma-separated N values (default 1000,10000,100000)",
    )
    parser.add_argument(
        "--fetch-max",
        type=int,
        default=DEFAULT_FETCH_MAX,
        help="run the loopback fetch step only for N <= this (default 10000)",
    )
    parser.add_argument(
        "--distinct-titles",
        action="store_true",
        help="append each record's ID to its brief title (no two records share a title)",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also report the peak of Python allocations per step (much slower)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes: tuple[int, ...] = (1_000,) if args.quick else args.sizes
    print_header(args, sizes)
    started = time.perf_counter()
    rows: list[Row] = []
    bench_gx(rows, args.tracemalloc)
    for n in sizes:
        bench_size(rows, n, args)
        print(f"  N = {n:,} done ({time.perf_counter() - started:.0f} s so far)", flush=True)
    print()
    print(format_table(rows, args.tracemalloc))
    print()
    print(
        f"total {time.perf_counter() - started:.1f} s; records/s = N / seconds. "
        "Inputs are synthetic copies of one real record: throughput, not realism."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
