"""The loopback HTTP server that replays a replay directory, with fault injection.

Faults (`add_fault`) answer instead of the normal route: another status, extra headers, another
body, a delay (client timeouts), a truncated body, or a connection dropped without a response.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import cast
from urllib.parse import parse_qsl, urlsplit

from registry_sync.replay import ctgov
from registry_sync.replay.routes import RegistryRoutes, ReplaySetError, Reply, Store, text_reply

# Every registry the replay server answers for, in routing order.
REGISTRY_ROUTES: tuple[RegistryRoutes, ...] = (ctgov.ROUTES,)


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
        return text_reply(404, f"not in the replay server's routes: {path}")


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
