"""The exception hierarchy.

Every message says what happened, to which record, and what to do next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry_sync.model import Exchange


class RegistrySyncError(Exception):
    """Base of every error this package raises on purpose."""


class FetchError(RegistrySyncError):
    """A request to a registry did not give us a usable answer."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        exchange: Exchange | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.retry_after = retry_after
        self.exchange = (
            exchange  # the failing answer (or attempt), kept as evidence; None if unsent
        )


class TransientFetchError(FetchError):
    """Timeouts, connection errors, 429 and 5xx: worth trying again later."""


class BlockedError(FetchError):
    """The registry refused us (WAF page, challenge, 403/405). Never retried, never circumvented."""


class NotFoundError(FetchError):
    """The registry says the record does not exist (404 or its own not-found page)."""


class ResponseTooLargeError(FetchError):
    """The answer was bigger than the registry's cap (`max_page_bytes`): reading stopped there.

    Not transient (the same page will be as big next time); `exchange` keeps only its head.
    """

    def __init__(
        self, message: str, *, url: str, limit: int, exchange: Exchange | None = None
    ) -> None:
        super().__init__(
            message, url=url, status=exchange.status if exchange else None, exchange=exchange
        )
        self.limit = limit


class RegistryDownError(TransientFetchError):
    """Every request to one registry failed transiently; carries the per-trial outcomes."""

    def __init__(self, message: str, outcomes: list[Any]) -> None:
        super().__init__(message)
        self.outcomes = outcomes

    def __reduce__(self) -> tuple[Any, ...]:
        """Picklable with its outcomes (a task on another process raises it back to the flow)."""
        return (type(self), (str(self), self.outcomes), self.__dict__)


class ParseError(RegistrySyncError):
    """A payload was structurally not what the parser expects (wrong trial, challenge page...)."""

    def __init__(self, registry: str, trial_id: str, url: str, hint: str) -> None:
        super().__init__(f"{registry} {trial_id}: cannot parse {url}: {hint}")
        self.registry = registry
        self.trial_id = trial_id
        self.url = url
        self.hint = hint


class CuratedTableError(RegistrySyncError):
    """The review's table is structurally broken (missing column, encoding, empty)."""

    def __init__(
        self, path: str, problem: str, *, line: int | None = None, column: str | None = None
    ) -> None:
        where = path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.column = column
        self.problem = problem


class SnapshotError(RegistrySyncError):
    """A snapshot file is missing, unreadable, or not one of ours."""


class ValidationFailed(RegistrySyncError):
    """A Great Expectations gate failed; `report` is the plain validation report."""

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(message)
        self.report = report
