"""The one HTTP client: honest User-Agent, timeouts, per-host politeness, typed errors.

Retries happen here only for transient failures (timeouts, connection errors, 429 honouring
Retry-After, 5xx). A 404 is `NotFoundError`, 403/405/451 is `BlockedError`: neither is retried.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from requests.structures import CaseInsensitiveDict

from registry_sync.errors import BlockedError, FetchError, NotFoundError, TransientFetchError
from registry_sync.registry_table import REGISTRY_TABLE
from registry_sync.settings import HttpSettings

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
BLOCKED_STATUSES = frozenset({401, 403, 405, 451})
NOT_RETRIED = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.TooManyRedirects,
)


@dataclass(frozen=True)
class HttpResponse:
    url: str  # the final URL, with the query string we sent
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes
    fetched_at: datetime  # UTC

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip()


class Http:
    """A polite `requests.Session`. One per run; safe to share between threads."""

    def __init__(
        self,
        settings: HttpSettings | None = None,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or HttpSettings()
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = self.settings.user_agent
        self._sleep = sleep
        self._clock = clock
        self._last_request: dict[str, float] = {}
        self._lock = threading.Lock()
        self.requests_sent = 0

    def close(self) -> None:
        self.session.close()

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        registry: str = "",
        accept: str = "application/json",
    ) -> HttpResponse:
        """GET with retries on transient errors; raises a typed `FetchError` otherwise."""
        attempts = self._attempts(registry)
        last_error: TransientFetchError | None = None
        for attempt in range(attempts):
            self._throttle(url, registry)
            try:
                return self._send(url, params, accept)
            except TransientFetchError as exc:
                last_error = exc
                if attempt + 1 < attempts:
                    self._sleep(self._retry_delay(exc, attempt))
        assert last_error is not None
        raise last_error

    def _attempts(self, registry: str) -> int:
        if self.settings.max_retries is not None:
            return self.settings.max_retries + 1
        info = REGISTRY_TABLE.get(registry)
        return info.attempts if info is not None else 4  # an ad-hoc request: the old default

    def _send(self, url: str, params: Mapping[str, str] | None, accept: str) -> HttpResponse:
        timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        self.requests_sent += 1
        try:
            resp = self.session.get(url, params=params, timeout=timeout, headers={"Accept": accept})
            body = resp.content  # reads the whole body: a cut connection raises here
        except NOT_RETRIED as exc:  # a bad base URL or a redirect loop: trying again won't help
            raise FetchError(f"cannot request {url} ({_reason(exc)})", url=url) from exc
        except requests.Timeout as exc:
            raise TransientFetchError(f"timed out: {url} ({_reason(exc)})", url=url) from exc
        except requests.ConnectionError as exc:
            raise TransientFetchError(f"cannot connect: {url} ({_reason(exc)})", url=url) from exc
        except requests.RequestException as exc:
            raise TransientFetchError(f"request failed: {url} ({_reason(exc)})", url=url) from exc
        fetched_at = datetime.now(UTC)
        final_url = resp.url or url
        status = resp.status_code
        if status in TRANSIENT_STATUSES:
            raise TransientFetchError(
                f"HTTP {status} from {final_url}",
                url=final_url,
                status=status,
                retry_after=_parse_retry_after(resp.headers.get("Retry-After")),
            )
        if status == 404 or status == 410:
            raise NotFoundError(f"HTTP {status} from {final_url}", url=final_url, status=status)
        if status in BLOCKED_STATUSES:
            raise BlockedError(f"HTTP {status} from {final_url}", url=final_url, status=status)
        if status >= 400:
            raise FetchError(f"HTTP {status} from {final_url}", url=final_url, status=status)
        # a case-insensitive copy: servers behind HTTP/2 proxies send `content-type`
        headers = CaseInsensitiveDict(resp.headers)
        return HttpResponse(final_url, status, headers, body, fetched_at)

    def _retry_delay(self, exc: TransientFetchError, attempt: int) -> float:
        if exc.retry_after is not None:
            return float(min(max(exc.retry_after, 0.0), self.settings.retry_after_cap))
        return float(min(self.settings.backoff_base * 2**attempt, self.settings.backoff_cap))

    def _throttle(self, url: str, registry: str) -> None:
        host = urlsplit(url).netloc
        interval = self.settings.min_interval.get(registry, 0.0)
        with self._lock:
            now = self._clock()
            last = self._last_request.get(host)
            wait = 0.0 if last is None else last + interval - now
            self._last_request[host] = now + max(wait, 0.0)
        if wait > 0:
            self._sleep(wait)


def _reason(exc: requests.RequestException) -> str:
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
