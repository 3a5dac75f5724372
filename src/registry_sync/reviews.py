"""Several reviews in one run: one curated table per review, named by its file stem.

A run fetches the union of the tables' trial IDs once (a trial two reviews cite is one request,
one state) and writes ONE snapshot whose `curated` and `findings` rows carry their `review`;
`_meta.reviews` lists each review (name, table, its sha256, rows, decisions, verdicts).
This module holds what is about reviews as such: checking the tables' names, the combined hash
an incremental night compares, and splitting a snapshot per review for its reports. With one
review the report files are named as they always were (`<run_id>.md`); with several, each
review gets `<run_id>.<review>.md/.json/.html` (its rows' findings only, and what changed for
its rows since the last run) and `<run_id>.md/.json/.html` becomes an index of the reviews.

A snapshot older than schema 5 has no `review` column: all its rows are the one review named
by its `curated_path`.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from registry_sync import diff, report, report_html, snapshot
from registry_sync.errors import RegistrySyncError
from registry_sync.escape import md, md_code
from registry_sync.ids import normalize_id
from registry_sync.model import CuratedRow
from registry_sync.report import ReportContent


def review_name(path: Path) -> str:
    """A review's name: its table's file stem (`review_2025_hpsc`)."""
    return path.stem


def check_tables(paths: Sequence[Path]) -> tuple[Path, ...]:
    """The tables of one run, each once and each with its own name; else an error naming the
    files (two tables with one stem would share report files and decisions keys)."""
    seen: dict[str, Path] = {}
    for path in paths:
        name = review_name(path)
        if name in seen:
            same = seen[name].resolve() == path.resolve()
            raise RegistrySyncError(
                f"{path}: "
                + (
                    "given twice; name each review's table once"
                    if same
                    else f"has the same review name {name!r} as {seen[name]}; "
                    "rename one table (a review is named by its file stem)"
                )
            )
        seen[name] = path
    return tuple(paths)


def tag_rows(rows: Iterable[CuratedRow], name: str) -> list[CuratedRow]:
    return [replace(r, review=name) for r in rows]


def combined_sha256(tables: Sequence[tuple[str, str]]) -> str:
    """What an incremental night compares: one table's own sha256 (as before several reviews
    were possible), else a hash over every (review, sha256), so a night with another set of
    tables, or one of them edited, fetches in full."""
    if len(tables) == 1:
        return tables[0][1]
    text = json.dumps(sorted(tables), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


# --- reading a snapshot per review ------------------------------------------------------------


def default_name(meta: Mapping[str, Any]) -> str:
    """The one review of a snapshot without `_meta.reviews` (schema 4 and older)."""
    return Path(str(meta.get("curated_path") or "review")).stem


def names(meta: Mapping[str, Any]) -> list[str]:
    """The reviews of a snapshot, in the order the run was given them."""
    listed = meta.get("reviews")
    if isinstance(listed, list) and listed:
        return [str(e["name"]) for e in listed]
    return [default_name(meta)]


def row_review(row: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    return str(row.get("review") or default_name(meta))


def finding_id(row: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """A finding's key across reviews (`review/kind:table:line:trial:field`); the same for a
    schema-4 snapshot's finding of its one review, so an upgrade shows no false changes."""
    return f"{row_review(row, meta)}/{row['key']}"


def pick(meta: Mapping[str, Any], name: str | None) -> str | None:
    """`name` checked against the snapshot's reviews; None when it has one and none was asked."""
    known = names(meta)
    if name is None:
        if len(known) > 1:
            return None
        return known[0]
    if name not in known:
        raise RegistrySyncError(
            f"no review {name!r} in run {meta.get('run_id')}; its reviews: {', '.join(known)}"
        )
    return name


def review_meta(meta: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The run's `_meta` as this review's report should read it: its table, decisions, review
    metadata and verdicts instead of the run's."""
    entry = next((e for e in meta.get("reviews") or [] if e.get("name") == name), None)
    if entry is None:
        return dict(meta)
    out = {k: v for k, v in meta.items() if k != "verdict_note"}
    for key in ("curated_path", "curated_sha256", "decisions", "review", "verdicts"):
        if key in entry:
            out[key] = entry[key]
    if entry.get("verdict_note"):
        out["verdict_note"] = entry["verdict_note"]
    out["review_name"] = name
    return out


def load_review_content(path: Path, name: str, shown_as: Path | None = None) -> ReportContent:
    """The snapshot as one review's report shows it: its rows, its findings, and the trials
    (outcomes, records) its rows cite. A run of one review: the whole snapshot, unchanged."""
    content = report.load_content(path, shown_as)
    if len(names(content.meta)) < 2:  # one review (any schema): the snapshot's report as ever
        return content
    conn = snapshot.open_snapshot(path)
    try:
        columns = {r["name"] for r in conn.execute("pragma table_info(curated)")}
        if "review" not in columns:  # schema 4 and older: one review
            return content
        curated = {
            r["line"]: r
            for r in conn.execute("select * from curated where review = ? order by line", (name,))
        }
        findings = list(
            conn.execute(
                'select * from findings where review = ? order by "table", line, id', (name,)
            )
        )
    finally:
        conn.close()
    cited = {normalize_id(str(r["trial_id"])) for r in curated.values()}
    cited |= {str(f["trial_id"]) for f in findings}
    meta = review_meta(content.meta, name)
    counts = dict(meta.get("counts") or {})
    outcomes = {t: o for t, o in content.outcomes.items() if t in cited}
    counts.update(
        rows=len(curated),
        trials=len(outcomes),
        outcomes=dict(Counter(o["outcome"] for o in outcomes.values())),
        findings=dict(Counter(f["kind"] for f in findings)),
    )
    meta["counts"] = counts
    return ReportContent(
        content.path,
        meta,
        curated,
        findings,
        outcomes,
        {t: r for t, r in content.records.items() if t in cited},
    )


def diff_rows(path: Path, name: str | None = None) -> diff.SnapshotRows:
    """A snapshot's rows for `diff`, findings keyed across reviews (`finding_id`); only
    `name`'s findings when given."""
    rows = diff.load_rows(path)  # its findings keyed by `key` alone: read them again
    meta = snapshot.read_meta(path)
    conn = snapshot.open_snapshot(path)
    try:
        every = list(conn.execute("select * from findings order by id"))
    finally:
        conn.close()
    findings = {
        finding_id(f, meta): f for f in every if name is None or row_review(f, meta) == name
    }
    return replace(rows, findings=findings)


def review_rows(path: Path, name: str) -> diff.SnapshotRows:
    """A snapshot's rows with only `name`'s findings, keyed by `key` as its decisions file is."""
    rows = diff_rows(path, name)
    return replace(rows, findings={str(f["key"]): f for f in rows.findings.values()})


def _content_rows(content: ReportContent, name: str) -> diff.SnapshotRows:
    return diff.SnapshotRows(
        run_id=str(content.meta.get("run_id")),
        records=content.records,
        outcomes={tid: o["outcome"] for tid, o in content.outcomes.items()},
        findings={f"{name}/{f['key']}": f for f in content.findings},
    )


def artifact_parts(
    meta: Mapping[str, Any], report_paths: Mapping[str, Path]
) -> list[tuple[str, str, dict[str, Path]]]:
    """(review, artifact key suffix, its report paths) per review: one review `("name", "",
    the run's paths)`; several, a suffix each (`-review-a`: a Prefect key is lowercase letters,
    digits and dashes) and that review's own report files."""
    listed = names(meta)
    if len(listed) < 2:
        return [(listed[0], "", dict(report_paths))]
    return [
        (
            name,
            "-" + (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "review"),
            {k.split(":", 1)[0]: p for k, p in report_paths.items() if k.endswith(f":{name}")},
        )
        for name in listed
    ]


# --- report files -----------------------------------------------------------------------------


def report_files(reports_dir: Path, snapshot_path: Path) -> list[Path]:
    """Every per-review report file of a snapshot (none with one review)."""
    try:
        meta = snapshot.read_meta(snapshot_path)
    except (RegistrySyncError, sqlite3.Error, OSError):  # not readable: it names no reports
        return []
    if len(names(meta)) < 2:
        return []
    stem = snapshot_path.stem
    return [
        reports_dir / f"{stem}.{name}.{fmt}"
        for name in names(meta)
        for fmt in snapshot.REPORT_FORMATS
    ]


def write_reports(
    snapshot_path: Path,
    reports_dir: Path,
    shown_as: Path | None = None,
    previous: Path | None = None,
) -> tuple[dict[str, Path], str]:
    """`report.write_reports` for a run of one review (files named as ever). For several: each
    review's report (`<run>.<review>.<fmt>`, keyed `<fmt>:<review>` in the paths returned) and
    an index (`<run>.<fmt>`); the markdown returned is the index, then each review's report."""
    paths, markdown, _ = write_review_reports(snapshot_path, reports_dir, shown_as, previous)
    return paths, markdown


def write_review_reports(
    snapshot_path: Path,
    reports_dir: Path,
    shown_as: Path | None = None,
    previous: Path | None = None,
) -> tuple[dict[str, Path], str, list[dict[str, Any]]]:
    """`write_reports`, and each review's line (`review_line`; none with one review)."""
    meta = snapshot.read_meta(snapshot_path)
    reviews = names(meta)
    if len(reviews) < 2:
        return (*report.write_reports(snapshot_path, reports_dir, shown_as, previous), [])
    reports_dir.mkdir(parents=True, exist_ok=True)
    stem = (shown_as or snapshot_path).stem
    paths: dict[str, Path] = {}
    parts: list[str] = []
    lines: list[dict[str, Any]] = []
    for name in reviews:
        content = load_review_content(snapshot_path, name, shown_as)
        markdown = report.render_markdown(content)
        if previous is not None:
            changes = diff.diff_snapshots(diff_rows(previous, name), _content_rows(content, name))
            markdown = (
                markdown.rstrip() + "\n\n" + "\n".join(diff.render_diff_markdown(changes, "##"))
            )
        own = {fmt: reports_dir / f"{stem}.{name}.{fmt}" for fmt in snapshot.REPORT_FORMATS}
        snapshot.write_text_atomic(own["md"], markdown, pause="report")
        snapshot.write_text_atomic(own["json"], report.render_json(content))
        snapshot.write_text_atomic(own["html"], report_html.render_html(content))
        paths.update({f"{fmt}:{name}": p for fmt, p in own.items()})
        parts.append(markdown)
        lines.append(review_line(name, report.summary(content), own))
    index = {fmt: reports_dir / f"{stem}.{fmt}" for fmt in snapshot.REPORT_FORMATS}
    index_md = render_index_markdown(meta, lines)
    snapshot.write_text_atomic(index["md"], index_md)
    snapshot.write_text_atomic(index["json"], render_index_json(meta, lines))
    snapshot.write_text_atomic(index["html"], render_index_html(meta, lines))
    return {**index, **paths}, "\n\n---\n\n".join([index_md, *parts]), lines


def review_line(name: str, s: Mapping[str, Any], files: Mapping[str, Path]) -> dict[str, Any]:
    """One review's line of a run: rows, findings, rows out of date, and its report files."""
    return {
        "name": name,
        "rows": s["rows"],
        "trials": s["trials"],
        "findings": sum(s["findings"].values()),
        "rows_out_of_date": s["rows_out_of_date"],
        "findings_accepted": s["findings_accepted"],
        "reports": {fmt: p.name for fmt, p in files.items()},
    }


def render_index_markdown(meta: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> str:
    counts = meta.get("counts") or {}
    out = [
        f"# Drift report: {len(lines)} reviews, run {md(meta.get('run_id'))}",
        "",
        f"Mode {md(meta.get('mode'))}; {counts.get('trials', 0)} trials fetched once for "
        f"{counts.get('rows', 0)} rows of {len(lines)} reviews.",
        *(part for line in report.notice_lines(meta) for part in ("", f"> **{md(line)}**")),
        "",
        "| review | rows | trials | findings | rows out of date | report |",
        "|---|---:|---:|---:|---:|---|",
    ]
    out += [
        f"| {md(x['name'])} | {x['rows']} | {x['trials']} | {x['findings']} | "
        f"{x['rows_out_of_date']} | {md_code(x['reports']['md'])} |"
        for x in lines
    ]
    return "\n".join(out) + "\n"


def render_index_json(meta: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> str:
    doc = {
        "run_id": meta.get("run_id"),
        "mode": meta.get("mode"),
        "partial": bool(meta.get("partial")),
        "counts": meta.get("counts"),
        "reviews": list(lines),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"


def render_index_html(meta: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(str(x['name']))}</td><td>{x['rows']}</td><td>{x['trials']}</td>"
        f"<td>{x['findings']}</td><td>{x['rows_out_of_date']}</td>"
        f'<td><a href="{esc(x["reports"]["html"])}">{esc(x["reports"]["html"])}</a></td></tr>'
        for x in lines
    )
    title = f"Drift report: {len(lines)} reviews, run {meta.get('run_id')}"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title></head><body><h1>{esc(title)}</h1>"
        "<table><thead><tr><th>review</th><th>rows</th><th>trials</th><th>findings</th>"
        f"<th>rows out of date</th><th>report</th></tr></thead><tbody>{rows}</tbody></table>"
        "</body></html>\n"
    )
