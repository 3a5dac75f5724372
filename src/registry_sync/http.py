"""The one HTTP client: honest User-Agent, timeouts, per-registry policy, typed errors, evidence.

Policy comes from the registry table (`registry_table.REGISTRY_TABLE`, key passed as
`registry=`): attempts, seconds between requests to one host, cookies kept or dropped, whether a
block stops the rest of the run on that host, robots.txt, and the biggest answer we read.
`HttpSettings` may override attempts (`max_retries`), intervals (`min_interval`) and caps
(`max_bytes`). Loopback hosts (the replay server) never wait for an interval.

Retries happen here only for transient failures (timeouts, connection errors, 429 honouring
Retry-After, 5xx). A 404 is `NotFoundError`, 401/403/405/451 is `BlockedError`, an answer over
the cap is `ResponseTooLargeError`: none is retried.

Every request and its answer (or why none came) is kept as an `Exchange` in `Http.exchanges`,
and every `FetchError` carries the exchange it comes from, so a snapshot can show its evidence.
"""

from __future__ import annotations

import email.utils
import io
import ipaddress
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit
from urllib.robotparser import RobotFileParser

import requests
from requests.structures import CaseInsensitiveDict

from registry_sync.errors import (
    BlockedError,
    FetchError,
    NotFoundError,
    ResponseTooLargeError,
    TransientFetchError,
)
from registry_sync.model import Exchange
from registry_sync.registry_table import MB, REGISTRY_TABLE
from registry_sync.settings import HttpSettings

HttpResponse = Exchange  # the v1 name; an answer is an exchange now

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
BLOCKED_STATUSES = frozenset({401, 403, 405, 451})
NOT_RETRIED = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.TooManyRedirects,
)
UNREACHABLE_AFTER = 2  # requests in a row (each after its retries) with no answer at all
HEAD_BYTES = 64 * 1024  # what an error answer, or the head of a too-large one, keeps as evidence
CHUNK_BYTES = 64 * 1024
# a login form's password field: a redirect that ends on one is a block (we never log in)
_PASSWORD_INPUT = re.compile(rb"<input[^>]+type\s*=\s*[\"']?password", re.I)
DEFAULT_ATTEMPTS = 4  # an ad-hoc request (no registry key): the old default
DEFAULT_MAX_BYTES = 32 * MB  # an ad-hoc request's cap
ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 asks crawlers to read at least 500 KiB
ROBOTS_AGENT = "registry-sync"  # the product token robots.txt groups are matched against
ANY_REGISTRY = "*"  # a block noted without a registry applies to every registry on that host

# A host's robots.txt: its parsed rules, or True (everything allowed) / False (nothing allowed).
RobotsRules = RobotFileParser | bool


@dataclass(frozen=True)
class Policy:
    """How the client treats one registry's requests (from the table, then the settings)."""

    attempts: int
    interval: float  # seconds between two requests to one host
    keep_cookies: bool
    stop_after_block: bool
    honour_robots: bool
    max_bytes: int


@dataclass(frozen=True)
class _Request:
    method: str
    url: str
    accept: str
    params: Mapping[str, str] | None = None
    data: Mapping[str, str] | bytes | None = None
    content_type: str | None = None

    @property
    def full_url(self) -> str:
        """The URL with the query string we send (for robots, messages and failed exchanges)."""
        if not self.params:
            return self.url
        return f"{self.url}{'&' if '?' in self.url else '?'}{urlencode(self.params)}"


class Http:
    """Polite `requests.Session`s, one per registry. One `Http` per run; thread-safe."""

    def __init__(
        self,
        settings: HttpSettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        session_factory: Callable[[], requests.Session] = requests.Session,
        max_bytes: Mapping[str, int] | None = None,
    ) -> None:
        self.settings = settings or HttpSettings()
        self._sleep = sleep
        self._clock = clock
        self._session_factory = session_factory
        # `HttpSettings.max_bytes` when the settings carry it, then this argument
        settings_caps = self.settings.max_bytes
        self._max_bytes = {**settings_caps, **(max_bytes or {})}
        self._lock = threading.Lock()
        self._sessions: dict[str, requests.Session] = {}
        self._last_request: dict[str, float] = {}  # host -> when its latest request may go
        self._crawl_delay: dict[str, float] = {}  # host -> robots.txt Crawl-delay
        self._blocks: dict[tuple[str, str], str] = {}  # (registry, host) -> first reason
        self._robots: dict[str, RobotsRules] = {}  # scheme://host -> its rules
        self._robots_locks: dict[str, threading.Lock] = {}
        self._silent: dict[str, tuple[int, str]] = {}  # host -> (requests unanswered, why)
        self.exchanges: list[Exchange] = []
        self.requests_sent = 0

    def drain_exchanges(self) -> list[Exchange]:
        """The exchanges recorded so far, handed over and forgotten here (a long run's caller
        keeps what it needs of them, so the client never holds every body it received)."""
        with self._lock:
            taken, self.exchanges = self.exchanges, []
        return taken

    def close(self) -> None:
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            session.close()

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        registry: str = "",
        accept: str = "application/json",
    ) -> Exchange:
        """GET with the registry's policy; raises a typed `FetchError` otherwise."""
        return self._request(_Request("GET", url, accept, params=params), registry)

    def post(
        self,
        url: str,
        *,
        data: Mapping[str, str] | bytes,
        registry: str = "",
        accept: str = "text/html",
        content_type: str | None = None,
    ) -> Exchange:
        """POST a form (a mapping) or raw bytes; same policy, retries and errors as `get`."""
        request = _Request("POST", url, accept, data=data, content_type=content_type)
        return self._request(request, registry)

    def note_block(self, url: str, reason: str, *, registry: str | None = None) -> None:
        """A caller saw a block (a challenge page served with 200): stop that host for the run.

        Scoped to `registry` when given, else to every registry whose policy stops after a
        block. Only the first reason per host is kept: it is the one worth reporting.
        """
        host = _host(url)
        with self._lock:
            self._blocks.setdefault((registry or ANY_REGISTRY, host), reason)

    def policy(self, registry: str) -> Policy:
        """The registry's row of the table, overridden by the settings where they say so."""
        info = REGISTRY_TABLE.get(registry)
        if self.settings.max_retries is not None:
            attempts = self.settings.max_retries + 1
        else:
            attempts = info.attempts if info is not None else DEFAULT_ATTEMPTS
        interval = self.settings.min_interval.get(registry, info.min_interval if info else 0.0)
        cap = self._max_bytes.get(registry, info.max_page_bytes if info else DEFAULT_MAX_BYTES)
        if info is None:
            return Policy(max(attempts, 1), interval, True, False, False, cap)
        return Policy(
            max(attempts, 1),
            interval,
            info.keep_cookies,
            info.stop_after_block,
            info.honour_robots,
            cap,
        )

    # ------------------------------------------------------------------ one request

    def _request(self, request: _Request, registry: str) -> Exchange:
        """Refuse what the run must not send, then send with retries; remember blocks."""
        policy = self.policy(registry)
        self._refuse_if_blocked(request.full_url, registry, policy)
        if policy.honour_robots:
            self._obey_robots(request.full_url, registry, policy)
        self._refuse_if_unreachable(request.full_url)
        try:
            answer = self._with_retries(request, registry, policy)
        except BlockedError as exc:
            self.note_block(request.url, str(exc), registry=registry)
            if exc.url and _host(exc.url) != _host(request.url):  # redirected, then blocked
                self.note_block(exc.url, str(exc), registry=registry)
            raise
        except TransientFetchError as exc:
            if exc.status is None:  # no answer at all, after every attempt
                self._note_silence(request.url, str(exc))
            raise
        with self._lock:
            self._silent.pop(_host(request.url), None)
        return answer

    def _note_silence(self, url: str, reason: str) -> None:
        with self._lock:
            count, first = self._silent.get(_host(url), (0, reason))
            self._silent[_host(url)] = (count + 1, first)

    def _refuse_if_unreachable(self, url: str) -> None:
        """A host that gave no answer at all to UNREACHABLE_AFTER requests in a row (each after
        its retries) is not asked again this run: with no network, a run ends in seconds, not
        in one timeout per trial."""
        with self._lock:
            count, first = self._silent.get(_host(url), (0, ""))
        if count >= UNREACHABLE_AFTER:
            message = (
                f"not sent: {_host(url)} did not answer {count} requests in a row this run "
                f"({first})"
            )
            raise TransientFetchError(message, url=url)

    def _with_retries(self, request: _Request, registry: str, policy: Policy) -> Exchange:
        for attempt in range(policy.attempts):
            if attempt:  # another thread may have met a block on this host meanwhile
                self._refuse_if_blocked(request.full_url, registry, policy)
            self._throttle(request.url, policy.interval)
            try:
                return self._send(request, registry, policy)
            except TransientFetchError as exc:
                if attempt + 1 >= policy.attempts:
                    raise
                self._sleep(self._retry_delay(exc, attempt))
        raise AssertionError("unreachable: a policy has at least one attempt")

    def _refuse_if_blocked(self, url: str, registry: str, policy: Policy) -> None:
        if not policy.stop_after_block:
            return
        host = _host(url)
        with self._lock:
            reason = self._blocks.get((registry, host)) or self._blocks.get((ANY_REGISTRY, host))
        if reason is not None:
            message = f"not sent: {host} blocked us earlier in this run ({reason})"
            raise BlockedError(message, url=url)

    def _send(self, request: _Request, registry: str, policy: Policy) -> Exchange:
        """One attempt: send, read at most the cap, classify; cookies dropped unless kept."""
        session = self._session(registry)
        with self._lock:
            self.requests_sent += 1
        try:
            resp = self._open(session, request, registry)
            try:
                return self._answer(resp, request, registry, policy)
            finally:
                resp.close()
        finally:
            if not policy.keep_cookies:
                session.cookies.clear()

    def _open(
        self, session: requests.Session, request: _Request, registry: str
    ) -> requests.Response:
        """The response with its headers read and its body still on the wire."""
        headers = {"Accept": request.accept}
        if request.content_type:
            headers["Content-Type"] = request.content_type
        data = dict(request.data) if isinstance(request.data, Mapping) else request.data
        try:
            return session.request(
                request.method,
                request.url,
                params=request.params,
                data=data,
                headers=headers,
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                stream=True,
            )
        except requests.RequestException as exc:
            error_class, what = _classify_failure(exc)
            exchange = self._record_failure(request, registry, exc)
            message = f"{what}: {request.full_url} ({_reason(exc)})"
            raise error_class(message, url=request.full_url, exchange=exchange) from exc

    def _answer(
        self, resp: requests.Response, request: _Request, registry: str, policy: Policy
    ) -> Exchange:
        """Read the body within bounds, keep the exchange, raise for anything but success."""
        for hop in resp.history:
            self._record_answer(hop, request.method, registry, _content_of(hop)[:HEAD_BYTES])
        success = resp.status_code < 400
        limit = policy.max_bytes if success else HEAD_BYTES
        sink = io.BytesIO()
        try:
            over = _read_capped(resp, limit, sink)
        except requests.RequestException as exc:  # cut mid-body, read timeout
            head = sink.getvalue()[:HEAD_BYTES]
            exchange = self._record_answer(resp, request.method, registry, head, error=exc)
            message = f"answer cut off: {resp.url or request.full_url} ({_reason(exc)})"
            raise TransientFetchError(message, url=resp.url, exchange=exchange) from exc
        if success and over:
            head = sink.getvalue()[:HEAD_BYTES]
            exchange = self._record_answer(resp, request.method, registry, head, truncated=True)
            message = f"answer from {exchange.url} is larger than the {_mb(limit)} MB cap"
            raise ResponseTooLargeError(message, url=exchange.url, limit=limit, exchange=exchange)
        body = sink.getvalue()
        exchange = self._record_answer(resp, request.method, registry, body, truncated=over)
        if resp.history:
            _raise_for_redirect(exchange, request.url, registry)
        _raise_for_status(exchange)
        return exchange

    def _session(self, registry: str) -> requests.Session:
        """The registry's own session (its cookies), made on first use."""
        with self._lock:
            session = self._sessions.get(registry)
            if session is None:
                session = self._session_factory()
                session.headers["User-Agent"] = self.settings.user_agent
                self._sessions[registry] = session
            return session

    # ------------------------------------------------------------------ evidence

    def _keep(self, exchange: Exchange) -> Exchange:
        with self._lock:
            self.exchanges.append(exchange)
        return exchange

    def _record_answer(
        self,
        resp: requests.Response,
        method: str,
        registry: str,
        body: bytes,
        *,
        truncated: bool = False,
        error: BaseException | None = None,
    ) -> Exchange:
        return self._keep(
            Exchange(
                request_id=new_request_id(),
                registry=registry,
                method=method,
                url=resp.url,
                status=resp.status_code,
                fetched_at=datetime.now(UTC),
                headers=CaseInsensitiveDict(resp.headers),  # servers behind HTTP/2 send lower case
                body=body,
                truncated=truncated,
                error=None if error is None else _reason(error),
            )
        )

    def _record_failure(self, request: _Request, registry: str, exc: BaseException) -> Exchange:
        return self._keep(
            Exchange(
                request_id=new_request_id(),
                registry=registry,
                method=request.method,
                url=request.full_url,
                status=None,
                fetched_at=datetime.now(UTC),
                headers=CaseInsensitiveDict(),
                body=b"",
                error=_reason(exc),
            )
        )

    # ------------------------------------------------------------------ politeness

    def _retry_delay(self, exc: TransientFetchError, attempt: int) -> float:
        if exc.retry_after is not None:
            return float(min(max(exc.retry_after, 0.0), self.settings.retry_after_cap))
        return float(min(self.settings.backoff_base * 2**attempt, self.settings.backoff_cap))

    def _throttle(self, url: str, interval: float) -> None:
        """Queue this request one interval after the host's previous one (serial per host)."""
        if is_loopback(url):
            return  # our own replay server: nobody to be polite to
        host = _host(url)
        with self._lock:
            interval = max(interval, self._crawl_delay.get(host, 0.0))
            now = self._clock()
            last = self._last_request.get(host)
            wait = 0.0 if last is None else last + interval - now
            self._last_request[host] = now + max(wait, 0.0)
        if wait > 0:
            self._sleep(wait)

    def _obey_robots(self, url: str, registry: str, policy: Policy) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return
        rules = self._robots_for(f"{parts.scheme}://{parts.netloc}", registry, policy)
        allowed = rules if isinstance(rules, bool) else rules.can_fetch(ROBOTS_AGENT, url)
        if not allowed:
            message = (
                f"robots.txt of {parts.netloc} disallows {parts.path or '/'} for {ROBOTS_AGENT}"
            )
            raise BlockedError(message, url=url)

    def _robots_for(self, origin: str, registry: str, policy: Policy) -> RobotsRules:
        """The host's rules, fetched once per run (one fetch even when threads race for it)."""
        with self._lock:
            lock = self._robots_locks.setdefault(origin, threading.Lock())
        with lock:
            rules = self._robots.get(origin)
            if rules is None:
                rules = self._fetch_robots(origin, registry, policy)
                self._robots[origin] = rules
            return rules

    def _fetch_robots(self, origin: str, registry: str, policy: Policy) -> RobotsRules:
        """RFC 9309: 4xx allows all, except 401/403 which forbid all; no answer allows, here."""
        request = _Request("GET", f"{origin}/robots.txt", "text/plain")
        self._throttle(request.url, policy.interval)
        try:
            exchange = self._send(request, registry, replace(policy, max_bytes=ROBOTS_MAX_BYTES))
        except FetchError as exc:
            return exc.status not in (401, 403)
        rules = RobotFileParser(request.url)
        rules.parse(exchange.body.decode("utf-8", errors="replace").splitlines())
        delay = rules.crawl_delay(ROBOTS_AGENT)
        if delay is not None and float(delay) > policy.interval:
            with self._lock:
                self._crawl_delay[_host(origin)] = float(delay)
        return rules


def new_request_id() -> str:
    """A random id, unique across runs, that a snapshot can refer to."""
    return secrets.token_hex(8)


def is_loopback(url: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: our own machine (the replay server)."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()


def _mb(limit: int) -> str:
    return f"{limit / MB:g}"


def too_large_detail(exc: ResponseTooLargeError) -> str:
    """The outcome detail for an answer over the cap: `answer larger than the 4 MB cap`."""
    return f"answer larger than the {_mb(exc.limit)} MB cap"


def _read_capped(resp: requests.Response, limit: int, sink: io.BytesIO) -> bool:
    """Stream the body into `sink`, at most `limit` bytes; True when the answer is bigger.

    A Content-Length above the limit stops after the head (HEAD_BYTES), kept as evidence.
    """
    declared = resp.headers.get("Content-Length", "").strip()
    declared_over = declared.isdigit() and int(declared) > limit
    budget = min(limit, HEAD_BYTES) if declared_over else limit
    for chunk in resp.iter_content(CHUNK_BYTES):
        room = budget - sink.tell()
        if len(chunk) > room:
            sink.write(chunk[:room])
            return True
        sink.write(chunk)
    return declared_over


def _content_of(hop: requests.Response) -> bytes:
    """A redirect's body, which requests has already read (or dropped)."""
    try:
        return hop.content or b""
    except (RuntimeError, requests.RequestException):
        return b""


def _classify_failure(exc: requests.RequestException) -> tuple[type[FetchError], str]:
    """No answer at all: a bad URL or a redirect loop is final, the rest is transient."""
    if isinstance(exc, NOT_RETRIED):  # trying again won't help
        return FetchError, "cannot request"
    if isinstance(exc, requests.Timeout):
        return TransientFetchError, "timed out"
    if isinstance(exc, requests.ConnectionError):
        return TransientFetchError, "cannot connect"
    return TransientFetchError, "request failed"


def _raise_for_status(exchange: Exchange) -> None:
    """A typed error for an answer that is not a success; nothing for 1xx-3xx."""
    status = exchange.status or 0
    error_class = _status_error(status)
    if error_class is None:
        return
    retry_after = None
    if error_class is TransientFetchError:
        retry_after = _parse_retry_after(exchange.headers.get("Retry-After"))
    raise error_class(
        f"HTTP {status} from {exchange.url}",
        url=exchange.url,
        status=status,
        retry_after=retry_after,
        exchange=exchange,
    )


def _raise_for_redirect(exchange: Exchange, asked: str, registry: str) -> None:
    """A redirect that ends on a login form is a block (we never log in); one that ends on a
    host neither asked nor the registry's own (the registry table's `hosts`) is not the
    registry's answer. Both are final: asking again lands in the same place."""
    if _PASSWORD_INPUT.search(exchange.body[:HEAD_BYTES]):
        message = f"redirected to a login page: {exchange.url} (asked {asked})"
        raise BlockedError(message, url=exchange.url, status=exchange.status, exchange=exchange)
    info = REGISTRY_TABLE.get(registry)
    landed = (urlsplit(exchange.url).hostname or "").lower()
    if info is None or landed in {(urlsplit(asked).hostname or "").lower(), *info.hosts}:
        return
    message = f"redirected off {info.name}'s hosts to {exchange.url}: not its answer"
    raise FetchError(message, url=exchange.url, status=exchange.status, exchange=exchange)


def _status_error(status: int) -> type[FetchError] | None:
    if status in TRANSIENT_STATUSES:
        return TransientFetchError
    if status in (404, 410):
        return NotFoundError
    if status in BLOCKED_STATUSES:
        return BlockedError
    return FetchError if status >= 400 else None


def _reason(exc: BaseException) -> str:
    """A short cause: urllib3's innermost reason without its object repr or the query string."""
    inner: object = exc.args[0] if exc.args else exc
    inner = getattr(inner, "reason", inner)
    text = str(inner).split(">: ", 1)[-1]
    return f"{type(inner).__name__}: {text}"[:200]


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After is seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
