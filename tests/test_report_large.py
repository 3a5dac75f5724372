"""A large run's reports: past `report.LIST_ALL_UP_TO` findings the markdown and HTML list the
first `report.LIST_PER_KIND` of each kind and say how many more and where; every count stays
complete and the JSON report keeps every finding. (A small run lists everything: the bundled
review's reports in test_report.py and test_report_html.py.)"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from registry_sync import report, report_html, snapshot
from registry_sync.model import CuratedRow, Finding, Outcome, Severity, TrialState

WHEN = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
ROWS = 1_100  # phase on every row, status on every row, sponsor on every third: 2,567 findings
NOT_FOUND = 350  # the last rows' trials: not_found, and unchecked


def large_data() -> snapshot.SnapshotData:
    rows, states, findings = [], [], []
    for i in range(ROWS):
        line, tid = i + 2, f"NCT9{i:07d}"
        rows.append(
            CuratedRow(
                line=line,
                table=1 + i % 3,
                row=i + 1,
                product=f"Product {i}",
                cell_type="iPSC",
                indication="x",
                sponsor="Acme",
                trial_id=tid,
                phase="II",
                nation="US",
                start="2018",
                registry="ctgov",
            )
        )
        missing = i >= ROWS - NOT_FOUND
        states.append(
            TrialState("ctgov", tid, Outcome.NOT_FOUND if missing else Outcome.OK, detail="404")
        )
        table = 1 + i % 3
        findings.append(
            Finding(
                table,
                line,
                tid,
                "phase",
                "phase_mismatch",
                Severity.WARNING,
                "II",
                "I",
                message=f"phase differs {i}",
                extra={"verdict_why": f"why {i}"},
            )
        )
        findings.append(
            Finding(table, line, tid, "status", "status", Severity.INFO, None, "RECRUITING")
        )
        if i % 3 == 0:
            findings.append(
                Finding(
                    table,
                    line,
                    tid,
                    "sponsor",
                    "sponsor_mismatch",
                    Severity.INFO,
                    "Acme",
                    "Acme Inc",
                    message=f"sponsor differs {i}",
                )
            )
    return snapshot.SnapshotData(
        run_id="20261125T030000Z-large",
        meta={"mode": "replay", "started_at": WHEN.isoformat()},
        curated=rows,
        states=states,
        findings=findings,
        payloads=[],
        parser_versions={"ctgov": 2},
        validation={},
    )


@pytest.fixture(scope="module")
def written(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[report.ReportContent, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("large")
    path = snapshot.write_snapshot(tmp / "snapshots", large_data(), accepted=True)
    paths, _ = report.write_reports(path, tmp / "reports")
    texts = {fmt: p.read_text(encoding="utf-8") for fmt, p in paths.items()}
    return report.load_content(path), texts


def kinds(content: report.ReportContent) -> dict[str, int]:
    return dict(report.summary(content)["findings"])


def test_the_fixture_is_past_the_threshold(
    written: tuple[report.ReportContent, dict[str, str]],
) -> None:
    content, _ = written
    assert kinds(content) == {"phase_mismatch": 1100, "sponsor_mismatch": 367, "status": 1100}
    assert len(content.findings) > report.LIST_ALL_UP_TO
    assert report.list_limit(content) == report.LIST_PER_KIND == 200


def test_markdown_lists_the_first_of_each_kind_and_says_how_many_more(
    written: tuple[report.ReportContent, dict[str, str]],
) -> None:
    content, texts = written
    md = texts["md"]
    # counts are complete: the summary says every kind's whole number
    assert "- Findings by kind: phase_mismatch 1100, sponsor_mismatch 367, status 1100" in md
    assert "the first 200 of each kind (this run has 2,567 findings and 1,100 trials)" in md
    listed = {
        "phase_mismatch": md.count("phase differs "),
        "sponsor_mismatch": md.count("sponsor differs "),
        "status": len(re.findall(r"^\| \d \| Product \d+ \|", md, re.M)),
    }
    assert listed == {"phase_mismatch": 200, "sponsor_mismatch": 200, "status": 200}
    for kind, total in kinds(content).items():
        assert f"{total - 200:,} more `{kind}` findings not listed here: {report.WHERE_ALL}." in md
    assert "`registry-sync browse`" in md and "JSON report" in md
    # the first in table/row order are the ones listed: table 1's rows first
    assert "phase differs 0 " in md and "phase differs 1 " not in md
    # the verdict's reason is read from each listed finding's details
    assert "_Verdict: why 0._" in md


def test_markdown_unchecked_ids_are_bounded_too(
    written: tuple[report.ReportContent, dict[str, str]],
) -> None:
    md = written[1]["md"]
    line = next(ln for ln in md.splitlines() if "trials `not_found`**" in ln)
    assert line.startswith(f"- **{NOT_FOUND} trials `not_found`**")
    assert line.count("NCT9") == 200 and f"and {NOT_FOUND - 200:,} more; every one is" in line


def test_html_lists_the_first_of_each_kind_and_says_where_the_rest_are(
    written: tuple[report.ReportContent, dict[str, str]],
) -> None:
    content, texts = written
    html = texts["html"]
    assert html.count("<tr data-severity=") == 600  # 200 of each of the three kinds
    assert "Findings: the first 200 of each kind (600 of 2,567)" in html
    assert "900 more <code>phase_mismatch</code> findings (1,100 in all) not listed" in html
    assert "167 more <code>sponsor_mismatch</code> findings (367 in all)" in html
    assert "<code>registry-sync browse</code>" in html
    # what to fix: 1,100 warnings over three tables, each listing 200 and counting the rest
    assert html.count("more errors and warnings in Table") == 3
    assert "167 more errors and warnings in Table 1 not listed" in html
    assert "<small>367 warnings</small>" in html  # the table's count is whole
    # the summary data the page carries counts every finding
    data = json.loads(html.split('id="report-data">')[1].split("</script>")[0])
    assert data["summary"]["findings"] == kinds(content)


def test_json_report_carries_every_finding(
    written: tuple[report.ReportContent, dict[str, str]],
) -> None:
    content, texts = written
    doc = json.loads(texts["json"])
    assert len(doc["findings"]) == len(content.findings) == 2567
    assert {f["key"] for f in doc["findings"]} == {f["key"] for f in content.findings}
    assert doc["findings"][0]["product"] == "Product 0" and doc["findings"][0]["row"] == 1
    assert "id" not in doc["findings"][0] and doc["findings"][0]["accepted"] is False
    assert len(doc["unchecked"]) == NOT_FOUND
    assert doc["summary"]["findings"] == kinds(content)
    assert report.render_json(content) == texts["json"]  # the streamed file is the same text


def test_corrections_csv_keeps_every_correction(
    written: tuple[report.ReportContent, dict[str, str]],
) -> None:
    content = written[0]
    csv_text = report.render(content, "corrections")
    # a correction per phase and per sponsor finding, none left out for length
    assert len(csv_text.splitlines()) == 1 + 1100 + 367


def test_a_small_run_lists_everything(tmp_path: Path) -> None:
    data = large_data()
    few = [f for f in data.findings if f.line < 50]
    small = snapshot.SnapshotData(
        **{**data.__dict__, "findings": few, "curated": data.curated[:48], "states": []}
    )
    content = report.load_content(snapshot.write_snapshot(tmp_path, small, accepted=True))
    assert report.list_limit(content) is None
    md, html = report.render_markdown(content), report_html.render_html(content)
    assert "not listed here" not in md and "not listed here" not in html
    assert md.count("phase differs ") == 48
    assert f"All findings ({len(few)})" in html


def test_changes_since_the_previous_run_are_bounded_too(tmp_path: Path) -> None:
    data = large_data()
    empty = snapshot.SnapshotData(**{**data.__dict__, "run_id": "20261124T030000Z-prev"})
    empty = snapshot.SnapshotData(**{**empty.__dict__, "findings": []})
    previous = snapshot.write_snapshot(tmp_path / "a", empty, accepted=True)
    path = snapshot.write_snapshot(tmp_path / "b", data, accepted=True)
    _, md = report.write_reports(path, tmp_path / "reports", previous=previous)
    changes = md.split("## Changes since run")[1]
    assert "**New findings** (2567):" in changes  # the count is whole
    assert changes.count("\n- Table ") == 200
    assert "- 2,367 more not listed here: see `registry-sync diff --format json`." in changes
