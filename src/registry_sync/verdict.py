"""When did the review go wrong? Every finding gets `wrong_at_publication`, `changed_since` or
`unknown`. Pure: no I/O, no clock; the version history (when read) comes in as data.

The review was published on some day of a window (`review_meta.ReviewMeta.window`: the
bundled review between 2025-10-01 and 2025-12-31). Rules, in order:

1. No review metadata (no published date): every verdict is `unknown`.
2. Findings visible in the printed table alone (`REVIEW_KINDS`: a malformed or suspect ID, one
   ID under two products, a product printed inconsistently, an unreadable phase or start) are
   `wrong_at_publication`: the printed table itself says so.
3. A disagreement with the registry (`DISAGREEMENT_KINDS`) is judged on the record's dates:
   - last updated before the window opens, and the values read on or after it closes (a fresh
     read; a stale value read earlier says nothing about publication day) -> the registry's
     value was already there when the review was published -> `wrong_at_publication`;
   - last updated after the window closes -> the registry changed after publication; either is
     possible -> `unknown`, unless ClinicalTrials.gov's version history says more (rule 4);
   - last updated within the window, or no date given -> `unknown`.
   A WHO ICTRP copy gives no last-updated date of the home registry; its `refreshed` date (ICTRP
   re-imports a record when its registry changes it) stands in for it, and the reason says so.
4. ClinicalTrials.gov version history (`--history`), when read: the versions in effect on the
   window's first and last day decide. Each is compared with the review as `reconcile` compares
   the current record. Both already differed -> `wrong_at_publication`; both agreed (so the
   registry changed since) -> `changed_since`; the two differ -> `unknown` (it changed during
   the window). History that could not be read changes nothing: rule 3 stands, and an info
   finding `history_unavailable` says why.
5. `vanished` (a registry that showed the trial no longer does): `changed_since` when the last
   sighting is after the window, else `unknown`. Every other kind (status notes, values the
   registry does not give, `not_found`, unmapped vocabulary) is `unknown`: there is no dated
   registry value to judge, or nothing is wrong.

A new finding kind is `unknown` until it is listed here. The reason for each verdict is kept in
the finding's `extra["verdict_why"]` (the snapshot's `details`), never in its message, so the
message stays stable from night to night.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from registry_sync.ids import normalize_id
from registry_sync.model import (
    REVIEW_KINDS,
    CuratedRow,
    Finding,
    PartialDate,
    RegistryRecord,
    Severity,
    TrialState,
    Verdict,
)
from registry_sync.reconcile import reconcile
from registry_sync.review_meta import day_span

Window = tuple[date, date]  # first and last day the review may have been published

# The review and the registry's record disagree: judged on the record's dates (and history).
DISAGREEMENT_KINDS = frozenset(
    {"phase_mismatch", "start_mismatch", "sponsor_mismatch", "product_mismatch", "start_not_actual"}
)
HISTORY_KIND = "history_unavailable"
NO_META = "the review's metadata (published date) is missing, so no verdict can be given"


@dataclass(frozen=True)
class VersionEntry:
    """One entry of a ClinicalTrials.gov record's version list."""

    version: int  # 0 = the first version
    day: date  # when this version was posted
    status: str | None = None  # the overall status it carried


@dataclass(frozen=True)
class TrialHistory:
    """What was read of one trial's version history: the list and the versions needed, or why
    not (`error`)."""

    trial_id: str
    versions: tuple[VersionEntry, ...] = ()
    records: Mapping[int, RegistryRecord] = field(default_factory=dict)  # version -> parsed
    error: str = ""  # "" when read
    evidence: tuple[str, ...] = ()  # request ids of the exchanges it came from


def version_in_effect(versions: Iterable[VersionEntry], day: date) -> VersionEntry | None:
    """The latest version posted on or before `day`; None when the record is younger."""
    earlier = [v for v in versions if v.day <= day]
    return max(earlier, key=lambda v: (v.day, v.version)) if earlier else None


def versions_needed(versions: Sequence[VersionEntry], window: Window) -> list[int]:
    """The version numbers in effect on the window's first and last day (one when the same)."""
    found = (version_in_effect(versions, d) for d in window)
    return sorted({v.version for v in found if v is not None})


def history_wanted(
    findings: Sequence[Finding], states: Mapping[str, TrialState], window: Window | None
) -> list[str]:
    """ClinicalTrials.gov trials whose disagreement the dates alone leave `unknown`: the only
    ones worth the history requests."""
    if window is None:
        return []
    wanted: dict[str, None] = {}
    for f in findings:
        state = states.get(normalize_id(f.trial_id))
        if f.kind not in DISAGREEMENT_KINDS or state is None or state.record is None:
            continue
        own_record = state.registry == "ctgov" and state.source in (None, "", "ctgov")
        if own_record and _by_dates(state.record, state, window)[0] is Verdict.UNKNOWN:
            wanted[state.trial_id] = None
    return list(wanted)


def apply_verdicts(
    findings: Sequence[Finding],
    rows: Sequence[CuratedRow],
    states: Mapping[str, TrialState],
    window: Window | None,
    histories: Mapping[str, TrialHistory] | None = None,
) -> list[Finding]:
    """Every finding with its verdict and the reason (`extra["verdict_why"]`), plus one
    `history_unavailable` info finding per row whose trial's history could not be read."""
    histories = histories or {}
    by_line = {r.line: r for r in rows}
    out = []
    for f in findings:
        state = states.get(normalize_id(f.trial_id))
        history = histories.get(state.trial_id) if state is not None else None
        verdict, why = decide(f, by_line.get(f.line), state, window, history)
        out.append(replace(f, verdict=verdict, extra={**f.extra, "verdict_why": why}))
    out += _history_findings(out, histories)
    return sorted(out, key=lambda f: (f.table, f.line, f.field, f.kind))


def decide(
    f: Finding,
    row: CuratedRow | None,
    state: TrialState | None,
    window: Window | None,
    history: TrialHistory | None = None,
) -> tuple[Verdict, str]:
    """One finding's verdict and why."""
    if window is None:
        return Verdict.UNKNOWN, NO_META
    if f.kind in REVIEW_KINDS:
        return Verdict.WRONG_AT_PUBLICATION, "visible in the printed table itself"
    if f.kind == "vanished" and state is not None:
        return _vanished(state, window)
    if f.kind not in DISAGREEMENT_KINDS or state is None or state.record is None:
        return Verdict.UNKNOWN, "no dated registry value to judge"
    verdict, why = _by_dates(state.record, state, window)
    if verdict is Verdict.UNKNOWN and history is not None and row is not None:
        if history.error:
            return verdict, f"{why}; its version history could not be read ({history.error})"
        return _by_history(f, row, state, window, history) or (verdict, why)
    return verdict, why


def _by_dates(rec: RegistryRecord, state: TrialState, window: Window) -> tuple[Verdict, str]:
    first, last = window
    copy = state.source == "ictrp" and rec.last_updated is None
    changed = rec.refreshed if copy else rec.last_updated
    what = "WHO ICTRP's copy was last refreshed" if copy else "the registry record was last updated"
    if changed is None:
        return Verdict.UNKNOWN, "the record gives no last-updated date; either is possible"
    start, end = day_span(changed)
    published = _window_text(window)
    if end < first:
        read = state.fetched_at.date() if state.stale and state.fetched_at else None
        if read is not None and read < last:
            return Verdict.UNKNOWN, (
                f"{what} {changed.iso()}, but these stale values were read {read.isoformat()}, "
                f"before the review was published ({published})"
            )
        return Verdict.WRONG_AT_PUBLICATION, (
            f"{what} {changed.iso()}, before the review was published ({published}): its "
            "value was already there"
        )
    if start > last:
        return Verdict.UNKNOWN, (
            f"{what} {changed.iso()}: the registry changed after publication ({published}); "
            "either is possible"
        )
    return Verdict.UNKNOWN, (
        f"{what} {changed.iso()}, around the review's publication ({published}); either is possible"
    )


def _by_history(
    f: Finding, row: CuratedRow, state: TrialState, window: Window, history: TrialHistory
) -> tuple[Verdict, str] | None:
    """The versions in effect at publication, compared with the review; None when the needed
    versions were not read."""
    entries = [version_in_effect(history.versions, d) for d in window]
    if entries[0] is None:
        first = min((v.day for v in history.versions), default=None)
        since = f" (first version {first.isoformat()})" if first else ""
        return Verdict.UNKNOWN, f"the record has no version from before publication{since}"
    differed = []
    for entry, day in zip(entries, window, strict=True):
        rec = history.records.get(entry.version) if entry is not None else None
        if rec is None or entry is None:
            return None
        differed.append((entry, _disagrees(f, row, state, rec, day)))
    shown = " and ".join(
        dict.fromkeys(f"version {e.version} of {e.day.isoformat()}" for e, _ in differed)
    )
    if all(d for _, d in differed):
        return Verdict.WRONG_AT_PUBLICATION, (
            f"ClinicalTrials.gov history: {shown}, in effect at publication, already differed"
        )
    if not any(d for _, d in differed):
        return Verdict.CHANGED_SINCE, (
            f"ClinicalTrials.gov history: {shown}, in effect at publication, agreed with the "
            "review; the registry changed since"
        )
    return Verdict.UNKNOWN, (
        f"ClinicalTrials.gov history: the record changed during the publication window ({shown})"
    )


def _disagrees(
    f: Finding, row: CuratedRow, state: TrialState, rec: RegistryRecord, day: date
) -> bool:
    """Does `reconcile` give the same kind of finding on this version of the record?"""
    then = replace(state, record=rec, stale=False)
    as_of = PartialDate(day.year, day.month, day.day)
    found = reconcile([row], {state.trial_id: then}, as_of)
    return any(g.kind == f.kind and g.field == f.field for g in found)


def _vanished(state: TrialState, window: Window) -> tuple[Verdict, str]:
    seen = state.fetched_at.date() if state.fetched_at else None
    if seen is not None and seen > window[1]:
        return Verdict.CHANGED_SINCE, (
            f"the registry still showed it on {seen.isoformat()}, after publication"
        )
    return Verdict.UNKNOWN, "when the registry stopped showing it is not known"


def _window_text(window: Window) -> str:
    first, last = window
    if first == last:
        return first.isoformat()
    return f"between {first.isoformat()} and {last.isoformat()}"


def _history_findings(
    findings: Sequence[Finding], histories: Mapping[str, TrialHistory]
) -> list[Finding]:
    """One info finding per row with a disagreement whose trial's history failed."""
    failed = {normalize_id(t): h for t, h in histories.items() if h.error}
    seen: set[int] = set()
    out = []
    for f in findings:
        h = failed.get(normalize_id(f.trial_id))
        if h is None or f.kind not in DISAGREEMENT_KINDS or f.line in seen:
            continue
        seen.add(f.line)
        out.append(
            Finding(
                table=f.table,
                line=f.line,
                trial_id=f.trial_id,
                field="history",
                kind=HISTORY_KIND,
                severity=Severity.INFO,
                review_value=None,
                registry_value=None,
                evidence_url=f.evidence_url,
                message=(
                    f"ClinicalTrials.gov's version history of {h.trial_id} could not be read "
                    f"({h.error}); the verdict rests on the record's last-updated date alone"
                ),
                extra={"verdict_why": "a note about this run, not about the review"},
            )
        )
    return out


def count_verdicts(findings: Iterable[Finding]) -> dict[str, int]:
    """Verdict -> number of findings, every verdict listed (0 when none)."""
    counts = Counter(f.verdict.value for f in findings)
    return {v.value: counts.get(v.value, 0) for v in Verdict}
