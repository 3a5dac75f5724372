"""Datasette metadata for one snapshot (pure): a title naming the review and the run, a
description for every table and column of the schema, facets and a sensible sort.

`registry-sync browse` writes this next to the run's reports and serves the snapshot read-only
(`datasette serve --immutable`). The descriptions are keyed by the tables of
`snapshot_schema.TABLES`; a test fails when a column of the schema has none, so a column added
to the schema must be described here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from registry_sync.snapshot_schema import TABLES, Table

# table -> (what one row is, {column: what it holds})
DESCRIPTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "_meta": (
        "The run itself, as key/value pairs (values are JSON): when, what mode, which versions, "
        "counts, the quality gate's reports.",
        {"key": "Name of the run property", "value": "Its value, as JSON"},
    ),
    "requests": (
        "One row per HTTP request the run made (or carried forward with a stale record).",
        {
            "request_id": "Identifier of the request (evidence and payloads point here)",
            "registry": "Registry key of the host asked (ctgov, jrct, ..., ictrp)",
            "endpoint": "Which of the registry's routes was asked (search, detail, batch, ...)",
            "method": "HTTP method",
            "url": "The URL asked",
            "status": "HTTP status of the answer; empty when no answer came",
            "fetched_at": "When the answer came (UTC)",
            "headers": "The response headers worth keeping, as JSON (never cookies)",
            "body_sha256": "sha256 of the bytes as served",
            "body_size": "Size in bytes of the answer as served",
            "truncated": "1 when reading stopped at the registry's size cap",
            "redacted": "1 when personal data was taken out before keeping the body",
            "error": "Why there was no usable answer (timeout, refused, ...)",
        },
    ),
    "payloads": (
        "The bytes served, one row per distinct body: whole answers (`served`) and the part "
        "one trial was parsed from (`extract`).",
        {
            "sha256": "sha256 of the body (records point here)",
            "kind": "served: an answer as it came; extract: the bytes one trial was parsed from",
            "registry": "Home registry of the trial",
            "source": "Who served it (the registry itself, or e.g. ictrp for a copy)",
            "trial_id": "The trial an extract belongs to (empty for a whole answer)",
            "request_id": "The request it came in",
            "url": "Where it came from; empty for a batch answer, whose URL its request keeps",
            "fetched_at": "When it came (UTC)",
            "content_type": "Content type of the answer",
            "container_sha256": "For an extract: the sha256 of the whole answer it was cut from",
            "origin": "live, custom, recorded (replay) or reconstructed (rebuilt by hand)",
            "size": "Size in bytes",
            "body": "The bytes themselves; NULL when kept in the payload store (see _meta)",
        },
    ),
    "outcomes": (
        "One row per distinct trial ID of the review: whether it could be checked, and why not.",
        {
            "trial_id": "Trial ID, normalized",
            "registry": "Home registry key",
            "source": "Who answered (the registry itself, or e.g. ictrp)",
            "outcome": "ok, not_found, blocked, registry_down, parse_error, id_malformed, moved, "
            "unsupported, not_in_replay or quarantined",
            "detail": "Why, in words",
            "url": "The page asked for this trial; empty when a batch request answered it "
            "(see `evidence` and `requests`, or the `provenance` view)",
            "origin": "live, custom, recorded or reconstructed",
            "stale": "1 when the values are carried forward from an earlier run",
            "carried_from": "The run the stale values come from",
        },
    ),
    "evidence": (
        "The requests behind each outcome, in order (a search page, then the detail page).",
        {
            "trial_id": "The trial",
            "position": "Order of the request for this trial (0 first)",
            "request_id": "The request",
        },
    ),
    "records": (
        "One row per trial with a registry record: normalized values beside the raw ones, "
        "with provenance.",
        {
            "registry": "Registry key of the trial the review cites",
            "trial_id": "Trial ID the review cites, normalized",
            "status": "Recruitment status, canonical (empty when unmapped or absent)",
            "status_raw": "Status as the registry writes it",
            "last_known_status": "The registry's last known status (for UNKNOWN records)",
            "phases": "Phases, canonical (JSON list)",
            "phases_raw": "Phases as the registry writes them (JSON list)",
            "start": "Start date (ISO, at the registry's precision)",
            "start_raw": "Start date as the registry writes it",
            "start_type": "ACTUAL or ESTIMATED (when the registry says)",
            "primary_completion": "Primary completion date (ISO)",
            "completion": "Completion date (ISO)",
            "last_updated": "When the registry record was last updated (ISO)",
            "lead_sponsor": "Lead sponsor as the registry names it",
            "collaborators": "Collaborators (JSON list)",
            "brief_title": "Brief (public) title",
            "official_title": "Official (scientific) title",
            "conditions": "Conditions studied (JSON list)",
            "interventions": "Interventions (JSON list)",
            "enrollment": "Number of participants (actual or planned: see enrollment_type)",
            "secondary_ids": "Other IDs of the trial, e.g. in other registries (JSON list)",
            "evidence_url": "The public page a reader can open",
            "unmapped": "Values our vocabulary does not know, as [field, raw] pairs (JSON)",
            "refreshed": "For a copy (WHO ICTRP): the copy's own refresh date",
            "enrollment_type": "ACTUAL or ESTIMATED",
            "status_verified": "When the sponsor last confirmed the status (ISO)",
            "why_stopped": "The registry's reason, for a terminated, withdrawn or suspended trial",
            "has_results": "1 when results are posted in the registry",
            "countries": "Countries of the trial's sites, as the registry names them (JSON list)",
            "source": "Who served the values (the registry itself, or e.g. ictrp for a copy)",
            "origin": "live, custom, recorded or reconstructed",
            "content_hash": "sha256 of the normalized record: equal hashes mean nothing changed",
            "stale": "1 when carried forward from an earlier run",
            "carried_from": "The run the stale values come from",
            "fetched_at": "When the values were fetched (UTC)",
            "source_url": "Where the values were fetched from; empty for a batch answer "
            "(the `provenance` view gives every record's URL)",
            "payload_sha256": "The payload they were parsed from",
            "parser_version": "Version of the parser that read them",
        },
    ),
    "curated": (
        "The review's table, one row per printed row: as printed, plus what was parsed of it.",
        {
            "review": "The review whose table holds the row (its file stem); schema 5 on",
            "line": "Line in the review's CSV (findings point here)",
            "table": "Table number in the review",
            "row": "Row number within that table",
            "product": "Product as printed",
            "refs": "References as printed",
            "cell_type": "Cell type as printed",
            "indication": "Indication as printed",
            "sponsor": "Sponsor as printed",
            "trial_id": "Trial ID as printed",
            "phase": "Phase as printed",
            "nation": "Nation as printed",
            "start": "Start as printed",
            "note": "Transcription note",
            "registry": "Registry the ID belongs to (empty: matches no registry's pattern)",
            "phases": "Phases parsed from the printed phase (JSON list)",
            "start_iso": "Start parsed from the printed start (ISO)",
        },
    ),
    "findings": (
        "What to check or fix in the review, one row per finding, keyed to its table and row.",
        {
            "id": "Row number of the finding in this snapshot",
            "key": "Stable key from night to night: kind:table:line:trial:field",
            "review": "The review whose row this is (with line: the curated row)",
            "table": "Table number in the review",
            "line": "Line in the review's CSV (links to the curated row)",
            "trial_id": "Trial ID",
            "field": "Which column of the review it is about",
            "kind": "What kind of finding (phase_mismatch, duplicate_id, status, ...)",
            "severity": "error, warning or info",
            "review_value": "The value as the review prints it",
            "registry_value": "The registry's value",
            "evidence_url": "The registry page that shows it",
            "message": "The finding, in words",
            "stale": "1 when the registry value is carried forward from an earlier run",
            "last_updated": "When the registry record was last updated",
            "stale_since": "When the stale value was fetched",
            "verdict": "wrong_at_publication, changed_since or unknown",
            "accepted_reason": "Why the authors accepted it, when they did",
            "accepted_on": "When the authors accepted it",
            "details": "The finding's own evidence (what matched, candidates), as JSON",
        },
    ),
}

# table -> columns to facet on, when the table has them
FACETS: dict[str, tuple[str, ...]] = {
    "findings": ("kind", "severity", "verdict", "table"),
    "outcomes": ("outcome", "registry", "origin"),
    "records": ("registry", "status", "origin"),
    "curated": ("table", "registry"),
    "requests": ("registry", "status"),
    "payloads": ("kind", "registry"),
}
SORT: dict[str, str] = {"findings": "table", "curated": "line", "requests": "fetched_at"}
LABELS: dict[str, str] = {"curated": "product", "outcomes": "trial_id"}


def database_name(snapshot_path: Path) -> str:
    """The name Datasette gives a database file: its stem."""
    return snapshot_path.stem


def title(meta: Mapping[str, Any]) -> str:
    review = Path(str(meta.get("curated_path") or "review")).stem
    return f"registry-sync: {review}, run {meta.get('run_id', '?')} ({meta.get('mode', '?')})"


def build_metadata(
    meta: Mapping[str, Any], db_name: str, tables: Sequence[Table] = TABLES
) -> dict[str, Any]:
    """Datasette metadata (0.65 `metadata.json` shape) for a snapshot with `_meta` values
    `meta`, served under the name `db_name`."""
    counts = meta.get("counts") or {}
    state = "partial" if meta.get("partial") else "complete"
    gate = "accepted" if meta.get("accepted", True) else "REJECTED by the quality gate"
    description = (
        f"Snapshot of run {meta.get('run_id', '?')}, started {meta.get('started_at', '?')}: "
        f"{state}, {gate}; {counts.get('rows', '?')} rows of the review, "
        f"{counts.get('trials', '?')} trial IDs. Read-only. Start with the findings table."
    )
    return {
        "title": title(meta),
        "description": description,
        "source": "registry-sync",
        "databases": {
            db_name: {
                "description": description,
                "tables": {t.name: _table(t) for t in tables},
                "queries": {"what_to_fix": _what_to_fix(int(meta.get("schema_version") or 0) >= 5)},
            }
        },
    }


def _table(t: Table) -> dict[str, Any]:
    text, columns = DESCRIPTIONS.get(t.name, ("", {}))
    out: dict[str, Any] = {
        "description": text,
        "columns": {c: columns.get(c, "") for c in t.columns},
    }
    facets = [c for c in FACETS.get(t.name, ()) if c in t.columns]
    if facets:
        out["facets"] = facets
    if SORT.get(t.name) in t.columns:
        out["sort"] = SORT[t.name]
    if LABELS.get(t.name) in t.columns:
        out["label_column"] = LABELS[t.name]
    return out


def _what_to_fix(by_review: bool = True) -> dict[str, Any]:
    """Errors and warnings by table and line, with the row and product as the review prints
    them (Datasette sorts a table on one column only; this query orders by both). A snapshot
    older than schema 5 has no `review` column: one review, joined on the line alone."""
    join = "c.review = f.review and c.line = f.line" if by_review else "c.line = f.line"
    order = "f.review, " if by_review else ""
    return {
        "title": "What to fix in the review, by table and row",
        "description": "Errors and warnings, ordered by table and line; info findings left out.",
        "sql": (
            'select f."table", c."row", c.product, f.trial_id, f.kind, f.severity, f.verdict, '
            "f.review_value, f.registry_value, f.message, f.evidence_url "
            f"from findings f left join curated c on {join} "
            "where f.severity in ('error', 'warning') "
            f'order by {order}f."table", f.line, f.id'
        ),
    }


def undescribed(tables: Sequence[Table] = TABLES) -> list[str]:
    """`table.column` for every column of the schema without a description."""
    return [
        f"{t.name}.{c}"
        for t in tables
        for c in t.columns
        if not DESCRIPTIONS.get(t.name, ("", {}))[1].get(c)
    ]
