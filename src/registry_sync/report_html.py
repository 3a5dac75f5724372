"""The drift report as one self-contained HTML file (pure over `report.ReportContent`).

Opens with no network: inline CSS, inline SVG charts (`report_charts`, drawn by
`report_svg`), a small inline script for sorting and filtering the findings table, and a
Content-Security-Policy that forbids any other load. Read top to bottom: what to fix in the
review by table, what could not be checked and why, charts, then every finding. Without script
the table is still whole, in table/row order. Every review or registry string is escaped and
isolated (`<bdi>`) so right-to-left text cannot reorder a row; only http(s) evidence URLs become
links.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from registry_sync import report, report_charts
from registry_sync.registry_table import registry_name
from registry_sync.report_assets import SCRIPT, STYLE
from registry_sync.report_charts import SEVERITIES

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)
VERDICT_WORDS = {
    "wrong_at_publication": "wrong at publication",
    "changed_since": "changed since publication",
    "unknown": "unknown",
}
COLUMNS = (  # findings table: (key, heading, sortable); the key names the cell's class
    ("sev", "Severity", True),
    ("table", "Table", True),
    ("row", "Row", True),
    ("product", "Product", True),
    ("trial", "Trial", True),
    ("kind", "Kind", True),
    ("field", "Field", True),
    ("val", "Review prints", True),
    ("val", "Registry says", True),
    ("msg", "What it means", False),
    ("verdict", "Verdict", True),
    ("marks", "Marks", True),
)


def render_html(content: report.ReportContent) -> str:
    s = report.summary(content)
    title, published = review_title(content)
    limit = report.list_limit(content)  # None: list everything (see report.LIST_ALL_UP_TO)
    body = [
        _header(content, s, title, published),
        _numbers(content, s),
        _fix_by_table(content, limit),
        _unchecked_section(content, limit),
        report_charts.charts(content),
        _findings_section(content, limit),
    ]
    data = {"review": {"title": title, "published": published}, "summary": s}
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Drift report: {_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + f'\n<script type="application/json" id="report-data">{script_json(data)}</script>'
        + f"\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


# --- small safe pieces ---------------------------------------------------------------------


def _e(value: object) -> str:
    """Escaped text (quotes too, so it is safe in an attribute); None is empty."""
    return escape("" if value is None else str(value), quote=True)


def _t(value: object, clip: int = 300) -> str:
    """A review or registry string: escaped, and isolated so its direction stays inside; a
    very long one is cut, whole behind a click."""
    if value is None or value == "":
        return ""
    text = str(value)
    if len(text) <= clip:
        return f"<bdi>{_e(text)}</bdi>"
    return (
        f"<bdi>{_e(text[:clip])}</bdi>… <details><summary>all {len(text):,} characters"
        f"</summary><bdi>{_e(text)}</bdi></details>"
    )


def safe_url(url: object) -> str | None:
    """The URL when it is a plain http(s) address, else None (then shown as text only)."""
    text = str(url or "")
    if not text or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    return text if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def _link(url: object, text: object) -> str:
    """`text` linked to `url` when that is http(s); else the text, and any other address
    shown as text beside it, never as a link."""
    href = safe_url(url)
    if href is None:
        odd = f' <span class="sub">(address not linked: {_t(url)})</span>' if url else ""
        return _t(text) + odd
    return f'<a href="{_e(href)}" rel="noopener noreferrer" target="_blank">{_t(text)}</a>'


def script_json(data: object) -> str:
    """JSON that cannot end its `<script>` element or start markup inside it."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)
    for raw, safe in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, safe)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _inline_code(text: str) -> str:
    """Escaped text whose `backticked` words become <code>."""
    pieces = _e(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


# --- what a reader needs from a finding ----------------------------------------------------


def review_title(content: report.ReportContent) -> tuple[str, str | None]:
    """The review's title (and publication date) from the snapshot's metadata when it has
    them, else the curated table's file name, as the markdown report says."""
    review = content.meta.get("review")
    if isinstance(review, Mapping) and review.get("title"):
        published = review.get("published")
        return str(review["title"]), str(published) if published else None
    return Path(str(content.meta.get("curated_path", "review"))).stem, None


def _row_of(content: report.ReportContent, f: Mapping[str, Any]) -> Mapping[str, Any]:
    return content.curated.get(f["line"], {})


def _accepted(f: Mapping[str, Any]) -> bool:
    return bool(f.get("accepted_reason") or f.get("accepted_on"))


def _verdict(f: Mapping[str, Any]) -> str:
    return str(f.get("verdict") or "unknown")


def _more(n: int, what: str) -> str:
    """Where a long list stops: how many more and where every one of them is."""
    return f'<p class="sub more">{_inline_code(report.more_line(n, what))}</p>'


def _registry(key: object) -> str:
    return registry_name(str(key)) if key else "no registry"


# --- header, numbers, what to fix ----------------------------------------------------------


def _header(
    content: report.ReportContent, s: Mapping[str, Any], title: str, published: str | None
) -> str:
    state = "<strong>PARTIAL</strong>" if s["partial"] else "complete"
    gate = "accepted" if s["accepted"] else "<strong>REJECTED by the quality gate</strong>"
    pub = f'<p class="sub">Review published {_t(published)}.</p>' if published else ""
    notes = {"replay": report.REPLAY_NOTE, "custom": report.CUSTOM_NOTE}.get(str(s["mode"]), ())
    caveats = "".join(
        f'<p class="caveat">{_inline_code(n.removeprefix("> "))}</p>' for n in notes if n
    )
    stamps = ", ".join(
        f"{_e(registry_name(k))} data as of {_e(v)}" for k, v in s["data_timestamps"].items() if v
    )
    return (
        f"<header><h1>Drift report: {_t(title)}</h1>{pub}"
        f'<p class="sub">Run <code>{_e(s["run_id"])}</code>, mode <strong>{_e(s["mode"])}'
        f"</strong>, started {_e(s['started_at'])}: {state}, {gate}. Registry data: "
        f"{stamps or 'not reported'}.</p>"
        f'<p class="sub path">Snapshot: <code>{_e(content.path)}</code></p>{caveats}'
        '<nav><a href="#fix">What to fix</a><a href="#unchecked">Not checked</a>'
        '<a href="#charts">Charts</a><a href="#findings">All findings</a></nav></header>'
    )


def _numbers(content: report.ReportContent, s: Mapping[str, Any]) -> str:
    severities = Counter(f["severity"] for f in content.findings if not _accepted(f))
    unchecked = s["trials"] - s["outcomes"].get("ok", 0)
    tiles = [
        (s["rows"], "rows in the review's tables", ""),
        (s["trials"], "distinct trial IDs", ""),
        (s["outcomes"].get("ok", 0), "trials checked against a registry", ""),
        (unchecked, "trials that could not be checked", "warn" if unchecked else ""),
        (severities["error"], "errors", "error" if severities["error"] else ""),
        (severities["warning"], "warnings", "warning" if severities["warning"] else ""),
        (severities["info"], "notes (info)", ""),
        (sum(_accepted(f) for f in content.findings), "accepted by the authors", ""),
    ]
    if s["reconstructed"]:
        tiles.append((s["reconstructed"], "records rebuilt by hand (reconstructed)", "warn"))
    if s["stale_records"]:
        tiles.append((s["stale_records"], "records carried from an earlier run (stale)", "warn"))
    cells = "".join(
        f'<div class="tile {cls}"><span class="n">{n}</span> {_e(label)}</div>'
        for n, label, cls in tiles
    )
    return f'<section class="numbers" aria-label="Summary">{cells}</section>'


def _fix_by_table(content: report.ReportContent, limit: int | None) -> str:
    """Errors and warnings not yet accepted, grouped by the review's table, worst first."""
    by_table: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    infos = accepted = 0
    for f in content.findings:
        if _accepted(f):
            accepted += 1
        elif f["severity"] in ("error", "warning"):
            by_table[f["table"]].append(f)
        elif f["severity"] == "info":
            infos += 1
    head = '<section id="fix"><h2>What to fix in the review</h2>'
    tail = (
        f'<p class="sub">Not listed here: {infos} notes (info) and {accepted} findings the '
        'authors accepted; all are in <a href="#findings">the findings table</a>.</p></section>'
    )
    if not by_table:
        return head + "<p>No errors or warnings.</p>" + tail
    groups = [_fix_group(content, table, by_table[table], limit) for table in sorted(by_table)]
    return head + '<div class="groups">' + "".join(groups) + "</div>" + tail


def _fix_group(
    content: report.ReportContent, table: int, chosen: list[Mapping[str, Any]], limit: int | None
) -> str:
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    chosen.sort(key=lambda f: (rank.get(f["severity"], 9), _row_of(content, f).get("row") or 0))
    counts = Counter(f["severity"] for f in chosen)
    said = " · ".join(f"{counts[s]} {s}{'s' if counts[s] != 1 else ''}" for s in counts)
    shown = chosen if limit is None else chosen[:limit]
    left = len(chosen) - len(shown)
    more = _more(left, f"errors and warnings in Table {table}") if left else ""
    items = []
    for f in shown:
        row = _row_of(content, f)
        where = f"row {_e(row['row'])}" if row.get("row") else "row ?"
        items.append(
            f'<li><span class="sev sev-{_e(f["severity"])}">{_e(f["severity"])}</span> '
            f"<strong>{where}</strong> · {_t(row.get('product', '?'))} · "
            f"{_link(f.get('evidence_url'), f['trial_id'])}: {_t(f['message'])} "
            f'<span class="verdict">({_e(VERDICT_WORDS.get(_verdict(f), _verdict(f)))})</span>'
            "</li>"
        )
    heading = f"<h3>Table {_e(table)} <small>{said}</small></h3>"
    return f"<article>{heading}<ol>{''.join(items)}</ol>{more}</article>"


# --- trials that could not be checked ------------------------------------------------------


def _unchecked_section(content: report.ReportContent, limit: int | None) -> str:
    """One line per reason (outcome and detail), with its count by registry and its IDs."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for u in report._unchecked(content):
        groups[(u["outcome"], u["detail"])].append(u)
    total = sum(map(len, groups.values()))
    head = f'<section id="unchecked"><h2>Trials that could not be checked ({total})</h2>'
    if not groups:
        return head + "<p>Every trial was checked.</p></section>"
    rows = []
    for (outcome, detail), members in sorted(groups.items(), key=lambda g: -len(g[1])):
        by_registry = Counter(_registry(m["registry"]) for m in members)
        registries = ", ".join(f"{_e(name)} {n}" for name, n in by_registry.most_common())
        ids = "; ".join(_unchecked_id(m) for m in (members if limit is None else members[:limit]))
        if limit is not None and len(members) > limit:
            ids += f" and {len(members) - limit:,} more; {_inline_code(report.UNCHECKED_WHERE)}"
        shown = (
            f"<details><summary>{len(members)} IDs</summary>{ids}</details>"
            if len(members) > 3
            else ids
        )
        rows.append(
            f'<tr><td class="num" data-label="Trials">{len(members)}</td>'
            f'<td class="c-outcome" data-label="Outcome"><code>{_e(outcome)}</code></td>'
            f'<td class="c-msg" data-label="Why">{_t(detail)}</td>'
            f'<td data-label="Registries">{registries}</td><td data-label="IDs">{shown}</td></tr>'
        )
    return (
        head + '<div class="scroll"><table class="cards"><thead><tr><th>Trials</th><th>Outcome'
        "</th><th>Why</th><th>Registries</th><th>IDs (where in the review)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _unchecked_id(member: Mapping[str, Any]) -> str:
    where = ", ".join(f"Table {_e(r['table'])} {_t(r['product'])}" for r in member["rows"])
    return f"{_t(member['trial_id'])}" + (f" ({where})" if where else "")


# --- charts --------------------------------------------------------------------------------


# --- the findings table --------------------------------------------------------------------


def _findings_section(content: report.ReportContent, limit: int | None) -> str:
    shown, more = report.first_of_each(content.findings, limit)
    rows = [_finding_row(content, f, i) for i, f in enumerate(shown)]
    heads = "".join(
        f'<th scope="col" class="c-{key}"{" data-sortable" if sortable else ""}>{_e(name)}</th>'
        for key, name, sortable in COLUMNS
    )
    heading = f"All findings ({len(rows)})"
    notes = ""
    if more and limit is not None:
        total = len(content.findings)
        heading = f"Findings: the first {limit:,} of each kind ({len(rows):,} of {total:,})"
        notes = "".join(
            _more(n, f"`{kind}` findings ({n + limit:,} in all)")
            for kind, n in sorted(more.items())
        )
    return (
        f'<section id="findings"><h2>{_e(heading)}</h2>{notes}{_filters(shown)}'
        '<div class="scroll"><table id="findings-table" class="findings cards">'
        f"<thead><tr>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _filters(f: Sequence[Mapping[str, Any]]) -> str:
    """Controls for the script; hidden until it runs (without it the table is whole)."""
    selects = [
        ("severity", "Severity", [s for s in SEVERITIES if any(x["severity"] == s for x in f)]),
        ("kind", "Kind", sorted({str(x["kind"]) for x in f})),
        ("table", "Table", [str(t) for t in sorted({x["table"] for x in f})]),
        ("verdict", "Verdict", sorted({_verdict(x) for x in f})),
    ]
    parts = [
        '<label>Search <input type="search" id="f-text" placeholder="product, trial, text"></label>'
    ]
    for name, label, values in selects:
        options = "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)
        select = f'<select name="{name}"><option value="">all</option>{options}</select>'
        parts.append(f"<label>{label} {select}</label>")
    sort_options = "".join(
        f'<option value="{i}">{_e(name)}</option>' for i, (_, name, ok) in enumerate(COLUMNS) if ok
    )
    sort = f'<option value="">table and row</option>{sort_options}'
    parts.append(f'<label>Sort by <select id="f-sort">{sort}</select></label>')
    parts.append('<output id="f-count"></output>')
    return f'<div id="filters" class="filters" hidden>{"".join(parts)}</div>'


def _finding_row(content: report.ReportContent, f: Mapping[str, Any], pos: int) -> str:
    row = _row_of(content, f)
    sev, verdict = str(f["severity"]), _verdict(f)
    rank = SEVERITIES.index(sev) if sev in SEVERITIES else len(SEVERITIES)
    cells: list[tuple[str, object]] = [  # (inner HTML, sort key when not its text), as COLUMNS
        (f'<span class="sev sev-{_e(sev)}">{_e(sev)}</span>', rank),
        (_e(f["table"]), None),
        (_e(row.get("row") or "—"), row.get("row") or 0),
        (_t(row.get("product")), None),
        (_link(f.get("evidence_url"), f["trial_id"]), None),
        (_e(str(f["kind"]).replace("_", " ")), None),
        (_e(f["field"]), None),
        (_t(f.get("review_value"), clip=120), None),
        (_t(f.get("registry_value"), clip=120), None),
        (_message(content, f), None),
        (_e(VERDICT_WORDS.get(verdict, verdict)), None),
        (_marks(content, f), None),
    ]
    tds = "".join(
        f'<td class="c-{key}" data-label="{_e(name)}"'
        + (f' data-sort="{_e(sort)}"' if sort is not None else "")
        + f">{inner}</td>"
        for (key, name, _), (inner, sort) in zip(COLUMNS, cells, strict=True)
    )
    data = (("severity", sev), ("kind", f["kind"]), ("table", f["table"]), ("verdict", verdict))
    attrs = " ".join(f'data-{k}="{_e(v)}"' for k, v in data)
    return f'<tr {attrs} data-pos="{pos}">{tds}</tr>'


def _message(content: report.ReportContent, f: Mapping[str, Any]) -> str:
    text = _t(f["message"])
    if f.get("last_updated"):
        text += f' <span class="sub">(registry last updated {_e(f["last_updated"])})</span>'
    details = content.details(f)
    if details:
        items = "".join(
            f"<dt>{_e(k)}</dt><dd>{_t(v if isinstance(v, str) else _json_text(v))}</dd>"
            for k, v in sorted(details.items())
        )
        text += f"<details><summary>evidence</summary><dl>{items}</dl></details>"
    return text


def _json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _marks(content: report.ReportContent, f: Mapping[str, Any]) -> str:
    marks = []
    if _accepted(f):
        why = " ".join(
            str(x)
            for x in (f.get("accepted_reason"), f.get("accepted_on") and f"({f['accepted_on']})")
            if x
        )
        marks.append(f'<span class="mark accepted">accepted</span> {_t(why)}')
    if f.get("stale"):
        age = report.stale_age(f.get("stale_since"), content.meta.get("started_at"))
        marks.append(f'<span class="mark stale">stale</span> {_e(age)}')
    if report._origin(content, f) == "reconstructed":
        marks.append('<span class="mark recon">reconstructed</span>')
    return "<br>".join(marks)
