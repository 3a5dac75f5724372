"""ID patterns and normalization: every registry the review cites, and what a PDF does to IDs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_sync.ids import ID_PATTERNS, claimed_registry, normalize_id, registry_of


@pytest.mark.parametrize(
    ("trial_id", "registry"),
    [
        ("NCT04802733", "ctgov"),
        ("jRCT2033200431", "jrct"),
        ("jRCTa050190117", "jrct"),
        ("jRCTs051180190", "jrct"),
        ("ChiCTR2400089728", "chictr"),
        ("CTR20253094", "ctr"),
        ("UMIN000011929", "umin"),
        ("ACTRN12620000870954", "anzctr"),
        ("IRCT20160704028786N2", "irct"),
        ("JMA-IIA00412", "jma"),
    ],
)
def test_every_registry_the_review_cites(trial_id: str, registry: str) -> None:
    assert registry_of(trial_id) == registry


def test_truncated_jrct_is_malformed_but_claimed_jRCT209022038() -> None:
    assert registry_of("jRCT209022038") is None
    assert claimed_registry("jRCT209022038") == "jrct"


def test_nothing_recognisable_is_unclaimed() -> None:
    assert registry_of("IIT") is None and claimed_registry("IIT") is None


def test_ctr_is_not_mistaken_for_chictr_or_actrn() -> None:
    assert registry_of("CTR20252340") == "ctr"
    assert claimed_registry("ChiCTR2100052988") == "chictr"


@given(st.integers(0, 99_999_999))
def test_nct_survives_case_space_fullwidth_and_zero_width(n: int) -> None:
    canonical = f"NCT{n:08d}"
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in canonical)
    for mangled in (
        canonical.lower(),
        f" {canonical} ",
        canonical[:3] + " " + canonical[3:],
        fullwidth,
        canonical[:5] + "\u200b" + canonical[5:],
    ):
        assert normalize_id(mangled) == canonical
        assert registry_of(mangled) == "ctgov"


@given(st.sampled_from(sorted(ID_PATTERNS)), st.text(max_size=20))
def test_normalize_is_idempotent(_: str, text: str) -> None:
    once = normalize_id(text)
    assert normalize_id(once) == once


@given(st.text(alphabet="0123456789", min_size=1, max_size=12))
def test_nct_with_wrong_digit_count_is_malformed(digits: str) -> None:
    if len(digits) != 8:
        assert registry_of(f"NCT{digits}") is None


@given(st.integers(0, 999_999_999), st.sampled_from("2sabc1"))
def test_jrct_kinds_and_case(n: int, kind: str) -> None:
    trial_id = f"jRCT{kind}{n:09d}"
    assert registry_of(trial_id.upper()) == "jrct"
    assert normalize_id(trial_id.upper()) == trial_id
