"""Progress bars (rich) for an interactive run: one bar per registry, trials done / total.

Shown only when standard error is a terminal and the user did not turn them off; never in
flows (they call the pipeline without a progress hook) and never when output is piped. The
pipeline knows nothing of rich: it calls `on_progress(name, done, total)`, where `name` is a
registry key, or `source:home` for a fallback source asked for another registry's trials
(`ictrp:jrct`).
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from registry_sync.registry_table import registry_name


def wanted(stream: TextIO | None = None, *, disabled: bool = False) -> bool:
    """True when bars should show: not turned off, and `stream` (stderr) is a terminal."""
    if disabled:
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def label(name: str) -> str:
    """`ctgov` -> `ClinicalTrials.gov`; `ictrp:jrct` -> `WHO ICTRP (for jRCT)`."""
    source, _, home = name.partition(":")
    return f"{registry_name(source)} (for {registry_name(home)})" if home else registry_name(name)


class FetchProgress:
    """A context manager whose instances are the pipeline's `on_progress` hook. Thread-safe:
    the pipeline calls it from its fetch workers."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            SpinnerColumn(finished_text="✓"),
            TextColumn("{task.description:<34}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("trials"),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
        )
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> FetchProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def __call__(self, name: str, done: int, total: int) -> None:
        with self._lock:
            task = self._tasks.get(name)
            if task is None:
                task = self._progress.add_task(label(name), total=total)
                self._tasks[name] = task
            self._progress.update(task, completed=done, total=total)
