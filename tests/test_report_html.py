"""The HTML report: hostile review and registry strings stay text, nothing loads from outside,
and the whole-review replay report holds its charts and every finding."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import BUNDLED_REPLAY, fast_settings
from registry_sync import report, report_assets, report_html, snapshot
from registry_sync.cli import main
from registry_sync.model import (
    CuratedRow,
    Finding,
    Origin,
    Outcome,
    RegistryRecord,
    Severity,
    TrialState,
    Verdict,
)
from registry_sync.pipeline import RunRequest, run_pipeline

WHEN = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
SCRIPT = "<script>alert(1)</script>"
QUOTES = '"O\'Brien" & <b>Sons</b>'
ATTR_BREAK = '"><img src=x onerror=alert(1)>'
ARABIC = "خلايا جذعية مستحثة"
HEBREW = "תאי גזע עובריים"
LONG = "A" * 5000
EVIDENCE = "https://clinicaltrials.gov/study/NCT06482268"
ODD_QUERY = 'https://clinicaltrials.gov/study/NCT04363346?x="onmouseover=alert(1)'
TITLE = "</script><script>alert('t')</script> Review \u2028 of hPSC"


class Parsed(HTMLParser):
    """Every tag with its attributes, the text as a reader sees it, and script bodies."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.scripts.append(data)
        elif self._in == "style":
            self.styles.append(data)
        else:
            self.text.append(data)


def parse(document: str) -> Parsed:
    parser = Parsed()
    parser.feed(document)
    parser.close()
    return parser


def hostile_data() -> snapshot.SnapshotData:
    """A small snapshot whose review rows, registry record and findings carry hostile text."""
    rows = [
        _row(2, 1, 3, SCRIPT, "NCT04363346", sponsor=QUOTES),
        _row(3, 2, 7, ARABIC, "NCT06482268", sponsor=HEBREW),
        _row(4, 3, 1, HEBREW, "jRCT209022038", sponsor=LONG),
    ]
    record = RegistryRecord(
        registry="ctgov",
        trial_id="NCT06482268",
        status="RECRUITING",
        start=None,
        lead_sponsor=SCRIPT,
        evidence_url=EVIDENCE,
    )
    states = [
        TrialState("ctgov", "NCT04363346", Outcome.NOT_FOUND, detail=SCRIPT),
        TrialState(
            "ctgov",
            "NCT06482268",
            Outcome.OK,
            record=record,
            fetched_at=WHEN,
            source_url=EVIDENCE,
            origin=Origin.RECONSTRUCTED,
        ),
        TrialState(None, "jRCT209022038", Outcome.ID_MALFORMED, detail=f"{HEBREW} {QUOTES}"),
    ]
    return snapshot.SnapshotData(
        run_id="20261125T030000Z-html",
        meta={
            "mode": "replay",
            "partial": True,
            "started_at": WHEN.isoformat(),
            "review": {"title": TITLE, "published": "2025-03-01"},
        },
        curated=rows,
        states=states,
        findings=hostile_findings(),
        payloads=[],
        parser_versions={"ctgov": 2},
        validation={},
    )


def _row(line: int, table: int, row: int, product: str, tid: str, sponsor: str) -> CuratedRow:
    return CuratedRow(
        line=line,
        table=table,
        row=row,
        product=product,
        cell_type="iPSC",
        indication=ARABIC,
        sponsor=sponsor,
        trial_id=tid,
        phase="I/II",
        nation="US",
        start="2024",
        registry="ctgov",
    )


def hostile_findings() -> list[Finding]:
    return [
        Finding(
            1,
            2,
            "NCT04363346",
            "sponsor",
            "sponsor_mismatch",
            Severity.WARNING,
            QUOTES,
            ATTR_BREAK,
            "javascript:alert(1)",
            f"review says {SCRIPT}",
            extra={"matched": "</script><script>alert(2)</script>", "rtl": ARABIC},
        ),
        Finding(
            2,
            3,
            "NCT06482268",
            "sponsor",
            "sponsor_mismatch",
            Severity.ERROR,
            HEBREW,
            LONG,
            EVIDENCE,
            f"{ARABIC} {LONG}",
            verdict=Verdict.WRONG_AT_PUBLICATION,
        ),
        Finding(
            2,
            3,
            "NCT06482268",
            "status",
            "status",
            Severity.INFO,
            None,
            "Recruiting",
            ODD_QUERY,
            "registry status Recruiting",
            stale=True,
            extra={"stale_since": "2026-11-20T03:00:00+00:00"},
            accepted_reason=f"we name the parent {SCRIPT}",
            accepted_on="2026-11-01",
        ),
        Finding(
            3,
            4,
            "jRCT209022038",
            "trial_id",
            "id_malformed",
            Severity.ERROR,
            "jRCT209022038",
            None,
            "data:text/html,<script>alert(3)</script>",
            "printed ID does not match",
        ),
    ]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = snapshot.write_snapshot(
        tmp_path_factory.mktemp("hostile"), hostile_data(), accepted=True
    )
    return path, report_html.render_html(report.load_content(path))


def test_hostile_strings_show_as_text_never_markup(hostile: tuple[Path, str]) -> None:
    _, document = hostile
    assert SCRIPT not in document and ATTR_BREAK not in document
    parsed = parse(document)
    text = "".join(parsed.text)
    for value in (SCRIPT, QUOTES, ATTR_BREAK, ARABIC, HEBREW, LONG, "alert(2)"):
        assert value in text, value[:40]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    # no element came from the data: only our own tags, no event handler anywhere
    assert {tag for tag, _ in parsed.tags} <= ALLOWED_TAGS
    assert not [a for _, attrs in parsed.tags for a in attrs if a.startswith("on")]
    assert "img" not in {tag for tag, _ in parsed.tags}


ALLOWED_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "header",
    "h1",
    "h2",
    "h3",
    "small",
    "p",
    "strong",
    "code",
    "nav",
    "a",
    "section",
    "div",
    "span",
    "article",
    "ol",
    "li",
    "bdi",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "details",
    "summary",
    "dl",
    "dt",
    "dd",
    "br",
    "figure",
    "figcaption",
    "svg",
    "g",
    "rect",
    "text",
    "line",
    "circle",
    "label",
    "input",
    "select",
    "option",
    "output",
    "script",
}


def test_nothing_loads_from_outside(hostile: tuple[Path, str]) -> None:
    _, document = hostile
    parsed = parse(document)
    links = set()
    for tag, attrs in parsed.tags:
        for name in ("src", "href", "xlink:href", "action", "formaction", "srcset", "poster"):
            value = attrs.get(name)
            if value is None or value.startswith(("#", "data:")):
                continue
            assert tag == "a" and name == "href", (tag, name, value)
            links.add(value)
    assert links == {EVIDENCE, ODD_QUERY}  # the javascript: and data: addresses are not links
    assert not [t for t, a in parsed.tags if t == "script" and "src" in a]
    assert "url(" not in "".join(parsed.styles) + document.split("<style>")[0]
    anchors = [a for t, a in parsed.tags if t == "a" and not str(a.get("href")).startswith("#")]
    assert anchors and all(a.get("rel") == "noopener noreferrer" for a in anchors)
    csp = [a["content"] for t, a in parsed.tags if t == "meta" and a.get("http-equiv")]
    assert csp == [report_html.CSP] and "default-src 'none'" in report_html.CSP
    text = "".join(parsed.text)
    assert "address not linked: javascript:alert(1)" in text


def test_embedded_json_cannot_close_its_script(hostile: tuple[Path, str]) -> None:
    _, document = hostile
    block = document.split('<script type="application/json" id="report-data">')[1]
    block = block.split("</script>")[0]
    assert "<" not in block and ">" not in block and "\u2028" not in block
    data = json.loads(block)
    assert data["review"] == {"title": TITLE, "published": "2025-03-01"}
    assert data["summary"]["findings"] == {"id_malformed": 1, "sponsor_mismatch": 2, "status": 1}


def test_review_title_rtl_and_long_values_are_contained(hostile: tuple[Path, str]) -> None:
    _, document = hostile
    title = parse(document.split("</title>")[0] + "</title>")
    assert "".join(title.text).strip() == f"Drift report: {TITLE}"
    assert "Review published <bdi>2025-03-01</bdi>" in document
    assert f"<bdi>{ARABIC}</bdi>" in document and f"<bdi>{HEBREW}</bdi>" in document
    assert f"<bdi>{LONG}</bdi>" in document
    assert "overflow-wrap:anywhere" in report_assets.STYLE
    assert "unicode-bidi:isolate" in report_assets.STYLE


def test_finding_rows_say_table_row_verdict_and_marks(hostile: tuple[Path, str]) -> None:
    path, document = hostile
    rows = re.findall(r"<tr data-severity=.*?</tr>", document)
    assert len(rows) == len(report.load_content(path).findings) == 4
    error = next(r for r in rows if 'data-verdict="wrong_at_publication"' in r)
    assert 'data-label="Row" data-sort="7">7<' in error and "wrong at publication" in error
    accepted = next(r for r in rows if 'data-kind="status"' in r)
    assert '<span class="mark accepted">accepted</span>' in accepted
    assert "(2026-11-01)" in accepted and "&lt;script&gt;" in accepted
    assert "values fetched 2026-11-20, 5 days before this run" in accepted
    assert '<span class="mark recon">reconstructed</span>' in accepted
    first = rows[0]
    assert "<summary>evidence</summary>" in first and "<dt>rtl</dt>" in first
    assert "line" not in "".join(parse(first).text).lower()


def test_what_to_fix_lists_open_errors_and_warnings_by_table(hostile: tuple[Path, str]) -> None:
    _, document = hostile
    fix = document.split('<section id="fix">')[1].split("</section>")[0]
    assert [int(t) for t in re.findall(r"<h3>Table (\d+)", fix)] == [1, 2, 3]
    assert fix.count("<li>") == 3  # the accepted info finding is not listed
    assert "1 findings the authors accepted" in fix
    unchecked = document.split('<section id="unchecked">')[1].split("</section>")[0]
    assert "Trials that could not be checked (2)" in unchecked
    assert "no registry 1" in unchecked and "&lt;script&gt;" in unchecked


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("https://clinicaltrials.gov/study/NCT06482268", True),
        ("http://www.chictr.org.cn/showproj.html?proj=1", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("data:text/html,hi", False),
        ("//evil.example/x", False),
        ("https:///nohost", False),
        ("", False),
        (None, False),
    ],
)
def test_only_http_addresses_become_links(url: str | None, linked: bool) -> None:
    assert (report_html.safe_url(url) is not None) is linked


def test_script_json_escapes_what_ends_a_script() -> None:
    text = report_html.script_json({"a": "</script><!-- & \u2028\u2029"})
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}
    assert json.loads(text) == {"a": "</script><!-- & \u2028\u2029"}


def test_cli_report_format_html_writes_the_file(hostile: tuple[Path, str], tmp_path: Path) -> None:
    path, document = hostile
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", str(path), "--format", "html", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == document


@pytest.fixture(scope="module")
def whole_review(tmp_path_factory: pytest.TempPathFactory) -> tuple[report.ReportContent, str]:
    tmp = tmp_path_factory.mktemp("whole")
    result = run_pipeline(fast_settings(tmp), RunRequest(replay_dir=BUNDLED_REPLAY))
    written = result.report_paths["html"]
    assert written.parent == result.report_paths["md"].parent and written.suffix == ".html"
    return report.load_content(result.snapshot_path), written.read_text(encoding="utf-8")


def test_whole_review_report_has_every_finding_and_chart(
    whole_review: tuple[report.ReportContent, str],
) -> None:
    content, document = whole_review
    table = document.split('<table id="findings-table"')[1].split("</table>")[0]
    assert table.count("<tr ") == len(content.findings) > 0
    captions = [unescape(c) for c in re.findall(r"<figcaption>([^<]+)", document)]
    assert captions == [
        "Findings by kind",
        "Findings by table of the review",
        "Outcomes by registry",
        "Current status of the review's trials",
        "Review start year vs registry start year",
    ]
    assert document.count("<svg ") == 5
    kinds = document.split("<figcaption>Findings by kind")[1].split("</svg>")[0]
    for kind, n in report.summary(content)["findings"].items():
        assert f"{kind.replace('_', ' ')}</text>" in kinds and f">{n}</text>" in kinds
    status = document.split("Current status of the review")[1].split("</svg>")[0]
    assert f"{len(content.records)} trials with a registry record" in status
    assert "Replay of recorded payloads" in document  # the replay caveat, as in markdown


def test_whole_review_fix_list_matches_open_errors_and_warnings(
    whole_review: tuple[report.ReportContent, str],
) -> None:
    content, document = whole_review
    fix = document.split('<section id="fix">')[1].split("</section>")[0]
    wanted = [f for f in content.findings if f["severity"] in ("error", "warning")]
    assert fix.count("<li>") == len(wanted) > 0
    assert "<strong>row 7</strong> · <bdi>CT1-DAP001</bdi>" in fix
    unchecked = document.split('<section id="unchecked">')[1].split("</section>")[0]
    s = report.summary(content)
    assert f"could not be checked ({s['trials'] - s['outcomes']['ok']})" in unchecked
    assert f'data-label="Trials">{s["outcomes"]["not_in_replay"]}<' in unchecked
