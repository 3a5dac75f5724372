"""Shared kit for registries that serve one page per trial (jRCT, UMIN, ChiCTR, ANZCTR, IRCT...).

`fetch_each` does the I/O every such adapter needs, serially and through `Http` (so the
registry table's interval, attempts, cookies, robots.txt and block policy apply): one request
per trial, or two where the registry has no stable detail URL for an ID (UMIN and ChiCTR: a
search page, then the detail page it links to). It maps every answer to one typed outcome and
keeps every exchange behind that outcome as its evidence. An adapter supplies only its URLs and
its pure page checks (`detect_block`, `is_not_found`, `next_url`).

`decode_text` (from `registry_sync.charset`) turns a page's bytes into text for the parsers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urljoin

from registry_sync import ids
from registry_sync.charset import decode_text
from registry_sync.errors import (
    BlockedError,
    FetchError,
    NotFoundError,
    ResponseTooLargeError,
)
from registry_sync.http import Http, too_large_detail
from registry_sync.model import Exchange, FetchOutcome, Outcome, RawPayload
from registry_sync.registries import _ticks
from registry_sync.registry_table import REGISTRY_TABLE

__all__ = ["Post", "Target", "decode_text", "fetch_each"]

# Markers of a challenge, WAF or quota page that any site may serve (a registry adds its own).
GENERIC_BLOCK_MARKERS: tuple[str, ...] = (
    "captcha",
    "access denied",
    "request unsuccessful",
    "just a moment",
    "are you a robot",
    "too many requests",
    "has been blocked",
)


@dataclass(frozen=True)
class Post:
    """A form to POST instead of a GET (a search that only answers postbacks)."""

    url: str
    data: Mapping[str, str] | bytes


Target = str | Post  # what to request: a URL to GET, or a form to POST
UrlFor = Callable[[str], Target]  # trial ID -> its (first) request
# (trial ID, search answer) -> the detail page it points at (relative is fine), None = no hit
NextUrl = Callable[[str, Exchange], Target | None]
DetectBlock = Callable[[Exchange], str | None]  # a 200 answer -> why it is a block page, or None
IsNotFound = Callable[[Exchange], bool]  # a 200 answer -> is it the registry's "no such trial"

# A fetch error -> the trial's outcome; the first match counts, anything else is registry_down.
ERROR_OUTCOMES: tuple[tuple[type[FetchError], Outcome], ...] = (
    (NotFoundError, Outcome.NOT_FOUND),
    (BlockedError, Outcome.BLOCKED),
    (ResponseTooLargeError, Outcome.PARSE_ERROR),  # the same page will be as big next time
)


@dataclass(frozen=True)
class _Hooks:
    """One `fetch_each` call's registry and its adapter's functions."""

    registry: str  # the trials' home registry (ID pattern, outcomes)
    http_key: str  # whose policy the requests follow: `source` when a copy is fetched
    url_for: UrlFor
    next_url: NextUrl | None
    detect_block: DetectBlock | None
    is_not_found: IsNotFound | None
    accept: str
    source: str


def fetch_each(
    trial_ids: Sequence[str],
    http: Http,
    *,
    registry: str,
    url_for: UrlFor,
    next_url: NextUrl | None = None,
    detect_block: DetectBlock | None = None,
    is_not_found: IsNotFound | None = None,
    accept: str = "text/html",
    source: str = "",
) -> list[FetchOutcome]:
    """One outcome per distinct normalized ID, in input order; never raises for a trial.

    IDs not matching `registry`'s pattern end `id_malformed` unsent. With `next_url`, the
    first answer is a search page and `next_url` picks the trial's detail page from it.
    `source` names who serves the pages when it is not the home registry (e.g. "ictrp"); its
    policy then governs the requests.
    """
    info = REGISTRY_TABLE[registry]
    hooks = _Hooks(
        registry, source or registry, url_for, next_url, detect_block, is_not_found, accept, source
    )
    outcomes: list[FetchOutcome] = []
    for trial_id in dict.fromkeys(ids.normalize_id(t) for t in trial_ids):
        if info.id_pattern is None or not info.id_pattern.fullmatch(trial_id):
            detail = f"not a {info.name} ID"
            outcomes.append(
                FetchOutcome(registry, trial_id, Outcome.ID_MALFORMED, detail, source=source)
            )
        else:
            outcomes.append(_fetch_one(trial_id, http, hooks))
        _ticks.answered()
    return outcomes


def _fetch_one(trial_id: str, http: Http, hooks: _Hooks) -> FetchOutcome:
    """The trial's page, directly or through a search page; evidence accumulates."""
    evidence: list[Exchange] = []
    first = _step(trial_id, http, hooks, hooks.url_for(trial_id), evidence)
    if isinstance(first, FetchOutcome) or hooks.next_url is None:
        return _ok(trial_id, first, hooks, evidence) if isinstance(first, Exchange) else first
    target = hooks.next_url(trial_id, first)
    if target is None:
        detail = f"no hit for {trial_id} in the search answer {first.url}"
        return _outcome(trial_id, Outcome.NOT_FOUND, detail, first.url, hooks, evidence)
    detail_page = _step(trial_id, http, hooks, _resolve(target, first.url), evidence)
    if isinstance(detail_page, FetchOutcome):
        return detail_page
    return _ok(trial_id, detail_page, hooks, evidence)


def _step(
    trial_id: str, http: Http, hooks: _Hooks, target: Target, evidence: list[Exchange]
) -> Exchange | FetchOutcome:
    """One request: its exchange when usable, else the trial's outcome (block, not found...)."""
    try:
        exchange = _send(http, target, hooks)
    except FetchError as exc:
        if exc.exchange is not None:
            evidence.append(exc.exchange)
        return _failure(trial_id, exc, _url_of(target), hooks, evidence)
    evidence.append(exchange)
    incomplete = _incomplete(exchange)
    if incomplete is not None:
        return _outcome(trial_id, *incomplete, exchange.url, hooks, evidence)
    reason = hooks.detect_block(exchange) if hooks.detect_block else None
    if reason:
        http.note_block(exchange.url, reason, registry=hooks.http_key)
        return _outcome(trial_id, Outcome.BLOCKED, reason, exchange.url, hooks, evidence)
    if hooks.is_not_found is not None and hooks.is_not_found(exchange):
        detail = f"{REGISTRY_TABLE[hooks.http_key].name} has no {trial_id} ({exchange.url})"
        return _outcome(trial_id, Outcome.NOT_FOUND, detail, exchange.url, hooks, evidence)
    return exchange


def _incomplete(exchange: Exchange) -> tuple[Outcome, str] | None:
    """An answer that is not a whole page: empty (the registry failed to answer), or an HTML
    page that opens `<html` but never closes it (cut short: what it lacks cannot be told)."""
    if not exchange.body.strip():
        return Outcome.REGISTRY_DOWN, f"empty answer (HTTP {exchange.status}) from {exchange.url}"
    lowered = exchange.body.lower()
    if b"<html" in lowered[:4096] and b"</html" not in lowered:
        size = len(exchange.body)
        return Outcome.PARSE_ERROR, f"a page cut short ({size} bytes, no </html>): {exchange.url}"
    return None


def _send(http: Http, target: Target, hooks: _Hooks) -> Exchange:
    if isinstance(target, Post):
        return http.post(target.url, data=target.data, registry=hooks.http_key, accept=hooks.accept)
    return http.get(target, registry=hooks.http_key, accept=hooks.accept)


def _failure(
    trial_id: str, exc: FetchError, url: str, hooks: _Hooks, evidence: list[Exchange]
) -> FetchOutcome:
    outcome = next((o for kind, o in ERROR_OUTCOMES if isinstance(exc, kind)), None)
    if outcome is None:
        outcome = Outcome.REGISTRY_DOWN  # transient after every attempt, or an odd status
    detail = str(exc)
    if isinstance(exc, ResponseTooLargeError):
        detail = f"{too_large_detail(exc)}: {exc.url}"
    return _outcome(trial_id, outcome, detail, exc.url or url, hooks, evidence)


def _ok(trial_id: str, page: Exchange, hooks: _Hooks, evidence: list[Exchange]) -> FetchOutcome:
    """`ok` with the page as payload; its Content-Type is kept whole (charset for decode_text)."""
    payload = RawPayload(
        hooks.registry,
        trial_id,
        page.url,
        page.fetched_at,
        page.body,
        content_type=page.headers.get("Content-Type", ""),
        source=hooks.source,
        request_id=page.request_id,
    )
    return FetchOutcome(
        hooks.registry,
        trial_id,
        Outcome.OK,
        payload=payload,
        url=page.url,
        evidence=tuple(evidence),
        source=hooks.source,
    )


def _outcome(
    trial_id: str,
    outcome: Outcome,
    detail: str,
    url: str,
    hooks: _Hooks,
    evidence: list[Exchange],
) -> FetchOutcome:
    return FetchOutcome(
        hooks.registry,
        trial_id,
        outcome,
        detail,
        url=url,
        evidence=tuple(evidence),
        source=hooks.source,
    )


def _resolve(target: Target, base: str) -> Target:
    """A link as the search page wrote it (`./ctr_view.cgi?...`), made absolute."""
    if isinstance(target, Post):
        return replace(target, url=urljoin(base, target.url))
    return urljoin(base, target)


def _url_of(target: Target) -> str:
    return target.url if isinstance(target, Post) else target
