"""Progress bars: the pipeline's hook hears each registry's fetch (0/n, a tick per trial
answered, n/n); rich draws one bar per registry only on a terminal, never when output is piped
or turned off."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from helpers import BUNDLED_REPLAY, EXPECTATIONS, fast_settings, review_subset
from registry_sync import progress
from registry_sync.cli import main
from registry_sync.pipeline import RunRequest, run_pipeline
from registry_sync.replay import ReplayServer

IDS = ("NCT04945018", "NCT06482268", "jRCT2053190081", "UMIN000011929", "UMIN000026003")
BAR = "━"  # rich's bar glyph


def test_hook_hears_each_registry_start_and_finish(server: ReplayServer, tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    settings = fast_settings(tmp_path / "d", review_subset(tmp_path, IDS), **server.base_urls())
    result = run_pipeline(settings, RunRequest(), on_progress=lambda *c: calls.append(c))
    assert sorted(set(calls)) == [
        ("ctgov", 0, 2),
        ("ctgov", 2, 2),  # one batch: both at once
        ("jrct", 0, 1),
        ("jrct", 1, 1),
        ("umin", 0, 2),
        ("umin", 1, 2),  # one page per trial: a tick each
        ("umin", 2, 2),
    ]
    for key in ("ctgov", "jrct", "umin"):  # each registry starts at 0 and only goes up
        counts = [done for name, done, _ in calls if name == key]
        assert counts[0] == 0 and counts == sorted(counts)
    assert sum(result.outcomes.values()) == len(IDS)


def test_bars_show_one_line_per_registry_with_counts() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    with progress.FetchProgress(console=console) as bars:
        bars("ctgov", 0, 79)
        bars("jrct", 0, 11)
        bars("ctgov", 79, 79)
        bars("ictrp:jma", 0, 1)
    screen = out.getvalue()
    assert "ClinicalTrials.gov" in screen and "79/79" in screen
    assert "jRCT" in screen and "0/11" in screen
    assert "WHO ICTRP (for JMACCT (JMA-IIA))" in screen
    assert BAR in screen


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_wanted_only_on_a_terminal_and_not_when_turned_off() -> None:
    assert progress.wanted(Tty()) is True
    assert progress.wanted(Tty(), disabled=True) is False
    assert progress.wanted(io.StringIO()) is False  # piped
    closed = io.StringIO()
    closed.close()
    assert progress.wanted(closed) is False  # isatty() raises ValueError on a closed stream


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("REGISTRY_SYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REGISTRY_SYNC_EXPECTATIONS_DIR", str(EXPECTATIONS))
    monkeypatch.setenv("REGISTRY_SYNC_CURATED", str(review_subset(tmp_path, IDS)))
    return CliRunner()


def run_replay(runner: CliRunner, *extra: str) -> Any:
    result = runner.invoke(main, ["run", "--replay", str(BUNDLED_REPLAY), *extra])
    assert result.exit_code in (0, 1), result.output
    return result


def test_cli_shows_no_bar_when_not_a_terminal(runner: CliRunner) -> None:
    result = run_replay(runner)
    assert BAR not in result.output and BAR not in result.stderr
    assert "trials" in result.output  # the summary is still printed


def test_cli_draws_bars_on_a_terminal_unless_turned_off(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "wanted", lambda stream=None, *, disabled=False: not disabled)
    shown = run_replay(runner)
    assert BAR in shown.stderr and "ClinicalTrials.gov" in shown.stderr and "2/2" in shown.stderr
    for flag in ("--no-progress", "--quiet", "-q"):
        assert BAR not in run_replay(runner, flag).stderr, flag
