"""The shared date kit: every form a registry prints, at the precision printed (hypothesis
properties, and one case per form with the registry it comes from)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_sync.model import PartialDate
from registry_sync.registries._dates import ERAS, MONTHS, parse_date

DAYS = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2035, 12, 31))
MONTH_NAMES = {n: [k for k, v in MONTHS.items() if v == n] for n in range(1, 13)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-28", PartialDate(2024, 5, 28)),  # ctgov, ChiCTR XML
        ("2006-11", PartialDate(2006, 11)),  # ctgov NCT00763412
        ("2017/07/01", PartialDate(2017, 7, 1)),  # UMIN header
        ("2024-05-28 08:56:14", PartialDate(2024, 5, 28)),  # ChiCTR detail page
        ("20200407", PartialDate(2020, 4, 7)),  # ICTRP Date_registration3
        ("2017年07月01日", PartialDate(2017, 7, 1)),  # jRCT
        ("2017 年 07 月 01 日", PartialDate(2017, 7, 1)),  # UMIN split cells
        ("平成31年3月26日", PartialDate(2019, 3, 26)),  # jRCT jRCTs051180190, Heisei 31
        ("令和元年5月1日", PartialDate(2019, 5, 1)),  # Reiwa 1 (元年)
        ("Aug. 06, 2019", PartialDate(2019, 8, 6)),  # jRCT English page
        ("April. 27, 2024", PartialDate(2024, 4, 27)),  # jRCT: full name with a dot
        ("January 25, 2020", PartialDate(2020, 1, 25)),  # ICTRP Date_enrollement for NCT
        ("4 October 2022", PartialDate(2022, 10, 4)),  # ICTRP Last refreshed on
        ("May 2019", PartialDate(2019, 5)),
        ("２０１７年７月", PartialDate(2017, 7)),  # full-width digits
        ("2021", PartialDate(2021)),
    ],
)
def test_each_registry_form(text: str, expected: PartialDate) -> None:
    assert parse_date(text) == expected
    assert parse_date(text, day_first=True) == expected  # day-first only changes d/m/y


def test_day_first_only_when_asked_anzctr_1_02_2005() -> None:
    assert parse_date("1/02/2005", day_first=True) == PartialDate(2005, 2, 1)
    assert parse_date("16/12/2009", day_first=True) == PartialDate(2009, 12, 16)
    assert parse_date("1/02/2005") is None  # ambiguous without the registry's convention


@pytest.mark.parametrize(
    "text", ["", "   ", "TBD", "2021-02-30", "2021-13", "平成年", "Foo. 1, 2020"]
)
def test_not_a_date_is_none(text: str) -> None:
    assert parse_date(text) is None


@given(DAYS)
def test_iso_and_kanji_round_trip(day: dt.date) -> None:
    expected = PartialDate(day.year, day.month, day.day)
    assert parse_date(day.isoformat()) == expected
    assert parse_date(f"{day.year}年{day.month:02d}月{day.day:02d}日") == expected
    assert parse_date(f"{day.year} 年 {day.month} 月 {day.day} 日") == expected
    assert parse_date(f"{day.day}/{day.month:02d}/{day.year}", day_first=True) == expected


@given(DAYS, st.sampled_from(["平成", "令和"]), st.booleans())
def test_era_years(day: dt.date, era: str, dotted: bool) -> None:
    year = day.year - ERAS[era]
    if year < 1 or (era == "平成" and day.year > 2019) or (era == "令和" and day.year < 2019):
        return
    shown = "元" if year == 1 else str(year)
    assert parse_date(f"{era}{shown}年{day.month}月{day.day}日") == PartialDate(
        day.year, day.month, day.day
    )


@given(DAYS, st.data())
def test_english_month_names_with_or_without_dots(day: dt.date, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(MONTH_NAMES[day.month]))
    cased = data.draw(st.sampled_from([name, name.title(), name.upper()]))
    dot = data.draw(st.sampled_from(["", "."]))
    expected = PartialDate(day.year, day.month, day.day)
    assert parse_date(f"{cased}{dot} {day.day:02d}, {day.year}") == expected
    assert parse_date(f"{day.day} {cased}{dot} {day.year}") == expected


@given(st.text(max_size=30))
def test_never_raises(text: str) -> None:
    result = parse_date(text)
    assert result is None or isinstance(result, PartialDate)
