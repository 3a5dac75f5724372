"""Sponsor names compared loosely: reviews abbreviate (`Fate`, `HUST`, `CAMS&PUMC`), registries
print legal names, sometimes only in Chinese or Japanese, and companies get renamed. Pure.

Moved out of `reconcile` (which re-exports `sponsor_matches`) so `identity` can use it too.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

# Sponsor renames and hand-overs behind rows of the review (public corporate history), so a
# registry naming the later (or earlier) owner still matches the name the review prints:
# - Geron's OPC1 programme went to Asterias Biotherapeutics in 2013 (the review prints
#   GRN-OPC1 / Geron and AST-OPC1 / Asterias side by side, Table 2 rows 23-24);
# - Asterias was acquired by BioTime in 2019, which renamed itself Lineage Cell Therapeutics
#   the same year (the review prints "Asterias" for AST-OPC1/AST-VAC2, "Lineage Cell" for
#   OpRegen);
# - ViaCyte was acquired by Vertex in 2022 (the review prints both, Table 3).
SPONSOR_RENAMES: dict[str, tuple[str, ...]] = {
    "geron": ("Asterias Biotherapeutics",),
    "asterias": ("BioTime", "Lineage Cell Therapeutics"),
    "lineage cell": ("BioTime", "Asterias Biotherapeutics"),
    "viacyte": ("Vertex Pharmaceuticals",),
}

# Words that carry no identity in a sponsor name.
SPONSOR_STOPWORDS = frozenset(
    {
        "inc",
        "incorporated",
        "ltd",
        "limited",
        "co",
        "corp",
        "corporation",
        "company",
        "llc",
        "gmbh",
        "kk",
        "pty",
        "plc",
        "sa",
        "ag",
        "the",
        "of",
        "and",
        "for",
        "de",
        "du",
        "la",
        "le",
        "et",
    }
)


def sponsor_matches(review: str, candidates: Sequence[str]) -> bool:
    """Loose match: word subset either way, or the review's word is the candidate's acronym;
    a name in SPONSOR_RENAMES also matches its other owners' names."""
    for part in _parts(review):
        words = _words(part)
        if not words:
            continue
        for cand in candidates:
            cand_words = _words(cand)
            if not cand_words:
                continue
            if words <= cand_words or cand_words <= words:
                return True
            if len(words) == 1 and next(iter(words)) == _acronym(cand):
                return True
    return False


# Memos: a run meets the same sponsors over and over; bounded, so 100k distinct names fit.
@functools.lru_cache(maxsize=1 << 16)
def _parts(review: str) -> tuple[str, ...]:
    """The review's name split at `/`, `&`, `;` and `and`, with each part's other owners."""
    parts = [p for p in re.split(r"[/&;]|\band\b", review) if p.strip()] or [review]
    parts += [n for p in parts for n in SPONSOR_RENAMES.get(" ".join(p.casefold().split()), ())]
    return tuple(parts)


@functools.lru_cache(maxsize=1 << 16)
def _words(text: str) -> frozenset[str]:
    text = unicodedata.normalize("NFKC", text).casefold().replace("‑", "-")
    tokens = re.findall(r"[\w]+", text.replace("-", ""))
    return frozenset(t for t in tokens if t not in SPONSOR_STOPWORDS)


@functools.lru_cache(maxsize=1 << 16)
def _acronym(text: str) -> str:
    tokens = re.findall(r"[\w]+", unicodedata.normalize("NFKC", text).casefold())
    return "".join(t[0] for t in tokens if t not in SPONSOR_STOPWORDS)
