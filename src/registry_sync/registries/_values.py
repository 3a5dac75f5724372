"""Vocabulary look-ups and counts every page adapter shares (pure): an unknown raw value is
recorded as `Unmapped` and gives None, never a KeyError and never a guess."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from typing import TypeVar

from registry_sync.model import PartialDate, Unmapped
from registry_sync.registries._dates import parse_date

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


def date(
    raw: str | None, field: str, unmapped: list[Unmapped], *, day_first: bool = False
) -> PartialDate | None:
    """A date in any registry's form (`_dates.parse_date`); an empty value gives None, one that
    is no date is `Unmapped` (never guessed)."""
    if not raw:
        return None
    found = parse_date(raw, day_first=day_first)
    if found is None:
        unmapped.append(Unmapped(field, raw))
    return found
