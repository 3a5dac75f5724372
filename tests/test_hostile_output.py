"""Hostile registry content: every output escapes registry and review strings, CSV cells are
never formulas, XML goes through defusedxml, and no personal contact data or cookie is stored
(a whole-review replay with the recorded pages that carry contacts, scanned column by column).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from helpers import BUNDLED_CURATED, BUNDLED_REPLAY, FIXTURES, fast_settings
from registry_sync import artifacts, decisions, diff, escape, report, snapshot
from registry_sync.cli import main
from registry_sync.model import (
    CuratedRow,
    Finding,
    Outcome,
    RawPayload,
    RegistryRecord,
    Severity,
    TrialState,
)
from registry_sync.pipeline import RunRequest, run_pipeline
from registry_sync.registries import anzctr, chictr, ctgov, jrct, umin

WHEN = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
PIPE_BREAK = "Fate | Therapeutics\n| x | y |\r\nz"
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"
LINK = "[click](javascript:alert(1))"
TICKS = "`rm -rf /` ``x``"
ANSI = "\x1b[31mred\x1b[0m\x1b]0;title\x07\x00bell\x07"
FORMULA = '=HYPERLINK("http://evil.example","x")'
HEADING = "# Heading\n- item"
HOSTILE = (PIPE_BREAK, IMG, SCRIPT, LINK, TICKS, ANSI, FORMULA, HEADING)


def _row(line: int, row: int, product: str, tid: str, sponsor: str) -> CuratedRow:
    return CuratedRow(
        line=line,
        table=1,
        row=row,
        product=product,
        cell_type="iPSC",
        indication=IMG,
        sponsor=sponsor,
        trial_id=tid,
        phase="I",
        nation="US",
        start="2024",
        registry="ctgov",
    )


def _finding(
    line: int, tid: str, kind: str, value: str, url: str, reason: str = "", on: str = ""
) -> Finding:
    return Finding(
        1,
        line,
        tid,
        "sponsor",
        kind,
        Severity.WARNING,
        "review",
        value,
        url,
        value,
        accepted_reason=reason,
        accepted_on=on,
    )


def hostile_data(run_id: str, registry_value: str) -> snapshot.SnapshotData:
    rows = [_row(2, 1, PIPE_BREAK, "NCT04363346", FORMULA), _row(3, 2, SCRIPT, "NCT06482268", LINK)]
    record = RegistryRecord(
        registry="ctgov",
        trial_id="NCT06482268",
        status="RECRUITING",
        start=None,
        lead_sponsor=registry_value,
        evidence_url="https://clinicaltrials.gov/study/NCT06482268",
    )
    states = [
        TrialState("ctgov", "NCT04363346", Outcome.BLOCKED, detail=f"{PIPE_BREAK} {ANSI}"),
        TrialState("ctgov", "NCT06482268", Outcome.OK, record=record, fetched_at=WHEN),
    ]
    findings = [
        _finding(2, "NCT04363346", "sponsor_mismatch", registry_value, "javascript:alert(1)"),
        _finding(3, "NCT06482268", "sponsor_mismatch", TICKS, "https://x.org/a?b=1"),
        _finding(3, "NCT06482268", "status", PIPE_BREAK, "https://clinicaltrials.gov/x"),
        _finding(
            2,
            "NCT04363346",
            "product_mismatch",
            HEADING,
            "https://x.org/a|b",
            reason=FORMULA + ANSI,
            on="2026-11-01",
        ),
    ]
    return snapshot.SnapshotData(
        run_id=run_id,
        meta={
            "mode": "replay",
            "partial": True,
            "started_at": WHEN.isoformat(),
            "review": {"title": f"{SCRIPT} {PIPE_BREAK}", "published": "2025-03-01"},
            "data_timestamps": {"ctgov": IMG},
            "decisions": {"notes": [LINK]},
        },
        curated=rows,
        states=states,
        findings=findings,
        payloads=[],
        parser_versions={"ctgov": 3},
        validation={},
    )


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    store = tmp_path_factory.mktemp("hostile")
    old = snapshot.write_snapshot(store, hostile_data("20261124T030000Z-old1", IMG), accepted=True)
    new = snapshot.write_snapshot(store, hostile_data("20261125T030000Z-new1", ANSI), accepted=True)
    return old, new


def assert_markdown_inert(md: str) -> None:
    """Nothing in `md` is markup from the data: no raw tag, no control character, no link
    but an http(s) autolink, and every table row has its header's number of cells."""
    assert not re.search(r"<(script|img|/script)", md, re.I)
    assert "\x1b" not in md and "\x00" not in md and "\x07" not in md and "\r" not in md
    assert not re.search(r"(?<!\\)\]\(", md)  # no [text](target) link from the data
    assert "<javascript" not in md and "<data:" not in md
    for target in re.findall(r"<([^<>\s]+)>", md):  # autolinks are the only <…> left
        assert target.startswith(("https://", "http://")), target
    cells = None
    for line in md.splitlines():
        if not line.startswith("|"):
            cells = None
            continue
        n = len(re.findall(r"(?<!\\)\|", line))
        cells = n if cells is None else cells
        assert n == cells, line
    for line in md.splitlines():  # no heading or list item came from the data
        assert not line.startswith("# Heading") and not line.startswith("- item")


def test_markdown_report_is_inert(snapshots: tuple[Path, Path]) -> None:
    md = report.render_markdown(report.load_content(snapshots[1]))
    assert_markdown_inert(md)
    assert "| Table | Product | Trial | Status | Last updated |" in md  # a table was parsed
    assert "&lt;img src=x onerror=alert(1)&gt;" in md  # shown, as text
    assert "Fate \\| Therapeutics \\| x \\| y \\| z" in md  # one row, not four
    assert "\\[click\\](javascript:alert(1))" in md
    assert "— <https://x.org/a?b=1>" in md  # an http(s) URL is a link
    assert "— javascript:alert(1)" in md  # anything else is text


def test_diff_and_artifacts_are_inert(snapshots: tuple[Path, Path]) -> None:
    old, new = snapshots
    changes = diff.diff_snapshots(diff.load_rows(old), diff.load_rows(new))
    assert changes.changes  # the sponsor changed from one hostile value to another
    assert_markdown_inert("\n".join(diff.render_diff_markdown(changes)))
    content = report.load_content(new)
    assert_markdown_inert(artifacts.summary_markdown(content, {"md": Path("r|x.md")}))
    for row in artifacts.finding_rows(content):
        for cell in row.values():
            assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", str(cell)), cell


def test_json_and_corrections_keep_values_as_data(snapshots: tuple[Path, Path]) -> None:
    content = report.load_content(snapshots[1])
    doc = json.loads(report.render_json(content))
    assert SCRIPT in {f["product"] for f in doc["findings"]}  # JSON escapes by being JSON
    table = list(csv.reader(io.StringIO(report.render(content, "corrections"))))
    assert len(table) > 1
    for row in table:
        for cell in row:
            assert not cell.startswith(escape.FORMULA_START), cell


def test_console_summary_has_no_escape_sequences(
    snapshots: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_SYNC_DATA_DIR", str(tmp_path))
    curated = tmp_path / "review.csv"
    curated.write_text("row,table\n", encoding="utf-8")
    listing = CliRunner().invoke(
        main, ["accept", "--snapshot", str(snapshots[1]), "--curated", str(curated), "--list"]
    )
    assert listing.exit_code == 0, listing.output
    key = next(k for k in diff.load_rows(snapshots[1]).findings if k.startswith("sponsor"))
    result = CliRunner().invoke(
        main,
        [
            *("accept", key, "--reason", FORMULA + ANSI, "--snapshot", str(snapshots[1])),
            *("--curated", str(curated), "--by", ANSI),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "added: " in result.output and "red" in result.output


def test_decisions_file_cells_are_never_formulas_and_read_back_exact(tmp_path: Path) -> None:
    where = tmp_path / "review.decisions.csv"
    reason = '=HYPERLINK("http://evil.example","ok")'
    made = decisions.Decision("sponsor_mismatch:1:2:NCT04363346:sponsor", "@SUM(A1)", reason,
                              "2026-11-25", "+me")  # fmt: skip
    written = decisions.write_decision(where, made)
    cells = [c for row in csv.reader(io.StringIO(where.read_text("utf-8"))) for c in row]
    assert not [c for c in cells if c.startswith(escape.FORMULA_START)]
    assert f"'{reason}" in cells
    (back,) = written.rows
    assert (back.reason, back.registry_value, back.decided_by) == (reason, "@SUM(A1)", "+me")


@given(st.text())
def test_markdown_text_is_one_inert_line(value: str) -> None:
    shown = escape.md(value)
    assert "\n" not in shown and "\r" not in shown and "<" not in shown
    assert not re.search(r"(?<!\\)\|", shown) and not re.search(r"(?<!\\)`", shown)
    assert "\x1b" not in escape.console(value) and "\n" not in escape.console(value)
    assert escape.csv_cell_read(escape.csv_cell(value)) == value


def test_xml_is_parsed_with_defusedxml_only() -> None:
    """Nothing but defusedxml parses XML: xml.etree is imported for its `Element` type alone."""
    src = Path(__file__).parents[1] / "src"
    unsafe = re.compile(
        r"^\s*(import (xml\.(etree|dom|sax)|lxml)|from (xml\.(dom|sax)|lxml)\b"
        r"|from xml\.etree(\.ElementTree)? import (?!Element$))",
        re.M,
    )
    found = [
        f"{p}: {m.group(0).strip()}"
        for p in src.rglob("*.py")
        for m in unsafe.finditer(p.read_text(encoding="utf-8"))
    ]
    assert found == []


# The recorded pages that carry people: the bundled review plus rows for these trials.
WITH_CONTACTS = (
    *("NCT06171568", "NCT00763412", "jRCTs051180190", "UMIN000027821"),
    *("ChiCTR2400084905", "ACTRN12605000001695", "CTR20252821"),
)
# Contacts' names and phones the served pages hold: none may be stored. (Not a contact: a
# sponsor who is a person, NCT00763412's "Arbelaez, Ana Maria", is the registry's sponsor
# value the review is checked against; authors in a reference citation are bibliography.)
PEOPLE = (
    "Heslot",
    "Mandonnet",
    "01.49.95.81.69",
    "Ran Zhong",
    "15622150974",
    "Jun rong Liu",
    "矢部",
    "YABE",
    "0463-93-1121",
    "075-311-5311",
    "石田",
    "张娇",
    "程颖",
    "156 8305 3632",
    "150 4404 4052",
    "张宁",
    "Goldstein",
)
EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


@pytest.fixture(scope="module")
def contacts_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("contacts")
    extra = [
        f"{200 + i},9,extra-{i},1,iPSC,x,X,{tid},I,US,2020," for i, tid in enumerate(WITH_CONTACTS)
    ]
    curated = tmp / "review.csv"
    curated.write_text(
        BUNDLED_CURATED.read_text(encoding="utf-8").rstrip("\n") + "\n" + "\n".join(extra) + "\n",
        encoding="utf-8",
    )
    result = run_pipeline(fast_settings(tmp, curated), RunRequest(replay_dir=BUNDLED_REPLAY))
    assert result.outcomes["ok"] == 15 + len(WITH_CONTACTS)  # each one parsed, from the copy
    return result.snapshot_path


def test_whole_review_snapshot_stores_no_contact_data(contacts_run: Path) -> None:
    conn = sqlite3.connect(f"file:{contacts_run}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        scanned = 0
        for table in tables:
            for row in conn.execute(f'select * from "{table}"'):
                for value in row:
                    if isinstance(value, str | bytes):
                        data = value if isinstance(value, bytes) else value.encode()
                        scanned += len(data)
                        assert not EMAIL.search(data), (table, EMAIL.search(data))
                        assert not [p for p in PEOPLE if p.encode() in data], table
        served = conn.execute("select count(*), sum(redacted) from requests where status = 200")
        answered, redacted = served.fetchone()
        headers = [json.loads(h) for (h,) in conn.execute("select headers from requests")]
    finally:
        conn.close()
    for data in snapshot.payload_bodies(contacts_run).values():  # the bodies, wherever kept
        scanned += len(data)
        assert not EMAIL.search(data), EMAIL.search(data)
        assert not [p for p in PEOPLE if p.encode() in data]
    assert scanned > 1_000_000  # the pages are there, as evidence, without the people
    assert redacted >= len(WITH_CONTACTS) and answered >= redacted
    assert not [h for h in headers if {k.lower() for k in h} & {"set-cookie", "cookie"}]


def test_ctgov_contacts_redacted_wherever_they_sit() -> None:
    body = next((BUNDLED_REPLAY / "ctgov" / "recorded").glob("study_NCT06171568_*.json"))
    raw = body.read_bytes()
    page = json.dumps({"studies": [json.loads(raw)], "nextPageToken": None}).encode()
    for served in (raw, page):
        cleaned = ctgov.redact(served)
        assert b"Heslot" in served and not EMAIL.search(cleaned) and b"Heslot" not in cleaned
        assert ctgov.redact(cleaned) == cleaned  # stable: redacting twice changes nothing
    doc = json.loads(ctgov.redact(raw))
    module = doc["protocolSection"]["contactsLocationsModule"]
    assert module["centralContacts"][0] == {
        "email": "[redacted]",
        "name": "[redacted]",
        "phone": "[redacted]",
        "phoneExt": "[redacted]",
        "role": "CONTACT",
    }
    assert module["overallOfficials"][0]["affiliation"].startswith("Assistance Publique")
    assert module["locations"][0]["country"] == "France"  # what parse() reads is kept
    payload = RawPayload("ctgov", "NCT06171568", "https://x", WHEN, raw)
    assert ctgov.parse(payload) == ctgov.parse(
        RawPayload("ctgov", "NCT06171568", "https://x", WHEN, ctgov.redact(raw))
    )
    assert ctgov.redact(b"<html>503 write to ops@example.org</html>") == (
        b"<html>503 write to [redacted]</html>"  # not JSON: kept, without the address
    )


@pytest.mark.parametrize(
    ("module", "fixture", "trial_id"),
    [
        (jrct, "jrct/latest-detail_jRCTs051180190_ja_2020-03.html", "jRCTs051180190"),
        (umin, "umin/ctr_view_recptno_R000031865_ja_2020-03.html", "UMIN000027821"),
        (chictr, "chictr/showproj_ChiCTR2400084905_bilingual_2025-11.html", "ChiCTR2400084905"),
        (chictr, "chictr/xml-download_ChiCTR2000034346_proj55654_2020-07.xml", "ChiCTR2000034346"),
        (anzctr, "anzctr/TrialReview_ACTRN12605000001695_2018-06.html", "ACTRN12605000001695"),
    ],
)
def test_registry_pages_lose_contacts_not_values(module, fixture, trial_id) -> None:  # type: ignore[no-untyped-def]
    body = (FIXTURES / fixture).read_bytes()
    cleaned = module.redact(body)
    assert EMAIL.search(body) and not EMAIL.search(cleaned)
    assert [p for p in PEOPLE if p.encode() in body] and not [
        p for p in PEOPLE if p.encode() in cleaned
    ]
    kind = "text/xml" if fixture.endswith(".xml") else "text/html"

    def parsed(data: bytes) -> RegistryRecord:
        return module.parse(  # type: ignore[no-any-return]
            RawPayload(module.KEY, trial_id, "https://x", WHEN, data, kind)
        )

    assert parsed(cleaned) == parsed(body)
    assert module.redact(cleaned) == cleaned
