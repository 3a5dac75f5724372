"""The snapshot's tables, declared once, and the rows a run writes into them (pure).

Every table is created from `TABLES` before anything is inserted, so an empty run has exactly
the columns of a full one. List columns are JSON arrays in every table. Datasette follows the
foreign keys: records -> payloads -> requests, evidence -> outcomes and requests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from registry_sync.model import (
    CuratedRow,
    Exchange,
    Finding,
    PartialDate,
    RawPayload,
    RegistryRecord,
    TrialState,
    Unmapped,
)

# 4: bodies in the payload store (`payloads.body` NULL), named in _meta
# 5: several reviews per run: `curated` and `findings` carry `review` (the table's file stem),
#    curated's key is (review, line); `_meta.reviews` lists them (see reviews.py)
SCHEMA_VERSION = 5

# Response headers worth keeping as evidence (the rest is noise or a cookie value).
KEPT_HEADERS = (
    "Content-Type",
    "Content-Length",
    "Content-Encoding",
    "ETag",
    "Last-Modified",
    "Retry-After",
    "Location",
    "Date",
    "Server",
)


@dataclass(frozen=True)
class Table:
    name: str
    columns: Mapping[str, type]  # name -> str | int | bytes (TEXT, INTEGER, BLOB), in order
    pk: str | tuple[str, ...]
    foreign_keys: tuple[tuple[str, str, str], ...] = ()  # (column, other table, other column)
    not_null: frozenset[str] = frozenset()


_RECORD_VALUES: dict[str, type] = {
    f.name: (int if f.name == "enrollment" else str)
    for f in dataclasses.fields(RegistryRecord)
    if f.name not in {"registry", "trial_id"}
}

# In creation order: a table's foreign keys point at tables created before it.
TABLES: tuple[Table, ...] = (
    Table("_meta", {"key": str, "value": str}, pk="key"),
    Table(
        "requests",
        {
            "request_id": str,
            "registry": str,
            "endpoint": str,
            "method": str,
            "url": str,
            "status": int,
            "fetched_at": str,
            "headers": str,
            "body_sha256": str,
            "body_size": int,
            "truncated": int,
            "redacted": int,
            "error": str,
        },
        pk="request_id",
        not_null=frozenset({"registry", "method", "url", "fetched_at"}),
    ),
    Table(
        "payloads",
        {
            "sha256": str,
            "kind": str,
            "registry": str,
            "source": str,
            "trial_id": str,
            "request_id": str,
            "url": str,
            "fetched_at": str,
            "content_type": str,
            "container_sha256": str,
            "origin": str,
            "size": int,
            "body": bytes,
        },
        pk="sha256",
        foreign_keys=(("request_id", "requests", "request_id"),),
        not_null=frozenset({"kind", "registry"}),  # body: NULL when in the payload store
    ),
    Table(
        "outcomes",
        {
            "trial_id": str,
            "registry": str,
            "source": str,
            "outcome": str,
            "detail": str,
            "url": str,
            "origin": str,
            "stale": int,
            "carried_from": str,
        },
        pk="trial_id",
        not_null=frozenset({"outcome"}),
    ),
    Table(
        "evidence",
        {"trial_id": str, "position": int, "request_id": str},
        pk=("trial_id", "position"),
        foreign_keys=(
            ("trial_id", "outcomes", "trial_id"),
            ("request_id", "requests", "request_id"),
        ),
    ),
    Table(
        "records",
        {
            "registry": str,
            "trial_id": str,
            **_RECORD_VALUES,
            "source": str,
            "origin": str,
            "content_hash": str,
            "stale": int,
            "carried_from": str,
            "fetched_at": str,
            "source_url": str,
            "payload_sha256": str,
            "parser_version": int,
        },
        pk=("registry", "trial_id"),
        foreign_keys=(
            ("trial_id", "outcomes", "trial_id"),
            ("payload_sha256", "payloads", "sha256"),
        ),
    ),
    Table(
        "curated",
        {
            "review": str,
            "line": int,
            "table": int,
            "row": int,
            "product": str,
            "refs": str,
            "cell_type": str,
            "indication": str,
            "sponsor": str,
            "trial_id": str,
            "phase": str,
            "nation": str,
            "start": str,
            "note": str,
            "registry": str,
            "phases": str,
            "start_iso": str,
        },
        pk=("review", "line"),
    ),
    Table(
        "findings",
        {
            "id": int,
            "key": str,
            "review": str,
            "table": int,
            "line": int,
            "trial_id": str,
            "field": str,
            "kind": str,
            "severity": str,
            "review_value": str,
            "registry_value": str,
            "evidence_url": str,
            "message": str,
            "stale": int,
            "last_updated": str,
            "stale_since": str,
            "verdict": str,
            "accepted_reason": str,
            "accepted_on": str,
            "details": str,
        },
        pk="id",
        # a finding's row is curated (review, line): a key of two columns, which sqlite-utils
        # cannot declare as a foreign key; browse.py's queries join on both
    ),
)


# Where each record's values came from, whether its row names the URL or (a batch answer)
# the request that holds it once.
VIEWS = {
    "provenance": (
        "select r.registry, r.trial_id, coalesce(r.source_url, q.url) as url, r.fetched_at,"
        " r.payload_sha256, p.request_id, p.container_sha256, r.stale, r.carried_from"
        " from records r left join payloads p on p.sha256 = r.payload_sha256"
        " left join requests q on q.request_id = p.request_id"
    ),
}


def json_list(values: Iterable[Any]) -> str:
    """The one encoding of a list column: a JSON array."""
    return json.dumps(list(values), ensure_ascii=False)


def curated_row(row: CuratedRow) -> dict[str, Any]:
    """One line of the review's table: as printed, plus what we parsed of it."""
    return {
        "review": row.review,
        "line": row.line,
        "table": row.table,
        "row": row.row,
        "product": row.product,
        "refs": row.refs,
        "cell_type": row.cell_type,
        "indication": row.indication,
        "sponsor": row.sponsor,
        "trial_id": row.trial_id,
        "phase": row.phase,
        "nation": row.nation,
        "start": row.start,
        "note": row.note,
        "registry": row.registry,
        "phases": json_list(sorted(row.phases)) if row.phases is not None else None,
        "start_iso": row.start_date.iso() if row.start_date else None,
    }


def normalized_record(rec: RegistryRecord) -> dict[str, Any]:
    """The record as flat columns: dates ISO, lists JSON. Provenance is not part of it."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(rec):
        value = getattr(rec, f.name)
        if isinstance(value, PartialDate):
            value = value.iso()
        elif f.name == "unmapped":
            value = json_list([u.field, u.raw] for u in value)
        elif isinstance(value, tuple):
            value = json_list(value)
        out[f.name] = value
    return out


def record_from_row(row: Mapping[str, Any]) -> RegistryRecord:
    """The record a `records` row stores (the inverse of `normalized_record`): an unchanged
    study's values without reading or re-parsing its body."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(RegistryRecord):
        value = row.get(f.name)
        if value is None:
            continue
        if f.name == "unmapped":
            value = tuple(Unmapped(a, b) for a, b in json.loads(value))
        elif f.name == "has_results":  # a TEXT column: SQLite keeps True as '1'
            value = str(value).lower() in {"1", "true"}
        elif f.type in _DATE_TYPES:
            value = PartialDate.from_iso(str(value))
        elif f.type in _TUPLE_TYPES:
            value = tuple(json.loads(value))
        values[f.name] = value
    return RegistryRecord(**values)


_DATE_TYPES = ("PartialDate | None",)
_TUPLE_TYPES = ("tuple[str, ...]",)


def content_hash(normalized: Mapping[str, Any]) -> str:
    """sha256 of the normalized record: equal hashes mean nothing the registry says changed."""
    text = json.dumps(normalized, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def batch_urls(states: Iterable[TrialState], request_urls: Iterable[str]) -> frozenset[str]:
    """Request URLs that answered more than one trial (a ClinicalTrials.gov batch): per-trial
    rows store NULL for them and name the request (payloads.request_id, evidence), so that a
    1,000-ID URL is stored once per snapshot, not three times per trial."""
    asked = set(request_urls)
    seen = Counter(s.source_url for s in states if s.source_url in asked)
    return frozenset(u for u, n in seen.items() if u is not None and n > 1)


def unless(url: str | None, batch: frozenset[str]) -> str | None:
    return None if url in batch else url


def record_row(
    state: TrialState, parser_versions: Mapping[str, int], batch: frozenset[str] = frozenset()
) -> dict[str, Any]:
    rec = state.record
    assert rec is not None
    normalized = normalized_record(rec)
    source = state.source or rec.registry
    return {
        **normalized,
        # keyed by the trial the review cites, even when its values are another record's (a
        # retired registry's trial linked to its new home)
        "registry": state.registry or rec.registry,
        "trial_id": state.trial_id,
        "source": source,
        "origin": state.origin.value,
        "content_hash": content_hash({**normalized, "source": source}),
        "stale": state.stale,
        "carried_from": state.carried_from,
        "fetched_at": state.fetched_at.isoformat() if state.fetched_at else None,
        "source_url": unless(state.source_url, batch),
        "payload_sha256": state.payload_sha256,
        "parser_version": parser_versions.get(source),
    }


def outcome_row(state: TrialState, batch: frozenset[str] = frozenset()) -> dict[str, Any]:
    return {
        "trial_id": state.trial_id,
        "registry": state.registry,
        "source": state.source or state.registry,
        "outcome": state.outcome.value,
        "detail": state.detail,
        "url": unless(state.source_url, batch),
        "origin": state.origin.value,
        "stale": state.stale,
        "carried_from": state.carried_from,
    }


def evidence_rows(state: TrialState) -> list[dict[str, Any]]:
    return [
        {"trial_id": state.trial_id, "position": i, "request_id": rid}
        for i, rid in enumerate(state.evidence)
    ]


def finding_key(f: Finding) -> str:
    """Stable from night to night while the review's table is unchanged: what kind, where in
    the review, which trial and field (`phase_mismatch:2:9:NCT06482268:phase`)."""
    return f"{f.kind}:{f.table}:{f.line}:{f.trial_id}:{f.field}"


def finding_row(index: int, f: Finding) -> dict[str, Any]:
    return {
        "id": index,
        "key": finding_key(f),
        "review": f.review,
        "table": f.table,
        "line": f.line,
        "trial_id": f.trial_id,
        "field": f.field,
        "kind": f.kind,
        "severity": f.severity.value,
        "review_value": f.review_value,
        "registry_value": f.registry_value,
        "evidence_url": f.evidence_url,
        "message": f.message,
        "stale": f.stale,
        "last_updated": f.extra.get("last_updated"),
        "stale_since": f.extra.get("stale_since"),
        "verdict": f.verdict.value,
        "accepted_reason": f.accepted_reason or None,
        "accepted_on": f.accepted_on or None,
        # the finding's own evidence (what matched, candidates, sibling IDs): a JSON object
        "details": json.dumps(
            {k: v for k, v in f.extra.items() if k not in {"last_updated", "stale_since"}},
            ensure_ascii=False,
            sort_keys=True,
        ),
    }


def request_row(ex: Exchange, endpoint: str) -> dict[str, Any]:
    """One request as made: what was asked, what came back, the sha256 of the bytes served."""
    kept = {name: ex.headers[name] for name in KEPT_HEADERS if name in ex.headers}
    answered = ex.status is not None
    return {
        "request_id": ex.request_id,
        "registry": ex.registry,
        "endpoint": endpoint,
        "method": ex.method,
        "url": ex.url,
        "status": ex.status,
        "fetched_at": ex.fetched_at.isoformat(),
        "headers": json.dumps(kept, ensure_ascii=False),
        "body_sha256": (ex.served_sha256 or ex.sha256) if answered else None,
        "body_size": ex.size if answered else None,
        "truncated": ex.truncated,
        "redacted": ex.served_sha256 is not None,
        "error": ex.error,
    }


def served_payload_row(ex: Exchange) -> dict[str, Any]:
    """The bytes of one answer, as served (a whole batch page, a block page)."""
    return {
        "sha256": ex.sha256,
        "kind": "served",
        "registry": ex.registry,
        "source": ex.registry,
        "trial_id": None,
        "request_id": ex.request_id,
        "url": ex.url,
        "fetched_at": ex.fetched_at.isoformat(),
        "content_type": ex.content_type,
        "container_sha256": None,
        "origin": None,
        "size": ex.size,
        "body": None if ex.stored else ex.body,  # None: already in the payload store
    }


def extract_payload_row(p: RawPayload, origin: str | None) -> dict[str, Any]:
    """The bytes one trial's record was parsed from (a study cut from a batch page refers to
    the page's request)."""
    return {
        "sha256": p.sha256,
        "kind": "extract",
        "registry": p.registry,
        "source": p.served_by,
        "trial_id": p.trial_id,
        "request_id": p.request_id,
        "url": p.url,
        "fetched_at": p.fetched_at.isoformat(),
        "content_type": p.content_type,
        "container_sha256": p.container_sha256,
        "origin": origin,
        "size": p.size,
        "body": None if p.stored else p.body,  # None: already in the payload store
    }
