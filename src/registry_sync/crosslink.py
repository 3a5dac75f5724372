"""One trial under several registries' IDs, linked through their secondary IDs (pure).

A registry record lists the trial's other registrations among its secondary IDs, in each
registry's own way: `UMIN000027821` on a jRCT page, `JPRN-jRCT2090220384` from WHO ICTRP,
`National Clinical Trials Registry: NCTR570` on ANZCTR (not a registry ID we know: ignored).
`registry_ids` reads the IDs of our registries out of such a string; `link_registrations` joins
every record of a run into groups of one trial (a link in either direction counts, and links
chain: NCT -> jRCT -> UMIN is one trial).

`find_cross_registrations` reports a review row whose trial has a sibling registration in the
run (another row's record, or a WHO ICTRP copy) that disagrees with the row's own record on
phase, start or status: `cross_registration`, naming both IDs, both values and both evidence
URLs. A warning when the two differ at the precision the review prints; info when they differ
only below it (starts a few days apart when the review prints a year; ICTRP's coarse "not
recruiting" against ClinicalTrials.gov's "completed"; early phase 1 against phase 1). Links
whose registrations agree are not findings: there is nothing in the review to change.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from registry_sync.ids import ID_PATTERNS, normalize_id, registry_of
from registry_sync.model import (
    CuratedRow,
    Finding,
    PartialDate,
    Precision,
    RegistryRecord,
    Severity,
    TrialState,
)
from registry_sync.registry_table import REGISTRY_TABLE, registry_name

# WHO ICTRP's prefixes on the IDs it carries (`JPRN-`), from the registry table.
ICTRP_PREFIXES: tuple[str, ...] = tuple(
    sorted({r.ictrp_id_prefix for r in REGISTRY_TABLE.values() if r.ictrp_id_prefix})
)
# Any of our registries' IDs inside a longer string, not glued to other letters or digits.
_ANY_ID = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    + "|".join(f"(?:{p.pattern})" for p in ID_PATTERNS.values())
    + r")(?![0-9])",
    re.IGNORECASE,
)
# The coarse status of registries that say no more than "not recruiting" (ICTRP, jRCT), and
# the finer statuses it covers: the two differ in precision only.
COARSE_STATUS = "NOT_RECRUITING"
COVERED_BY_COARSE = frozenset(
    {"ACTIVE_NOT_RECRUITING", "COMPLETED", "TERMINATED", "SUSPENDED", "WITHDRAWN", "UNKNOWN"}
)
# Phases that differ in name only (early phase 1 is reported as phase 1 by most registries).
PHASE_EQUIVALENTS = {"EARLY_PHASE1": "PHASE1"}
FIELDS = ("phase", "start", "status")


def strip_ictrp_prefix(trial_id: str) -> str:
    """`JPRN-jRCTs031190226` -> `jRCTs031190226`; other IDs unchanged."""
    for prefix in ICTRP_PREFIXES:
        if trial_id.upper().startswith(prefix.upper()):
            return trial_id[len(prefix) :]
    return trial_id


def registry_ids(text: str) -> tuple[str, ...]:
    """Our registries' IDs in one secondary-ID string, normalized, in order, once each."""
    plain = strip_ictrp_prefix(normalize_id(text))
    if registry_of(plain) is not None:
        return (normalize_id(plain),)
    found = (
        normalize_id(m.group(0)) for m in _ANY_ID.finditer(unicodedata.normalize("NFKC", text))
    )
    return tuple(dict.fromkeys(t for t in found if registry_of(t) is not None))


@dataclass(frozen=True)
class Link:
    """`source`'s record lists `target` among its secondary IDs (as `cited`)."""

    source: str
    target: str
    cited: str


def links(states: Mapping[str, TrialState]) -> list[Link]:
    """Every secondary-ID link the run's records state, each once."""
    out: dict[tuple[str, str], Link] = {}
    for tid, state in states.items():
        if state.record is None:
            continue
        for cited in state.record.secondary_ids:
            for target in registry_ids(cited):
                if target != tid:
                    out.setdefault((tid, target), Link(tid, target, cited))
    return list(out.values())


def link_registrations(states: Mapping[str, TrialState]) -> dict[str, frozenset[str]]:
    """Trial ID -> every ID of the same trial it is linked to (itself included); IDs without a
    link are left out. Links count in either direction and chain."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for link in links(states):
        parent[root(link.source)] = root(link.target)
    groups: dict[str, set[str]] = defaultdict(set)
    for x in list(parent):
        groups[root(x)].add(x)
    return {x: frozenset(g) for g in groups.values() for x in g}


@dataclass(frozen=True)
class Sibling:
    trial_id: str
    record: RegistryRecord
    state: TrialState
    how: str  # how the two are linked, for a reader


def siblings(
    trial_id: str, states: Mapping[str, TrialState], groups: Mapping[str, frozenset[str]]
) -> list[Sibling]:
    """The other registrations of `trial_id`'s trial that this run holds a record of."""
    own = states.get(trial_id)
    out = []
    for other in sorted(groups.get(trial_id, frozenset()) - {trial_id}):
        state = states.get(other)
        if state is None or state.record is None:
            continue
        if own is not None and own.record is not None and _same_record(own.record, state.record):
            continue  # a moved ID carries its new home's record: not a second registration
        out.append(Sibling(other, state.record, state, _how(trial_id, other, states)))
    return out


def _same_record(a: RegistryRecord, b: RegistryRecord) -> bool:
    return a is b or (a.registry, a.trial_id) == (b.registry, b.trial_id)


def _how(a: str, b: str, states: Mapping[str, TrialState]) -> str:
    for x, y in ((a, b), (b, a)):
        rec = states[x].record if x in states else None
        if rec is not None and any(y in registry_ids(c) for c in rec.secondary_ids):
            return f"{x} lists {y} among its secondary IDs"
    return f"{a} and {b} are linked through other registrations' secondary IDs"


def find_cross_registrations(
    rows: Sequence[CuratedRow], states: Mapping[str, TrialState]
) -> list[Finding]:
    """Rows whose trial's sibling registrations disagree with the row's record: one finding
    per row and field, naming every sibling that disagrees."""
    groups = link_registrations(states)
    out: list[Finding] = []
    for row in rows:
        tid = normalize_id(row.trial_id)
        state = states.get(tid)
        if row.registry is None or state is None or state.record is None:
            continue
        found = siblings(tid, states, groups) if tid in groups else []
        if not found:
            continue  # no other registration in the run: nothing to disagree with
        for field in FIELDS:
            finding = _field_finding(row, state, found, field)
            if finding is not None:
                out.append(finding)
    return out


def _field_finding(
    row: CuratedRow, state: TrialState, found: Sequence[Sibling], field: str
) -> Finding | None:
    rec = state.record
    if rec is None:
        return None
    mine = _value(rec, field)
    differing = [
        (s, level)
        for s in found
        for level in [_disagreement(row, field, rec, s.record)]
        if level is not None
    ]
    if not differing:
        return None
    severity = (
        Severity.WARNING
        if any(level is Severity.WARNING for _, level in differing)
        else Severity.INFO
    )
    tid = normalize_id(row.trial_id)
    theirs = "; ".join(
        f"{s.trial_id} ({_who(s.state)}) says {_value(s.record, field)}"
        f" <{s.record.evidence_url or 'no URL'}>"
        + (" (a difference finer than the review prints)" if level is Severity.INFO else "")
        for s, level in differing
    )
    links_text = "; ".join(s.how for s, _ in differing)
    extra = {"sibling_ids": ", ".join(s.trial_id for s, _ in differing), "links": links_text}
    for i, (s, _) in enumerate(differing, 1):
        extra[f"sibling_{i}"] = s.trial_id
        extra[f"sibling_{i}_value"] = _value(s.record, field)
        extra[f"sibling_{i}_url"] = s.record.evidence_url or ""
    extra["own_value"] = mine
    return Finding(
        table=row.table,
        line=row.line,
        trial_id=row.trial_id,
        field=field,
        kind="cross_registration",
        severity=severity,
        review_value=_printed(row, field),
        registry_value=mine,
        evidence_url=rec.evidence_url,
        message=(
            f"{tid} ({_who(state)}) says {field} {mine} <{rec.evidence_url or 'no URL'}>, "
            f"but the same trial's other registration {theirs} ({links_text})"
        ),
        stale=state.stale or any(s.state.stale for s, _ in differing),
        extra=extra,
    )


def _who(state: TrialState) -> str:
    name = registry_name(state.registry)
    return f"{name}, per WHO ICTRP's copy" if state.source == "ictrp" else name


def _printed(row: CuratedRow, field: str) -> str:
    return {"phase": row.phase, "start": row.start}.get(field, "")


def _value(rec: RegistryRecord, field: str) -> str:
    if field == "phase":
        shown = phase_words(rec.phases)
        return f"{shown} ({'/'.join(rec.phases_raw)})" if rec.phases_raw else shown
    if field == "start":
        return rec.start.iso() if rec.start is not None else "none given"
    return status_words(rec.status) + (f" ({rec.status_raw})" if rec.status_raw else "")


def phase_words(phases: Iterable[str]) -> str:
    """`("PHASE1", "PHASE2")` -> `phase 1/2`; `NA` -> `phase not applicable`."""
    listed = list(phases)
    if not listed:
        return "none given"
    if listed == ["NA"]:
        return "phase not applicable"
    words = ("early 1" if p == "EARLY_PHASE1" else p.removeprefix("PHASE") for p in listed)
    return "phase " + "/".join(words)


def status_words(status: str | None) -> str:
    return status.replace("_", " ").lower() if status else "none given"


def _disagreement(
    row: CuratedRow, field: str, mine: RegistryRecord, theirs: RegistryRecord
) -> Severity | None:
    """None when the two agree (or one gives nothing); INFO when they differ only below the
    precision the review prints; WARNING otherwise."""
    if field == "phase":
        return _phase_disagreement(mine.phases, theirs.phases)
    if field == "start":
        return _start_disagreement(row.start_date, mine.start, theirs.start)
    return _status_disagreement(mine.status, theirs.status)


def _phase_disagreement(a: Sequence[str], b: Sequence[str]) -> Severity | None:
    if not a or not b or set(a) == set(b):
        return None
    same = {PHASE_EQUIVALENTS.get(p, p) for p in a} == {PHASE_EQUIVALENTS.get(p, p) for p in b}
    return Severity.INFO if same else Severity.WARNING


def _start_disagreement(
    printed: PartialDate | None, a: PartialDate | None, b: PartialDate | None
) -> Severity | None:
    if a is None or b is None or a.agrees_with(b):
        return None
    shown = printed.precision if printed is not None else Precision.DAY
    return Severity.INFO if a.truncate(shown) == b.truncate(shown) else Severity.WARNING


def _status_disagreement(a: str | None, b: str | None) -> Severity | None:
    if a is None or b is None or a == b:
        return None
    if COARSE_STATUS in (a, b) and ({a, b} - {COARSE_STATUS}) <= COVERED_BY_COARSE:
        return Severity.INFO
    return Severity.WARNING
