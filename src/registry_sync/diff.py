"""Night to night: what changed between two snapshots (pure over their rows; `load_rows` reads).

- trials whose registry values changed (status, phases, start, completion, sponsor, last update);
- outcome changes (a registry that started blocking us, a trial that came back);
- findings new and resolved, by their stable key (kind, table, CSV line, trial, field);
- findings the authors accepted since (shown as accepted, not as new or resolved), and accepted
  findings reopened because the registry's value changed (see decisions.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry_sync import snapshot
from registry_sync.errors import SnapshotError
from registry_sync.escape import md, md_code

WATCHED = ("status", "phases", "start", "primary_completion", "completion", "lead_sponsor")


@dataclass(frozen=True)
class SnapshotRows:
    run_id: str
    records: Mapping[str, Mapping[str, Any]]
    outcomes: Mapping[str, str]
    findings: Mapping[str, Mapping[str, Any]]  # by key
    # `load_rows(light=True)`: findings hold only `key` and `accepted_on`; whole rows (of the
    # resolved ones) are read from `path` when asked for
    path: Path | None = None


@dataclass(frozen=True)
class Change:
    trial_id: str
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Diff:
    old_run: str
    new_run: str
    changes: list[Change] = field(default_factory=list)
    outcomes: list[Change] = field(default_factory=list)
    new_findings: list[Mapping[str, Any]] = field(default_factory=list)
    resolved_findings: list[Mapping[str, Any]] = field(default_factory=list)
    accepted_findings: list[Mapping[str, Any]] = field(default_factory=list)
    reopened_findings: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.changes
            or self.outcomes
            or self.new_findings
            or self.resolved_findings
            or self.accepted_findings
            or self.reopened_findings
        )


def load_rows(path: Path, *, light: bool = False) -> SnapshotRows:
    """A snapshot's rows as `diff_snapshots` compares them. `light`: each finding as its key
    and decision only (the older side of a 100,000-trial night: 375,000 whole rows were most
    of the report's memory); the resolved ones are read whole when the diff needs them."""
    conn = snapshot.open_snapshot(path)
    try:
        run_id = json.loads(
            conn.execute("select value from _meta where key = 'run_id'").fetchone()["value"]
        )
        # only what `diff_snapshots` compares and `render_diff_*` prints: a 100,000-trial
        # snapshot's every column was ~1 GB of rows held beside the new one's
        watched = ", ".join(WATCHED)
        same: dict[Any, Any] = {}  # one object per distinct value (statuses, phases repeat)
        records = {
            r["trial_id"]: {k: same.setdefault(v, v) for k, v in dict(r).items()}
            for r in conn.execute(f"select trial_id, {watched} from records")
        }
        outcomes = {
            r["trial_id"]: r["outcome"]
            for r in conn.execute("select trial_id, outcome from outcomes")
        }
        if light:  # all `diff_snapshots` asks of an older finding is whether it was accepted
            findings = {
                r["key"]: _OPEN if r["accepted_on"] is None else {"accepted_on": r["accepted_on"]}
                for r in conn.execute("select key, accepted_on from findings")
            }
        else:
            findings = {r["key"]: _finding(r) for r in conn.execute(_select_findings(conn))}
    finally:
        conn.close()
    return SnapshotRows(str(run_id), records, outcomes, findings, path if light else None)


_OPEN: Mapping[str, Any] = {"accepted_on": None}  # shared by every older finding not accepted


def _whole_findings(rows: SnapshotRows, keys: list[str]) -> list[Mapping[str, Any]]:
    if rows.path is None:
        return [rows.findings[k] for k in keys]
    conn = snapshot.open_snapshot(rows.path)
    try:
        sql = f"{_select_findings(conn)} where key in (select value from json_each(?))"
        found: dict[str, Mapping[str, Any]] = {}
        for start in range(0, len(keys), 500):
            chunk = json.dumps(keys[start : start + 500])
            found.update((r["key"], _finding(r)) for r in conn.execute(sql, [chunk]))
    finally:
        conn.close()
    return [found[k] for k in keys if k in found]


def _select_findings(conn: Any) -> str:
    """`select` of the finding columns this snapshot has of those `diff` uses."""
    present = {r["name"] for r in conn.execute("pragma table_info(findings)")}
    return f"select {', '.join(f'[{c}]' for c in _FINDING_COLUMNS if c in present)} from findings"


# the columns of a finding `diff` reads or prints (`details` only to tell a reopened one)
_FINDING_COLUMNS = (
    "key",
    "review",
    "table",
    "line",
    "trial_id",
    "field",
    "kind",
    "severity",
    "review_value",
    "registry_value",
    "evidence_url",
    "message",
    "verdict",
    "accepted_reason",
    "accepted_on",
    "details",
)


def _finding(row: Any) -> dict[str, Any]:
    out = dict(row)
    if "reopened_on" not in (out.get("details") or ""):
        out["details"] = None  # all `diff` asks of it is whether it says reopened
    return out


def diff_snapshots(old: SnapshotRows, new: SnapshotRows) -> Diff:
    """What a curator should know changed from `old` to `new`."""
    result = Diff(old.run_id, new.run_id)
    for tid in sorted(set(old.records) & set(new.records)):
        before, after = old.records[tid], new.records[tid]
        for name in WATCHED:
            if before.get(name) != after.get(name):
                result.changes.append(Change(tid, name, before.get(name), after.get(name)))
    for tid in sorted(set(old.outcomes) | set(new.outcomes)):
        if old.outcomes.get(tid) != new.outcomes.get(tid):
            was, now = old.outcomes.get(tid), new.outcomes.get(tid)
            result.outcomes.append(Change(tid, "outcome", was, now))
    for key in sorted(new.findings):
        row, prior = new.findings[key], old.findings.get(key)
        if _accepted(row):
            if prior is None or not _accepted(prior):
                result.accepted_findings.append(row)
        elif _reopened(row) and (prior is None or _accepted(prior)):
            result.reopened_findings.append(row)
        elif prior is None:
            result.new_findings.append(row)
    result.resolved_findings.extend(
        _whole_findings(old, sorted(set(old.findings) - set(new.findings)))
    )
    return result


def render_diff_markdown(d: Diff, heading: str = "#", limit: int | None = None) -> list[str]:
    """The diff as markdown; with `limit`, each list shows its first `limit` items and says how
    many more (`diff --format json` has them all)."""
    lines = [f"{heading} Changes since run {md_code(d.old_run)}", ""]
    if d.empty:
        return [*lines, "Nothing changed.", ""]
    lines += _changes("Registry values that changed", d.changes, limit)
    lines += _changes("Outcomes that changed", d.outcomes, limit)
    lines += _findings("New findings", d.new_findings, limit)
    lines += _findings("Resolved findings", d.resolved_findings, limit)
    lines += _findings("Accepted by the authors", d.accepted_findings, limit)
    lines += _findings(
        "Reopened (accepted, but the registry's value changed)", d.reopened_findings, limit
    )
    return lines


def _more(total: int, limit: int | None) -> list[str]:
    if limit is None or total <= limit:
        return []
    return [f"- {total - limit:,} more not listed here: see `registry-sync diff --format json`."]


def _accepted(f: Mapping[str, Any]) -> bool:
    return bool(f.get("accepted_on"))


def _reopened(f: Mapping[str, Any]) -> bool:
    """A decision was on file for this finding, but the registry's value has changed since."""
    try:
        details = json.loads(f.get("details") or "{}")
    except ValueError:
        return False
    return isinstance(details, dict) and "reopened_on" in details


def _changes(title: str, changes: Sequence[Change], limit: int | None = None) -> list[str]:
    if not changes:
        return []
    lines = [f"**{title}** ({len(changes)}):", ""]
    lines += [
        f"- {md(c.trial_id)} {md(c.field)}: {md(_shown(c.old))} → {md(_shown(c.new))}"
        for c in changes[:limit]
    ]
    return [*lines, *_more(len(changes), limit), ""]


def _findings(
    title: str, findings: Sequence[Mapping[str, Any]], limit: int | None = None
) -> list[str]:
    if not findings:
        return []
    lines = [f"**{title}** ({len(findings)}):", ""]
    lines += [
        f"- Table {md(f['table'])}, {md(f['trial_id'])}: {md(f['kind'])} ({md(f['severity'])}): "
        f"{md(f['message'])}"
        + (
            f" (accepted on {md(f['accepted_on'])}: {md(f['accepted_reason'])})"
            if _accepted(f)
            else ""
        )
        for f in findings[:limit]
    ]
    return [*lines, *_more(len(findings), limit), ""]


def _shown(value: Any) -> str:
    return "(none)" if value in (None, "") else str(value)


def diff_json(d: Diff) -> str:
    doc = {
        "old_run": d.old_run,
        "new_run": d.new_run,
        "changes": [c.__dict__ for c in d.changes],
        "outcomes": [c.__dict__ for c in d.outcomes],
        "new_findings": [dict(f) for f in d.new_findings],
        "resolved_findings": [dict(f) for f in d.resolved_findings],
        "accepted_findings": [dict(f) for f in d.accepted_findings],
        "reopened_findings": [dict(f) for f in d.reopened_findings],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"


def two_newest(store: Path) -> tuple[Path, Path]:
    """The two newest accepted snapshots of the kind of run `latest` is (live, replay, custom)."""
    latest = snapshot.latest_snapshot(store)
    if latest is None:
        raise SnapshotError(f"no snapshot in {store} yet: run `registry-sync run` first")
    key = snapshot.carry_key(snapshot.read_meta(latest))
    same = [
        i.path for i in snapshot.list_snapshots(store, include_rejected=False) if i.carry_key == key
    ]
    if len(same) < 2:
        raise SnapshotError(
            f"only one {key} snapshot in {store}: a diff needs two (name them: diff OLD NEW)"
        )
    return same[-2], same[-1]
