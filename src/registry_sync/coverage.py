"""Which trials a run could not check, and whether that makes the run partial (pure).

A run is *partial* when a registry could not be checked this time: it was down, it blocked us,
or it answered something we could not read. Those are what a cron should act on (retry,
look at the registry, fix a parser). Everything else is an answer, or a fact that is the same
every night, and is reported but never makes a run partial:

| outcome | partial? | why |
|---|---|---|
| `ok` | no | checked |
| `not_found` | no | the registry answered: it has no such trial (a finding about the review) |
| `moved` | no | the registry answered: the trial is registered elsewhere now |
| `id_malformed` | no | a finding about the review: no registry can be asked |
| `unsupported` | no | no adapter for that registry yet: the same every night |
| `not_in_replay` | no | a replay set lacks the ID: the set's scope, not a registry's state |
| `registry_down` | **yes** | no answer (timeout, 5xx, connection cut) |
| `blocked` | **yes** | a block, challenge or login page |
| `parse_error` | **yes** | an answer we could not read (changed layout, truncated body) |
| `quarantined` | **yes** | a record the quality gate held back: its values were not used |

An outcome not in the first group (one added later) makes a run partial: fail closed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from registry_sync.escape import plain
from registry_sync.model import Outcome, TrialState
from registry_sync.registry_table import registry_name

# Outcomes that leave nothing for the operator to do tonight: not partial.
NOT_PARTIAL = frozenset(
    {
        Outcome.OK,
        Outcome.NOT_FOUND,
        Outcome.MOVED,
        Outcome.ID_MALFORMED,
        Outcome.UNSUPPORTED,
        Outcome.NOT_IN_REPLAY,
    }
)
# How the one-line reason names each outcome that makes a run partial.
SAID = {
    Outcome.REGISTRY_DOWN: "down",
    Outcome.BLOCKED: "blocked",
    Outcome.PARSE_ERROR: "not understood",
    Outcome.QUARANTINED: "held back by the quality gate",
}
DETAIL_CHARS = 80  # one reason per registry and outcome, cut to stay one line


def makes_partial(outcome: Outcome) -> bool:
    return outcome not in NOT_PARTIAL


def is_partial(states: Iterable[TrialState]) -> bool:
    return any(makes_partial(s.outcome) for s in states)


def partial_because(states: Iterable[TrialState]) -> str:
    """One line naming each registry that could not be checked, how, how many trials, and the
    commonest reason, e.g. `jRCT blocked (3 trials: HTTP 403 challenge page); ChiCTR down
    (2 trials: timeout)`; "" when the run is not partial."""
    groups: dict[tuple[str, Outcome], Counter[str]] = defaultdict(Counter)
    for s in states:
        if makes_partial(s.outcome):
            groups[(registry_name(s.registry), s.outcome)][_short(s.detail)] += 1
    parts = []
    for (name, outcome), details in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1])):
        n = sum(details.values())
        why, _ = details.most_common(1)[0]
        said = SAID.get(outcome, outcome.value)
        parts.append(f"{name} {said} ({n} trial{'s' if n != 1 else ''}{': ' + why if why else ''})")
    return "; ".join(parts)


def _short(detail: str) -> str:
    text = plain(detail)
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1].rstrip() + "…"
