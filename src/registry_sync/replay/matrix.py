"""The fault matrix: every fault kind against every registry the replay serves, what each must
end in, and the README table of what each did (pure data and rendering).

`tests/test_fault_matrix.py` runs every cell through the pipeline over the loopback server (a
clean run, then the same run with the fault) and checks the README's table equals
`render_table` of what it observed (the registries it faults, for which trial and on which
paths, are the test's: no second list of registries lives in src/); `bench/bench_soak.py` draws
its random faults from `MATRIX_FAULTS`. JMACCT is not in the matrix: its adapter never sends
a request (retired).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from registry_sync.model import Outcome
from registry_sync.registry_table import REGISTRY_TABLE, registry_name
from registry_sync.replay.faults import FAULT_KINDS, Fault


@dataclass(frozen=True)
class MatrixFault:
    """One row of the matrix: a named fault kind, how often, and on which request."""

    name: str
    kind: str  # a `FAULT_KINDS` key
    times: int | None  # None: every matching request
    on: str  # "all": every request to the registry; "first": the first request of a trial (the
    # search, where there is one); "page": the request for the trial's own page
    what: str  # one line for the README
    expected: Outcome  # what the trial must end in
    expected_tried_once: Outcome | None = None  # instead, for registries tried once
    exceptions: Mapping[str, Outcome] = field(default_factory=dict)  # registry -> outcome
    note: str = ""  # why an exception is right

    @property
    def fault(self) -> Fault:
        return FAULT_KINDS[self.kind]

    def outcome_for(self, registry: str) -> Outcome:
        """The outcome this fault must give a trial of `registry` (its attempts decide some)."""
        if registry in self.exceptions:
            return self.exceptions[registry]
        if self.expected_tried_once is not None and REGISTRY_TABLE[registry].attempts == 1:
            return self.expected_tried_once
        return self.expected


DOWN = Outcome.REGISTRY_DOWN
PARSE = Outcome.PARSE_ERROR
NOT_JSON = (
    "ClinicalTrials.gov is an API: an answer that is not its JSON counts as the API failing "
    "(`registry_down`)"
)
MATRIX_FAULTS: tuple[MatrixFault, ...] = (
    MatrixFault("timeout", "timeout", None, "all", "no answer within the read timeout", DOWN),
    MatrixFault(
        "429",
        "429",
        None,
        "all",
        "429 with `Retry-After: 1` on every request",
        DOWN,
        note="registries tried more than once wait the Retry-After (capped by "
        "`retry_after_cap`) between attempts",
    ),
    MatrixFault(
        "503-then-ok",
        "503",
        1,
        "all",
        "one 503, then the normal answer",
        Outcome.OK,
        DOWN,
        note="registries tried once by policy (jRCT, ChiCTR, CTR) do not ask again; WHO "
        "ICTRP's fresh copy loses to the kept one of the same date (`fallback.prefer_newer`)",
    ),
    MatrixFault("503", "503", None, "all", "503 on every request", DOWN),
    MatrixFault("drop", "drop", None, "all", "connection closed before any answer", DOWN),
    MatrixFault(
        "cut", "truncate", None, "all", "connection cut mid-body (half the announced bytes)", DOWN
    ),
    MatrixFault(
        "malformed",
        "malformed",
        None,
        "page",
        "200, the page cut to its first 40 % (honest Content-Length)",
        PARSE,
        exceptions={"ctgov": DOWN},
        note="an HTML page that never closes `</html>` is cut short; " + NOT_JSON,
    ),
    MatrixFault(
        "notfound-shell",
        "notfound-shell",
        None,
        "first",
        "200 with the registry's own answer for an ID it lacks",
        Outcome.NOT_FOUND,
        note="a trial found before and not now is reported `vanished`, its values kept",
    ),
    MatrixFault(
        "block",
        "html-block",
        None,
        "all",
        "200 with a WAF-style block page",
        Outcome.BLOCKED,
        note="no further request to that host this run (registries that stop after a block)",
    ),
    MatrixFault(
        "redirect-login",
        "redirect-login",
        None,
        "all",
        "302 to a login form",
        Outcome.BLOCKED,
        note="we never log in: a redirect that ends on a password field is a block",
    ),
    MatrixFault(
        "redirect-host",
        "redirect-host",
        None,
        "all",
        "302 to a parked page on another host",
        DOWN,
        note="a redirect off the host asked and the registry's own hosts is not its answer",
    ),
    MatrixFault(
        "oversize",
        "oversize",
        None,
        "all",
        "200, body bigger than the registry's `max_page_bytes`",
        PARSE,
        note="read up to the cap, its head kept as evidence; the same page will be as big "
        "next time",
    ),
    MatrixFault(
        "other-trial",
        "other-trial",
        None,
        "page",
        "200 with another trial's page (the ID rewritten)",
        PARSE,
        exceptions={"ctgov": Outcome.NOT_FOUND},
        note="a page for another ID is never taken; a ClinicalTrials.gov batch answer without "
        "the asked study says it is absent",
    ),
    MatrixFault(
        "empty",
        "empty",
        None,
        "page",
        "200 with an empty body",
        DOWN,
        note="an empty answer is the registry failing to answer, not a page",
    ),
)


@dataclass(frozen=True)
class Observed:
    """What one cell of the matrix gave."""

    outcome: Outcome  # for ICTRP: what WHO ICTRP's answer was (the trial keeps its home's)
    carried: bool  # the first run's values kept, marked stale
    partial: bool  # the run said it was partial
    detail: str = ""


def render_table(observed: Mapping[tuple[str, str], Observed], keys: Sequence[str]) -> str:
    """The README table: one row per fault, what it gave each registry of `keys` (grouped)."""
    names = {key: registry_name(key) for key in keys}
    lines = [
        "| fault | outcome | values carried forward? | partial? | notes |",
        "|---|---|---|---|---|",
    ]
    for fault in MATRIX_FAULTS:
        cells = [(key, observed[(fault.name, key)]) for key in keys]
        outcomes = _grouped([(k, o.outcome.value) for k, o in cells], names)
        carried = _grouped([(k, "yes" if o.carried else "no") for k, o in cells], names)
        partial = _grouped([(k, "yes" if o.partial else "no") for k, o in cells], names)
        notes = f"{fault.what}; {fault.note}" if fault.note else fault.what
        lines.append(f"| `{fault.name}` | {outcomes} | {carried} | {partial} | {notes} |")
    return "\n".join(lines) + "\n"


def _grouped(values: Sequence[tuple[str, str]], names: Mapping[str, str]) -> str:
    """`ok` when all agree, else `ok; registry_down for jRCT, ChiCTR` (the commonest first)."""
    counts: dict[str, list[str]] = {}
    for key, value in values:
        counts.setdefault(value, []).append(key)
    ordered = sorted(counts.items(), key=lambda kv: -len(kv[1]))
    head, *rest = ordered
    parts = [head[0]] + [f"{v} for {', '.join(names[k] for k in keys)}" for v, keys in rest]
    return "; ".join(parts)
