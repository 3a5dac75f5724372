"""Vocabulary look-ups and counts every page adapter shares (pure): an unknown raw value is
recorded as `Unmapped` and gives None, never a KeyError and never a guess."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from typing import TypeVar

from registry_sync.model import Unmapped

T = TypeVar("T")


def as_printed(text: str) -> str:
    return text


def nfkc(text: str) -> str:
    """Full-width forms folded, surrounding space stripped (`２` -> `2`)."""
    return unicodedata.normalize("NFKC", text).strip()


def casefolded(text: str) -> str:
    return text.strip().casefold()


def lookup(
    table: Mapping[str, T],
    raw: str | None,
    field: str,
    unmapped: list[Unmapped],
    *,
    key: Callable[[str], str] = as_printed,
) -> T | None:
    """`table[key(raw)]`; an empty raw value gives None, an unknown one is `Unmapped`."""
    if not raw:
        return None
    found = table.get(key(raw))
    if found is None:
        unmapped.append(Unmapped(field, raw))
    return found


def count(raw: str | None, unmapped: list[Unmapped], field: str = "enrollment") -> int | None:
    """A count printed with or without thousands separators or full-width digits."""
    if not raw:
        return None
    digits = nfkc(raw).replace(",", "").replace(" ", "")
    if digits.isdigit():
        return int(digits)
    unmapped.append(Unmapped(field, raw))
    return None
