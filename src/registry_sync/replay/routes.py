"""What a registry's replay routes are made of: the index of its folder (documents under one or
more *key spaces*), the request a handler sees, and handlers that turn it into a `Reply`.
One module per registry under `replay/` builds a `RegistryRoutes`.

Key spaces exist because registries look a trial up by more than one key: UMIN-CTR by UMIN ID
(search) and by receipt number (`R000031865`, the view page), ChiCTR by registration number and
by project number. The first space a `RegistryRoutes` declares is its *primary* space, keyed by
the trial's registry ID: `ReplayServer.covers` and `ReplayServer.origin` read that one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from registry_sync.errors import RegistrySyncError
from registry_sync.model import Origin

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
FORM = "application/x-www-form-urlencoded"
RECONSTRUCTED_DIR = "reconstructed"  # a folder of hand-rebuilt payloads, at any depth


class ReplaySetError(RegistrySyncError):
    """The replay directory is missing or holds something the index cannot accept."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = JSON
    headers: Mapping[str, str] = field(default_factory=dict)


def text_reply(status: int, message: str) -> Reply:
    return Reply(status, message.encode(), TEXT)


class Headers(Mapping[str, str]):
    """Read-only request headers: names as sent, looked up in any case; last value wins."""

    def __init__(self, pairs: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        self._by_lower: dict[str, tuple[str, str]] = {}
        for name, value in items:
            self._by_lower.pop(name.lower(), None)  # keep the latest spelling, in arrival order
            self._by_lower[name.lower()] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._by_lower[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._by_lower.values())

    def __len__(self) -> int:
        return len(self._by_lower)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


def parse_cookies(header: str | None) -> dict[str, str]:
    """`a=1; b="two"` -> {"a": "1", "b": "two"}; lenient (pairs without `=` are skipped)."""
    cookies: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            cookies[name] = value.strip().strip('"')
    return cookies


def _charset(content_type: str | None, default: str = "utf-8") -> str:
    match = re.search(r"charset=\"?([\w-]+)", content_type or "", re.I)
    return match[1] if match else default


@dataclass(frozen=True)
class ReplayRequest:
    """What a handler sees of one request. `path` is below the registry's base path."""

    method: str
    path: str
    query: Mapping[str, str]  # the last value of each parameter
    headers: Mapping[str, str]  # wrapped in `Headers`: any-case look-up
    cookies: Mapping[str, str] = field(default_factory=dict)  # from the Cookie header
    body: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.headers, Headers):
            object.__setattr__(self, "headers", Headers(self.headers))

    def header(self, name: str) -> str | None:
        """A request header, looked up case-insensitively."""
        return self.headers.get(name)

    @property
    def form(self) -> dict[str, str]:
        """The url-encoded body (last value of each field); {} for any other content type."""
        content_type = self.header("Content-Type")
        if not self.body or (content_type and not content_type.lower().startswith(FORM)):
            return {}
        charset = _charset(content_type)
        text = self.body.decode("ascii", errors="replace")
        return dict(parse_qsl(text, keep_blank_values=True, encoding=charset, errors="replace"))


@dataclass(frozen=True)
class StoredDoc:
    """One payload of the set: its bytes, where it lies, and whether it was recorded."""

    body: bytes
    path: Path
    origin: Origin


def origin_of(folder: Path, path: Path) -> Origin:
    """RECONSTRUCTED for a file under a `reconstructed/` folder of the registry's folder."""
    parts = path.relative_to(folder).parts[:-1]
    return Origin.RECONSTRUCTED if RECONSTRUCTED_DIR in parts else Origin.RECORDED


def load_doc(folder: Path, path: Path, body: bytes | None = None) -> StoredDoc:
    """A file of `folder` as a `StoredDoc` (pass `body` when it was already read)."""
    raw = path.read_bytes() if body is None else body
    return StoredDoc(raw, path, origin_of(folder, path))


def add_doc(space: dict[str, StoredDoc], key: str, doc: StoredDoc) -> None:
    """File `doc` under `key`; the same key twice in one space is an error naming both files."""
    if key in space:
        raise ReplaySetError(
            f"{key} is in the replay set twice ({space[key].path} and {doc.path}); keep one"
        )
    space[key] = doc


KeySpaces = dict[str, dict[str, StoredDoc]]  # space name -> key -> document


@dataclass(frozen=True)
class Store:
    """One registry's folder of the replay directory and its index, by key space."""

    folder: Path
    spaces: Mapping[str, Mapping[str, StoredDoc]]
    primary: str  # the space keyed by the trial's registry ID

    def space(self, name: str) -> Mapping[str, StoredDoc]:
        """Every document of a declared space; an undeclared name is a bug (KeyError)."""
        return self.spaces[name]

    def lookup(self, space: str, key: str) -> StoredDoc | None:
        return self.space(space).get(key)

    @property
    def trials(self) -> Mapping[str, StoredDoc]:
        """The primary space: registry ID -> document."""
        return self.space(self.primary)

    @property
    def docs(self) -> dict[str, bytes]:
        """Registry ID -> recorded bytes (the primary space's bodies)."""
        return {key: doc.body for key, doc in self.trials.items()}


Handler = Callable[[Store, "re.Match[str]", ReplayRequest], Reply]
READ = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]  # full-matched against the path below the registry's base path
    handler: Handler
    methods: frozenset[str] = READ  # another method answers 405


@dataclass(frozen=True)
class RegistryRoutes:
    key: str  # registry key and folder name
    base_path: str  # e.g. "/ctgov/api/v2"; the registry's base URL is server url + base_path
    index: Callable[[Path], KeySpaces]  # reads the registry's folder once
    routes: tuple[Route, ...]
    spaces: tuple[str, ...] = ("id",)  # key spaces the index fills; the first is primary
    normalize: Callable[[str], str] = str  # canonical spelling of an ID for primary look-ups

    def build_store(self, folder: Path) -> Store:
        """Index `folder`; a space the index did not declare is a bug, a missing one is empty."""
        found = self.index(folder)
        if unknown := sorted(set(found) - set(self.spaces)):
            raise ReplaySetError(f"{self.key}: the index filled undeclared key spaces {unknown}")
        spaces = {name: dict(found.get(name, {})) for name in self.spaces}
        return Store(folder, spaces, self.spaces[0])


def check_params(query: Mapping[str, str], allowed: frozenset[str]) -> Reply | None:
    if query.get("format", "json") != "json":
        return text_reply(400, "the replay server serves format=json only")
    unknown = sorted(set(query) - allowed - {"format"})
    if unknown:
        return text_reply(400, f"the replay server does not implement: {', '.join(unknown)}")
    return None
