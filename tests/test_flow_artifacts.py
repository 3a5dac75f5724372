"""The flows publish the run's summary (markdown) and its findings (a table) as Prefect
artifacts, read back here through the Prefect client. Shares the session's harness."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from helpers import BUNDLED_CURATED, BUNDLED_REPLAY, EXPECTATIONS
from registry_sync import artifacts
from registry_sync.artifacts import finding_rows, summary_markdown
from registry_sync.report import ReportContent
from test_flows import load_flow_module

pytestmark = pytest.mark.prefect

IDS = ["NCT04945018", "jRCT2053190081"]  # HS-001: start still estimated; HeartSheet: 'IIT'


def artifacts_of(flow_run_id: UUID) -> dict[str, Any]:
    """The flow run's artifacts by key, as the Prefect API gives them back."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found if a.key}


def test_adhoc_flow_publishes_summary_and_findings(
    harness: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REGISTRY_SYNC_EXPECTATIONS_DIR", str(EXPECTATIONS))
    monkeypatch.setenv("REGISTRY_SYNC_CURATED", str(BUNDLED_CURATED))
    adhoc = load_flow_module("reconcile").adhoc_reconcile
    state = adhoc(
        ids=IDS, data_dir=str(tmp_path), replay_dir=str(BUNDLED_REPLAY), return_state=True
    )
    out = state.result()
    got = artifacts_of(state.state_details.flow_run_id)
    assert {artifacts.SUMMARY_KEY, artifacts.FINDINGS_KEY, "drift-report"} <= set(got)

    summary = got[artifacts.SUMMARY_KEY]
    assert summary.type == "markdown"
    text = str(summary.data)
    assert f"run {out['run_id']} (replay)" in text
    assert f"Markdown report: `{out['report']}`" in text
    assert "### Table 1" in text
    assert "row 24, HS-001 (NCT04945018): **warning** `start_not_actual`" in text
    assert "row 23, HeartSheet (jRCT2053190081): **warning** `phase_unparsed`" in text

    table = got[artifacts.FINDINGS_KEY]
    assert table.type == "table"
    rows = json.loads(str(table.data))
    assert sum(out["findings"].values()) == len(rows)
    assert all(set(r) == set(artifacts.FINDING_COLUMNS) for r in rows)
    (hs001,) = [r for r in rows if r["kind"] == "start_not_actual"]
    assert hs001["table"] == 1 and hs001["row"] == 24 and hs001["trial_id"] == "NCT04945018"
    assert hs001["severity"] == "warning" and hs001["verdict"] == "wrong_at_publication"
    assert hs001["evidence_url"] == "https://clinicaltrials.gov/study/NCT04945018"


def content_with(findings: list[dict[str, Any]]) -> ReportContent:
    curated = {
        10: {"line": 10, "row": 9, "product": "HS-001"},
        30: {"line": 30, "row": 2, "product": "<b>Eyecyte</b>"},
    }
    meta = {"run_id": "r1", "mode": "live", "partial": False, "accepted": True}
    return ReportContent(Path("s.sqlite"), meta, curated, findings, {"NCT1": {"outcome": "ok"}}, {})


def finding(line: int, table: int, severity: str, **extra: Any) -> dict[str, Any]:
    return {
        "line": line,
        "table": table,
        "trial_id": "NCT1",
        "kind": "phase_mismatch",
        "severity": severity,
        "verdict": "unknown",
        "message": "printed I/II,\nregistry says PHASE1",
        "evidence_url": "https://clinicaltrials.gov/study/NCT1",
        **extra,
    }


def test_summary_names_the_html_report_first_and_groups_by_table() -> None:
    content = content_with(
        [
            finding(10, 1, "error"),
            finding(30, 3, "warning"),
            finding(10, 1, "info"),
            finding(30, 3, "error", accepted_reason="we name the parent company"),
        ]
    )
    text = summary_markdown(content, {"md": Path("r.md"), "html": Path("r.html")})
    assert text.index("HTML report: `r.html`") < text.index("Markdown report: `r.md`")
    assert "Findings by severity: error 2, info 1, warning 1" in text
    assert "### Table 1\n\n- row 9, HS-001 (NCT1): **error** `phase_mismatch`: printed I/II, " in (
        text
    )
    assert "&lt;b&gt;Eyecyte&lt;/b&gt;" in text and "<b>" not in text  # review strings as text
    assert text.count("`phase_mismatch`") == 2  # the info and the accepted finding left out
    assert "HTML report" not in summary_markdown(content, {"md": Path("r.md")})


def test_summary_caps_the_list_and_points_at_the_table() -> None:
    many = [finding(10, 1, "warning") for _ in range(artifacts.MAX_FIX_LINES + 5)]
    text = summary_markdown(content_with(many), {})
    assert text.count("`phase_mismatch`") == artifacts.MAX_FIX_LINES
    assert "… and 5 more: see the findings table." in text


def test_finding_rows_carry_the_review_row() -> None:
    (row,) = finding_rows(content_with([finding(30, 3, "warning")]))
    assert row == {
        "table": 3,
        "row": 2,
        "trial_id": "NCT1",
        "kind": "phase_mismatch",
        "severity": "warning",
        "verdict": "unknown",
        "message": "printed I/II,\nregistry says PHASE1",
        "evidence_url": "https://clinicaltrials.gov/study/NCT1",
    }


def test_flow_of_several_reviews_publishes_each_reviews_artifacts(
    harness: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from registry_sync import snapshot
    from test_reviews import A, B, split_tables

    monkeypatch.setenv("REGISTRY_SYNC_EXPECTATIONS_DIR", str(EXPECTATIONS))
    a, b = split_tables(tmp_path / "tables")
    nightly = load_flow_module("nightly").nightly_sync
    state = nightly(
        data_dir=str(tmp_path / "data"),
        replay_dir=str(BUNDLED_REPLAY),
        curated=[str(a), str(b)],
        return_state=True,
    )
    out = state.result()
    got = artifacts_of(state.state_details.flow_run_id)
    meta = snapshot.read_meta(Path(out["snapshot"]))
    for name, slug in ((A, "review-a"), (B, "review-b")):
        summary = str(got[f"{artifacts.SUMMARY_KEY}-{slug}"].data)
        assert f"{out['run_id']}.{name}.md" in summary
        rows = json.loads(str(got[f"{artifacts.FINDINGS_KEY}-{slug}"].data))
        (entry,) = [r for r in meta["reviews"] if r["name"] == name]
        assert len(rows) == entry["findings"] > 0
