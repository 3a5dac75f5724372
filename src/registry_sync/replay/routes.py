"""What a registry's replay routes are made of: the index of its folder, and handlers that turn
a request into a `Reply`. One module per registry under `replay/` builds a `RegistryRoutes`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from registry_sync.errors import RegistrySyncError

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


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


def check_params(query: Mapping[str, str], allowed: frozenset[str]) -> Reply | None:
    if query.get("format", "json") != "json":
        return text_reply(400, "the replay server serves format=json only")
    unknown = sorted(set(query) - allowed - {"format"})
    if unknown:
        return text_reply(400, f"the replay server does not implement: {', '.join(unknown)}")
    return None
