"""Per-trial progress of one fetch: adapters say when trials are answered; whoever runs the
fetch (the pipeline's worker, for the progress bars) may listen. Nothing listens by default."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_LISTENER: ContextVar[Callable[[int], None] | None] = ContextVar(
    "registry_sync_trials_answered", default=None
)


def answered(n: int = 1) -> None:
    """`n` more trials of the current fetch have their outcome."""
    listener = _LISTENER.get()
    if listener is not None and n > 0:
        listener(n)


@contextmanager
def listening(listener: Callable[[int], None]) -> Iterator[None]:
    """Hear `answered` calls made in this context (one fetch worker's)."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)
