"""The bundled transcription of the review's Tables 1-5, and the loader that checks it."""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_sync.curated import (
    CuratedTable,
    load_curated,
    parse_review_phase,
    parse_review_start,
)
from registry_sync.errors import CuratedTableError
from registry_sync.model import PHASES, CuratedRow, PartialDate, Precision

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "curated" / "review_2025_hpsc.csv"

HEADER = "row,table,product,refs,cell_type,indication,sponsor,trial_id,phase,nation,start,note"
GOOD_ROW = "1,1,FT500,13,iNK,advanced solid tumors,Fate,NCT03841110,I,US,2019,"


@pytest.fixture(scope="module")
def bundled() -> CuratedTable:
    return load_curated(BUNDLED)


def rows_for(table: CuratedTable, trial_id: str) -> list[tuple[int, str]]:
    return [(r.table, r.product) for r in table.rows if r.trial_id == trial_id]


def one(table: CuratedTable, trial_id: str) -> CuratedRow:
    found = [r for r in table.rows if r.trial_id == trial_id]
    assert len(found) == 1, found
    return found[0]


def write_csv(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "table.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- the bundled table -------------------------------------------------------------------


def test_bundled_table_has_105_rows_split_32_27_8_25_13(bundled: CuratedTable) -> None:
    assert len(bundled.rows) == 105
    assert Counter(r.table for r in bundled.rows) == {1: 32, 2: 27, 3: 8, 4: 25, 5: 13}


def test_bundled_rows_are_numbered_within_their_table(bundled: CuratedTable) -> None:
    for table in range(1, 6):
        numbers = [r.row for r in bundled.rows if r.table == table]
        assert numbers == list(range(1, len(numbers) + 1))
    assert [r.line for r in bundled.rows] == list(range(2, 107))


def test_bundled_registry_counts(bundled: CuratedTable) -> None:
    assert Counter(r.registry for r in bundled.rows) == {
        "ctgov": 81,
        "jrct": 11,
        "ctr": 4,
        "umin": 3,
        "chictr": 2,
        "anzctr": 1,
        "irct": 1,
        "jma": 1,
        None: 1,
    }


def test_bundled_file_is_utf8_without_bom_and_lf_only() -> None:
    data = BUNDLED.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in data
    header = next(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert ",".join(header) == HEADER


def test_bundled_sha256_is_of_the_file_bytes(bundled: CuratedTable) -> None:
    assert bundled.sha256 == hashlib.sha256(BUNDLED.read_bytes()).hexdigest()


def test_jrct209022038_truncated_id_kept_with_no_registry(bundled: CuratedTable) -> None:
    row = one(bundled, "jRCT209022038")
    assert row.product == "Raguneprocel"
    assert row.registry is None


def test_nct04982081_printed_for_hicm188_and_eyecyte_rpe(bundled: CuratedTable) -> None:
    assert rows_for(bundled, "NCT04982081") == [(1, "HICM-188"), (4, "Eyecyte‑RPE")]


def test_nct06978920_printed_for_ncr201_and_ncr101(bundled: CuratedTable) -> None:
    assert rows_for(bundled, "NCT06978920") == [(2, "NCR201"), (5, "NCR-101")]


def test_bemdaneprocel_nct06944522_fullwidth_roman_three(bundled: CuratedTable) -> None:
    row = one(bundled, "NCT06944522")
    assert row.phase == "\u2162"
    assert row.phases == frozenset({"PHASE3"})


def test_heartsheet_jrct2053190081_phase_iit_is_unparsed(bundled: CuratedTable) -> None:
    row = one(bundled, "jRCT2053190081")
    assert (row.phase, row.phases) == ("IIT", None)
    assert [r.trial_id for r in bundled.rows if r.phases is None] == ["jRCT2053190081"]


def test_opct001_nct06789445_start_2025_3_is_march(bundled: CuratedTable) -> None:
    row = one(bundled, "NCT06789445")
    assert row.start == "2025.3"
    assert row.start_date == PartialDate(2025, 3)
    assert row.start_date.precision is Precision.MONTH


def test_cyp004_actrn12620000870954_start_2023_11_is_november(bundled: CuratedTable) -> None:
    row = one(bundled, "ACTRN12620000870954")
    assert row.start_date == PartialDate(2023, 11)


def test_every_bundled_start_parses(bundled: CuratedTable) -> None:
    assert all(r.start_date is not None for r in bundled.rows)


def test_ft516_two_id_cell_split_by_line(bundled: CuratedTable) -> None:
    rows = [r for r in bundled.rows if r.product == "FT516"]
    ft516 = [(r.trial_id, r.indication, r.phase, r.start) for r in rows]
    assert ft516 == [
        ("NCT04630769", "ovarian cancer", "I", "2021"),
        ("NCT04363346", "COVID-19", "I", "2020"),
    ]
    assert [r.refs for r in rows] == ["14-16", "14-16"]


def test_grn_opc1_and_ast_opc1_side_by_side_split(bundled: CuratedTable) -> None:
    grn = one(bundled, "NCT01217008")
    ast = one(bundled, "NCT02302157")
    assert (grn.product, grn.sponsor, grn.indication) == ("GRN-OPC1", "Geron", "Thoracic SCI")
    assert (ast.product, ast.sponsor, ast.phase) == ("AST\u2011OPC1", "Asterias", "I/IIa")


def test_hesc_rpe_nct02749734_two_indications_one_id_joined(bundled: CuratedTable) -> None:
    assert one(bundled, "NCT02749734").indication == "AMD; STGD1"


def test_printed_spellings_are_kept(bundled: CuratedTable) -> None:
    assert one(bundled, "NCT05635409").product == "STEM\u2011PD"
    assert one(bundled, "ChiCTR2100052988").product == "Hepato cytes"
    assert one(bundled, "IRCT20160704028786N2").nation == "IRAN"
    assert one(bundled, "NCT05887466").nation == "KOR"
    assert one(bundled, "NCT03305029").nation == "KR"
    assert one(bundled, "CTR20252340").refs == "66,68"
    assert one(bundled, "NCT02057900").cell_type == "hESC-cardiac progenitors"


# --- parse_review_start / parse_review_phase ---------------------------------------------


@given(st.integers(1990, 2035), st.integers(1, 12))
def test_year_dot_month_parses_to_that_month(year: int, month: int) -> None:
    assert parse_review_start(f"{year}.{month}") == PartialDate(year, month)


@given(st.integers(1990, 2035))
def test_bare_year_parses_to_year_precision(year: int) -> None:
    parsed = parse_review_start(str(year))
    assert parsed == PartialDate(year)
    assert parsed.precision is Precision.YEAR


@given(st.dates(date(1990, 1, 1), date(2035, 12, 31)))
def test_iso_and_dotted_days_parse_to_that_day(day: date) -> None:
    expected = PartialDate(day.year, day.month, day.day)
    assert parse_review_start(day.isoformat()) == expected
    assert parse_review_start(f"{day.year}.{day.month}.{day.day}") == expected
    assert parse_review_start(day.isoformat()[:7]) == PartialDate(day.year, day.month)


@given(st.integers(1990, 2035), st.integers(13, 99))
def test_month_out_of_range_is_unparsed(year: int, month: int) -> None:
    assert parse_review_start(f"{year}.{month}") is None


@pytest.mark.parametrize("text", ["", "2021?", "2021.6-14", "Q3 2021", "21.6", "2021-02-30"])
def test_unreadable_starts_are_none(text: str) -> None:
    assert parse_review_start(text) is None


@given(st.text(max_size=12))
def test_parse_review_start_never_raises(text: str) -> None:
    assert parse_review_start(text) is None or isinstance(parse_review_start(text), PartialDate)


ROMAN = {"I": "PHASE1", "II": "PHASE2", "III": "PHASE3", "IV": "PHASE4"}
FULLWIDTH = {"I": "Ⅰ", "II": "Ⅱ", "III": "Ⅲ", "IV": "Ⅳ"}


@given(
    st.lists(st.sampled_from(sorted(ROMAN)), min_size=1, max_size=3, unique=True),
    st.sampled_from(["", "a", "b"]),
    st.booleans(),
)
def test_roman_combinations_round_trip(numerals: list[str], sub: str, fullwidth: bool) -> None:
    spelled = [FULLWIDTH[n] if fullwidth else n for n in numerals]
    text = "/".join([*spelled[:-1], spelled[-1] + sub])
    assert parse_review_phase(text) == frozenset(ROMAN[n] for n in numerals)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I/IIa", {"PHASE1", "PHASE2"}),
        ("IIa", {"PHASE2"}),
        ("Ⅲ", {"PHASE3"}),
        ("0", {"EARLY_PHASE1"}),
        ("1", {"PHASE1"}),
        ("1/2", {"PHASE1", "PHASE2"}),
        ("2-3", {"PHASE2", "PHASE3"}),
        (" I / II ", {"PHASE1", "PHASE2"}),
    ],
)
def test_printed_phases(text: str, expected: set[str]) -> None:
    assert parse_review_phase(text) == frozenset(expected)


@pytest.mark.parametrize("text", ["IIT", "", "  ", "V", "Phase I", "I/", "N/A", "IIIa/T"])
def test_unreadable_phases_are_none(text: str) -> None:
    assert parse_review_phase(text) is None


@given(st.text(max_size=10))
def test_parse_review_phase_never_raises_and_stays_canonical(text: str) -> None:
    parsed = parse_review_phase(text)
    assert parsed is None or (parsed and parsed <= set(PHASES))


# --- loader errors -------------------------------------------------------------------------


def test_missing_column_names_column_and_file(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path, HEADER.replace(",trial_id", ""), GOOD_ROW.replace(",NCT03841110", "")
    )
    with pytest.raises(CuratedTableError) as err:
        load_curated(path)
    assert "'trial_id'" in str(err.value)
    assert str(path) in str(err.value)
    assert err.value.column == "trial_id"


def test_latin1_byte_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    bad = GOOD_ROW.replace("Fate", "Göttingen").encode("latin-1")
    path.write_bytes(HEADER.encode() + b"\n" + GOOD_ROW.encode() + b"\n" + bad + b"\n")
    with pytest.raises(CuratedTableError, match=r"line 3, column 'sponsor': not UTF-8: byte 0xf6"):
        load_curated(path)


@pytest.mark.parametrize("content", [b"", b"\n\n", b" \n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "table.csv"
    path.write_bytes(content)
    with pytest.raises(CuratedTableError, match="the file is empty"):
        load_curated(path)


def test_header_without_rows(tmp_path: Path) -> None:
    with pytest.raises(CuratedTableError, match="header but no rows"):
        load_curated(write_csv(tmp_path, HEADER))


def test_short_row_names_its_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER, GOOD_ROW, GOOD_ROW.rsplit(",", 1)[0])
    with pytest.raises(CuratedTableError, match=r"line 3: the row has 11 cells, the header has 12"):
        load_curated(path)


def test_empty_trial_id_names_line_and_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER, GOOD_ROW.replace("NCT03841110", " "))
    with pytest.raises(CuratedTableError, match=r"line 2, column 'trial_id': empty cell"):
        load_curated(path)


@pytest.mark.parametrize("value", ["x", "0", "100", "1.5", "١"])
def test_table_not_an_integer_1_to_99(tmp_path: Path, value: str) -> None:
    path = write_csv(tmp_path, HEADER, GOOD_ROW.replace("1,1,", f"1,{value},", 1))
    with pytest.raises(CuratedTableError, match=r"line 2, column 'table': .* from 1 to 99"):
        load_curated(path)


def test_unknown_column_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + ",notes", GOOD_ROW + ",x")
    with pytest.raises(CuratedTableError, match=r"column 'notes': unknown column"):
        load_curated(path)


def test_unterminated_quote_names_its_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER, GOOD_ROW, GOOD_ROW[:-1] + ',"oops')
    with pytest.raises(CuratedTableError, match=r"line 3: malformed CSV"):
        load_curated(path)


# --- loader tolerance ------------------------------------------------------------------------


def test_content_problems_are_not_errors(tmp_path: Path) -> None:
    row = "1,2,Raguneprocel,50,hiPSC-DA,PD,Kyoto,jRCT209022038,IIT,JP,spring 2018,"
    table = load_curated(write_csv(tmp_path, HEADER, row))
    (parsed,) = table.rows
    assert (parsed.registry, parsed.phases, parsed.start_date) == (None, None, None)
    assert (parsed.trial_id, parsed.phase, parsed.start) == ("jRCT209022038", "IIT", "spring 2018")


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    header = "table,product,cell_type,indication,sponsor,trial_id,phase,nation,start"
    path = write_csv(tmp_path, header, "1,FT500,iNK,tumors,Fate,NCT03841110,I,US,2019")
    (row,) = load_curated(path).rows
    assert (row.row, row.refs, row.note, row.registry) == (None, "", "", "ctgov")


def test_lines_count_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    multi = GOOD_ROW[:-1] + ',"first\nsecond"'
    path = write_csv(tmp_path, HEADER, multi, "", GOOD_ROW)
    rows = load_curated(path).rows
    assert [r.line for r in rows] == [2, 5]
    assert rows[0].note == "first\nsecond"


def test_leading_bom_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"{HEADER}\n{GOOD_ROW}\n".encode())
    assert load_curated(path).rows[0].trial_id == "NCT03841110"
