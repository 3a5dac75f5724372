"""Fault injection for the replay server: what to answer instead of the normal route, named
kinds for the CLI (`--fault /ctgov/api/v2/studies=503:2`), and the pending-fault queue.

A fault matches a request whose target (path and query string, as sent) starts with its prefix,
and optionally only one method. Faults are tried in the order they were added (FIFO); a fault
with a count is used up after that many requests, one without fires on every matching request.
Everything here is pure data and logic; the server applies a `Fault` to the wire.

Kinds that need the registry's own pages are resolved by the server at request time:
`notfound-shell` serves what the registry answers (as 200) for an ID the set lacks, asked with
the request's trial ID rewritten; `other-trial` serves the normal answer with the trial's ID
rewritten to another well-formed ID (a synthetic page derived from the recorded one).
`redirect-login` and `redirect-host` send a 302 to a synthetic page the server itself serves
under `/_synthetic/` (a login form; a parked page on another loopback host name).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from registry_sync.registry_table import REGISTRY_TABLE
from registry_sync.replay.routes import HTML, TEXT


@dataclass(frozen=True)
class Fault:
    """What to answer instead of the normal route."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. {"Retry-After": "2"}
    body: bytes | None = None  # replaces the normal body when set
    delay: float = 0.0  # seconds to sleep before answering
    truncate_to: int | None = None  # announce the full Content-Length, send this many bytes
    drop: bool = False  # close the connection without any response
    truncate_fraction: float | None = None  # like truncate_to, as a share of the body (0.5)
    short_fraction: float | None = None  # a complete answer of this share of the body (honest
    # Content-Length): a page cut short by the server, not by the connection
    pad_to: int | None = None  # the body padded with spaces to this many bytes (oversize)
    redirect: str | None = None  # a 302 to this path on the server (`/_synthetic/login`)
    other_host: bool = False  # ... on another loopback host name (localhost <-> 127.0.0.1)
    rewrite: str | None = None  # "absent" (notfound-shell) or "other" (other-trial): see above

    def shape(self, body: bytes) -> bytes:
        """The body to announce: cut short (`short_fraction`) or padded (`pad_to`)."""
        if self.short_fraction is not None:
            body = body[: int(len(body) * self.short_fraction)]
        if self.pad_to is not None and len(body) < self.pad_to:
            body = body + b" " * (self.pad_to - len(body))
        return body

    def limit(self, body_length: int) -> int | None:
        """How many body bytes to send, or None for all of them."""
        if self.truncate_to is not None:
            return self.truncate_to
        if self.truncate_fraction is not None:
            return int(body_length * self.truncate_fraction)
        return None


def _status(status: int, message: str, **headers: str) -> Fault:
    return Fault(status=status, headers={"Content-Type": TEXT, **headers}, body=message.encode())


# A synthetic page in the manner of a web application firewall's block page: built by hand for
# rehearsals, it copies no registry's page and says so.
SYNTHETIC_BLOCK_PAGE = (
    b"<!DOCTYPE html><html><head><title>Access Denied</title></head><body>"
    b"<h1>Access Denied</h1><p>Your request has been blocked by the security policy.</p>"
    b"<p>Request ID: 0000-synthetic</p>"
    b"<!-- synthetic WAF-style block page served by the registry-sync replay server; "
    b"not a recorded registry page --></body></html>"
)

# A synthetic login page (a form asking for a password), served at LOGIN_PATH; copies no
# registry's page and says so.
SYNTHETIC_LOGIN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Sign in</h1>"
    b'<form method="post" action="/_synthetic/login"><input name="user" type="text">'
    b'<input name="password" type="password"><button type="submit">Sign in</button></form>'
    b"<!-- synthetic login page served by the registry-sync replay server; "
    b"not a recorded registry page --></body></html>"
)
# A synthetic parked page on another host (a domain that lapsed, a portal's landing page).
SYNTHETIC_ELSEWHERE_PAGE = (
    b"<!DOCTYPE html><html><head><title>Welcome</title></head><body><h1>Welcome</h1>"
    b"<p>This domain is parked. Nothing to see here.</p>"
    b"<!-- synthetic page of another host served by the registry-sync replay server; "
    b"not a recorded registry page --></body></html>"
)
LOGIN_PATH = "/_synthetic/login"
ELSEWHERE_PATH = "/_synthetic/elsewhere"
SYNTHETIC_PAGES: dict[str, bytes] = {
    LOGIN_PATH: SYNTHETIC_LOGIN_PAGE,
    ELSEWHERE_PATH: SYNTHETIC_ELSEWHERE_PAGE,
}
# Bigger than the biggest answer any registry's policy reads (`max_page_bytes`).
OVERSIZE_BYTES = max(r.max_page_bytes for r in REGISTRY_TABLE.values()) + 1

# Named faults for `serve-replay --fault PREFIX=KIND[:N]`.
FAULT_KINDS: dict[str, Fault] = {
    "503": _status(503, "Service Unavailable"),
    "429": _status(429, "Too Many Requests", **{"Retry-After": "1"}),
    "timeout": Fault(delay=120.0),  # longer than any client read timeout we use
    "drop": Fault(drop=True),
    "truncate": Fault(truncate_fraction=0.5),
    "403": _status(403, "Forbidden"),
    "405": _status(405, "Method Not Allowed"),
    "404": _status(404, "Not Found"),
    "empty": Fault(body=b""),
    "html-block": Fault(headers={"Content-Type": HTML}, body=SYNTHETIC_BLOCK_PAGE),
    "malformed": Fault(short_fraction=0.4),
    "oversize": Fault(pad_to=OVERSIZE_BYTES),
    "redirect-login": Fault(status=302, redirect=LOGIN_PATH),
    "redirect-host": Fault(status=302, redirect=ELSEWHERE_PATH, other_host=True),
    "notfound-shell": Fault(rewrite="absent"),
    "other-trial": Fault(rewrite="other"),
}
REWRITES = ("absent", "other")


def other_id(trial_id: str, taken: Collection[str] = ()) -> str:
    """A well-formed ID of the same shape that is not `trial_id` (nor any of `taken`): its
    last digit changed (`jRCTs051180190` -> `jRCTs051180191`)."""
    digits = [i for i, c in enumerate(trial_id) if c.isdigit()]
    if not digits:
        return trial_id + "X"
    at = digits[-1]
    for step in range(1, 10):
        candidate = f"{trial_id[:at]}{(int(trial_id[at]) + step) % 10}{trial_id[at + 1 :]}"
        if candidate not in taken:
            return candidate
    return trial_id + "0"


def rewrite_ids(data: bytes, ids: Collection[str], taken: Collection[str]) -> bytes:
    """Every one of `ids` found in `data` replaced by `other_id` (longest first)."""
    swaps: dict[str, str] = {}
    for key in ids:
        swaps[key] = other_id(key, taken)
        digits = key.lstrip("".join(c for c in key if not c.isdigit()))
        if len(digits) >= 8 and digits != key:  # ANZCTR asks by the digits alone
            swaps.setdefault(digits, other_id(digits, taken))
    for key in sorted(swaps, key=len, reverse=True):
        raw = key.encode()
        if len(raw) >= 6 and raw in data:
            data = data.replace(raw, swaps[key].encode())
    return data


@dataclass(frozen=True)
class FaultSpec:
    """A parsed `PREFIX=KIND[:N]`."""

    prefix: str
    kind: str
    times: int | None  # None: every matching request

    @property
    def fault(self) -> Fault:
        return FAULT_KINDS[self.kind]


def parse_fault_spec(spec: str) -> FaultSpec:
    """`/ctgov/api/v2/studies=503:2` -> FaultSpec; ValueError naming the spec and the kinds."""
    prefix, sep, rest = spec.rpartition("=")  # a prefix may hold `=` (a query), a kind never
    kind, colon, count = rest.partition(":")
    problem = None
    if not sep or not prefix.startswith("/"):
        problem = "expected PATH_PREFIX=KIND[:N] with PATH_PREFIX starting with /"
    elif kind not in FAULT_KINDS:
        problem = f"unknown fault kind {kind!r}"
    elif colon and (not count.isdigit() or int(count) < 1):
        problem = f"the count after ':' must be a positive integer, got {count!r}"
    if problem is not None:
        raise ValueError(f"{spec!r}: {problem}; known kinds: {', '.join(FAULT_KINDS)}")
    return FaultSpec(prefix, kind, int(count) if colon else None)


@dataclass
class FaultRule:
    """A pending fault: where it applies and how many more requests it takes (None: all)."""

    prefix: str
    fault: Fault
    left: int | None
    method: str | None = None  # None: any method

    def matches(self, method: str, target: str) -> bool:
        return target.startswith(self.prefix) and self.method in (None, method)

    def describe(self) -> str:
        """One line for a person: `GET /ctgov/api/v2/studies -> 503, 2 more times`."""
        what = _kind_name(self.fault) or _describe_fault(self.fault)
        where = f"{self.method} {self.prefix}" if self.method else self.prefix
        times = "every request" if self.left is None else f"{self.left} more time(s)"
        return f"{where} -> {what}, {times}"


def _kind_name(fault: Fault) -> str | None:
    return next((name for name, kind in FAULT_KINDS.items() if kind == fault), None)


def _describe_fault(fault: Fault) -> str:
    if fault.drop:
        return "drop"
    extras = [f"delay {fault.delay:g}s"] if fault.delay else []
    if fault.limit(2) is not None:
        extras.append("truncated")
    return " ".join([str(fault.status), *extras])


class FaultQueue:
    """The pending faults of one server, safe to use from its request threads."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> None:
        if rule.left is not None and rule.left < 1:
            raise ValueError(f"times must be at least 1 (or None for always), got {rule.left}")
        with self._lock:
            self._rules.append(rule)

    def take(self, method: str, target: str) -> Fault | None:
        """The first pending fault for this request, counted down."""
        with self._lock:
            for i, rule in enumerate(self._rules):
                if not rule.matches(method, target):
                    continue
                if rule.left is not None:
                    rule.left -= 1
                    if rule.left == 0:
                        del self._rules[i]
                return rule.fault
        return None

    def clear(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self._rules.clear()

    def pending(self) -> list[FaultRule]:
        """A copy of the pending rules, in the order they are tried."""
        with self._lock:
            return [FaultRule(r.prefix, r.fault, r.left, r.method) for r in self._rules]
