"""End to end at scale: `registry-sync run --curated <N-row table> --registry ctgov` against a
loopback ClinicalTrials.gov stand-in, two nights. A script that prints figures; not a test
(pytest does not collect `bench/`; it asserts nothing).

    PYTHONPATH=src .venv/bin/python bench/bench_scale.py                 # N = 10,000 and 100,000
    PYTHONPATH=src .venv/bin/python bench/bench_scale.py --sizes 10000   # one size

1. A SYNTHETIC scale set is generated into a temp dir (never committed): the four real recorded
   ClinicalTrials.gov studies in `data/replay/ctgov/recorded/` taken in turn, each copy's one
   NCT ID rewritten (`NCT90000000`, ...), written as `ctgov/synthetic/NCT9xxxxxxx.json`; a
   SYNTHETIC `ctgov/version.json` (a data timestamp, so the second night can be incremental);
   and an N-row review table citing those IDs (`review_scale_SYNTHETIC.csv`).
2. `registry-sync serve-replay` serves it from its own process (its memory is not counted).
3. Night 1 and night 2 (nothing changed) run as `registry-sync run --curated … --registry ctgov
   --base-url ctgov=http://127.0.0.1:PORT/ctgov/api/v2 -q`, each in a fresh process; its peak
   RSS is that child's own `ru_maxrss` (`os.wait4`). Politeness intervals are not applied to
   loopback hosts, so none is waited here.

Figures per night: wall seconds, peak RSS, requests sent (`_meta.requests_sent`), the largest
request URL, the snapshot file's size and what the payload store grew by.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "data" / "replay" / "ctgov" / "recorded"
HEADER = "row,table,product,refs,cell_type,indication,sponsor,trial_id,phase,nation,start,note\n"
VERSION = {"apiVersion": "2.0.5", "dataTimestamp": "2026-09-04T09:00:06"}  # SYNTHETIC
MB = 1024 * 1024


def sources() -> list[tuple[str, str]]:
    """(text, its NCT ID) of each real recorded study whose ID appears exactly once."""
    found = []
    for path in sorted(RECORDED.glob("study_*.json")):
        text = path.read_text(encoding="utf-8")
        nct = json.loads(text)["protocolSection"]["identificationModule"]["nctId"]
        if text.count(nct) == 1:
            found.append((text, nct))
    return found


def scale_set(folder: Path, n: int) -> tuple[Path, Path]:
    """The replay dir of N SYNTHETIC studies and a review table citing them."""
    replay = folder / "replay"
    out = replay / "ctgov" / "synthetic"
    out.mkdir(parents=True)
    (replay / "ctgov" / "version.json").write_text(json.dumps(VERSION), encoding="utf-8")
    real = sources()
    rows = []
    for i in range(n):
        text, original = real[i % len(real)]
        nct = f"NCT9{i:07d}"
        (out / f"{nct}.json").write_text(text.replace(original, nct), encoding="utf-8")
        rows.append(f"{i + 1},1,synthetic {i},,,,,{nct},II,US,2018,SYNTHETIC scale row\n")
    review = folder / "review_scale_SYNTHETIC.csv"
    review.write_text(HEADER + "".join(rows), encoding="utf-8")
    return replay, review


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the replay server did not listen on {port} within {seconds:.0f} s")


def cli() -> list[str]:
    return [sys.executable, "-m", "registry_sync.cli"]


def night(review: Path, data: Path, port: int, label: str, store_before: int) -> int:
    cmd = [
        *cli(),
        "run",
        "--curated",
        str(review),
        "--registry",
        "ctgov",
        "--base-url",
        f"ctgov=http://127.0.0.1:{port}/ctgov/api/v2",
        "--data-dir",
        str(data),
        "-q",
    ]
    clock = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - clock
    rss = usage.ru_maxrss / 1024  # KiB on Linux
    snaps = sorted((data / "snapshots").glob("*.sqlite"), key=lambda p: p.stat().st_mtime)
    snaps = [p for p in snaps if p.name not in {"latest.sqlite", "payloads.sqlite"}]
    if proc.returncode not in (0, 1) or not snaps:
        print(output.decode(errors="replace")[-3000:])
        raise SystemExit(f"{label}: exit {proc.returncode}")
    snap = snaps[-1]
    with sqlite3.connect(snap) as db:
        meta = dict(db.execute("select key, value from _meta").fetchall())
        longest = db.execute("select max(length(url)) from requests").fetchone()[0] or 0
    store = data / "snapshots" / "payloads" / "payloads.sqlite"
    store_now = store.stat().st_size if store.exists() else 0
    inc = json.loads(meta.get("incremental", "{}") or "{}")
    print(
        f"  {label:<26} {wall:7.1f} s  {rss:7.0f} MB RSS  {meta.get('requests_sent', '?'):>4} "
        f"requests  longest URL {longest:,} B  snapshot {snap.stat().st_size / MB:7.1f} MB  "
        f"store +{(store_now - store_before) / MB:.1f} MB  exit {proc.returncode}  "
        f"{inc.get('mode', '-')} {inc.get('asked_by', '')}".rstrip()
    )
    return store_now


def run_size(tmp: Path, n: int) -> None:
    folder = tmp / f"n{n}"
    clock = time.monotonic()
    replay, review = scale_set(folder, n)
    print(f"N = {n:,}: scale set generated in {time.monotonic() - clock:.1f} s")
    port = free_port()
    server = subprocess.Popen(
        [*cli(), "serve-replay", str(replay), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port, 600)
        data = folder / "data"
        store = night(review, data, port, "night 1 (full)", 0)
        night(review, data, port, "night 2 (nothing changed)", store)
    finally:
        server.terminate()
        server.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    args = parser.parse_args(argv)
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env_path) if p)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            run_size(Path(tmp), n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
