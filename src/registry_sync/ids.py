"""Trial ID patterns per registry: whose ID it is, and its canonical spelling (pure).

Patterns follow REGISTRIES.md. A string that matches none of them is malformed: the review
printed it wrong or truncated it, and that is a finding, not a crash.
"""

from __future__ import annotations

import re
import unicodedata

# registry key -> full-match pattern of the canonical ID spelling.
ID_PATTERNS: dict[str, re.Pattern[str]] = {
    "ctgov": re.compile(r"NCT\d{8}"),
    "jrct": re.compile(r"jRCT[0-9a-z]\d{9}"),
    "chictr": re.compile(r"ChiCTR(?:\d{10}|-[A-Z]{3,5}-\d{8})"),
    "ctr": re.compile(r"CTR\d{8}"),
    "umin": re.compile(r"UMIN\d{9}"),
    "anzctr": re.compile(r"ACTRN\d{14}"),
    "irct": re.compile(r"IRCT\d+N\d+"),
    "jma": re.compile(r"JMA-IIA\d{5}"),
}

# Prefix (case-insensitive) -> registry key, to say "this looks like a jRCT ID but is malformed".
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("NCT", "ctgov"),
    ("JRCT", "jrct"),
    ("CHICTR", "chictr"),
    ("ACTRN", "anzctr"),
    ("UMIN", "umin"),
    ("IRCT", "irct"),
    ("JMA", "jma"),
    ("CTR", "ctr"),
)

_CASE_FIXES = {"jrct": "jRCT", "chictr": "ChiCTR"}


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
        if upper.startswith(prefix):
            head = _CASE_FIXES.get(key, prefix)
            tail = text[len(prefix) :]
            return head + (tail.lower() if key == "jrct" else tail)  # jRCT kinds: s, a, b, c
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
        if upper.startswith(prefix):
            return key
    return None
