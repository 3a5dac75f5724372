"""Trial ID patterns per registry: whose ID it is, and its canonical spelling (pure).

Patterns follow REGISTRIES.md. A string that matches none of them is malformed: the review
printed it wrong or truncated it, and that is a finding, not a crash.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from registry_sync.registry_table import REGISTRY_TABLE

# registry key -> full-match pattern of the canonical ID spelling (from the registry table).
ID_PATTERNS: dict[str, re.Pattern[str]] = {
    k: r.id_pattern for k, r in REGISTRY_TABLE.items() if r.id_pattern is not None
}

# Prefix as the registry spells it, registry key; longest first, so that "this looks like a
# jRCT ID but is malformed" can be said.
_PREFIXES: tuple[tuple[str, str], ...] = tuple(
    sorted(
        ((r.id_prefix, k) for k, r in REGISTRY_TABLE.items() if r.id_prefix),
        key=lambda pair: -len(pair[0]),
    )
)


# A table repeats its IDs and a run calls this ~6 times a row, pass after pass: the memo must
# hold every ID of a run (an LRU smaller than the run misses every time on a cyclic pass).
@functools.lru_cache(maxsize=1 << 20)
def normalize_id(raw: str) -> str:
    """Canonical spelling: NFKC (full-width digits), no spaces or zero-width marks,
    the registry's own letter case."""
    text = raw
    for _ in range(3):  # NFKC can make spaces ("¨" -> " ̈"), removing marks can re-compose
        before = text
        text = unicodedata.normalize("NFKC", text)
        text = "".join(c for c in text if not c.isspace() and unicodedata.category(c) != "Cf")
        if text == before:
            break
    text = text.replace("‐", "-").replace("‑", "-").replace("–", "-")
    upper = text.upper()
    for prefix, key in _PREFIXES:
        if upper.startswith(prefix.upper()):
            tail = text[len(prefix) :]
            # the registry's own case for the rest: jRCT kinds are lower (s, a), old ChiCTR
            # and IRCT letters upper; a malformed tail is kept as printed
            for candidate in (tail, tail.lower(), tail.upper()):
                if ID_PATTERNS[key].fullmatch(prefix + candidate):
                    return prefix + candidate
            return prefix + tail
    return text


def registry_of(trial_id: str) -> str | None:
    """The registry key whose pattern the (normalized) ID matches in full, else None."""
    canonical = normalize_id(trial_id)
    for key, pattern in ID_PATTERNS.items():
        if pattern.fullmatch(canonical):
            return key
    return None


def claimed_registry(trial_id: str) -> str | None:
    """The registry an ID's prefix points at, even when the rest is malformed."""
    upper = normalize_id(trial_id).upper()
    for prefix, key in _PREFIXES:
        if upper.startswith(prefix.upper()):
            return key
    return None
