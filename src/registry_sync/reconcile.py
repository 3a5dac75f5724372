"""Curated rows x registry records -> findings. Pure: no I/O, no clock.

Rules:
- Start dates compare at the coarser precision of the two (review `2021` agrees with `2021-06-14`).
- Phases compare as sets (review `I/II` agrees with `[PHASE1, PHASE2]`); EARLY_PHASE1 counts
  as phase 1, since reviews print it as "I".
- Sponsors compare loosely (reviews abbreviate): a mismatch is `info`, for a human to look at.
- Rows that agree get no mismatch finding; every checked row gets an informational `status`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

from registry_sync.crosslink import find_cross_registrations
from registry_sync.curated import REVIEW_PHASES
from registry_sync.identity import product_mismatch, which_product
from registry_sync.ids import claimed_registry, normalize_id
from registry_sync.model import (
    CuratedRow,
    Finding,
    Outcome,
    PartialDate,
    RegistryRecord,
    Severity,
    TrialState,
)
from registry_sync.registry_table import registry_name
from registry_sync.sponsors import sponsor_matches as sponsor_matches  # moved; re-exported
from registry_sync.suggest import find_suspects

# Statuses a reader of the review should notice: the trial did not run, or stopped.
NOTABLE_STATUSES = frozenset({"TERMINATED", "WITHDRAWN", "SUSPENDED", "UNKNOWN"})

# Rows a finding's message names at most (the review repeats an ID or product 2-3 times).
LISTED = 10
ITEM_CHARS = 120  # and each at most this long (a hostile cell may hold 10,000 characters)

# Phase equivalences applied before comparing (registry canonical -> comparison value).
PHASE_EQUIVALENTS = {"EARLY_PHASE1": "PHASE1"}


def reconcile(
    rows: Sequence[CuratedRow],
    states: Mapping[str, TrialState],
    as_of: PartialDate | None = None,
) -> list[Finding]:
    """Every finding for every row, in table/line order. `states` is keyed by normalized ID;
    `as_of` (the run's day) lets the registry's own dates be judged (unverified, future)."""
    findings: list[Finding] = []
    findings.extend(find_duplicate_ids(rows, states))
    findings.extend(find_split_indications(rows, states))
    findings.extend(find_product_inconsistencies(rows))
    findings.extend(find_suspects(rows, states))
    findings.extend(find_cross_registrations(rows, states))
    for row in rows:
        findings.extend(_row_findings(row, states.get(normalize_id(row.trial_id)), as_of))
    return sorted(findings, key=lambda f: (f.table, f.line, f.field, f.kind))


def _row_findings(
    row: CuratedRow, state: TrialState | None, as_of: PartialDate | None = None
) -> list[Finding]:
    out = list(_table_findings(row))
    if state is None or row.registry is None:
        return out
    if state.outcome is Outcome.NOT_FOUND and state.record is None:
        out.append(
            _finding(
                row,
                "trial_id",
                "not_found",
                Severity.ERROR,
                row.trial_id,
                None,
                f"{row.trial_id} is not in the registry: {state.detail}",
            )
        )
        return out
    if state.record is None:
        return out
    rec = state.record
    if state.outcome is Outcome.NOT_FOUND:  # shown before, missing now: its values were kept
        out.append(_vanished_finding(row, state))
    checks = (
        _status_finding(row, rec),
        _phase_finding(row, rec),
        _start_finding(row, rec),
        _sponsor_finding(row, rec),
        _unverified_finding(row, rec, as_of),
        _start_not_actual_finding(row, rec, as_of),
        product_mismatch(row, rec),
    )
    found = [f for f in checks if f is not None]
    if any(f.kind == "product_mismatch" for f in found):
        found = [_behind_wrong_id(f, row) for f in found]
    out.extend(found)
    out.extend(
        _finding(
            row,
            u.field,
            "unmapped_value",
            Severity.WARNING,
            None,
            u.raw,
            f"registry value {u.raw!r} for {u.field} is not in our vocabulary",
        )
        for u in rec.unmapped
    )
    return [_with_record(f, rec, state) for f in out]


# What a record says about its own trial: beside the point when the record is another product's.
FOLLOW_FROM_ID = frozenset(
    {
        "phase_mismatch",
        "start_mismatch",
        "sponsor_mismatch",
        "status",
        "status_unverified",
        "start_not_actual",
    }
)


def _behind_wrong_id(f: Finding, row: CuratedRow) -> Finding:
    """A row whose ID is another product's record: its field findings follow from the wrong ID,
    so they are notes (the `product_mismatch` warning is what to fix) and say so."""
    if f.kind not in FOLLOW_FROM_ID:
        return f
    return dataclasses.replace(
        f,
        severity=Severity.INFO,
        message=f"{f.message} (this record is not {row.product}: fix the ID first)",
    )


def _vanished_finding(row: CuratedRow, state: TrialState) -> Finding:
    """The registry no longer shows a trial it showed before. One night's glitch or a real
    withdrawal: either way the last values are kept (stale) and this says so, every night."""
    since = f" (last shown in run {state.carried_from})" if state.carried_from else ""
    return _finding(
        row,
        "trial_id",
        "vanished",
        Severity.WARNING,
        row.trial_id,
        None,
        f"the registry no longer shows {row.trial_id}{since}; its last values are kept, "
        "marked stale",
    )


def _table_findings(row: CuratedRow) -> Iterable[Finding]:
    """Problems visible in the review's table alone."""
    if row.registry is None:
        claimed = claimed_registry(row.trial_id)
        hint = (
            f"looks like a {registry_name(claimed)} ID but does not match its pattern"
            if claimed
            else ("matches no known registry's ID pattern")
        )
        yield _finding(
            row,
            "trial_id",
            "id_malformed",
            Severity.ERROR,
            row.trial_id,
            None,
            f"printed ID {row.trial_id!r} {hint}",
        )
    if row.phases is None:
        yield _finding(
            row,
            "phase",
            "phase_unparsed",
            Severity.WARNING,
            row.phase,
            None,
            f"printed phase {row.phase!r} is not a trial phase",
        )
    if row.start_date is None:
        yield _finding(
            row,
            "start",
            "start_unparsed",
            Severity.WARNING,
            row.start,
            None,
            f"printed start {row.start!r} is not a date",
        )


def find_duplicate_ids(
    rows: Sequence[CuratedRow], states: Mapping[str, TrialState] | None = None
) -> list[Finding]:
    """The same ID printed for different products: at most one of them can be right. One
    finding per ID (on its first row), naming every row and, when the registry record was
    read, which of the products it names."""
    by_id: dict[str, list[CuratedRow]] = defaultdict(list)
    for row in rows:
        by_id[normalize_id(row.trial_id)].append(row)
    out = []
    for trial_id, group in by_id.items():
        if len({product_key(r.product) for r in group}) < 2:
            continue
        listed = listing(f"Table {r.table} {_where(r)} {r.product}" for r in group)
        state = (states or {}).get(trial_id)
        which = which_product(group, state.record) if state and state.record else None
        named = which[0] if which else None
        verdict = (
            f"the registry record is {which[1]}"
            if which
            else "the registry record fits none of them"
            if state and state.record
            else "the registry record could not be read to tell which"
        )
        first = group[0]
        out.append(
            _finding(
                first,
                "trial_id",
                "duplicate_id",
                Severity.WARNING,
                listing((r.product for r in group), sep=", "),
                named,
                f"{trial_id} is printed for {len(group)} products ({listed}): {verdict}",
            )
        )
    return out


def find_split_indications(
    rows: Sequence[CuratedRow], states: Mapping[str, TrialState] | None = None
) -> list[Finding]:
    """The same ID printed for one product under different indications: one finding per ID
    (on its first row), naming every row and the conditions the registry record lists."""
    by_id: dict[str, list[CuratedRow]] = defaultdict(list)
    for row in rows:
        by_id[normalize_id(row.trial_id)].append(row)
    out = []
    for trial_id, group in by_id.items():
        if len({product_key(r.product) for r in group}) != 1:
            continue  # several products: `duplicate_id` says it
        if len({product_key(r.indication) for r in group}) < 2:
            continue
        listed = listing(f"Table {r.table} {_where(r)} {r.indication}" for r in group)
        state = (states or {}).get(trial_id)
        rec = state.record if state is not None else None
        conditions = "; ".join(rec.conditions) if rec is not None and rec.conditions else None
        text = product_key(" ".join(rec.conditions)) if rec is not None else ""
        named = [r.indication for r in group if text and product_key(r.indication) in text]
        verdict = (
            f"the registry record is for {named[0]} (conditions: {conditions})"
            if len(named) == 1
            else f"the registry record lists conditions: {conditions}"
            if conditions
            else "the registry record could not be read to tell which"
        )
        out.append(
            _finding(
                group[0],
                "indication",
                "duplicate_id",
                Severity.WARNING,
                listing((r.indication for r in group), sep=", "),
                conditions,
                f"{trial_id} is printed for {group[0].product} under {len(group)} indications "
                f"({listed}): {verdict}",
            )
        )
    return out


# A table repeats its products, and the passes over the rows call this 4 times a row: the
# memo holds every product of a run (an LRU smaller than the run misses on every pass).
@functools.lru_cache(maxsize=1 << 20)
def product_key(product: str) -> str:
    """A product name compared loosely: `MA09‑hRPE` (a non-breaking hyphen) = `MA09-hRPE`."""
    text = unicodedata.normalize("NFKC", product).casefold()
    return re.sub(r"[^0-9a-z\u3040-\u30ff\u4e00-\u9fff]+", "", text)


def find_product_inconsistencies(rows: Sequence[CuratedRow]) -> list[Finding]:
    """One product printed with different start years or phases in different rows: the rows
    that differ from the product's most common value get one finding each, naming the rest."""
    by_product: dict[str, list[CuratedRow]] = defaultdict(list)
    for row in rows:
        if product_key(row.product):
            by_product[product_key(row.product)].append(row)
    out: list[Finding] = []
    for group in by_product.values():
        out += _odd_ones(group, "start", lambda r: str(r.start_date.year) if r.start_date else None)
        out += _odd_ones(group, "phase", lambda r: "/".join(sorted(r.phases)) if r.phases else None)
    return out


def _odd_ones(
    group: Sequence[CuratedRow], field: str, value: Callable[[CuratedRow], str | None]
) -> list[Finding]:
    shown: dict[int, str | None] = {id(r): value(r) for r in group}
    counts = Counter(v for v in shown.values() if v is not None)
    if len(counts) < 2:
        return []
    common = counts.most_common(1)[0][0]
    printed: Callable[[CuratedRow], str] = _printed_start if field == "start" else _printed_phase
    # The first LISTED + 1 rows name the others: linear in the group, not quadratic.
    head = group[: LISTED + 1]
    out = []
    for row in group:
        if shown[id(row)] in (None, common):
            continue
        named = [o for o in head if o is not row][:LISTED]
        others = listing(
            (f"Table {o.table} {_where(o)} {printed(o)}" for o in named),
            more=len(group) - 1 - len(named),
        )
        out.append(
            _finding(
                row,
                field,
                "review_inconsistent",
                Severity.INFO,  # trials of one product may differ: a note to check, no more
                printed(row),
                None,
                f"{row.product} is printed with {field} {printed(row)} here but {others} "
                "(different trials of one product may differ: check this row)",
            )
        )
    return out


def listing(items: Iterable[str], *, sep: str = "; ", more: int = 0) -> str:
    """At most LISTED items joined, then "… and K more": a message stays short however many
    rows repeat one ID or product."""
    shown: list[str] = []
    rest = more
    for item in items:
        if len(shown) < LISTED:
            shown.append(item if len(item) <= ITEM_CHARS else item[: ITEM_CHARS - 1] + "…")
        else:
            rest += 1
    return sep.join(shown) + (f"{sep}… and {rest:,} more" if rest else "")


def _printed_start(row: CuratedRow) -> str:
    return row.start


def _printed_phase(row: CuratedRow) -> str:
    return row.phase


def _where(row: CuratedRow) -> str:
    return f"row {row.row}" if row.row is not None else f"(line {row.line})"


def _status_finding(row: CuratedRow, rec: RegistryRecord) -> Finding | None:
    canonical = rec.status or rec.status_raw
    if canonical is None:
        return None
    shown = f"{readable_status(canonical)} ({canonical})"
    if rec.last_known_status:
        shown = f"{shown}, last known: {readable_status(rec.last_known_status)}"
    extras = []
    if rec.why_stopped:
        extras.append(f"why stopped: {rec.why_stopped}")
    if rec.enrollment is not None:
        kind = f" ({rec.enrollment_type.lower()})" if rec.enrollment_type else ""
        extras.append(f"enrollment {rec.enrollment}{kind}")
    if rec.has_results:
        extras.append("results posted")
    severity = Severity.WARNING if rec.status in NOTABLE_STATUSES else Severity.INFO
    message = f"registry status {shown}" + "".join(f"; {e}" for e in extras)
    return _finding(row, "status", "status", severity, None, shown, message)


# Statuses a sponsor must keep confirming; ClinicalTrials.gov turns them UNKNOWN after 2 years.
ACTIVE_STATUSES = frozenset(
    {"NOT_YET_RECRUITING", "RECRUITING", "ENROLLING_BY_INVITATION", "ACTIVE_NOT_RECRUITING"}
)
UNVERIFIED_AFTER_YEARS = 2


def _unverified_finding(
    row: CuratedRow, rec: RegistryRecord, as_of: PartialDate | None
) -> Finding | None:
    """An active status its sponsor has not confirmed for two years or more."""
    verified = rec.status_verified
    if as_of is None or verified is None or rec.status not in ACTIVE_STATUSES:
        return None
    if (as_of.year - verified.year) * 12 + ((as_of.month or 1) - (verified.month or 1)) < 24:
        return None
    return _finding(
        row,
        "status",
        "status_unverified",
        Severity.WARNING,
        None,
        verified.iso(),
        f"the sponsor last confirmed the status ({readable_status(rec.status or '')}) in "
        f"{verified.iso()}: over {UNVERIFIED_AFTER_YEARS} years ago; it may no longer hold",
    )


def _start_not_actual_finding(
    row: CuratedRow, rec: RegistryRecord, as_of: PartialDate | None
) -> Finding | None:
    """The review prints a start, the registry's is still a plan (estimated, or later than
    today): the trial may not have started as the review presents it."""
    if row.start_date is None or rec.start is None:
        return None
    future = as_of is not None and rec.start.truncate(as_of.precision) > as_of
    if rec.start_type != "ESTIMATED" and not future:
        return None
    why = "is in the future" if future else "is still an estimate"
    return _finding(
        row,
        "start",
        "start_not_actual",
        Severity.WARNING,
        row.start,
        rec.start.iso(),
        f"review prints start {row.start}; the registry's start {rec.start.iso()} {why}",
    )


def _phase_finding(row: CuratedRow, rec: RegistryRecord) -> Finding | None:
    if row.phases is None:
        return None
    if not rec.phases:  # nothing to compare: not a mismatch (an unknown raw value is reported)
        return None if rec.phases_raw else _missing(row, "phase", row.phase)
    registry_phases = {PHASE_EQUIVALENTS.get(p, p) for p in rec.phases}
    review_phases = {PHASE_EQUIVALENTS.get(p, p) for p in row.phases}
    if registry_phases == review_phases:
        return None
    shown = "/".join(rec.phases)
    return _finding(
        row,
        "phase",
        "phase_mismatch",
        Severity.WARNING,
        row.phase,
        shown,
        f"review says Phase {row.phase}; registry says {readable_phases(rec.phases)} ({shown})",
    )


# Canonical phase -> its Roman numeral as a review prints it: the inverse of the review's own
# notation (curated.REVIEW_PHASES), so the two can never disagree.
ROMAN = {
    canonical: printed
    for printed, canonical in REVIEW_PHASES.items()
    if printed.isalpha() and canonical != "EARLY_PHASE1"
}


def review_phase(phases: Iterable[str]) -> str:
    """`["PHASE1", "PHASE2"]` -> `I/II`, as the review would print it (early phase 1 counts as
    I, as in the comparison); `NA` -> `N/A`."""
    listed = list(phases)
    if listed == ["NA"]:
        return "N/A"
    roman = (ROMAN.get(PHASE_EQUIVALENTS.get(p, p)) for p in listed)
    return "/".join(dict.fromkeys(r for r in roman if r))


def readable_phases(phases: Sequence[str]) -> str:
    """`("PHASE1", "PHASE2")` -> `Phase I/II`; `EARLY_PHASE1` -> `Phase Early I`; `NA` ->
    `phase not applicable`."""
    if list(phases) == ["NA"]:
        return "phase not applicable"
    return "Phase " + "/".join(
        "Early I" if p == "EARLY_PHASE1" else ROMAN.get(p, p) for p in phases
    )


def readable_status(status: str) -> str:
    """`NOT_YET_RECRUITING` -> `Not yet recruiting`."""
    return status.replace("_", " ").capitalize()


def _start_finding(row: CuratedRow, rec: RegistryRecord) -> Finding | None:
    if row.start_date is None:
        return None
    if rec.start is None:
        return None if rec.start_raw else _missing(row, "start", row.start)
    if row.start_date.agrees_with(rec.start):
        return None
    shown = rec.start.iso() + (f" ({rec.start_type.lower()})" if rec.start_type else "")
    return _finding(
        row,
        "start",
        "start_mismatch",
        Severity.WARNING,
        row.start,
        shown,
        f"review says start {row.start}; registry says {shown}",
    )


def _missing(row: CuratedRow, field: str, review_value: str) -> Finding:
    """The registry gives no value for a field the review prints: nothing to check, said so."""
    return _finding(
        row,
        field,
        "registry_missing",
        Severity.INFO,
        review_value,
        None,
        f"review says {field} {review_value}; the registry gives none, so it cannot be checked",
    )


def _sponsor_finding(row: CuratedRow, rec: RegistryRecord) -> Finding | None:
    candidates = [c for c in (rec.lead_sponsor, *rec.collaborators) if c]
    if not candidates or not row.sponsor.strip() or sponsor_matches(row.sponsor, candidates):
        return None
    shown = rec.lead_sponsor or candidates[0]
    return _finding(
        row,
        "sponsor",
        "sponsor_mismatch",
        Severity.INFO,
        row.sponsor,
        shown,
        f"review says sponsor {row.sponsor}; registry lead sponsor is {shown}",
    )


def _finding(
    row: CuratedRow,
    field: str,
    kind: str,
    severity: Severity,
    review_value: str | None,
    registry_value: str | None,
    message: str,
) -> Finding:
    return Finding(
        table=row.table,
        line=row.line,
        trial_id=row.trial_id,
        field=field,
        kind=kind,
        severity=severity,
        review_value=review_value,
        registry_value=registry_value,
        message=message,
    )


def _with_record(finding: Finding, rec: RegistryRecord, state: TrialState) -> Finding:
    extra = dict(finding.extra)
    message = finding.message
    if rec.last_updated is not None:
        extra["last_updated"] = rec.last_updated.iso()
    if state.stale and state.fetched_at is not None:
        extra["stale_since"] = state.fetched_at.isoformat()
    if state.source and state.source != state.registry:
        extra["source"] = state.source
        message += f" [{_copy_note(state.source, rec)}]"
    return Finding(
        **{
            **finding.__dict__,
            "message": message,
            "evidence_url": rec.evidence_url,
            "stale": state.stale,
            "extra": extra,
        }
    )


def _copy_note(source: str, rec: RegistryRecord) -> str:
    """Say what a value rests on when it is not the home registry's own record."""
    if source == "ictrp":
        when = rec.refreshed.iso() if rec.refreshed is not None else "date not given"
        return f"per WHO ICTRP's copy, refreshed {when}"
    return f"per {registry_name(source)} record {rec.trial_id}"
