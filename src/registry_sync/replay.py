"""A loopback server that replays recorded registry payloads, with fault injection.

`registry-sync run --replay DIR` and the tests start a `ReplayServer` over a *replay directory*
and point the registries' base URLs at it, so the fetch code (the real `Http` client, the real
adapters) runs exactly as it does live; only the base URLs differ.

Layout of a replay directory: one folder per registry key (`ctgov/`, `jrct/`, ...). Each registry
has a small route table (`RegistryRoutes`) and an indexer that reads its folder once, when the
server is built. An ID absent from the set is absent from the *set*, not from the registry.

ClinicalTrials.gov (`/ctgov/api/v2`, behaviour from REGISTRIES.md §1):
- `GET /studies?filter.ids=A,B|C&pageSize=N&pageToken=T&countTotal=true&format=json`: IDs comma-
  or pipe-separated; studies in the set are returned in request order, absent IDs are simply
  absent; `pageSize` defaults to 10 and is coerced down to 1000; `nextPageToken` (opaque) while
  more remain; `totalCount` on the first page only, and only with `countTotal=true`; a
  `pageToken` must come with the same other parameters (`countTotal` aside), else 400. Without
  `filter.ids` every study in the set is listed, by NCT ID. `fields` is accepted and **ignored**:
  full documents are returned. Any other parameter is a 400, so a fetcher that relies on a
  filter the replay does not implement fails loudly instead of seeing the wrong studies.
- `GET /studies/{nctId}`: the recorded bytes, or 404 `text/plain`.
- `GET /version`: `ctgov/version.json` when the set has one, else 404.
The set is every `*.json` under `ctgov/` (recursively) that is a single study document (has
`protocolSection.identificationModule.nctId`); list pages and `version.json` are skipped.

Faults (`add_fault`) answer instead of the normal route: another status, extra headers, another
body, a delay (client timeouts), a truncated body, or a connection dropped without a response.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import cast
from urllib.parse import parse_qsl, urlsplit

from registry_sync.errors import RegistrySyncError

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


class ReplaySetError(RegistrySyncError):
    """The replay directory is missing or holds something the index cannot accept."""


@dataclass(frozen=True)
class Fault:
    """What to answer instead of the normal route."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. {"Retry-After": "2"}
    body: bytes | None = None  # replaces the normal body when set
    delay: float = 0.0  # seconds to sleep before answering
    truncate_to: int | None = None  # announce the full Content-Length, send this many bytes
    drop: bool = False  # close the connection without any response


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: Mapping[str, str]  # the last value of each parameter
    headers: Mapping[str, str]

    def header(self, name: str) -> str | None:
        """A request header, looked up case-insensitively."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = JSON
    headers: Mapping[str, str] = field(default_factory=dict)


def _text(status: int, message: str) -> Reply:
    return Reply(status, message.encode(), TEXT)


@dataclass(frozen=True)
class Store:
    """One registry's folder of the replay directory and its index: ID -> recorded bytes."""

    folder: Path
    docs: Mapping[str, bytes]


Handler = Callable[[Store, "re.Match[str]", Mapping[str, str]], Reply]


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]  # full-matched against the path below the registry's base path
    handler: Handler


@dataclass(frozen=True)
class RegistryRoutes:
    key: str  # registry key and folder name
    base_path: str  # e.g. "/ctgov/api/v2"; the registry's base URL is server url + base_path
    index: Callable[[Path], dict[str, bytes]]
    routes: tuple[Route, ...]
    normalize: Callable[[str], str] = str  # canonical spelling of an ID for index look-ups


# --- ClinicalTrials.gov -----------------------------------------------------------------------

CTGOV_MAX_PAGE_SIZE = 1000
CTGOV_DEFAULT_PAGE_SIZE = 10
_CTGOV_LIST_PARAMS = frozenset({"filter.ids", "pageSize", "pageToken", "countTotal", "fields"})
_CTGOV_STUDY_PARAMS = frozenset({"fields", "markupFormat"})


def index_ctgov(folder: Path) -> dict[str, bytes]:
    """Every single-study JSON document under `folder`, by NCT ID; other JSON is skipped."""
    docs: dict[str, bytes] = {}
    where: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
        raw = path.read_bytes()
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise ReplaySetError(f"{path}: not valid JSON ({exc}); fix or remove it") from exc
        nct_id = _nct_id(doc)
        if nct_id is None:
            continue
        if nct_id in docs:
            raise ReplaySetError(
                f"{nct_id} is in the replay set twice ({where[nct_id]} and {path}); keep one"
            )
        docs[nct_id], where[nct_id] = raw, path
    return docs


def _nct_id(doc: object) -> str | None:
    ident = doc.get("protocolSection", {}) if isinstance(doc, dict) else {}
    ident = ident.get("identificationModule", {}) if isinstance(ident, dict) else {}
    nct_id = ident.get("nctId") if isinstance(ident, dict) else None
    return nct_id.upper() if isinstance(nct_id, str) else None


def _ctgov_study(store: Store, match: re.Match[str], query: Mapping[str, str]) -> Reply:
    if problem := _check_params(query, _CTGOV_STUDY_PARAMS):
        return problem
    raw = store.docs.get(match["nct"].upper())
    if raw is None:
        return _text(404, f"Study not found: {match['nct']}")
    return Reply(200, raw)


def _ctgov_version(store: Store, match: re.Match[str], query: Mapping[str, str]) -> Reply:
    path = store.folder / "version.json"
    if not path.is_file():
        return _text(404, "this replay set has no ctgov/version.json")
    return Reply(200, path.read_bytes())


def _ctgov_studies(store: Store, match: re.Match[str], query: Mapping[str, str]) -> Reply:
    if problem := _check_params(query, _CTGOV_LIST_PARAMS):
        return problem
    size_text = query.get("pageSize", str(CTGOV_DEFAULT_PAGE_SIZE))
    if not size_text.isdigit() or int(size_text) < 1:
        return _text(400, f"pageSize must be a positive integer, got {size_text!r}")
    size = min(int(size_text), CTGOV_MAX_PAGE_SIZE)
    signature = _signature(query)
    offset = 0
    if "pageToken" in query:
        decoded = _decode_token(query["pageToken"], signature)
        if decoded is None:
            return _text(400, "pageToken does not belong to these parameters")
        offset = decoded
    ids = _ctgov_ids(store, query.get("filter.ids"))
    page = ids[offset : offset + size]
    parts = [b'{"studies":[', b",".join(store.docs[i].strip() for i in page), b"]"]
    if "pageToken" not in query and query.get("countTotal", "").lower() == "true":
        parts.append(b',"totalCount":' + str(len(ids)).encode())
    if offset + size < len(ids):
        token = _encode_token(offset + size, signature)
        parts.append(b',"nextPageToken":' + json.dumps(token).encode())
    parts.append(b"}")
    return Reply(200, b"".join(parts))


def _ctgov_ids(store: Store, filter_ids: str | None) -> list[str]:
    if filter_ids is None:
        return sorted(store.docs)
    wanted = [part.strip().upper() for part in re.split(r"[,|]", filter_ids)]
    return [i for i in dict.fromkeys(wanted) if i in store.docs]


def _check_params(query: Mapping[str, str], allowed: frozenset[str]) -> Reply | None:
    if query.get("format", "json") != "json":
        return _text(400, "the replay server serves format=json only")
    unknown = sorted(set(query) - allowed - {"format"})
    if unknown:
        return _text(400, f"the replay server does not implement: {', '.join(unknown)}")
    return None


def _signature(query: Mapping[str, str]) -> str:
    same = sorted((k, v) for k, v in query.items() if k not in {"pageToken", "countTotal"})
    return hashlib.sha256(json.dumps(same).encode()).hexdigest()[:16]


def _encode_token(offset: int, signature: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{signature}".encode()).decode().rstrip("=")


def _decode_token(token: str, signature: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except ValueError:
        return None
    offset, _, sig = text.partition(":")
    return int(offset) if offset.isdigit() and sig == signature else None


CTGOV = RegistryRoutes(
    key="ctgov",
    base_path="/ctgov/api/v2",
    index=index_ctgov,
    routes=(
        Route(re.compile(r"/studies"), _ctgov_studies),
        Route(re.compile(r"/studies/(?P<nct>(?:NCT|nct)\d{8})"), _ctgov_study),
        Route(re.compile(r"/version"), _ctgov_version),
    ),
    normalize=str.upper,
)

REGISTRY_ROUTES: tuple[RegistryRoutes, ...] = (CTGOV,)


# --- the server -------------------------------------------------------------------------------


class ReplayServer:
    """Serves a replay directory on a loopback port from a daemon thread."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        if not Path(root).is_dir():
            raise ReplaySetError(f"replay directory {root} does not exist")
        self.root = Path(root)
        self.host = host
        self.port = port
        self.stores = {
            r.key: Store(self.root / r.key, r.index(self.root / r.key)) for r in REGISTRY_ROUTES
        }
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []  # unexpected handler errors, for debugging
        self._faults: list[tuple[str, Fault, list[int]]] = []
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ReplayServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._httpd is not None:
            return
        self._httpd = _HTTPServer((self.host, self.port), _ReplayHandler, self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits at most this long
            name=f"replay-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd, self._thread = None, None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the replay server is not started")
        return f"http://{self.host}:{self.port}"

    def base_urls(self) -> dict[str, str]:
        """Registry key -> base URL on this server, for `Settings.with_base_urls`."""
        return {r.key: f"{self.url}{r.base_path}" for r in REGISTRY_ROUTES}

    def covers(self, registry: str, trial_id: str) -> bool:
        """Does the set hold a payload for this trial?"""
        routes = next((r for r in REGISTRY_ROUTES if r.key == registry), None)
        store = self.stores.get(registry)
        return routes is not None and store is not None and routes.normalize(trial_id) in store.docs

    def add_fault(self, path_prefix: str, fault: Fault, times: int = 1) -> None:
        """The next `times` requests whose path (query included) starts with the prefix get it."""
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        with self._lock:
            self._faults.append((path_prefix, fault, [times]))

    def take_fault(self, target: str) -> Fault | None:
        """The first pending fault for this request target, counted down (FIFO)."""
        with self._lock:
            for i, (prefix, fault, left) in enumerate(self._faults):
                if target.startswith(prefix):
                    left[0] -= 1
                    if left[0] == 0:
                        del self._faults[i]
                    return fault
        return None

    def route(self, path: str, query: Mapping[str, str]) -> Reply:
        """The normal answer for a path: the registry whose base path it is under, else 404."""
        for routes in REGISTRY_ROUTES:
            if not path.startswith(routes.base_path + "/"):
                continue
            rest = path[len(routes.base_path) :]
            for route in routes.routes:
                if match := route.pattern.fullmatch(rest):
                    return route.handler(self.stores[routes.key], match, query)
        return _text(404, f"not in the replay server's routes: {path}")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], replay: ReplayServer
    ) -> None:
        self.replay = replay
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the FQDN, which can stall on a machine without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: object, client_address: object) -> None:
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, ConnectionError | TimeoutError):
            self.replay.errors.append(exc)  # a client that gave up (timeout) is expected


class _ReplayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as live

    def do_GET(self) -> None:
        replay = cast(_HTTPServer, self.server).replay
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = dict(self.headers.items())
        replay.requests.append(RecordedRequest("GET", parts.path, query, headers))
        fault = replay.take_fault(self.path)
        reply = replay.route(parts.path, query)
        if fault is None:
            self._send(reply.status, _headers(reply, {}), reply.body)
        else:
            self._send_fault(reply, fault)

    def _send_fault(self, reply: Reply, fault: Fault) -> None:
        if fault.delay > 0:
            time.sleep(fault.delay)
        if fault.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = reply.body if fault.body is None else fault.body
        headers = _headers(reply, fault.headers)
        if fault.truncate_to is None:
            self._send(fault.status, headers, body)
            return
        self.close_connection = True
        self._send(fault.status, headers, body, limit=fault.truncate_to)

    def _send(
        self, status: int, headers: Mapping[str, str], body: bytes, limit: int | None = None
    ) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if limit is None else body[:limit])
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests and the CLI read `ReplayServer.requests` instead of stderr."""


def _headers(reply: Reply, override: Mapping[str, str]) -> dict[str, str]:
    """The reply's headers with the fault's replacing any of the same name (any case)."""
    merged = {"Content-Type": reply.content_type, **reply.headers}
    replaced = {name.lower() for name in override}
    merged = {k: v for k, v in merged.items() if k.lower() not in replaced}
    merged.update(override)
    return merged
