"""Hostile review tables: whatever the bytes, one clear line naming file, line and column (or a
loaded table), in linear time, with bounded output, and nothing stored is lost."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import BUNDLED_CURATED, EXPECTATIONS, replay_copy, review_subset
from registry_sync import corrections, curated
from registry_sync.cli import EXIT_ERROR, EXIT_GATE, main
from registry_sync.curated import MAX_CELL_CHARS, MAX_ROWS, load_curated
from registry_sync.errors import CuratedTableError
from registry_sync.reconcile import reconcile

HEADER = "row,table,product,refs,cell_type,indication,sponsor,trial_id,phase,nation,start,note"
ROW = "1,1,FT500,13,iNK,advanced solid tumors,Fate,NCT03841110,I,US,2019,"
ROW2 = "2,1,FT516,14,iNK,ovarian cancer,Fate,NCT04630769,I,US,2021,"


def table(tmp_path: Path, data: bytes, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refused(path: Path) -> CuratedTableError:
    with pytest.raises(CuratedTableError) as err:
        load_curated(path)
    message = str(err.value)
    assert message.startswith(f"{path}, line ")
    assert "\n" not in message
    return err.value


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("REGISTRY_SYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REGISTRY_SYNC_EXPECTATIONS_DIR", str(EXPECTATIONS))
    monkeypatch.setenv("REGISTRY_SYNC_MAX_RETRIES", "0")
    return CliRunner()


# --- encodings --------------------------------------------------------------------------------


def test_latin1_byte_names_line_column_and_byte(tmp_path: Path) -> None:
    bad = ROW2.replace("Fate", "Göttingen").encode("latin-1")
    path = table(tmp_path, f"{HEADER}\n{ROW}\n".encode() + bad + b"\n")
    err = refused(path)
    assert (err.line, err.column) == (3, "sponsor")
    assert "byte 0xf6 (byte 34 of the line)" in str(err)


def test_gbk_bytes_name_line_and_column(tmp_path: Path) -> None:
    bad = ROW2.replace("ovarian cancer", "北京").encode("gbk")
    err = refused(table(tmp_path, f"{HEADER}\n{ROW}\n".encode() + bad + b"\n"))
    assert (err.line, err.column) == (3, "indication")
    assert "not UTF-8" in err.problem


def test_invalid_utf8_inside_a_quoted_multiline_cell(tmp_path: Path) -> None:
    row = ROW2[:-1] + ',"first line\nsecond \xff line"'
    data = f"{HEADER}\n{ROW}\n".encode() + row.encode("latin-1") + b"\n"
    err = refused(table(tmp_path, data))
    assert (err.line, err.column) == (4, "note")  # the physical line of the byte


def test_invalid_utf8_in_the_header_names_its_position(tmp_path: Path) -> None:
    err = refused(table(tmp_path, b"row,tab\xe9le,product\n1,1,x\n"))
    assert (err.line, err.column) == (1, "#2 of the header")


def test_utf16_file_is_refused_at_line_1(tmp_path: Path) -> None:
    err = refused(table(tmp_path, f"{HEADER}\n{ROW}\n".encode("utf-16")))
    assert err.line == 1
    assert "0xff" in err.problem


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + f"{HEADER}\r\n{ROW}\r\n{ROW2}\r\n".encode()
    rows = load_curated(table(tmp_path, data)).rows
    assert [(r.line, r.trial_id, r.note) for r in rows] == [
        (2, "NCT03841110", ""),
        (3, "NCT04630769", ""),
    ]


def test_nul_byte_names_line_and_column(tmp_path: Path) -> None:
    bad = ROW2.replace("Fate", "Fa\x00te")
    path = table(tmp_path, f"{HEADER}\n{ROW}\n{bad}\n".encode())
    err = refused(path)
    assert (err.line, err.column) == (3, "sponsor")
    assert "NUL character (character 3 of the cell)" in err.problem


# --- header, rows, cells --------------------------------------------------------------------


def test_header_with_a_repeated_column(tmp_path: Path) -> None:
    err = refused(table(tmp_path, f"{HEADER},phase\n{ROW},I\n".encode()))
    assert (err.line, err.column) == (1, "phase")
    assert "repeats" in err.problem


def test_header_missing_a_required_column(tmp_path: Path) -> None:
    header = HEADER.replace(",start", "")
    err = refused(table(tmp_path, f"{header}\n{ROW.rsplit(',', 2)[0]},\n".encode()))
    assert (err.line, err.column) == (1, "start")


def test_a_huge_unknown_header_name_is_clipped(tmp_path: Path) -> None:
    err = refused(table(tmp_path, f"{HEADER},{'z' * 5000}\n{ROW},x\n".encode()))
    assert err.line == 1
    assert err.column is not None and len(err.column) == 60 and err.column.endswith("…")


def test_many_header_columns_are_checked_in_linear_time(tmp_path: Path) -> None:
    names = ",".join(f"c{i}" for i in range(200_000))  # quadratic would be 4e10 steps
    err = refused(table(tmp_path, f"{HEADER},{names}\n{ROW}\n".encode()))
    assert (err.line, err.column) == (1, "c0")


def test_duplicate_row_names_both_lines(tmp_path: Path) -> None:
    err = refused(table(tmp_path, f"{HEADER}\n{ROW}\n{ROW2}\n{ROW}\n".encode()))
    assert err.line == 4
    assert "repeats line 2 cell for cell" in err.problem


def test_same_id_in_two_rows_is_a_finding_not_an_error(tmp_path: Path) -> None:
    other = ROW2.replace("NCT04630769", "NCT03841110")
    rows = load_curated(table(tmp_path, f"{HEADER}\n{ROW}\n{other}\n".encode())).rows
    kinds = {f.kind for f in reconcile(rows, {})}
    assert "duplicate_id" in kinds


@pytest.mark.parametrize("column", ["product", "trial_id", "phase", "start"])
def test_empty_required_cell_names_line_and_column(tmp_path: Path, column: str) -> None:
    cells = ROW2.split(",")
    cells[HEADER.split(",").index(column)] = "  "
    err = refused(table(tmp_path, f"{HEADER}\n{ROW}\n{','.join(cells)}\n".encode()))
    assert (err.line, err.column) == (3, column)


def test_long_cell_over_the_cap_names_line_and_column(tmp_path: Path) -> None:
    long = "x" * (MAX_CELL_CHARS + 1)
    err = refused(table(tmp_path, f"{HEADER}\n{ROW}\n{ROW2.replace('ovarian', long)}\n".encode()))
    assert (err.line, err.column) == (3, "indication")
    assert f"{MAX_CELL_CHARS + 8:,} characters" in err.problem


def test_cell_beyond_the_csv_modules_limit_names_line_and_column(tmp_path: Path) -> None:
    long = '"' + "y" * 200_000 + '"'
    err = refused(table(tmp_path, f"{HEADER}\n{ROW}\n{ROW2.replace('Fate', long)}\n".encode()))
    assert (err.line, err.column) == (3, "sponsor")
    assert "longer than 10,000 characters" in err.problem


def test_cell_at_the_cap_is_accepted(tmp_path: Path) -> None:
    note = "n" * MAX_CELL_CHARS
    (row,) = load_curated(table(tmp_path, f"{HEADER}\n{ROW}{note}\n".encode())).rows
    assert len(row.note) == MAX_CELL_CHARS


def test_more_than_100k_rows_is_refused_at_the_row_past_the_cap(tmp_path: Path) -> None:
    header = "table,product,cell_type,indication,sponsor,trial_id,phase,nation,start"
    lines = [header] + [f"1,P{n},c,i,s,NCT{n:08d},I,US,2020" for n in range(MAX_ROWS + 1)]
    err = refused(table(tmp_path, ("\n".join(lines) + "\n").encode()))
    assert err.line == MAX_ROWS + 2
    assert f"more than {MAX_ROWS:,} rows" in err.problem


def test_file_over_the_byte_cap_is_refused_without_reading_it_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(curated, "MAX_BYTES", 1_000)
    path = table(tmp_path, f"{HEADER}\n{ROW}\n".encode() + b"x" * 2_000)
    with pytest.raises(CuratedTableError, match=r"larger than 0 MB"):
        load_curated(path)


# --- formula-like cells ---------------------------------------------------------------------

FORMULAS = {
    "product": '"=HYPERLINK(""http://evil.example"",""FT500"")"',
    "sponsor": "+Fate",
    "nation": "-",
    "indication": "@SUM(A1)",
}


def test_formula_like_cells_are_data_and_never_leave_unneutralised(tmp_path: Path) -> None:
    cells = ROW.split(",")
    for column, value in FORMULAS.items():
        cells[HEADER.split(",").index(column)] = value
    (row,) = load_curated(table(tmp_path, f"{HEADER}\n{','.join(cells)}\n".encode())).rows
    assert row.product == '=HYPERLINK("http://evil.example","FT500")'
    assert (row.sponsor, row.nation, row.indication) == ("+Fate", "-", "@SUM(A1)")
    printed = [row.product, row.sponsor, row.nation, row.indication]
    exported = corrections.render_csv([{"printed": p, "trial_id": row.trial_id} for p in printed])
    cells_out = [line.split(",", 4)[4] for line in exported.splitlines()[1:]]
    assert all(cell.lstrip('"').startswith("'") for cell in cells_out), exported


# --- the CLI: one line, documented exit codes, bounded output --------------------------------


def test_check_on_a_broken_table_prints_one_line_and_exits_4(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = table(tmp_path, f"{HEADER}\n{ROW}\n".encode() + b"\xff\n")
    result = runner.invoke(main, ["check", "--curated", str(path)])
    assert result.exit_code == EXIT_ERROR
    assert result.output.count("\n") == 1
    assert result.output.startswith(f"Error: {path}, line 3, column 'row': not UTF-8")


def test_check_escapes_control_characters_and_cuts_long_lines(
    runner: CliRunner, tmp_path: Path
) -> None:
    phase = "\x1b[2J" + "Z" * 5_000  # a terminal escape and a long unparseable phase
    row = ROW.replace(",I,US,", f",{phase},US,")
    path = table(tmp_path, f"{HEADER}\n{row}\n".encode())
    result = runner.invoke(main, ["check", "--curated", str(path)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert "\\x1b[2J" in result.output
    assert max(len(line) for line in result.output.splitlines()) < 2_100
    assert re.search(r"…\[\d[\d,]* more characters\]", result.output)


def test_check_prints_at_most_max_lines_of_each_kind(runner: CliRunner, tmp_path: Path) -> None:
    lines = [HEADER] + [
        f"{n},1,P{n},1,c,i,s,BADID{n},I,US,2020," for n in range(1, 61)
    ]  # 60 malformed IDs: 60 id_malformed and 60 id_suspect findings
    path = table(tmp_path, ("\n".join(lines) + "\n").encode())
    result = runner.invoke(main, ["check", "--curated", str(path), "--max-lines", "5"])
    assert result.exit_code == 0, result.output
    assert result.output.count(": id_malformed (error)") == 5
    assert "… and 55 more id_malformed (--max-lines to see more)" in result.output
    result = runner.invoke(main, ["check", "--curated", str(path), "--max-lines", "0"])
    assert result.output.count(": id_malformed (error)") == 60


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_load_or_raise_one_line(data: bytes) -> None:
    _arbitrary(data)


CELL = st.text(alphabet=st.sampled_from(list(',"\r\n\x00 aé=+-@I2019NCT0123456789\ufeff')))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells=st.lists(CELL, max_size=40), bom=st.booleans())
def test_csv_like_text_loads_or_raises_one_line(cells: list[str], bom: bool) -> None:
    text = ("\ufeff" if bom else "") + HEADER + "\n" + ROW + "\n" + ",".join(cells)
    _arbitrary(text.encode("utf-8"))


def _arbitrary(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        path.write_bytes(data)
        try:
            loaded = load_curated(path)
        except CuratedTableError as err:
            assert str(err).startswith(str(path))
            assert "\n" not in str(err) and "\r" not in str(err)
            assert err.line is None or err.line >= 1
        else:
            assert loaded.rows
            reconcile(loaded.rows, {})  # what check does next never raises either


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=200), CELL.map(lambda c: f"{HEADER}\n{c}".encode())))
def test_cli_check_exits_with_a_documented_code_and_no_traceback(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        path.write_bytes(data)
        result = CliRunner().invoke(
            main,
            ["check", "--curated", str(path)],
            env={"REGISTRY_SYNC_EXPECTATIONS_DIR": str(EXPECTATIONS)},
        )
    assert result.exit_code in (0, EXIT_GATE, EXIT_ERROR), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    if result.exit_code == EXIT_ERROR:
        assert result.output.startswith(f"Error: {path}")
        assert result.output.count("\n") == 1


# --- linear time --------------------------------------------------------------------------


def _hostile(path: Path, rows: int) -> Path:
    """The review's rows over and over, renumbered: every ID and product repeats rows/105 times
    (the shape that made duplicate grouping and product consistency quadratic)."""
    lines = BUNDLED_CURATED.read_text(encoding="utf-8").splitlines()
    body = lines[1:]
    out = [lines[0]]
    for n in range(rows):
        out.append(str(n + 1) + body[n % len(body)][body[n % len(body)].index(",") :])
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def _check_output(path: Path) -> tuple[int, int]:
    """What `check` lists for a table: how many findings, and how many characters they say."""
    findings = reconcile(load_curated(path).rows, {})
    return len(findings), sum(len(f.message) for f in findings)


def test_check_output_grows_linearly_with_repeated_ids(tmp_path: Path) -> None:
    """The quadratic part was what a finding lists (every other row of a product): with 4x the
    rows, the findings grow and what they say grows no faster than linearly. Measured in
    characters, not seconds, so the machine's load cannot make it flaky (timings: bench/)."""
    small_found, small_chars = _check_output(_hostile(tmp_path / "s.csv", 4_000))
    big_path = _hostile(tmp_path / "b.csv", 16_000)  # ~1.6 MB
    big_found, big_chars = _check_output(big_path)
    assert big_found > 3 * small_found  # the findings grow with the rows ...
    assert big_chars < 5 * small_chars, (small_chars, big_chars)  # ... their text linearly
    longest = max(len(f.message) for f in reconcile(load_curated(big_path).rows, {}))
    assert longest < 3_000  # a message names at most reconcile.LISTED other rows


# --- nothing stored is lost -----------------------------------------------------------------


def _store_state(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_run_with_a_bad_table_fails_before_fetching_or_writing(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = review_subset(tmp_path, ["NCT03841110"])
    replay = replay_copy(tmp_path, "NCT03841110")
    first = runner.invoke(main, ["run", "--replay", str(replay), "--curated", str(good)])
    assert first.exit_code in (0, 1), first.output
    before = _store_state(tmp_path / "data")
    assert any(name.endswith(".sqlite") for name in before)

    sent: list[object] = []
    original = requests.Session.send

    def counting_send(self: requests.Session, request: object, **kwargs: object) -> object:
        sent.append(request)
        return original(self, request, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(requests.Session, "send", counting_send)
    bad = table(tmp_path, good.read_bytes() + b"1,1,X,1,c,i,s,NCT0\x00,I,US,2020,\n", "bad.csv")
    result = runner.invoke(main, ["run", "--replay", str(replay), "--curated", str(bad)])
    assert result.exit_code == EXIT_ERROR
    assert result.output.count("\n") == 1
    assert result.output.startswith(f"Error: {bad}, line 3, column 'trial_id': a NUL character")
    assert sent == []
    assert _store_state(tmp_path / "data") == before
