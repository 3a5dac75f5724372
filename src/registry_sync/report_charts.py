"""The HTML report's charts (pure over `report.ReportContent`): SVG drawn by `report_svg`,
coloured by what a value means to a reader of the review."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from registry_sync import report, report_svg
from registry_sync.reconcile import readable_status
from registry_sync.registry_table import registry_name

SEVERITIES = ("error", "warning", "info")
SEVERITY_COLORS = {"error": "#b42318", "warning": "#c4640a", "info": "#2f6db5"}
OUTCOME_COLORS = {
    "ok": "#2e7d4f",
    "not_in_replay": "#a3a9b3",
    "not_found": "#7b4fb0",
    "blocked": "#b42318",
    "registry_down": "#d9822b",
    "parse_error": "#8c2f5e",
    "quarantined": "#a8456f",
    "id_malformed": "#5b6470",
    "moved": "#2f6db5",
    "unsupported": "#c9b458",
}
STATUS_GROUPS = {  # a status's colour says what it means for a reader of the review
    "NOT_YET_RECRUITING": "not started",
    "RECRUITING": "running",
    "ENROLLING_BY_INVITATION": "running",
    "ACTIVE_NOT_RECRUITING": "running",
    "NOT_RECRUITING": "running",
    "COMPLETED": "completed",
    "SUSPENDED": "stopped",
    "TERMINATED": "stopped",
    "WITHDRAWN": "stopped",
    "UNKNOWN": "unknown",
}
STATUS_COLORS = {
    "not started": "#c9b458",
    "running": "#2e7d4f",
    "completed": "#2f6db5",
    "stopped": "#b42318",
    "unknown": "#c4640a",
}


def _registry(key: object) -> str:
    return registry_name(str(key)) if key else "no registry"


def charts(content: report.ReportContent) -> str:
    figures = [
        _figure("Findings by kind", _by_kind(content), SEVERITY_COLORS),
        _figure("Findings by table of the review", _by_table(content), SEVERITY_COLORS),
        _figure("Outcomes by registry", _by_registry(content), OUTCOME_COLORS),
        _status_figure(content),
        _start_figure(content),
    ]
    return (
        '<section id="charts"><h2>Charts</h2><div class="charts">'
        + "".join(figures)
        + "</div></section>"
    )


def _figure(
    title: str, rows: Sequence[report_svg.BarRow], colors: Mapping[str, str], note: str = ""
) -> str:
    chart = (
        report_svg.stacked_bars(title, rows, colors)
        if rows
        else '<p class="sub">Nothing to chart.</p>'
    )
    caption = f"{escape(title)}" + (f'<span class="sub"> {note}</span>' if note else "")
    return f"<figure><figcaption>{caption}</figcaption>{chart}</figure>"


def _severity_rows(groups: Mapping[str, Iterable[Mapping[str, Any]]]) -> list[report_svg.BarRow]:
    out: list[report_svg.BarRow] = []
    for label, members in groups.items():
        counts = Counter(f["severity"] for f in members)
        out.append((label, [(s, counts[s]) for s in SEVERITIES]))
    return out


def _by_kind(content: report.ReportContent) -> list[report_svg.BarRow]:
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for f in content.findings:
        groups[str(f["kind"]).replace("_", " ")].append(f)
    ordered = dict(sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])))
    return _severity_rows(ordered)


def _by_table(content: report.ReportContent) -> list[report_svg.BarRow]:
    groups: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for f in content.findings:
        groups[f["table"]].append(f)
    return _severity_rows({f"Table {t}": groups[t] for t in sorted(groups)})


def _by_registry(content: report.ReportContent) -> list[report_svg.BarRow]:
    groups: dict[str, Counter[str]] = defaultdict(Counter)
    for o in content.outcomes.values():
        groups[_registry(o["registry"])][o["outcome"]] += 1
    outcomes = sorted({o for c in groups.values() for o in c}, key=lambda o: (o != "ok", o))
    ordered = sorted(groups.items(), key=lambda g: -sum(g[1].values()))
    return [(name, [(o, c[o]) for o in outcomes]) for name, c in ordered]


def _status_figure(content: report.ReportContent) -> str:
    statuses = Counter(str(r.get("status") or "not given") for r in content.records.values())
    rows: list[report_svg.BarRow] = [
        (readable_status(st), [(STATUS_GROUPS.get(st, "other"), n)])
        for st, n in sorted(statuses.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    missing = len(content.outcomes) - len(content.records)
    note = f"{len(content.records)} trials with a registry record; {missing} without one not shown."
    return _figure("Current status of the review's trials", rows, STATUS_COLORS, escape(note))


def _start_figure(content: report.ReportContent) -> str:
    points: list[report_svg.Point] = []
    ids = report.normalized_ids(content)
    for line, row in content.curated.items():
        record = content.records.get(ids[line])
        printed, registered = row.get("start_iso"), (record or {}).get("start")
        if printed and registered:
            label = (
                f"{row['product']} ({row['trial_id']}, Table {row['table']} row {row.get('row')})"
            )
            points.append((int(str(printed)[:4]), int(str(registered)[:4]), label))
    title = "Review start year vs registry start year"
    if not points:
        empty = '<p class="sub">No row has both a printed and a registry start.</p>'
        return f"<figure><figcaption>{title}</figcaption>{empty}</figure>"
    differ = sum(1 for x, y, _ in points if x != y)
    note = f"{len(points)} rows with both; {differ} off the diagonal (years differ)."
    chart = report_svg.year_scatter(title, points, "review's start year", "registry's start year")
    return (
        f'<figure><figcaption>{title}<span class="sub"> {note}</span></figcaption>{chart}</figure>'
    )
