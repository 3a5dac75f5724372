"""Which records fail which per-record expectation, so one bad record is held back, not the run.

The records suite (`expectations/records.json`) marks every expectation with `meta.scope`:

- `record`: a failure is about one record (a start in 1985, a status outside the vocabulary, a
  malformed date, a missing payload hash). The *critical* ones are evaluated here, record by
  record, before reconciling: a record that fails one is **quarantined**. Its payload and
  requests stay in the snapshot as evidence, its values are not used (the trial is treated like
  a parse problem: last good values carried forward, marked stale, else no record) and a
  `quarantined` finding says which expectation and which value. Warning ones stay GX findings.
- `set`: a failure is about the answer as a whole (columns missing, duplicate keys, a null key):
  GX judges these over the records that are left, and a failure rejects the run.

Two set-level rules need counts GX cannot express with a minimum size, so they live here
(`set_checks`): most records quarantined (at least `MIN_SET` and at least `MOST` of the records
checked), and every status null (among at least `MIN_SET` records). Either rejects the run.

Pure: plain values in, plain values out. The rows are `frames.record_row` dicts, the values GX
sees; the conditions are read from the same suite JSON, so the two cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from registry_sync.ids import normalize_id
from registry_sync.model import CuratedRow, Finding, Outcome, PartialDate, Severity, TrialState

RECORD_SCOPE = "record"
SET_SCOPE = "set"
KIND = "quarantined"  # the finding kind and the outcome value
MIN_SET = 3  # set-level rules need at least this many records
MOST = 0.5  # share of records quarantined that makes the answer as a whole implausible
DATE_SUFFIX = "_dt"
# The per-record conditions this module can evaluate (the GX expectation types they mirror).
SUPPORTED = frozenset(
    {
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_be_between",
        "expect_column_values_to_not_be_null",
    }
)


@dataclass(frozen=True)
class Breach:
    """One per-record expectation one record fails."""

    expectation: str
    column: str
    value: str | None
    problem: str  # "start 1985-01-01 is before 1990-01-01"


@dataclass(frozen=True)
class Held:
    """A quarantined record: which trial, why, and where its evidence is."""

    registry: str | None
    trial_id: str
    breaches: tuple[Breach, ...]
    payload_sha256: str | None
    evidence: tuple[str, ...]  # request ids

    @property
    def reason(self) -> str:
        return "; ".join(b.problem for b in self.breaches)

    @property
    def message(self) -> str:
        return f"{self.reason}: the record's values are not used"

    def to_dict(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "trial_id": self.trial_id,
            "reason": self.reason,
            "expectations": [b.expectation for b in self.breaches],
            "columns": [b.column for b in self.breaches],
            "values": [b.value for b in self.breaches],
            "payload_sha256": self.payload_sha256,
            "evidence": list(self.evidence),
        }


@dataclass(frozen=True)
class SetCheck:
    """One set-level rule's verdict, in the terms of a GX outcome."""

    name: str
    success: bool
    observed: str
    count: int | None  # the records it is about (quarantined ones), when any
    examples: tuple[str, ...]
    description: str


def record_rules(expectations: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The suite's critical per-record expectations; a type this module cannot evaluate is an
    error naming it (mark it `set`, or teach `_breach` the type)."""
    rules = [
        e
        for e in expectations
        if (e.get("meta") or {}).get("scope") == RECORD_SCOPE and e.get("severity") == "critical"
    ]
    for e in rules:
        if e.get("type") not in SUPPORTED:
            raise ValueError(
                f"per-record expectation {e.get('type')!r} cannot be checked record by record; "
                f"mark it meta.scope={SET_SCOPE!r} or use one of {', '.join(sorted(SUPPORTED))}"
            )
    return rules


def find_held(
    rows: Mapping[str, Mapping[str, Any]],
    states: Mapping[str, TrialState],
    expectations: Sequence[Mapping[str, Any]],
    parameters: Mapping[str, object],
) -> dict[str, Held]:
    """Trial ID -> Held for each record row (keyed by trial ID) failing a critical per-record
    expectation; `states` gives each one's registry and evidence."""
    rules = record_rules(expectations)
    held = {}
    for tid, row in rows.items():
        breaches = tuple(b for rule in rules if (b := _breach(rule, row, parameters)) is not None)
        if breaches:
            s = states[tid]
            held[tid] = Held(s.registry, tid, breaches, s.payload_sha256, s.evidence)
    return held


def hold_back(states: Mapping[str, TrialState], held: Mapping[str, Held]) -> dict[str, TrialState]:
    """The states with each held record taken out: outcome `quarantined`, no record, the reason
    as detail (provenance and evidence kept, so the payload and requests stay findable)."""
    out = dict(states)
    for tid, h in held.items():
        s = states[tid]
        detail = f"quarantined by the quality gate: {h.message}"
        out[tid] = TrialState(
            s.registry,
            s.trial_id,
            Outcome.QUARANTINED,
            detail,
            fetched_at=s.fetched_at,
            source_url=s.source_url,
            payload_sha256=s.payload_sha256,
            source=s.source,
            origin=s.origin,
            evidence=s.evidence,
        )
    return out


def findings(
    rows: Sequence[CuratedRow], held: Mapping[str, Held], states: Mapping[str, TrialState]
) -> list[Finding]:
    """One `quarantined` warning per row of the review citing a held trial; it says whether
    last good values were carried forward instead."""
    out = []
    for row in rows:
        h = held.get(normalize_id(row.trial_id))
        if h is None:
            continue
        s = states.get(h.trial_id)
        stale = s is not None and s.record is not None and s.stale
        tail = f"; last good values from run {s.carried_from} used instead" if stale and s else ""
        first = h.breaches[0]
        out.append(
            Finding(
                table=row.table,
                line=row.line,
                trial_id=row.trial_id,
                field=first.column,
                kind=KIND,
                severity=Severity.WARNING,
                review_value=None,
                registry_value=first.value,
                message=h.message + tail,
                extra={
                    "expectations": ", ".join(b.expectation for b in h.breaches),
                    "payload_sha256": h.payload_sha256 or "",
                },
            )
        )
    return out


def set_checks(
    checked: int, held: Mapping[str, Held], statuses: Sequence[str | None]
) -> list[SetCheck]:
    """The set-level rules GX cannot express: `checked` records this run, `held` of them
    quarantined; `statuses` of the records fetched this run (not stale)."""
    count = len(held)
    most = count >= MIN_SET and count >= MOST * checked
    examples = tuple(
        f"registry={h.registry} trial_id={h.trial_id}: {h.reason}" for h in held.values()
    )
    all_null = len(statuses) >= MIN_SET and all(s is None for s in statuses)
    return [
        SetCheck(
            "records_mostly_quarantined",
            not most,
            f"{count} of {checked} records quarantined",
            count or None,
            examples[:10],
            f"Fewer than {MOST:.0%} of the records (or fewer than {MIN_SET}) fail a per-record "
            "expectation; more means the registry's answer as a whole is implausible.",
        ),
        SetCheck(
            "records_statuses_not_all_null",
            not all_null,
            f"{sum(s is None for s in statuses)} of {len(statuses)} statuses null",
            None,
            (),
            f"Among {MIN_SET} or more records fetched this run, at least one has a status; all "
            "null means the answer (or our reading of it) lost the status field.",
        ),
    ]


# --- one record, one rule ------------------------------------------------------------------


def _breach(
    rule: Mapping[str, Any], row: Mapping[str, Any], parameters: Mapping[str, object]
) -> Breach | None:
    kind: str = rule["type"]
    kwargs: Mapping[str, Any] = rule.get("kwargs") or {}
    column = str(kwargs.get("column"))
    shown_column = column.removesuffix(DATE_SUFFIX) if column.endswith(DATE_SUFFIX) else column
    raw = _blank_to_none(row.get(shown_column))
    shown = None if raw is None else str(raw)
    if kind == "expect_column_values_to_not_be_null":
        return (
            Breach(kind, shown_column, None, f"{shown_column} is missing") if raw is None else None
        )
    if raw is None:
        return None  # GX map expectations skip nulls
    if kind == "expect_column_values_to_be_in_set":
        if raw in kwargs.get("value_set", ()):
            return None
        return Breach(
            kind, shown_column, shown, f"{shown_column} {shown!r} is not in the vocabulary"
        )
    if kind == "expect_column_values_to_match_regex":
        if re.search(str(kwargs["regex"]), str(raw)):
            return None
        problem = f"{shown_column} {shown!r} does not match {kwargs['regex']}"
        return Breach(kind, shown_column, shown, problem)
    return _between(kind, kwargs, shown_column, raw, column != shown_column, parameters)


def _between(
    kind: str,
    kwargs: Mapping[str, Any],
    column: str,
    raw: object,
    is_date: bool,
    parameters: Mapping[str, object],
) -> Breach | None:
    value: Any = _first_instant(raw) if is_date else raw
    if value is None:
        return None  # a malformed date: the regex expectation on the string column says so
    low = _bound(kwargs.get("min_value"), parameters, is_date)
    high = _bound(kwargs.get("max_value"), parameters, is_date)
    shown = str(raw)
    if low is not None and (value <= low if kwargs.get("strict_min") else value < low):
        return Breach(kind, column, shown, f"{column} {shown} is before {_text(low)}")
    if high is not None and (value >= high if kwargs.get("strict_max") else value > high):
        return Breach(kind, column, shown, f"{column} {shown} is after {_text(high)}")
    return None


def _bound(spec: object, parameters: Mapping[str, object], is_date: bool) -> Any:
    if isinstance(spec, Mapping) and "$PARAMETER" in spec:
        spec = parameters.get(str(spec["$PARAMETER"]))
    if spec is None or not is_date:
        return spec
    if isinstance(spec, dt.datetime):
        return spec
    if isinstance(spec, dt.date):
        return dt.datetime(spec.year, spec.month, spec.day)
    return dt.datetime.fromisoformat(str(spec))


def _first_instant(value: object) -> dt.datetime | None:
    """`2021` -> 2021-01-01, `2021-06` -> 2021-06-01 (as validate.add_date_columns does)."""
    try:
        date = PartialDate.from_iso(str(value))
    except ValueError:
        return None
    return dt.datetime(date.year, date.month or 1, date.day or 1)


def _text(bound: object) -> str:
    if isinstance(bound, dt.datetime) and (bound.hour, bound.minute, bound.second) == (0, 0, 0):
        return bound.date().isoformat()
    return str(bound)


def _blank_to_none(value: object) -> object:
    """A blank string is a missing value, as `validate.blank_to_null` makes it for GX."""
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def fresh_statuses(rows: Iterable[Mapping[str, Any]]) -> list[str | None]:
    """The statuses of the record rows fetched this run (carried-forward ones left out)."""
    return [r.get("status") for r in rows if not r.get("stale")]
