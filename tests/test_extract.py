"""Extracting IDs and prose claims from a review's text, and checking them against its table.

Real inputs: short excerpts of the bundled review's text (tests/fixtures/text/, provenance and
sha256 in its SOURCES.md). Inputs built here are marked synthetic and pin one quirk each.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from helpers import BUNDLED_CURATED, FIXTURES
from registry_sync.curated import load_curated
from registry_sync.model import CuratedRow, Severity
from registry_sync.textclaims import KIND, text_findings
from registry_sync.textdraft import PROSE_TABLE, draft_rows, render_draft_csv
from registry_sync.textextract import Extraction, extract, parse_claimed_start
from registry_sync.textsource import ReviewTextError, html_to_text, load_review_text

TEXT = FIXTURES / "text"
PROSE = TEXT / "review_2025_hpsc_prose.txt"
TABLES = TEXT / "review_2025_hpsc_tables.txt"


def extract_text(text: str) -> Extraction:
    return extract([text], paged=False)


def extract_file(path: Path) -> Extraction:
    review = load_review_text(path)
    return extract(review.pages, paged=review.paged)


@pytest.fixture(scope="module")
def rows() -> tuple[CuratedRow, ...]:
    return load_curated(BUNDLED_CURATED).rows


def claims_of(found: Extraction, trial_id: str) -> dict[str, str]:
    return {c.field: c.value for c in found.claims if c.trial_id == trial_id}


# ----------------------------------------------------------------------------- provenance


def test_text_fixtures_match_their_sources_md_sha256() -> None:
    listed = dict(
        re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|", (TEXT / "SOURCES.md").read_text(), re.M)
    )
    assert sorted(listed) == sorted(p.name for p in TEXT.glob("*.txt"))
    for name, digest in listed.items():
        assert hashlib.sha256((TEXT / name).read_bytes()).hexdigest() == digest


# ----------------------------------------------------------------------------- IDs and places


def test_table_text_ids_with_their_table_and_cells() -> None:
    found = extract_file(TABLES)
    by_id = {m.trial_id: m for m in found.mentions}
    ft500 = by_id["NCT03841110"]
    assert ft500.place.table == 1
    assert ft500.cells is not None
    assert (ft500.cells.product, ft500.cells.refs, ft500.cells.phase) == ("FT500", "13", "I")
    assert (ft500.cells.nation, ft500.cells.start) == ("US", "2019")
    # a cell printing two IDs: the phases and starts are on other lines, so nothing is stated
    two = by_id["NCT04630769"].cells
    assert two is not None and (two.product, two.phase, two.start) == ("", "", "")
    assert by_id["NCT04802733"].place.table == 2


def test_malformed_jRCT209022038_kept_with_a_note() -> None:
    (m,) = [m for m in extract_file(TABLES).mentions if m.trial_id.startswith("jRCT2090")]
    assert m.trial_id == "jRCT209022038"
    assert not m.valid
    assert "malformed" in m.note and "jRCT" in m.note
    assert m.place.table == 2


def test_prose_ids_are_not_in_a_table_and_have_lines() -> None:
    found = extract_file(PROSE)
    ft500 = next(m for m in found.mentions if m.trial_id == "NCT03841110")
    assert ft500.place.table is None
    assert ft500.place.line == 5  # the fixture's fifth line
    assert ft500.place.describe() == f"line 5, para {ft500.place.paragraph}"


def test_id_split_over_two_lines_is_joined_synthetic() -> None:
    found = extract_text("产品FT500(NCT0384\n1110)于2019年启动")
    assert [m.trial_id for m in found.mentions] == ["NCT03841110"]
    assert "split over two lines" in found.mentions[0].note


def test_id_hyphenated_by_typesetting_is_joined_synthetic() -> None:
    found = extract_text("The trial (jRCT20532-\n10068) began in 2021.")
    assert [m.trial_id for m in found.mentions] == ["jRCT2053210068"]


def test_full_width_digits_and_jprn_prefix_synthetic() -> None:
    found = extract_text("試験（ＮＣＴ０３８４１１１０）と JPRN-UMIN000011929 を参照")
    ids = [m.trial_id for m in found.mentions]
    assert ids == ["NCT03841110", "UMIN000011929"]
    assert "JPRN-" in found.mentions[1].note


def test_every_registry_prefix_is_found_synthetic() -> None:
    text = (
        "NCT03841110, jRCTa050190117, ChiCTR2400089728, CTR20253094, UMIN000011929, "
        "ACTRN12620000870954, IRCT20160704028786N2, JMA-IIA00412, ChiCTR-TRC-12001234"
    )
    found = extract_text(text)
    assert [m.trial_id for m in found.mentions] == [p.strip() for p in text.split(",")]
    assert all(m.valid for m in found.mentions)


def test_words_holding_a_prefix_are_not_ids_synthetic() -> None:
    assert extract_text("function Instruction aluminium CTRL NCT").mentions == ()


# ----------------------------------------------------------------------------- claims


def test_chinese_start_and_phase_claims_ft500() -> None:
    found = extract_file(PROSE)
    assert claims_of(found, "NCT03841110") == {"start": "2019年", "phase": "I", "product": "FT500"}


def test_year_opening_a_sentence_dates_its_start_verb_iplat1() -> None:
    assert claims_of(extract_file(PROSE), "jRCTa050190117")["start"] == "2019年5月"


def test_list_of_ids_gives_no_phase_claim_to_any_of_them() -> None:
    # "FT516(NCT04630769、NCT04363346)…及FT576(NCT05182073)[19]均在 I期临床试验中": one phase
    # for five IDs in one clause is not attributed to any one of them
    found = extract_file(PROSE)
    for trial_id in ("NCT04630769", "NCT04555811", "NCT05182073"):
        assert "phase" not in claims_of(found, trial_id)


def test_clause_of_its_own_in_a_sentence_with_two_ids_opregen() -> None:
    # "于2015年启动 I/II期…(NCT02286089)[83], 并于 2023年进入 II期研究 (NCT05626114)"
    found = extract_file(PROSE)
    assert claims_of(found, "NCT05626114")["start"] == "2023年"
    assert claims_of(found, "NCT05626114")["phase"] == "II"


def test_a_year_without_a_start_verb_is_no_claim_synthetic() -> None:
    found = extract_text("A9-DPC(NCT05887466)于2025年10月公布临床数据。")
    assert "start" not in claims_of(found, "NCT05887466")
    found = extract_text("其申请(NCT06441084)于 2023年 8月获受理 , 并已启动 I/II期试验。")
    assert "start" not in claims_of(found, "NCT06441084")


def test_english_and_japanese_claims_synthetic() -> None:
    found = extract_text("FT500 (NCT03841110) started in May 2019 as a phase 1/2 trial.")
    assert claims_of(found, "NCT03841110") == {
        "start": "May 2019",
        "phase": "1/2",
        "product": "FT500",
    }
    found = extract_text("iPLAT1（jRCTa050190117）は2019年5月に開始された第Ⅱ相試験である。")
    assert claims_of(found, "jRCTa050190117") == {
        "start": "2019年5月",
        "phase": "II",
        "product": "iPLAT1",
    }


@pytest.mark.parametrize(
    ("value", "iso"),
    [("2017年", "2017"), ("2019年5月", "2019-05"), ("May 2019", "2019-05"), ("2019", "2019")],
)
def test_parse_claimed_start(value: str, iso: str) -> None:
    parsed = parse_claimed_start(value)
    assert parsed is not None and parsed.iso() == iso


# ----------------------------------------------------------------------------- conflicts


def test_text_table_conflicts_on_the_prose_excerpt(rows: tuple[CuratedRow, ...]) -> None:
    findings = text_findings(rows, extract_file(PROSE))
    got = {(f.table, f.trial_id, f.field, f.review_value, f.registry_value) for f in findings}
    assert got == {
        (1, "jRCTa050190117", "start", "2021", "2019年5月"),
        (1, "NCT04396899", "start", "2021", "2025年"),
        (2, "NCT03119636", "start", "2015", "2017年"),
        (2, "jRCT209022038", "trial_id", "jRCT209022038", "jRCT2090220384"),
        (2, "NCT06344026", "product", "ASPIRO", "ANPD001"),
        (2, "NCT02452723", "start", "2016", "2015年"),
    }
    for f in findings:
        assert f.kind == KIND and f.severity is Severity.WARNING
        assert f.extra["quote"] and f.extra["quote"] in f.message
        assert f.extra["where"].startswith("line ")


def test_conflict_quotes_the_sentence_and_row_of_iplat1(rows: tuple[CuratedRow, ...]) -> None:
    (f,) = [f for f in text_findings(rows, extract_file(PROSE)) if f.trial_id == "jRCTa050190117"]
    row = next(r for r in rows if r.trial_id == "jRCTa050190117")
    assert (f.table, f.line) == (row.table, row.line)
    assert f.extra["quote"].startswith("2019年5月, 日本京都大学iPSC研究所")
    assert "iPLAT1(jRCTa050190117)" in f.extra["quote"]


def test_product_named_as_the_rows_indication_is_no_conflict_synthetic(
    rows: tuple[CuratedRow, ...],
) -> None:
    # Table 2 row 25 prints NCT04812431 for SB-SCI-001, indication "Subacute SCI"
    found = extract_text("用于治疗颈段亚急性SCI(NCT04812431), 目前仍处于早期临床研究阶段。")
    assert claims_of(found, "NCT04812431")["product"] == "SCI"
    assert text_findings(rows, found) == []


def test_agreeing_prose_gives_no_finding(rows: tuple[CuratedRow, ...]) -> None:
    assert text_findings(rows, extract_file(TABLES)) == []


# ----------------------------------------------------------------------------- draft


def test_draft_rows_fill_only_what_a_line_states() -> None:
    drafted = {(r.table, r.trial_id): r for r in draft_rows(extract_file(TABLES))}
    ft500 = drafted[(1, "NCT03841110")]
    assert (ft500.product, ft500.phase, ft500.start, ft500.nation) == ("FT500", "I", "2019", "US")
    cells = drafted[(1, "NCT04630769")].cells()
    assert (cells["product"], cells["phase"], cells["start"]) == ("?", "?", "?")
    assert (cells["cell_type"], cells["indication"], cells["sponsor"]) == ("", "", "")
    assert "line " in cells["note"] and "table 1" in cells["note"]


def test_prose_only_id_goes_to_the_placeholder_table_with_its_claims() -> None:
    drafted = [r for r in draft_rows(extract_file(PROSE)) if r.trial_id == "jRCT2090220384"]
    (row,) = drafted
    assert row.table == PROSE_TABLE
    assert row.start == "2018"  # "2018年 , 日本CiRA的TAKAHASHI团队 [50]开展了…"
    assert "prose only" in row.note


def test_draft_csv_has_the_curated_columns_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "draft.csv"
    path.write_text(render_draft_csv(draft_rows(extract_file(TABLES))), encoding="utf-8")
    table = load_curated(path)
    assert {r.trial_id for r in table.rows} >= {"NCT03841110", "jRCT209022038", "NCT06944522"}


# ----------------------------------------------------------------------------- sources


def test_html_text_drops_scripts_and_breaks_blocks_synthetic(tmp_path: Path) -> None:
    html = (
        "<html><body><script>var NCT00000000 = 1;</script><p>FT500 (NCT03841110) started in "
        "May 2019.</p><table><tr><td>FT576</td><td>NCT05182073</td></tr></table></body></html>"
    )
    assert "NCT00000000" not in html_to_text(html)
    path = tmp_path / "review.html"
    path.write_text(html, encoding="utf-8")
    found = extract_file(path)
    assert [m.trial_id for m in found.mentions] == ["NCT03841110", "NCT05182073"]
    assert claims_of(found, "NCT03841110")["start"] == "May 2019"


def test_unreadable_sources_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ReviewTextError, match="no such file"):
        load_review_text(tmp_path / "missing.txt")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("café NCT03841110".encode("latin-1"))
    with pytest.raises(ReviewTextError, match=r"latin1\.txt: not UTF-8"):
        load_review_text(bad)
    fake = tmp_path / "fake.pdf"
    fake.write_bytes(b"not a pdf at all")
    with pytest.raises(ReviewTextError, match=r"fake\.pdf"):
        load_review_text(fake)
