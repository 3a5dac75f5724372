"""The review's metadata beside the curated table: loaded, checked, errors naming file and key."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from helpers import BUNDLED_CURATED
from registry_sync.errors import CuratedTableError
from registry_sync.model import PartialDate
from registry_sync.review_meta import day_span, load_review_meta, review_meta_path


def _write(tmp_path: Path, text: str) -> Path:
    curated = tmp_path / "review.csv"
    review_meta_path(curated).write_text(text, encoding="utf-8")
    return curated


def test_bundled_review_published_between_october_and_december_2025() -> None:
    meta = load_review_meta(BUNDLED_CURATED)
    assert meta is not None
    assert meta.path.name == "review_2025_hpsc.review.toml"
    assert meta.published == PartialDate(2025)
    assert meta.window == (date(2025, 10, 1), date(2025, 12, 31))
    assert "2025-10" in meta.basis
    # unknown from the text we have: left empty, never guessed
    assert (meta.title, meta.journal, meta.doi) == ("", "", "")
    doc = meta.to_dict()
    assert doc["published_window"] == ["2025-10-01", "2025-12-31"]
    assert doc["title"] == ""


def test_no_metadata_file_gives_none(tmp_path: Path) -> None:
    assert load_review_meta(tmp_path / "other.csv") is None


def test_day_precision_and_toml_date_type(tmp_path: Path) -> None:
    meta = load_review_meta(_write(tmp_path, 'published = 2025-11-03\ntitle = "T"\n'))
    assert meta is not None and meta.window == (date(2025, 11, 3), date(2025, 11, 3))
    assert meta.title == "T"
    assert day_span(PartialDate(2024, 2)) == (date(2024, 2, 1), date(2024, 2, 29))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('published = "2025-13"\n', "published"),
        ('published = "late 2025"\n', "published"),
        ('title = "x"\n', "published"),  # required key missing
        ('published = "2025"\npublisher = "x"\n', "publisher"),
        ('published = "2025"\ndoi = 10\n', "doi"),
        ('published = "2025-03"\npublished_not_before = "2025-10"\n', "published_not_before"),
    ],
)
def test_problem_names_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    curated = _write(tmp_path, text)
    with pytest.raises(CuratedTableError) as err:
        load_review_meta(curated)
    assert err.value.column == key
    assert "review.review.toml" in str(err.value) and repr(key) in str(err.value)


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(CuratedTableError, match=r"review\.review\.toml: not valid UTF-8 TOML"):
        load_review_meta(_write(tmp_path, "published = \n"))
