"""The review's own metadata: a TOML file beside the curated table (`<table>.review.toml`).

It says when the review was published, which the verdicts need ("was the review already wrong
when it was published, or has the registry changed since?"), and what the review is (title,
journal, DOI) for the reports. Keys:

- `published` (required): a partial date, `2025`, `2025-10` or `2025-10-17`: the publication
  date as precisely as it is known;
- `published_not_before` (optional): a partial date the publication cannot precede (e.g. the
  latest event the review itself reports), narrowing `published`;
- `basis` (optional): what the dates rest on, in words;
- `title`, `journal`, `doi` (optional strings; empty when unknown);
- `text` (optional): the review's text (txt, md, html or pdf), relative to this file, read by
  `check` and `run` for `text_table_conflict` findings when `--text` is not given.

Read with the standard library's `tomllib`; a problem is a `CuratedTableError` naming the file
and the key. A table without the file has no metadata: every verdict is then `unknown`.
"""

from __future__ import annotations

import calendar
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from registry_sync.errors import CuratedTableError
from registry_sync.model import PartialDate

SUFFIX = ".review.toml"
KNOWN_KEYS = frozenset(
    {"published", "published_not_before", "basis", "title", "journal", "doi", "text"}
)
TEXT_KEYS = ("basis", "title", "journal", "doi", "text")


@dataclass(frozen=True)
class ReviewMeta:
    """What the review's metadata file says, checked."""

    path: Path
    published: PartialDate
    published_not_before: PartialDate | None = None
    basis: str = ""
    title: str = ""
    journal: str = ""
    doi: str = ""
    text: str = ""  # the review's text file, relative to this file ("" = none named)

    @property
    def text_path(self) -> Path | None:
        """The review's text file the metadata names, resolved beside it; None if none."""
        return self.path.parent / self.text if self.text else None

    @property
    def window(self) -> tuple[date, date]:
        """The first and last day the review may have been published."""
        first, last = day_span(self.published)
        if self.published_not_before is not None:
            first = max(first, day_span(self.published_not_before)[0])
        return first, last

    def to_dict(self) -> dict[str, Any]:
        """For the snapshot's `_meta` (`review`): plain JSON values."""
        first, last = self.window
        return {
            "path": str(self.path),
            "published": self.published.iso(),
            "published_not_before": (
                self.published_not_before.iso() if self.published_not_before else None
            ),
            "published_window": [first.isoformat(), last.isoformat()],
            "basis": self.basis,
            "title": self.title,
            "journal": self.journal,
            "doi": self.doi,
        }


def day_span(when: PartialDate) -> tuple[date, date]:
    """The first and last day a partial date covers: `2025` -> 2025-01-01 .. 2025-12-31."""
    if when.month is None:
        return date(when.year, 1, 1), date(when.year, 12, 31)
    if when.day is None:
        last = calendar.monthrange(when.year, when.month)[1]
        return date(when.year, when.month, 1), date(when.year, when.month, last)
    day = date(when.year, when.month, when.day)
    return day, day


def review_meta_path(curated_path: Path) -> Path:
    """`data/curated/review_2025_hpsc.csv` -> `data/curated/review_2025_hpsc.review.toml`."""
    return curated_path.with_name(curated_path.stem + SUFFIX)


def load_review_meta(curated_path: Path) -> ReviewMeta | None:
    """The metadata beside the curated table; None when there is no such file."""
    path = review_meta_path(curated_path)
    if not path.is_file():
        return None
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CuratedTableError(str(path), f"not valid UTF-8 TOML: {exc}") from exc
    return parse_review_meta(path, doc)


def parse_review_meta(path: Path, doc: dict[str, Any]) -> ReviewMeta:
    """Check the keys of a loaded metadata file (pure)."""
    for key in doc:
        if key not in KNOWN_KEYS:
            known = ", ".join(sorted(KNOWN_KEYS))
            raise CuratedTableError(str(path), f"unknown key; expected some of {known}", column=key)
    if "published" not in doc:
        raise CuratedTableError(
            str(path), "required key missing: give the publication date, e.g. 2025-10",
            column="published",
        )  # fmt: skip
    published = _date(path, doc, "published")
    not_before = _date(path, doc, "published_not_before") if "published_not_before" in doc else None
    text = {key: _text(path, doc, key) for key in TEXT_KEYS}
    meta = ReviewMeta(path, published, not_before, **text)
    first, last = meta.window
    if first > last:
        raise CuratedTableError(
            str(path),
            f"published_not_before {not_before.iso() if not_before else ''} is after the "
            f"latest day {published.iso()} allows",
            column="published_not_before",
        )
    return meta


def _date(path: Path, doc: dict[str, Any], key: str) -> PartialDate:
    value = doc[key]
    if isinstance(value, date):  # TOML's own date type: 2025-10-17 unquoted
        return PartialDate(value.year, value.month, value.day)
    problem = f'{value!r} is not a date; write "2025", "2025-10" or "2025-10-17"'
    if not isinstance(value, str | int):
        raise CuratedTableError(str(path), problem, column=key)
    try:
        return PartialDate.from_iso(str(value))
    except ValueError as exc:
        raise CuratedTableError(str(path), problem, column=key) from exc


def _text(path: Path, doc: dict[str, Any], key: str) -> str:
    value = doc.get(key, "")
    if not isinstance(value, str):
        raise CuratedTableError(str(path), f"{value!r} is not a string", column=key)
    return value.strip()
