"""The date kit every registry adapter shares (pure): one function for every form registries
print a date in, giving a `PartialDate` at the precision printed, or None when it is no date.

Forms (REGISTRIES.md §10.3), each with a real example:
- ISO and its neighbours: `2024-05-28`, `2006-11`, `2017/07/01`, `2024-05-28 08:56:14` (ChiCTR),
  `20200407` (ICTRP `Date_registration3`);
- Japanese: `2017年07月01日`, split cells `2017 年 07 月 01 日` (UMIN), era years
  `平成31年3月26日` (Heisei = year + 1988), `令和元年5月1日` (Reiwa, 元年 = year 1);
- English month names, dotted or not, either order: `Aug. 06, 2019`, `April. 27, 2024` (jRCT),
  `January 25, 2020`, `4 October 2022` (ICTRP), `May 2019`;
- slashed numbers are day-first only when the caller says so (`day_first=True`):
  `1/02/2005` (ANZCTR), `20/02/2020` (ICTRP for NCT); without it, `yyyy/mm/dd` only.
Full-width digits are folded first (NFKC). A value that looks like none of these is None, and the
caller records it as `Unmapped`, never a guess.
"""

from __future__ import annotations

import re
import unicodedata

from registry_sync.model import PartialDate

ERAS = {"明治": 1867, "大正": 1911, "昭和": 1925, "平成": 1988, "令和": 2018}

MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}

_ISO = re.compile(r"(\d{4})[-/.](\d{1,2})(?:[-/.](\d{1,2}))?(?:[ T]\d{1,2}:\d{2}(?::\d{2})?.*)?")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_YEAR = re.compile(r"(\d{4})")
_KANJI = re.compile(r"(\d{4})\s*年\s*(?:(\d{1,2})\s*月\s*(?:(\d{1,2})\s*日)?)?")
_ERA = re.compile(
    r"(明治|大正|昭和|平成|令和)\s*(元|\d{1,2})\s*年\s*(?:(\d{1,2})\s*月\s*(?:(\d{1,2})\s*日)?)?"
)
_MONTH_FIRST = re.compile(r"([A-Za-z]{3,9})\.?\s+(?:(\d{1,2}),?\s+)?(\d{4})")
_DAY_FIRST_NAMED = re.compile(r"(\d{1,2})\s+([A-Za-z]{3,9})\.?,?\s+(\d{4})")
_SLASHED = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")


def parse_date(text: str | None, *, day_first: bool = False) -> PartialDate | None:
    """The date `text` prints, at its precision; None when it is not one of the known forms."""
    if text is None:
        return None
    value = " ".join(unicodedata.normalize("NFKC", text).split())
    if not value:
        return None
    for parse in (_iso, _compact, _kanji, _era, _named):
        found = parse(value)
        if found is not None:
            return found
    if day_first and (found := _slashed(value)) is not None:
        return found
    return _year_only(value)


def _make(year: int, month: int | None = None, day: int | None = None) -> PartialDate | None:
    try:
        return PartialDate(year, month, day)
    except ValueError:  # 2021-02-30, month 13: not a date
        return None


def _num(text: str | None) -> int | None:
    return int(text) if text else None


def _iso(value: str) -> PartialDate | None:
    m = _ISO.fullmatch(value)
    return _make(int(m[1]), int(m[2]), _num(m[3])) if m else None


def _compact(value: str) -> PartialDate | None:
    m = _COMPACT.fullmatch(value)
    return _make(int(m[1]), int(m[2]), int(m[3])) if m else None


def _kanji(value: str) -> PartialDate | None:
    m = _KANJI.fullmatch(value)
    return _make(int(m[1]), _num(m[2]), _num(m[3])) if m else None


def _era(value: str) -> PartialDate | None:
    m = _ERA.fullmatch(value)
    if not m:
        return None
    year = ERAS[m[1]] + (1 if m[2] == "元" else int(m[2]))
    return _make(year, _num(m[3]), _num(m[4]))


def _named(value: str) -> PartialDate | None:
    m = _MONTH_FIRST.fullmatch(value)
    if m and m[1].lower() in MONTHS:
        return _make(int(m[3]), MONTHS[m[1].lower()], _num(m[2]))
    m = _DAY_FIRST_NAMED.fullmatch(value)
    if m and m[2].lower() in MONTHS:
        return _make(int(m[3]), MONTHS[m[2].lower()], int(m[1]))
    return None


def _slashed(value: str) -> PartialDate | None:
    m = _SLASHED.fullmatch(value)
    return _make(int(m[3]), int(m[2]), int(m[1])) if m else None


def _year_only(value: str) -> PartialDate | None:
    m = _YEAR.fullmatch(value)
    return _make(int(m[1])) if m else None
