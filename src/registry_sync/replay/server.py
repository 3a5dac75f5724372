"""The loopback HTTP server that replays a replay directory, with fault injection.

Every registry key of the registry table gets a base URL on this server, routed or not: a key
without routes answers 404 under `/<key>`, so a `--replay` run never reaches a live registry.
GET, POST and HEAD are served (HEAD: headers only); every request is kept in `requests`.

Faults (`add_fault`, named kinds in `FAULT_KINDS`, see `faults.py`) answer instead of the
normal route: another status, extra headers, another body, a delay (client timeouts), a
truncated body, or a connection dropped without a response.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import cast
from urllib.parse import parse_qsl, urlsplit

from registry_sync.errors import RegistrySyncError
from registry_sync.model import Origin
from registry_sync.registry_table import ALL_KEYS
from registry_sync.replay import anzctr, chictr, ctgov, ctr, ictrp, irct, jrct, umin
from registry_sync.replay.faults import (
    FAULT_KINDS,
    SYNTHETIC_PAGES,
    Fault,
    FaultQueue,
    FaultRule,
    rewrite_ids,
)
from registry_sync.replay.routes import (
    HTML,
    Headers,
    RegistryRoutes,
    ReplayRequest,
    ReplaySetError,
    Reply,
    Store,
    StoredDoc,
    parse_cookies,
    text_reply,
)

__all__ = [
    "FAULT_KINDS",
    "REGISTRY_ROUTES",
    "Fault",
    "RecordedRequest",
    "ReplayPortInUse",
    "ReplayServer",
]

# Every registry the replay server has routes for, in routing order.
REGISTRY_ROUTES: tuple[RegistryRoutes, ...] = (
    ctgov.ROUTES,
    jrct.ROUTES,
    chictr.ROUTES,
    ctr.ROUTES,
    umin.ROUTES,
    anzctr.ROUTES,
    irct.ROUTES,
    ictrp.ROUTES,
)


@dataclasses.dataclass(frozen=True)
class RecordedRequest(ReplayRequest):
    """A request as the server received it; `path` is the full path (base path included)."""


class ReplayPortInUse(RegistrySyncError):
    """The port asked for is taken by another process."""


class ReplayServer:
    """Serves a replay directory on a loopback port from a daemon thread."""

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        routes: tuple[RegistryRoutes, ...] = REGISTRY_ROUTES,
        max_url_bytes: int | None = None,
    ) -> None:
        """`max_url_bytes`: answer 414 (URI Too Long) to a longer request target, as a front
        end with that request-line cap would (None: Python's own 64 KB line limit)."""
        if not Path(root).is_dir():
            raise ReplaySetError(f"replay directory {root} does not exist")
        routes = tuple(dict.fromkeys(routes))  # the same table listed twice is listed once
        keys = [r.key for r in routes]
        if len(set(keys)) != len(keys):
            raise ValueError(f"two route tables for one registry key: {keys}")
        self.root = Path(root)
        self.host = host
        self.port = port
        self.routes = routes
        self.stores: dict[str, Store] = {r.key: r.build_store(self.root / r.key) for r in routes}
        self.max_url_bytes = max_url_bytes
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []  # unexpected handler errors, for debugging
        self._faults = FaultQueue()
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
        """Bind and serve; a taken port is a `ReplayPortInUse` naming the port."""
        if self._httpd is not None:
            return
        try:
            self._httpd = _HTTPServer((self.host, self.port), _ReplayHandler, self)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise ReplayPortInUse(
                f"port {self.port} is in use: {exc.strerror}; stop what holds it or choose "
                "another port"
            ) from exc
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

    def wait(self, seconds: float | None = None) -> None:
        """Block the caller until Ctrl-C (or `seconds` pass) while the server thread serves."""
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait(seconds)

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the replay server is not started")
        return f"http://{self.host}:{self.port}"

    def keys(self) -> tuple[str, ...]:
        """Every registry key the server answers for: the registry table's, then extra routes'."""
        return ALL_KEYS + tuple(r.key for r in self.routes if r.key not in ALL_KEYS)

    def base_urls(self) -> dict[str, str]:
        """Registry key -> base URL on this server, for every key: `Settings.with_base_urls`."""
        paths = {r.key: r.base_path for r in self.routes}
        return {key: f"{self.url}{paths.get(key, '/' + key)}" for key in self.keys()}

    def covers(self, registry: str, trial_id: str) -> bool:
        """Does the set hold a payload for this trial (by its registry ID)?"""
        return self._trial(registry, trial_id) is not None

    def origin(self, registry: str, trial_id: str) -> Origin | None:
        """RECORDED or RECONSTRUCTED for a trial in the set; None when the set lacks it."""
        doc = self._trial(registry, trial_id)
        return None if doc is None else doc.origin

    def _trial(self, registry: str, trial_id: str) -> StoredDoc | None:
        routes = next((r for r in self.routes if r.key == registry), None)
        if routes is None:
            return None
        return self.stores[registry].trials.get(routes.normalize(trial_id))

    def add_fault(
        self, path_prefix: str, fault: Fault, times: int | None = 1, method: str | None = None
    ) -> None:
        """The next `times` requests (None: every one) whose target (path and query) starts
        with the prefix, of `method` if given, get the fault. Faults are tried FIFO."""
        self._faults.add(FaultRule(path_prefix, fault, times, method and method.upper()))

    def clear_faults(self) -> None:
        """Forget every pending fault (the next requests get their normal answers)."""
        self._faults.clear()

    def take_fault(self, target: str, method: str = "GET") -> Fault | None:
        """The first pending fault for this request target, counted down (FIFO)."""
        return self._faults.take(method, target)

    @property
    def faults(self) -> list[FaultRule]:
        """The pending faults, in the order they are tried (a copy)."""
        return self._faults.pending()

    def route(self, request: ReplayRequest) -> Reply:
        """The normal answer: the registry whose base path the request is under, else 404."""
        synthetic = SYNTHETIC_PAGES.get(request.path)
        if synthetic is not None:  # the targets of the redirect faults
            return Reply(200, synthetic, HTML)
        for routes in self.routes:
            rest = _below(request.path, routes.base_path)
            if rest is not None:
                return self._dispatch(routes, dataclasses.replace(request, path=rest))
        key = next((k for k in self.keys() if _below(request.path, "/" + k) is not None), None)
        if key is not None:
            return text_reply(404, f"the replay set has no routes for {key}")
        return text_reply(404, f"not in the replay server's routes: {request.path}")

    def ids_under(self, path: str) -> tuple[set[str], set[str]]:
        """The IDs to rewrite for a request under `path` (every key of its registry's store),
        and every key of the set (which a rewritten ID must not become)."""
        taken = {k for store in self.stores.values() for sp in store.spaces.values() for k in sp}
        routes = next((r for r in self.routes if _below(path, r.base_path) is not None), None)
        if routes is None:
            return set(), taken
        store = self.stores[routes.key]
        return {k for sp in store.spaces.values() for k in sp}, taken

    def absent_request(self, request: ReplayRequest) -> ReplayRequest:
        """The request with its trial's ID(s) rewritten to ones the set lacks (notfound-shell)."""
        ids, taken = self.ids_under(request.path)

        def swap(text: str) -> str:
            return rewrite_ids(text.encode(), ids, taken).decode()

        return dataclasses.replace(
            request,
            path=swap(request.path),
            query={k: swap(v) for k, v in request.query.items()},
            body=rewrite_ids(request.body, ids, taken),
        )

    def _dispatch(self, routes: RegistryRoutes, request: ReplayRequest) -> Reply:
        for route in routes.routes:
            match = route.pattern.fullmatch(request.path)
            if match is None:
                continue
            if request.method not in route.methods:
                allow = ", ".join(sorted(route.methods))
                return dataclasses.replace(
                    text_reply(405, f"{request.method} is not allowed here; use {allow}"),
                    headers={"Allow": allow},
                )
            try:
                return route.handler(self.stores[routes.key], match, request)
            except FileNotFoundError as exc:  # a set without this registry's pages
                return text_reply(404, f"the replay set lacks {Path(exc.filename or '').name}")
            except Exception as exc:  # a bug in a handler: answer 500, keep it for the test
                self.errors.append(exc)
                return text_reply(500, f"replay handler error: {exc!r}")
        base = routes.base_path
        return text_reply(404, f"not in the replay server's routes: {base}{request.path}")


def _below(path: str, base: str) -> str | None:
    """The part of `path` below `base` (`/studies`), or None when not under it."""
    if path == base:
        return ""
    return path[len(base) :] if path.startswith(base + "/") else None


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
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_HEAD(self) -> None:
        self._answer("HEAD")

    def _answer(self, method: str) -> None:
        replay = cast(_HTTPServer, self.server).replay
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send(text_reply(411, "send a Content-Length (chunked bodies are not read)"))
            return
        request = self._request(method, body)
        replay.requests.append(_recorded(request))
        if replay.max_url_bytes is not None and len(self.path) > replay.max_url_bytes:
            self._send(text_reply(414, f"URI longer than {replay.max_url_bytes} bytes"))
            return
        fault = replay.take_fault(self.path, method)
        if fault is not None and fault.rewrite == "absent":
            request = replay.absent_request(request)
        reply = replay.route(request)
        if fault is None:
            self._send(reply)
        else:
            self._send_fault(reply, fault)

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return None
        length = (self.headers.get("Content-Length") or "0").strip()
        return self.rfile.read(int(length)) if length.isdigit() else None

    def _request(self, method: str, body: bytes) -> ReplayRequest:
        parts = urlsplit(self.path)
        return ReplayRequest(
            method=method,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=Headers(self.headers.items()),
            cookies=parse_cookies(self.headers.get("Cookie")),
            body=body,
        )

    def _send_fault(self, reply: Reply, fault: Fault) -> None:
        if fault.delay > 0:
            time.sleep(fault.delay)
        if fault.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        replay = cast(_HTTPServer, self.server).replay
        if fault.redirect is not None:
            host = replay.host
            if fault.other_host:
                host = "localhost" if host != "localhost" else "127.0.0.1"
            where = f"http://{host}:{replay.port}{fault.redirect}"
            self._send(text_reply(fault.status, f"moved to {where}"), {"Location": where})
            return
        body = fault.shape(reply.body if fault.body is None else fault.body)
        if fault.rewrite == "other":
            body = rewrite_ids(body, *replay.ids_under(urlsplit(self.path).path))
        limit = fault.limit(len(body))
        if limit is not None:
            self.close_connection = True
        faulty = dataclasses.replace(reply, status=fault.status, body=body)
        self._send(faulty, fault.headers, limit)

    def _send(
        self, reply: Reply, override: Mapping[str, str] | None = None, limit: int | None = None
    ) -> None:
        """Status, headers (a fault's `override` replacing the reply's), body (not for HEAD)."""
        self.send_response(reply.status)
        for name, value in _headers(reply, override or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body if limit is None else reply.body[:limit])
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests and the CLI read `ReplayServer.requests` instead of stderr."""


def _recorded(request: ReplayRequest) -> RecordedRequest:
    r = request
    return RecordedRequest(r.method, r.path, r.query, r.headers, r.cookies, r.body)


def _headers(reply: Reply, override: Mapping[str, str]) -> dict[str, str]:
    """The reply's headers with the fault's replacing any of the same name (any case)."""
    merged = {"Content-Type": reply.content_type, **reply.headers}
    replaced = {name.lower() for name in override}
    merged = {k: v for k, v in merged.items() if k.lower() not in replaced}
    merged.update(override)
    return merged
