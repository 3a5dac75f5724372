"""Layers at run time: what importing a module really loads, beyond what import-linter sees.

import-linter (pyproject.toml, `lint-imports` in .ci/run) follows our own import statements; it
cannot see that a third-party package (sqlite-utils) imports pandas. So this imports the
readers in a fresh interpreter and looks at `sys.modules`: reading a snapshot or rendering a
report must load neither requests nor pandas (each costs start-up time the CLI's `report` and
`snapshots` commands should not pay).
"""

from __future__ import annotations

import json
import subprocess
import sys

# The source modules of the "neither requests nor pandas" contract in pyproject.toml.
READERS = (
    "registry_sync.report",
    "registry_sync.snapshot",
    "registry_sync.model",
    "registry_sync.registry_table",
    "registry_sync.reconcile",
)
HEAVY = ("requests", "pandas")


def modules_loaded_by(*modules: str) -> list[str]:
    """Which of HEAVY a fresh interpreter holds after importing `modules`."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_report_and_snapshot_load_neither_requests_nor_pandas() -> None:
    assert modules_loaded_by("registry_sync.report", "registry_sync.snapshot") == []


def test_every_reader_of_the_contract_loads_neither_requests_nor_pandas() -> None:
    assert modules_loaded_by(*READERS) == []


def test_the_check_sees_a_heavy_import() -> None:
    # frames builds pandas frames: if this came back empty, the checks above would prove nothing
    assert modules_loaded_by("registry_sync.frames") == ["pandas"]
