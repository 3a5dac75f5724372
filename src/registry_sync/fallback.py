"""After the primary fetch: where a trial's own registry could not give its values, find them
elsewhere, and say so (pure over trial states).

1. `link_moved`: a trial `moved` with no known new home (a retired registry: JMACCT) gets one
   when another record of this run lists its ID among its secondary IDs (a jRCT record that
   names `JMA-IIA00412`).
2. `ictrp_requests`: trials whose registry blocked us, was down, or is gone without a new home
   are asked of WHO ICTRP, where the registry table says ICTRP carries that registry.
3. `merge_ictrp`: an ICTRP copy becomes the trial's values, with source `ictrp` and ICTRP's own
   refresh date; the outcome stays what the registry did (`blocked`, values from WHO ICTRP
   refreshed 2025-06-01), and every exchange of both is kept as evidence.
4. `prefer_newer`: when the last good values of the registry itself were also kept (stale),
   the newer of the two wins, and the detail says which and why; both payloads stay in the
   snapshot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from registry_sync.model import Outcome, PartialDate, TrialState
from registry_sync.registry_table import REGISTRY_TABLE

# Outcomes after which the home registry's values must come from elsewhere.
ASK_ICTRP = frozenset({Outcome.BLOCKED, Outcome.REGISTRY_DOWN, Outcome.MOVED})


def link_moved(states: Mapping[str, TrialState]) -> dict[str, TrialState]:
    """`moved` trials without a new home get one from a record of this run listing them."""
    listed: dict[str, str] = {}
    for tid, s in states.items():
        if s.record is not None:
            for other in s.record.secondary_ids:
                listed.setdefault(other.strip(), tid)
    out = dict(states)
    for tid, s in states.items():
        home = listed.get(tid)
        if s.outcome is not Outcome.MOVED or s.moved_to or home is None:
            continue
        there = states[home]
        out[tid] = replace(
            s,
            moved_to=home,
            record=there.record,
            source=there.record.registry if there.record is not None else None,
            source_url=there.source_url,
            fetched_at=there.fetched_at,
            payload_sha256=there.payload_sha256,
            detail=f"{s.detail}; {home} lists it among its secondary IDs: values from {home}",
        )
    return out


def ictrp_requests(states: Mapping[str, TrialState]) -> dict[str, list[str]]:
    """Home registry -> its trials to ask WHO ICTRP for (only registries ICTRP carries)."""
    wanted: dict[str, list[str]] = defaultdict(list)
    for tid, s in states.items():
        if s.registry is None or s.outcome not in ASK_ICTRP or s.record is not None:
            continue
        if s.outcome is Outcome.MOVED and s.moved_to:
            continue  # it has a new home; that home is asked in its own right
        info = REGISTRY_TABLE.get(s.registry)
        if info is not None and info.ictrp_id_prefix is not None:
            wanted[s.registry].append(tid)
    return dict(wanted)


def merge_ictrp(
    states: Mapping[str, TrialState], copies: Mapping[str, TrialState]
) -> dict[str, TrialState]:
    """Each primary state with what WHO ICTRP answered for it (a copy, or why not)."""
    out = dict(states)
    for tid, copy in copies.items():
        primary = states.get(tid)
        if primary is None:
            continue
        evidence = primary.evidence + copy.evidence
        if copy.outcome is Outcome.OK and copy.record is not None:
            out[tid] = replace(
                primary,
                record=copy.record,
                source="ictrp",
                stale=False,
                carried_from=None,
                fetched_at=copy.fetched_at,
                source_url=copy.source_url,
                payload_sha256=copy.payload_sha256,
                evidence=evidence,
                detail=f"{primary.detail}; values from WHO ICTRP ({refreshed(copy)})",
            )
        else:
            detail = f"{primary.detail}; WHO ICTRP: {copy.outcome.value} ({copy.detail})"
            out[tid] = replace(primary, evidence=evidence, detail=detail)
    return out


def refreshed(state: TrialState) -> str:
    date = state.record.refreshed if state.record is not None else None
    return f"refreshed {date.iso()}" if date is not None else "refresh date not given"


def prefer_newer(ictrp: TrialState, stale: TrialState) -> TrialState:
    """An ICTRP copy against the registry's own last good values (stale): the newer wins.

    The copy's date is ICTRP's refresh; the stale values' date is when we fetched them. A copy
    refreshed before our last good fetch is older news than what we already had."""
    copy_date = ictrp.record.refreshed if ictrp.record is not None else None
    own_date = stale.fetched_at
    if copy_date is not None and own_date is not None and _before(copy_date, own_date):
        why = (
            f"WHO ICTRP's copy ({refreshed(ictrp)}) is older than the registry's own values "
            f"fetched {own_date.date().isoformat()} (run {stale.carried_from}): those are kept, "
            "stale"
        )
        return replace(stale, evidence=stale.evidence + ictrp.evidence, detail=why)
    when = own_date.date().isoformat() if own_date else "?"
    why = f"{ictrp.detail}; newer than the registry's own values fetched {when}, which are kept"
    return replace(ictrp, detail=why)


def _before(date: PartialDate, moment: datetime) -> bool:
    """`date` (at its precision) ends before `moment`'s day."""
    day = PartialDate(moment.year, moment.month, moment.day)
    return date.truncate(date.precision) < day.truncate(date.precision)
