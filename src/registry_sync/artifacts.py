"""What a flow run publishes besides the drift report (pure over a snapshot's report content):
a summary an author reads first (what to fix, counts, where the reports are) and the findings
as table rows. `prefect_tasks` hands these to Prefect.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from registry_sync.escape import md, md_code, md_link, text
from registry_sync.report import ReportContent

SUMMARY_KEY = "registry-sync-summary"  # Prefect keys: lowercase letters, digits and dashes
FINDINGS_KEY = "registry-sync-findings"
FIX_SEVERITIES = ("error", "warning")
MAX_FIX_LINES = 60  # the rest are in the findings table
FINDING_COLUMNS = (
    "table",
    "row",
    "trial_id",
    "kind",
    "severity",
    "verdict",
    "message",
    "evidence_url",
)


def finding_rows(content: ReportContent) -> list[dict[str, Any]]:
    """One row per finding, keyed to the review's table and row, in the report's order."""
    rows = []
    for f in content.findings:
        curated = content.curated.get(f["line"], {})
        row = {c: _cell(f.get(c)) for c in FINDING_COLUMNS}
        row["row"] = _cell(curated.get("row"))
        rows.append(row)
    return rows


def summary_markdown(content: ReportContent, report_paths: Mapping[str, Path | str]) -> str:
    """Counts, where the reports are (the HTML one first, when there is one), then the errors
    and warnings to fix, grouped by the review's table."""
    meta = content.meta
    review = Path(str(meta.get("curated_path") or "review")).stem
    state = "PARTIAL" if meta.get("partial") else "complete"
    gate = "accepted" if meta.get("accepted", True) else "REJECTED by the quality gate"
    outcomes = Counter(str(o["outcome"]) for o in content.outcomes.values())
    severities = Counter(str(f["severity"]) for f in content.findings)
    kinds = Counter(str(f["kind"]) for f in content.findings)
    lines = [
        f"# {md(review)}: run {md(meta.get('run_id', '?'))} ({md(meta.get('mode', '?'))})",
        "",
        f"**{state}**, {gate}. {len(content.curated)} rows of the review, "
        f"{len(content.outcomes)} trial IDs.",
        "",
        "- Trials by outcome: " + _counts(outcomes),
        "- Findings by severity: " + _counts(severities),
        "- Findings by kind: " + _counts(kinds),
    ]
    for fmt, name in (("html", "HTML report"), ("md", "Markdown report"), ("json", "JSON")):
        if report_paths.get(fmt):
            lines.append(f"- {name}: {md_code(report_paths[fmt])}")
    lines += ["", "## What to fix in the review", ""]
    lines += _fix_lines(content)
    return "\n".join(lines).rstrip() + "\n"


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{md(k)} {v}" for k, v in sorted(counter.items())) or "none"


def _fix_lines(content: ReportContent) -> list[str]:
    todo = [
        f
        for f in content.findings
        if f["severity"] in FIX_SEVERITIES and not f.get("accepted_reason")
    ]
    if not todo:
        return ["Nothing: no errors or warnings in the trials that could be checked."]
    out: list[str] = []
    current = None
    for f in todo[:MAX_FIX_LINES]:
        if f["table"] != current:
            current = f["table"]
            out += ([""] if out else []) + [f"### Table {md(current)}", ""]
        curated = content.curated.get(f["line"], {})
        where = f"row {md(curated['row'])}" if curated.get("row") else f"CSV line {f['line']}"
        link = f" {md_link(f['evidence_url'])}" if f.get("evidence_url") else ""
        out.append(
            f"- {where}, {md(curated.get('product', '?'))} ({md(f['trial_id'])}): "
            f"**{md(f['severity'])}** {md_code(f['kind'])}: {md(f['message'])}{link}"
        )
    if len(todo) > MAX_FIX_LINES:
        out += ["", f"… and {len(todo) - MAX_FIX_LINES} more: see the findings table."]
    return out


def _cell(value: object) -> object:
    """A table artifact cell: text without control characters or escape sequences. The
    Prefect UI shows table cells as text, not Markdown or HTML, so the text is kept as it
    reads (escaping it would show `&lt;` to the reader); numbers stay numbers."""
    if value is None or isinstance(value, (int, float)):
        return value
    return text(value)
