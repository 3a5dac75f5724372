"""Drift reports: where the review is out of date, keyed to its table and row.

`load_content` reads a snapshot (I/O); `render_markdown` and `render_json` are pure over it.

A large run (more than `LIST_ALL_UP_TO` findings) is bounded where a person reads it: the
markdown and HTML reports list the first `LIST_PER_KIND` findings of each kind (in table and row
order) and say how many more there are and where they are (`more_line`); every count stays
complete, and the JSON report, the corrections CSV and the snapshot keep every finding.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from registry_sync import corrections, diff, layout, report_html, snapshot, verdict
from registry_sync.escape import md, md_code, md_link
from registry_sync.ids import normalize_id
from registry_sync.model import REVIEW_KINDS
from registry_sync.registry_table import registry_name

# Finding kinds that say the review and the registry disagree.
DRIFT_KINDS = (
    "phase_mismatch",
    "start_mismatch",
    "sponsor_mismatch",
    "product_mismatch",
    "not_found",
    "vanished",
    "cross_registration",
)
# Finding kinds about the registry's own record: a plan not yet a fact, a status not confirmed.
RECORD_KINDS = ("start_not_actual", "status_unverified")
FORMATS = ("md", "json", "corrections", "html")
REPLAY_NOTE = (
    "",
    "> Replay of recorded payloads: registry values are as of their capture (see the replay "
    "set's SOURCES.md), not today; an ID the set lacks is `not_in_replay`, not missing from "
    "the registry. Values marked [RECONSTRUCTED] come from records rebuilt by hand from "
    "archived registry pages, not from a recorded registry answer.",
)
CUSTOM_NOTE = (
    "",
    "> Custom endpoints: at least one registry was reached at a base URL that is not its own "
    "(see `base_urls` in the snapshot); these values never feed a live run.",
)


# Past this many findings the markdown and HTML reports list the first LIST_PER_KIND of each
# kind and say how many more there are and where (see `more_line`); at or under it, everything.
LIST_ALL_UP_TO = 2_000
LIST_PER_KIND = 200
WHERE_ALL = (
    "every finding is in the JSON report, `registry-sync report --format corrections` "
    "(what to change) and `registry-sync browse`"
)


@dataclass(frozen=True)
class ReportContent:
    path: Path
    meta: Mapping[str, Any]
    curated: Mapping[int, Mapping[str, Any]]  # by CSV line
    findings: Sequence[Mapping[str, Any]]
    outcomes: Mapping[str, Mapping[str, Any]]  # by trial ID
    records: Mapping[str, Mapping[str, Any]]  # by trial ID
    # each finding's `details` JSON parsed once for every renderer (by the finding's identity)
    _details: dict[int, dict[str, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # what every renderer asks for (the summary, the unchecked trials), worked out once
    _memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def details(self, f: Mapping[str, Any]) -> dict[str, Any]:
        """The finding's own evidence (its `details` JSON object), parsed once; text that is
        not a JSON object is kept as `{"details": ...}`. Do not change the returned dict."""
        found = self._details.get(id(f))
        if found is None:
            found = self._details[id(f)] = parse_details(f.get("details"))
        return found


def parse_details(raw: object) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(str(raw))
    except ValueError:
        return {"details": raw}
    return value if isinstance(value, dict) else {"details": value}


# The record columns the reports, the corrections CSV and the diff read (`records` of a large
# run is the biggest table after `findings`; its other columns stay in the snapshot).
RECORD_COLUMNS = (
    "registry",
    "trial_id",
    "status",
    "phases",
    "start",
    "primary_completion",
    "completion",
    "last_updated",
    "lead_sponsor",
    "evidence_url",
    "origin",
    "stale",
)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a report is read and rendered: it makes hundreds of
    thousands of small acyclic dicts, and each full collection would walk all of them again."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def load_content(path: Path, shown_as: Path | None = None) -> ReportContent:
    """Read a snapshot for rendering; `shown_as` is the path to print (a snapshot being
    published is read from its temp file)."""
    conn = snapshot.open_snapshot(path)
    conn.row_factory = None  # plain tuples, made into dicts below without a call per row

    def rows(sql: str) -> list[dict[str, Any]]:
        cursor = conn.execute(sql)
        names = [d[0] for d in cursor.description]
        # one object per distinct text: kinds, severities, verdicts, fields and values repeat
        # across hundreds of thousands of findings (SQLite hands out a new str for each cell)
        same: dict[Any, Any] = {}
        return [dict(zip(names, [same.setdefault(v, v) for v in r], strict=True)) for r in cursor]

    try:
        with _gc_paused():
            meta = {k: json.loads(v) for k, v in conn.execute("select key, value from _meta")}
            curated = {r["line"]: r for r in rows("select * from curated")}
            findings = rows('select * from findings order by "table", line, id')
            outcomes = {r["trial_id"]: r for r in rows("select * from outcomes")}
            have = {r[1] for r in conn.execute("pragma table_info(records)")}
            wanted = ", ".join(f'"{c}"' for c in RECORD_COLUMNS if c in have)
            records = {r["trial_id"]: r for r in rows(f"select {wanted} from records")}
    finally:
        conn.close()
    return ReportContent(shown_as or path, meta, curated, findings, outcomes, records)


def list_limit(content: ReportContent) -> int | None:
    """How many items of each kind a person-facing report lists: None (all) for a run of at
    most LIST_ALL_UP_TO findings and trials, else LIST_PER_KIND."""
    large = max(len(content.findings), len(content.outcomes)) > LIST_ALL_UP_TO
    return LIST_PER_KIND if large else None


def first_of_each(
    findings: Iterable[Mapping[str, Any]],
    limit: int | None,
    group: Callable[[Mapping[str, Any]], Any] = lambda f: f["kind"],
) -> tuple[list[Mapping[str, Any]], Counter[Any]]:
    """The first `limit` findings of each group (kind by default), in their order, and how
    many of each group were left out (empty when `limit` is None)."""
    if limit is None:
        return list(findings), Counter()
    seen: Counter[Any] = Counter()
    shown = []
    for f in findings:
        g = group(f)
        seen[g] += 1
        if seen[g] <= limit:
            shown.append(f)
    return shown, Counter({g: n - limit for g, n in seen.items() if n > limit})


def more_line(n: int, what: str) -> str:
    """The plain sentence that stands where findings were left out of a long list."""
    return f"{n:,} more {what} not listed here: {WHERE_ALL}."


def write_reports(
    snapshot_path: Path,
    reports_dir: Path,
    shown_as: Path | None = None,
    previous: Path | None = None,
) -> tuple[dict[str, Path], str]:
    """Render every format next to each other under `reports_dir`; returns paths and markdown.
    Files are named after `shown_as` (the snapshot's final path) when given; with `previous`
    (the last run of the same kind) the report ends with what changed since."""
    with _gc_paused():
        return _write_reports(snapshot_path, reports_dir, shown_as, previous)


def _write_reports(
    snapshot_path: Path, reports_dir: Path, shown_as: Path | None, previous: Path | None
) -> tuple[dict[str, Path], str]:
    content = load_content(snapshot_path, shown_as)
    reports_dir.mkdir(parents=True, exist_ok=True)
    stem = content.path.stem
    markdown = render_markdown(content)
    if previous is not None:
        changes = diff.diff_snapshots(diff.load_rows(previous, light=True), _rows(content))
        markdown = (
            markdown.rstrip()
            + "\n\n"
            + "\n".join(diff.render_diff_markdown(changes, "##", list_limit(content)))
        )
    paths = {fmt: reports_dir / f"{stem}.{fmt}" for fmt in snapshot.REPORT_FORMATS}
    # each file whole or not at all (a temp file renamed), so a killed run leaves no half report
    snapshot.write_text_atomic(paths["md"], markdown, pause="report")
    write_chunks_atomic(paths["json"], json_chunks(content))
    snapshot.write_text_atomic(paths["html"], report_html.render_html(content))
    return paths, markdown


def write_chunks_atomic(path: Path, chunks: Iterable[str]) -> None:
    """`snapshot.write_text_atomic` for text made piece by piece (the JSON report of a large
    run is never one string in memory): a temp file beside `path`, fsynced, renamed over it."""
    tmp = snapshot.temp_name(path)
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.writelines(chunks)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _rows(content: ReportContent) -> diff.SnapshotRows:
    """The snapshot already read for rendering, in the shape `diff` compares (not read again)."""
    return diff.SnapshotRows(
        run_id=str(content.meta.get("run_id")),
        records=content.records,
        outcomes={tid: o["outcome"] for tid, o in content.outcomes.items()},
        findings={f["key"]: f for f in content.findings},
    )


def render(content: ReportContent, fmt: str) -> str:
    with _gc_paused():
        return _render(content, fmt)


def _render(content: ReportContent, fmt: str) -> str:
    if fmt == "md":
        return render_markdown(content)
    if fmt == "json":
        return render_json(content)
    if fmt == "corrections":
        return corrections.render_csv(
            corrections.rows(content.findings, content.curated, content.records)
        )
    if fmt == "html":
        return report_html.render_html(content)
    raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


def summary(content: ReportContent) -> dict[str, Any]:
    """The run's numbers (worked out once per content; a copy each call)."""
    if "summary" not in content._memo:
        content._memo["summary"] = _summary(content)
    return dict(content._memo["summary"])


def _summary(content: ReportContent) -> dict[str, Any]:
    outcomes = Counter(o["outcome"] for o in content.outcomes.values())
    kinds = Counter(f["kind"] for f in content.findings)
    # a finding the authors accepted is not something to fix in the review
    drift = [f for f in content.findings if f["kind"] in DRIFT_KINDS and not accepted(f)]
    drift_rows = {f["line"] for f in drift if f["severity"] in ("error", "warning")}
    note_rows = {f["line"] for f in drift if f["severity"] == "info"} - drift_rows
    return {
        "run_id": content.meta.get("run_id"),
        "mode": content.meta.get("mode"),
        "started_at": content.meta.get("started_at"),
        "partial": bool(content.meta.get("partial")),
        "accepted": bool(content.meta.get("accepted")),
        "rows": len(content.curated),
        "trials": len(content.outcomes),
        "outcomes": dict(sorted(outcomes.items())),
        "findings": dict(sorted(kinds.items())),
        "rows_out_of_date": len(drift_rows),
        "rows_with_notes_only": len(note_rows),
        "findings_accepted": sum(1 for f in content.findings if accepted(f)),
        "decisions": content.meta.get("decisions", {}),
        "stale_records": sum(1 for r in content.records.values() if r.get("stale")),
        "reconstructed": sum(
            1 for r in content.records.values() if r.get("origin") == "reconstructed"
        ),
        "data_timestamps": content.meta.get("data_timestamps", {}),
        "verdicts": verdict_counts(content.findings),
        "review": content.meta.get("review"),
    }


VERDICT_TAGS = {
    "wrong_at_publication": "wrong at publication",
    "changed_since": "changed since publication",
    "unknown": "verdict unknown",
}


def verdict_counts(findings: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Verdict -> findings, from the snapshot's `verdict` column (every verdict listed)."""
    counts = Counter(str(f.get("verdict") or "unknown") for f in findings)
    return {v: counts.get(v, 0) for v in VERDICT_TAGS}


def _published_line(s: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    review = s.get("review")
    if not isinstance(review, Mapping):
        note = meta.get("verdict_note") or "no review metadata: every verdict is unknown"
        return f"- Review published: unknown ({md(note)})"
    first, last = review.get("published_window") or ("?", "?")
    when = first if first == last else f"between {first} and {last}"
    basis = review.get("basis") or "see the review metadata"
    return f"- Review published: {md(when)} ({md(basis)})"


def render_json(content: ReportContent) -> str:
    return "".join(json_chunks(content))


_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode  # C encoder: no indent


def json_chunks(content: ReportContent) -> Iterator[str]:
    """The JSON report in pieces: `snapshot`, `summary` (indented), then `findings` (every
    one) and `unchecked`, one item a line. Valid JSON as a whole."""
    head = json.dumps(
        {"snapshot": str(content.path), "summary": summary(content)},
        indent=2,
        ensure_ascii=False,
        default=str,
    )
    yield head[: -len("\n}")]
    yield from _json_list("findings", (_finding_doc(content, f) for f in content.findings))
    yield from _json_list("unchecked", _unchecked(content))
    yield "\n}\n"


def _json_list(name: str, items: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    yield f',\n  "{name}": ['
    sep = "\n    "
    for item in items:
        yield sep + _ENCODE(item)
        sep = ",\n    "
    yield "]" if sep == "\n    " else "\n  ]"


def _finding_doc(content: ReportContent, f: Mapping[str, Any]) -> dict[str, Any]:
    row = content.curated.get(f["line"], {})
    doc = dict(f)
    doc.pop("id", None)
    doc["product"] = row.get("product")
    doc["row"] = row.get("row")
    doc["accepted"] = accepted(f)
    return doc


def accepted(f: Mapping[str, Any]) -> bool:
    """The review's authors accepted this finding (see decisions.py)."""
    return bool(f.get("accepted_on"))


def _unchecked(content: ReportContent) -> list[dict[str, Any]]:
    """Trials not checked. A parse error from a source that seems to have changed its pages
    (`_meta.layout_changes`) says that one line as its detail, its own error in `own_detail`,
    so the reports group them instead of printing one error per trial. Worked out once per
    content: do not change what it returns."""
    if "unchecked" not in content._memo:
        content._memo["unchecked"] = _find_unchecked(content)
    result: list[dict[str, Any]] = content._memo["unchecked"]
    return result


def normalized_ids(content: ReportContent) -> dict[int, str]:
    """Each curated row's trial ID, normalized (by CSV line); worked out once per content."""
    if "normalized_ids" not in content._memo:
        content._memo["normalized_ids"] = {
            line: normalize_id(str(r["trial_id"])) for line, r in content.curated.items()
        }
    result: dict[int, str] = content._memo["normalized_ids"]
    return result


def _find_unchecked(content: ReportContent) -> list[dict[str, Any]]:
    if all(o["outcome"] == "ok" for o in content.outcomes.values()):
        return []
    rows_by_id: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    ids = normalized_ids(content)
    for line, r in content.curated.items():
        rows_by_id[ids[line]].append(r)
    changed = layout_changes(content.meta)
    out = []
    for tid, o in sorted(content.outcomes.items()):
        if o["outcome"] == "ok":
            continue
        where = rows_by_id.get(tid, [])
        source = o.get("source") or o["registry"]
        layout_changed = o["outcome"] == "parse_error" and source in changed
        out.append(
            {
                "trial_id": tid,
                "registry": o["registry"],
                "outcome": o["outcome"],
                "detail": changed[source] if layout_changed else o["detail"],
                "stale_values_kept": bool(o.get("stale")),
                "rows": [{"table": r["table"], "product": r["product"]} for r in where],
                **({"own_detail": o["detail"], "layout_changed": True} if layout_changed else {}),
            }
        )
    return out


def render_markdown(content: ReportContent) -> str:
    s = summary(content)
    review = Path(str(content.meta.get("curated_path", "review"))).stem
    title = (content.meta.get("review") or {}).get("title")
    lines = [f"# Drift report: {md(title or review)}", ""]
    limit = list_limit(content)
    lines += _header(content, s, limit)
    everything, content = content, _live(content)  # accepted findings: their own section
    lines += _section(
        content,
        "Where the review differs from the registry",
        DRIFT_KINDS,
        "No differences found in the trials that could be checked.",
        limit,
    )
    lines += _section(content, "Problems in the review's own table", REVIEW_KINDS, "None.", limit)
    lines += _optional_section(
        content, "The registry's own record (check before citing)", RECORD_KINDS, limit
    )
    lines += _optional_section(
        content, "Version history that could not be read", (verdict.HISTORY_KIND,), limit
    )
    lines += _optional_section(
        content, "Records held back by the quality gate (quarantined)", (QUARANTINED,), limit
    )
    lines += _unmapped_section(content, limit)
    lines += _missing_section(content, limit)
    lines += _status_section(content, limit)
    lines += _accepted_section(everything, limit)
    lines += _unchecked_section(everything, limit)  # trials, not findings: the same
    return "\n".join(lines).rstrip() + "\n"


def _header(content: ReportContent, s: Mapping[str, Any], limit: int | None) -> list[str]:
    state = "PARTIAL" if s["partial"] else "complete"
    gate = "accepted" if s["accepted"] else "REJECTED by the quality gate"
    stamps = (
        ", ".join(
            f"{md(registry_name(k))} data as of {md(v)}"
            for k, v in s["data_timestamps"].items()
            if v
        )
        or "not reported"
    )
    outcomes = ", ".join(f"{md(k)} {v}" for k, v in s["outcomes"].items())
    kinds = ", ".join(f"{md(k)} {v}" for k, v in s["findings"].items()) or "none"
    return [
        f"Run {md_code(s['run_id'])} ({md(s['mode'])}), started {md(s['started_at'])}: "
        f"**{state}**, {gate}.",
        f"Snapshot: {md_code(content.path)}. Registry data: {stamps}.",
        *(part for line in notice_lines(content.meta) for part in ("", f"> **{md(line)}**")),
        *(REPLAY_NOTE if s["mode"] == "replay" else ()),
        *(CUSTOM_NOTE if s["mode"] == "custom" else ()),
        "",
        "## Summary",
        "",
        f"- Rows in the review's table: {s['rows']}; distinct trial IDs: {s['trials']}",
        f"- Trials by outcome: {outcomes}",
        f"- Rows where the review is out of date (errors and warnings): {s['rows_out_of_date']}; "
        f"rows with notes only (info, e.g. an abbreviated sponsor): {s['rows_with_notes_only']}",
        f"- Findings by kind: {kinds}",
        _published_line(s, content.meta),
        "- Verdicts: "
        + ", ".join(f"{VERDICT_TAGS[k]} {n}" for k, n in s["verdicts"].items()).replace(
            "verdict unknown", "unknown"
        ),
        *(
            [f"- Findings the authors accepted (not counted above): {s['findings_accepted']}"]
            if s["findings_accepted"] or s["decisions"].get("count")
            else []
        ),
        f"- Records carried forward from an earlier run (stale): {s['stale_records']}",
        *(
            [f"- Records rebuilt by hand from archived pages (reconstructed): {s['reconstructed']}"]
            if s["reconstructed"]
            else []
        ),
        *(
            [
                f"- Listed below: the first {limit:,} of each kind (this run has "
                f"{len(content.findings):,} findings and {s['trials']:,} trials); {WHERE_ALL}."
            ]
            if limit is not None
            else []
        ),
        "",
    ]


def _section(
    content: ReportContent, title: str, kinds: Sequence[str], empty: str, limit: int | None
) -> list[str]:
    lines = [f"## {title}", ""]
    chosen = [f for f in content.findings if f["kind"] in kinds]
    if not chosen:
        return [*lines, empty, ""]
    shown, more = first_of_each(chosen, limit)
    for f in shown:
        tag = VERDICT_TAGS.get(str(f.get("verdict") or "unknown"), "verdict unknown")
        text = f"- **{md(f['severity'])}** [{tag}] {_locate(content, f)}: {_describe(content, f)}"
        lines.append(text + _verdict_why(content, f))
    return [*lines, *_more_lines(more), ""]


def _more_lines(more: Mapping[str, int]) -> list[str]:
    """One line per kind whose findings were not all listed (see `first_of_each`)."""
    return [f"- {more_line(n, f'{md_code(kind)} findings')}" for kind, n in sorted(more.items())]


def _verdict_why(content: ReportContent, f: Mapping[str, Any]) -> str:
    """Why a disagreement got its verdict (kept in the finding's details)."""
    if f["kind"] not in verdict.DISAGREEMENT_KINDS:
        return ""
    why = content.details(f).get("verdict_why")
    return f" _Verdict: {md(why)}._" if why else ""


def _locate(content: ReportContent, f: Mapping[str, Any]) -> str:
    row = content.curated.get(f["line"], {})
    where = f"Table {md(f['table'])}"
    if row.get("row"):
        where += f" row {md(row['row'])}"
    return f"{where}, {md(row.get('product', '?'))} ({md(f['trial_id'])})"


def _describe(content: ReportContent, f: Mapping[str, Any]) -> str:
    text = md(f["message"])
    if f.get("last_updated"):
        text += f" (last updated {md(f['last_updated'])})"
    if _origin(content, f) == "reconstructed":
        text += " [RECONSTRUCTED]"
    if f.get("stale"):
        age = stale_age(f.get("stale_since"), content.meta.get("started_at"))
        text += f" [STALE: {md(age)}]"
    if f.get("evidence_url"):
        text += f" — {md_link(f['evidence_url'])}"
    return text


def _origin(content: ReportContent, f: Mapping[str, Any]) -> str | None:
    record = content.records.get(str(f["trial_id"])) or content.records.get(
        normalize_id(str(f["trial_id"]))
    )
    return record.get("origin") if record else None


def stale_age(stale_since: object, run_started: object) -> str:
    """'values fetched 2026-11-20, 5 days before this run' (or just the date when unknown)."""
    try:
        since = datetime.fromisoformat(str(stale_since))
        started = datetime.fromisoformat(str(run_started))
    except ValueError:
        return f"values fetched {stale_since}"
    days = (started - since).days
    return (
        f"values fetched {since.date().isoformat()}, {days} day{'s' if days != 1 else ''} "
        "before this run"
    )


def _live(content: ReportContent) -> ReportContent:
    """The content without the findings the authors accepted (those have their own section)."""
    return dataclasses.replace(content, findings=[f for f in content.findings if not accepted(f)])


def _accepted_section(content: ReportContent, limit: int | None) -> list[str]:
    chosen = [f for f in content.findings if accepted(f)]
    notes = content.meta.get("decisions", {}).get("notes", [])
    if not chosen and not notes:
        return []
    where = content.meta.get("decisions", {}).get("path", "the decisions file")
    lines = [
        "## Accepted by the authors",
        "",
        f"Kept as printed by decision ({md_code(where)}); each comes back if the registry's value "
        "changes.",
        "",
    ]
    shown, more = first_of_each(chosen, limit)
    for f in shown:
        by = content.details(f).get("accepted_by")
        lines.append(
            f"- {_locate(content, f)}: {md(f['message'])} — **accepted on "
            f"{md(f['accepted_on'])}**"
            + (f" by {md(by)}" if by else "")
            + f": {md(f['accepted_reason'])} ({md_code(f['key'])})"
        )
    lines += _more_lines(more)
    lines += [f"- Note: {md(n)}" for n in notes]
    return [*lines, ""]


def _unmapped_section(content: ReportContent, limit: int | None) -> list[str]:
    return _plain_section(
        content, "## Registry values our vocabulary does not know", "unmapped_value", limit
    )


def _plain_section(content: ReportContent, title: str, kind: str, limit: int | None) -> list[str]:
    chosen = [f for f in content.findings if f["kind"] == kind]
    if not chosen:
        return []
    shown, more = first_of_each(chosen, limit)
    lines = [title, ""]
    lines += [f"- {_locate(content, f)}: {_describe(content, f)}" for f in shown]
    return [*lines, *_more_lines(more), ""]


def _optional_section(
    content: ReportContent, title: str, kinds: Sequence[str], limit: int | None
) -> list[str]:
    if not any(f["kind"] in kinds for f in content.findings):
        return []
    return _section(content, title, kinds, "", limit)


def _missing_section(content: ReportContent, limit: int | None) -> list[str]:
    return _plain_section(
        content,
        "## Values the registry does not give (nothing to check)",
        "registry_missing",
        limit,
    )


def _status_section(content: ReportContent, limit: int | None) -> list[str]:
    chosen = [f for f in content.findings if f["kind"] == "status"]
    if not chosen:
        return []
    chosen, more = first_of_each(chosen, limit)
    lines = [
        "## Current registry status (the review prints none)",
        "",
        "| Table | Product | Trial | Status | Last updated |",
        "|---|---|---|---|---|",
    ]
    for f in chosen:
        row = content.curated.get(f["line"], {})
        flag = " ⚠" if f["severity"] == "warning" else ""
        stale = " (stale)" if f.get("stale") else ""
        stale += " [RECONSTRUCTED]" if _origin(content, f) == "reconstructed" else ""
        cells = (f["table"], row.get("product", "?"), f["trial_id"])
        lines.append(
            "| "
            + " | ".join(md(c) for c in cells)
            + f" | {md(f['registry_value'])}{flag}{stale} | {md(f.get('last_updated') or '')} |"
        )
    if more:
        lines += ["", *_more_lines(more)]
    return [*lines, ""]


QUARANTINED = "quarantined"  # the finding kind quarantine.py gives a held-back record


def layout_changes(meta: Mapping[str, Any]) -> dict[str, str]:
    """Source -> its one "seems to have changed its pages" line, from `_meta.layout_changes`."""
    changes = meta.get("layout_changes") or {}
    return {k: layout.layout_line(v, k) for k, v in sorted(changes.items()) if isinstance(v, dict)}


def notice_lines(meta: Mapping[str, Any]) -> list[str]:
    """What a run must say up front, one line each (console and report): every source that
    seems to have changed its pages, and the records the quality gate held back."""
    lines = list(layout_changes(meta).values())
    held = (meta.get("quarantine") or {}).get("held") or []
    if held:
        first = held[0]
        more = f" and {len(held) - 1} more" if len(held) > 1 else ""
        lines.append(
            f"quality gate: {len(held)} record{'s' if len(held) > 1 else ''} quarantined, "
            f"values not used ({first.get('trial_id')}: {first.get('reason')}{more})"
            + ("; the other records are published" if meta.get("accepted", True) else "")
        )
    return lines


GROUP_AT = 4  # trials that could not be checked for the same reason: one line, not one each


def _unchecked_section(content: ReportContent, limit: int | None) -> list[str]:
    items = _unchecked(content)
    lines = ["## Trials that could not be checked", ""]
    if not items:
        return [*lines, "Every trial was checked.", ""]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for u in items:
        groups[(u["outcome"], u["detail"])].append(u)

    def grouped(members: Sequence[Mapping[str, Any]]) -> bool:
        return len(members) >= GROUP_AT or bool(members[0].get("layout_changed"))

    alone = [u for members in groups.values() if not grouped(members) for u in members]
    for (outcome, detail), members in groups.items():
        if grouped(members):
            lines.append(_group_line(outcome, detail, members, limit))
    if alone:
        if len(lines) > 2:
            lines.append("")
        lines += [
            "| Trial | Registry | Outcome | Where in the review | Why |",
            "|---|---|---|---|---|",
        ]
    listed, left_out = first_of_each(alone, limit, lambda _: "trial")
    for one in listed:
        where = "; ".join(f"Table {r['table']} {r['product']}" for r in one["rows"])
        cells = (
            one["trial_id"],
            registry_name(one["registry"]),
            one["outcome"],
            where,
            one["detail"],
        )
        lines.append("| " + " | ".join(md(c) for c in cells) + " |")
    if left_out:
        lines += [
            "",
            f"{left_out['trial']:,} more trials not checked, not listed here: {UNCHECKED_WHERE}.",
        ]
    return [*lines, ""]


UNCHECKED_WHERE = (
    "every one is in the JSON report's `unchecked` list and the `outcomes` table of "
    "`registry-sync browse`"
)


def _group_line(
    outcome: str, detail: str, members: Sequence[Mapping[str, Any]], limit: int | None = None
) -> str:
    """`- 88 trials not_in_replay (ClinicalTrials.gov 66, jRCT 11, …): why. IDs: …`"""
    by_registry = Counter(registry_name(m["registry"]) for m in members)
    counts = ", ".join(f"{md(name)} {n}" for name, n in by_registry.most_common())
    shown = members if limit is None else members[:limit]
    ids = ", ".join(md(m["trial_id"]) for m in shown)
    if len(shown) < len(members):
        ids += f" and {len(members) - len(shown):,} more; {UNCHECKED_WHERE}"
    return f"- **{len(members)} trials {md_code(outcome)}** ({counts}): {md(detail)}. IDs: {ids}"
