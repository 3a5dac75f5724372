"""Crash safety: kill -9 at random points of a run, the run lock, atomic pointers, leftovers.

The kill test runs `registry-sync run --replay ...` in child processes forked from a warm
`registry-sync` process (the CLI's own `main`, the same code the console script calls), so a
run costs its work and not three seconds of imports; one kill goes to the real console script
as well. Short windows (the snapshot temp file, a report file, each pointer) are hit through
the test-only hook `REGISTRY_SYNC_TEST_PAUSE_AT=<step>` (see `snapshot.pause_for_test`), the
rest by seeded random timing.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import BUNDLED_REPLAY, EXPECTATIONS, ROOT, fast_settings, review_subset
from registry_sync import runlock, snapshot
from registry_sync.cli import main
from registry_sync.pipeline import RunRequest, run_pipeline
from test_snapshot import sample_data

SUBSET = ("NCT06482268", "NCT04363346", "NCT04331613")
SEED = 1202
PAUSED_STEPS = (
    "fetch",
    "gate",
    "snapshot",
    "report",
    "published",
    "pointer-latest-replay",
    "pointer-latest",
)


LEFT_AT = {  # files a kill paused at each step leaves (published: a snapshot no pointer names)
    "fetch": 0,
    "gate": 0,
    "snapshot": 1,
    "report": 2,
    "published": 0,
    "pointer-latest-replay": 1,
    "pointer-latest": 1,
}


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env.update(
        REGISTRY_SYNC_DATA_DIR=str(data_dir),
        REGISTRY_SYNC_EXPECTATIONS_DIR=str(EXPECTATIONS),
        REGISTRY_SYNC_MAX_RETRIES="0",
        REGISTRY_SYNC_LOCK_WAIT="0",  # a lock left held would fail the next run at once
    )
    env.pop(snapshot.PAUSE_ENV, None)
    env.update(extra)
    return env


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    for key, value in cli_env(tmp_path / "data").items():
        monkeypatch.setenv(key, value)
    return CliRunner()


def one_run(data_dir: Path, curated: Path) -> Path:
    settings = fast_settings(data_dir, curated)
    return run_pipeline(settings, RunRequest(replay_dir=BUNDLED_REPLAY)).snapshot_path


# --- the run lock ---------------------------------------------------------------------------


def test_second_run_refuses_with_one_line_naming_the_lock_and_holder(
    runner: CliRunner, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    curated = review_subset(tmp_path, SUBSET[:1])
    with runlock.hold(data, wait=0) as lock:
        started = time.monotonic()
        result = runner.invoke(
            main, ["run", "--replay", str(BUNDLED_REPLAY), "--curated", str(curated)]
        )
        waited = time.monotonic() - started
    assert result.exit_code == 4, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"Error: another run holds {lock} (pid {os.getpid()}, started 20")
    assert "waited 0 s" in lines[0] and "Traceback" not in result.output
    assert waited < 5  # REGISTRY_SYNC_LOCK_WAIT=0: refused at once, nothing fetched
    assert not (data / "snapshots").exists() or not list((data / "snapshots").iterdir())
    # let go: the same command now runs
    again = runner.invoke(main, ["run", "--replay", str(BUNDLED_REPLAY), "--curated", str(curated)])
    assert again.exit_code == 0, again.output


def test_waiting_run_gets_the_lock_when_the_holder_lets_go(tmp_path: Path) -> None:
    held = threading.Event()

    def holder() -> None:
        with runlock.hold(tmp_path, wait=0):
            held.set()
            time.sleep(0.4)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    assert runlock.held_by(tmp_path) is not None
    with pytest.raises(runlock.RunLockHeld), runlock.hold(tmp_path, wait=0.1):
        pass
    started = time.monotonic()
    with runlock.hold(tmp_path, wait=5):
        waited = time.monotonic() - started
        assert runlock.read_holder(runlock.lock_path(tmp_path)).pid == os.getpid()
    thread.join()
    assert 0.1 < waited < 2.0
    assert runlock.held_by(tmp_path) is None


def test_lock_of_a_killed_holder_is_free_at_once(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from registry_sync import runlock\n"
        "with runlock.hold(Path(sys.argv[1]), wait=0):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    cmd = [sys.executable, "-c", code, str(tmp_path)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=cli_env(tmp_path)) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        holder = runlock.held_by(tmp_path)
        assert holder is not None and holder.pid == proc.pid
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert runlock.held_by(tmp_path) is None  # no stale lock, no pid check needed
    with runlock.hold(tmp_path, wait=0):
        pass


# --- atomic pointers ------------------------------------------------------------------------

HAMMER = """
import sys
from pathlib import Path
from registry_sync import snapshot
store, n = Path(sys.argv[1]), int(sys.argv[2])
targets = [store / name for name in sys.argv[3:]]
for i in range(n):
    snapshot._write_pointers(store, targets[i % len(targets)], "live")
print("done", flush=True)
"""


def test_concurrent_pointer_updates_never_fail_and_always_name_a_whole_snapshot(
    tmp_path: Path,
) -> None:
    """Three processes and two threads move the pointers 1,000 times between three snapshots
    while a reader checks every pointer it sees (the fixed temp names failed 1 in 3)."""
    runs = [f"20261125T03000{i}Z-000{i}" for i in range(3)]
    targets = [snapshot.write_snapshot(tmp_path, sample_data(r), accepted=True) for r in runs]
    names = [t.name for t in targets]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HAMMER, str(tmp_path), "200", *names],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(tmp_path),
        )
        for _ in range(3)
    ]
    errors: list[BaseException] = []

    def hammer(n: int) -> None:
        try:
            for i in range(n):
                snapshot._write_pointers(tmp_path, targets[i % 3], "live")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(200,)) for _ in range(2)]
    for t in threads:
        t.start()
    seen: Counter[str] = Counter()
    while any(p.poll() is None for p in procs) or any(t.is_alive() for t in threads):
        for pointer in ("latest", "latest-live"):
            seen[(tmp_path / pointer).read_text(encoding="utf-8").strip()] += 1
        seen[os.readlink(tmp_path / "latest.sqlite")] += 1
    for t in threads:
        t.join()
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and out.strip() == "done", err
    assert errors == []
    assert set(seen) <= set(names) and sum(seen.values()) > 0
    for pointer in ("latest", "latest-live", "latest.sqlite"):
        path = (
            snapshot.latest_snapshot(tmp_path, pointer)
            if pointer != "latest.sqlite"
            else (tmp_path / pointer).resolve()
        )
        assert path is not None and "finished_at" in snapshot.read_meta(path)
    assert snapshot.leftover_temp_files(tmp_path) == []  # every temp file was renamed


# --- leftovers and missing reports ----------------------------------------------------------


def test_run_removes_what_killed_runs_left_and_snapshots_lists_it(
    runner: CliRunner, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    curated = review_subset(tmp_path, SUBSET[:1])
    first = one_run(data, curated)
    store, reports = data / "snapshots", data / "reports"
    dead = "20261125T050000Z-dead"
    left = [
        store / f".{dead}.sqlite.tmp",  # a snapshot being built
        reports / f"{dead}.md",  # the reports of that never-published snapshot
        reports / f"{dead}.json",
        reports / f".{dead}.html.4242-0badf00d.tmp",  # a report being written
        store / ".latest.4242-0badf00d.tmp",  # a pointer being written
        store / "rejected" / ".20261125T050001Z-beef.sqlite.tmp",
    ]
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half", encoding="utf-8")
    (store / ".latest.sqlite.4242-0badf00d.tmp").symlink_to("nowhere.sqlite")
    left.append(store / ".latest.sqlite.4242-0badf00d.tmp")

    listed = runner.invoke(main, ["snapshots"])
    assert listed.exit_code == 0, listed.output
    assert f"{len(left)} file(s) left by killed runs (not snapshots)" in listed.stderr
    assert all(p.name in listed.stderr for p in left)
    assert "the next run removes them" in listed.stderr
    assert f"* {first.stem}" in listed.stdout  # listing still works

    ran = runner.invoke(main, ["run", "--replay", str(BUNDLED_REPLAY), "--curated", str(curated)])
    assert ran.exit_code == 0, ran.output
    assert f"cleaned {len(left)} file(s) left by killed runs" in ran.stdout
    assert not any(p.is_symlink() or p.exists() for p in left)
    assert all(p.exists() for p in snapshot.report_paths(reports, first).values())
    assert snapshot.leftover_temp_files(store, reports) == []


def test_snapshots_clean_removes_now_and_refuses_while_a_run_is_going(
    runner: CliRunner, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    one_run(data, review_subset(tmp_path, SUBSET[:1]))
    temp = data / "snapshots" / ".20261125T050000Z-dead.sqlite.tmp"
    temp.write_text("half", encoding="utf-8")
    with runlock.hold(data, wait=0):
        busy = runner.invoke(main, ["snapshots"])
        assert "a run is going (pid" in busy.stderr and "some may be its own" in busy.stderr
        refused = runner.invoke(main, ["snapshots", "--clean"])
        assert refused.exit_code == 4 and "another run holds" in refused.stderr
        assert temp.exists()
    cleaned = runner.invoke(main, ["snapshots", "--clean"])
    assert cleaned.exit_code == 0, cleaned.output
    assert f"cleaned 1 file(s) left by killed runs: {temp.name}" in cleaned.stderr
    assert not temp.exists()


def test_report_regenerates_missing_report_files_of_latest(
    runner: CliRunner, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    curated = review_subset(tmp_path, SUBSET)
    one_run(data, curated)
    latest = one_run(data, curated)  # its report ends with the changes since the first
    paths = snapshot.report_paths(data / "reports", latest)
    before = {fmt: p.read_text(encoding="utf-8") for fmt, p in paths.items()}
    for p in paths.values():
        p.unlink()
    shown = runner.invoke(main, ["report"])
    assert shown.exit_code == 0, shown.output
    assert "regenerated missing reports: " in shown.stderr
    assert paths["md"].read_text(encoding="utf-8") == before["md"]  # pure over the snapshot
    assert "Changes since run" in before["md"]
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == json.loads(before["json"])
    assert paths["html"].exists()
    again = runner.invoke(main, ["report"])
    assert "regenerated" not in again.stderr  # nothing missing now


# --- the kill test --------------------------------------------------------------------------

FORK_SERVER = """
import json, os, sys
from registry_sync import cli, pipeline, report, validate  # warm: the imports a run pays
import great_expectations, sqlite_utils  # noqa: F401
print("ready", flush=True)
for line in sys.stdin:
    ask = json.loads(line)
    if "wait" in ask:
        _, status = os.waitpid(ask["wait"], 0)
        print(json.dumps({"status": status}), flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        out = os.open(ask["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.environ.pop("REGISTRY_SYNC_TEST_PAUSE_AT", None)
        if ask.get("pause"):
            os.environ["REGISTRY_SYNC_TEST_PAUSE_AT"] = ask["pause"]
        try:
            cli.main(ask["args"], prog_name="registry-sync")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        else:
            code = 0
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    print(json.dumps({"pid": pid}), flush=True)
"""


@dataclass
class ForkServer:
    """A warm `registry-sync` process that forks one child per run (see the module doc)."""

    proc: subprocess.Popen[str]

    def _ask(self, ask: dict[str, object]) -> dict[str, int]:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(ask) + "\n")
        stdin.flush()
        answer: dict[str, int] = json.loads(stdout.readline())
        return answer

    def start(self, args: list[str], log: Path, pause: str | None = None) -> int:
        return self._ask({"args": args, "log": str(log), "pause": pause})["pid"]

    def wait(self, pid: int) -> int:
        """The child's exit code, or minus the signal that ended it."""
        status = self._ask({"wait": pid})["status"]
        return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


@pytest.fixture
def fork_server(tmp_path: Path) -> Iterator[ForkServer]:
    proc = subprocess.Popen(
        [sys.executable, "-c", FORK_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=cli_env(tmp_path / "data"),
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    try:
        yield ForkServer(proc)
    finally:
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
        proc.wait(timeout=30)


def wait_for(log: Path, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(encoding="utf-8", errors="replace"):
            return
        time.sleep(0.01)
    raise AssertionError(f"{text!r} not in {log} after {timeout} s")


def check_pointers(store: Path) -> Path | None:
    """Every pointer names a whole snapshot: it opens, `finished_at` is stamped, integrity ok,
    read-only; and no file in the store is a half snapshot. Returns `latest`."""
    for path in store.glob("*.sqlite"):
        if path.is_symlink():
            continue
        meta = snapshot.read_meta(path)
        assert meta.get("finished_at"), f"{path.name}: a snapshot without finished_at"
        assert not path.stat().st_mode & 0o222, f"{path.name}: writable"
    for pointer in ("latest", "latest-replay"):
        if not (store / pointer).exists():
            continue
        target = snapshot.latest_snapshot(store, pointer)
        assert target is not None, f"{pointer} names a missing file"
        conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
        try:
            assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
        finally:
            conn.close()
        assert snapshot.read_meta(target).get("finished_at")
    link = store / "latest.sqlite"
    if link.is_symlink():
        assert link.resolve().is_file(), "latest.sqlite dangles"
    return snapshot.latest_snapshot(store)


def what_was_left(store: Path, reports: Path) -> str:
    """Which phase the kill caught, read from what it left."""
    left = [p.name for p in snapshot.leftover_temp_files(store, reports)]
    if any(n.startswith(".latest") for n in left):
        return "pointer temp"
    if any(n.endswith((".md", ".json", ".html")) or ".md." in n for n in left):
        return "report written or writing"
    if any(n.endswith(".sqlite.tmp") for n in left):
        return "snapshot temp"
    return "no temp file"


def test_kill_9_at_random_points_never_breaks_the_store(
    fork_server: ForkServer, runner: CliRunner, tmp_path: Path
) -> None:
    """30 kills, seeded: 2 at each of the 7 named steps (paused there) and 16 at random times
    over a run, in shuffled order. After each: the store and pointer checks (`check_pointers`);
    what the kill left (per paused step, exactly the temp files expected); `report` shows
    `latest`, whose report files are in place; then the next run completes (exit 0, so the
    lock was let go), leaves no temp file and no report of an unpublished snapshot, and is
    `latest`."""
    rng = random.Random(SEED)
    data = tmp_path / "data"
    store, reports = data / "snapshots", data / "reports"
    curated = review_subset(tmp_path, SUBSET)
    args = ["run", "--replay", str(BUNDLED_REPLAY), "--curated", str(curated), "-q"]

    def complete_run(n: int) -> float:
        log = tmp_path / f"ok-{n}.log"
        started = time.monotonic()
        code = fork_server.wait(fork_server.start(args, log))
        assert code == 0, log.read_text(encoding="utf-8")
        took = time.monotonic() - started
        text = log.read_text(encoding="utf-8")
        assert snapshot.leftover_temp_files(store, reports) == [], text
        latest = check_pointers(store)
        assert latest is not None and f"snapshot: {latest}" in text
        published = {p.stem for p in store.glob("*.sqlite")} | {
            p.stem for p in (store / "rejected").glob("*.sqlite")
        }
        assert {p.name.split(".")[0] for p in reports.iterdir()} <= published
        return took

    def kill(n: int, pause: str | None) -> bool:
        """Kill run `n` (at `pause`, else at a random time); False when it ended first."""
        log = tmp_path / f"kill-{n}.log"
        pid = fork_server.start(args, log, pause=pause)
        if pause is not None:
            wait_for(log, f"paused at {pause}")
        else:
            time.sleep(rng.uniform(0.0, 1.1 * sum(took) / len(took)))
        os.kill(pid, signal.SIGKILL)
        code = fork_server.wait(pid)
        if code == 0:  # the random time fell after the end: a complete run, checked as one
            return False
        assert code == -signal.SIGKILL, log.read_text(encoding="utf-8")
        return True

    took = [complete_run(0)]  # how long a run takes here, kept up to date below
    plan: list[str | None] = [s for s in PAUSED_STEPS for _ in range(2)] + [None] * 16
    rng.shuffle(plan)
    seen: Counter[str] = Counter()
    cleaned = misses = 0
    for n, pause in enumerate(plan, 1):
        while not kill(n, pause):
            misses += 1
            assert misses < 16, "random kills keep missing the run"
        left = snapshot.leftover_temp_files(store, reports)
        if pause is not None:  # each step leaves exactly its own temp files
            assert len(left) == LEFT_AT[pause], (pause, [p.name for p in left])
        seen[f"paused at {pause}" if pause else f"random: {what_was_left(store, reports)}"] += 1
        latest = check_pointers(store)
        assert latest is not None
        shown = runner.invoke(main, ["report", "--format", "json"])
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout)["summary"]["run_id"] == latest.stem
        assert all(p.exists() for p in snapshot.report_paths(reports, latest).values())
        took.append(complete_run(n))
        cleaned += len(left)
    print(
        f"\n{sum(seen.values())} kills ({misses} random times fell after the run ended), "
        f"{cleaned} leftover files cleaned by the next run; "
        f"a run took {sum(took) / len(took):.2f} s: " + json.dumps(dict(sorted(seen.items())))
    )
    assert sum(seen.values()) == 30 and all(seen[f"paused at {s}"] == 2 for s in PAUSED_STEPS)
    assert cleaned >= 2 * sum(LEFT_AT.values())


def test_kill_9_of_the_console_script_at_the_pointer(tmp_path: Path) -> None:
    """The same kill through the real `registry-sync` executable, paused between the two
    pointers: `latest-replay` moved, `latest` not; the next run repairs both."""
    data = tmp_path / "data"
    curated = review_subset(tmp_path, SUBSET[:1])
    first = one_run(data, curated)
    exe = Path(sys.executable).with_name("registry-sync")
    cmd = [str(exe), "run", "--replay", str(BUNDLED_REPLAY), "--curated", str(curated), "-q"]
    env = cli_env(data, **{snapshot.PAUSE_ENV: "pointer-latest"})
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT) as proc:
        assert proc.stderr is not None
        assert "paused at pointer-latest" in proc.stderr.readline()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    store = data / "snapshots"
    assert check_pointers(store) == first
    killed = snapshot.latest_snapshot(store, "latest-replay")
    assert killed is not None and killed != first
    assert [p.name.split(".")[1] for p in snapshot.leftover_temp_files(store)] == ["latest"]
    again = subprocess.run(
        cmd, capture_output=True, text=True, env=cli_env(data), cwd=ROOT, timeout=60
    )
    assert again.returncode == 0, again.stderr
    assert "cleaned 1 file(s) left by killed runs: .latest." in again.stdout
    latest = check_pointers(store)
    assert latest not in (first, killed) and latest == snapshot.latest_snapshot(
        store, "latest-replay"
    )
