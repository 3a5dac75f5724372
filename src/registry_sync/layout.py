""" "This registry seems to have changed its pages": many parse errors from one source, one line.

When most of the pages one registry (or WHO ICTRP) served in one run fail to parse, the likely
cause is not a dozen broken trials but one changed page layout (a renamed label, a new
template) or, for an API, an answer whose shape changed (ClinicalTrials.gov studies without
`protocolSection`). The run then says so once, keeps the first error and its evidence (request
ids, payload sha256: the bytes themselves are stored as served), and the reports group that
source's per-trial parse errors under this one line instead of printing one error per trial.
The trials themselves are `parse_error` as before: last good values carried forward, stale.

Threshold: at least `MIN_FAILED` trials and at least `MIN_SHARE` of the trials asked of that
source ended `parse_error`. A single broken page stays a single per-trial error.

Pure: trial states in, plain values out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from registry_sync.model import Outcome, TrialState
from registry_sync.registry_table import registry_name

MIN_FAILED = 3
MIN_SHARE = 0.5


@dataclass(frozen=True)
class LayoutChange:
    """One source whose pages mostly failed to parse this run."""

    source: str  # registry key, or e.g. "ictrp"
    failed: int
    of: int
    first_trial: str
    first_error: str
    evidence: tuple[str, ...]  # request ids behind the first error
    payload_sha256: str | None  # the first failing payload, when one was cut out

    def line(self) -> str:
        """The one line a console and a report print."""
        return layout_line(self.to_dict(), self.source)

    def to_dict(self) -> dict[str, Any]:
        return {
            "failed": self.failed,
            "of": self.of,
            "first_trial": self.first_trial,
            "first_error": self.first_error,
            "evidence": {"request_ids": list(self.evidence), "payload_sha256": self.payload_sha256},
        }


def served_by(state: TrialState) -> str | None:
    """Who answered for this trial: the source (e.g. ictrp) or the home registry."""
    return state.source or state.registry


def detect(states: Iterable[TrialState]) -> dict[str, LayoutChange]:
    """Source -> LayoutChange for each source whose parse errors reach the threshold. `states`
    are one fetch stage's, before anything is carried forward (each names who answered)."""
    asked: dict[str, list[TrialState]] = defaultdict(list)
    for s in states:
        key = served_by(s)
        if key is not None:
            asked[key].append(s)
    found = {}
    for key, group in sorted(asked.items()):
        failed = [s for s in group if s.outcome is Outcome.PARSE_ERROR]
        if len(failed) >= MIN_FAILED and len(failed) >= MIN_SHARE * len(group):
            first = failed[0]
            found[key] = LayoutChange(
                key,
                len(failed),
                len(group),
                first.trial_id,
                first.detail,
                first.evidence,
                first.payload_sha256,
            )
    return found


def to_meta(changes: Mapping[str, LayoutChange]) -> dict[str, dict[str, Any]]:
    """For `_meta.layout_changes`: source -> {failed, of, first_trial, first_error, evidence}."""
    return {key: change.to_dict() for key, change in sorted(changes.items())}


def layout_line(change: Mapping[str, Any], source: str) -> str:
    """`ClinicalTrials.gov seems to have changed its pages: 3 of 3 trials did not parse …`,
    from a `_meta.layout_changes` entry (so reports of old snapshots can print it too)."""
    evidence = change.get("evidence") or {}
    requests = ", ".join(evidence.get("request_ids") or []) or "none kept"
    return (
        f"{registry_name(source)} seems to have changed its pages (or its answer's shape): "
        f"{change.get('failed')} of {change.get('of')} trials did not parse this run; last good "
        f"values kept, marked stale. First error ({change.get('first_trial')}): "
        f"{change.get('first_error')} (evidence: request {requests})"
    )
