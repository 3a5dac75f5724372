"""An ID that looks like a truncated or mistyped form of a real one: ranked corrections (pure).

The review prints `jRCT209022038`, one digit short of jRCT's pattern. For a malformed ID, or a
well-formed one the registry says it does not know, `find_suspects` gives an `id_suspect`
finding (warning) with candidate corrections, each with why:

- a known ID one edit away (a character missing, extra, different, or two swapped), ranked by
  rapidfuzz's OSA distance (Levenshtein plus adjacent swaps), with where the run knows it from:
  printed elsewhere in the review, cited as a secondary ID of a record, or a WHO ICTRP copy;
- a look-alike letter for a digit (`O` for zero, `I` or `l` for one) whose repair fits the
  registry's pattern: the one reading of the printed ID, not a guess.

The candidate universe is every ID the run knows. A specific ID is never invented by guessing a
missing digit: when the pattern says one is missing and no known ID fits, the finding says so,
with the registry's search page for the reader to look it up. A review transcription is never
edited: the corrections CSV shows a candidate as the suggested value only when it is the one
strong candidate.
"""

from __future__ import annotations

import string
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from rapidfuzz import process
from rapidfuzz.distance import OSA, Levenshtein

from registry_sync.crosslink import registry_ids, strip_ictrp_prefix
from registry_sync.ids import ID_PATTERNS, claimed_registry, normalize_id, registry_of
from registry_sync.model import CuratedRow, Finding, Outcome, Severity, TrialState
from registry_sync.registry_table import REGISTRY_TABLE, registry_name

# A letter a reader (or OCR) takes for a digit -> that digit.
LOOKALIKES = {"O": "0", "o": "0", "I": "1", "l": "1"}
LOOKALIKE_NAMES = {"O": "letter O for zero", "o": "letter o for zero", "I": "letter I for one"}
LOOKALIKE_NAMES["l"] = "letter l for one"
# Characters tried when asking "would one more, one fewer or one other character fit?"
PROBE = string.digits + string.ascii_lowercase + string.ascii_uppercase + "-"
# Known IDs this many edits away or fewer are candidates; one edit away is a strong candidate.
# Two edits away is weak: three pairs of the review's own 102 valid IDs are that close by chance.
NEAR = 2
# Places a candidate's "known from" names at most (a hostile table may print one ID 10,000 times).
WHERE_LISTED = 10


@dataclass(frozen=True)
class Candidate:
    trial_id: str
    why: str
    strong: bool
    distance: int
    url: str | None = None


@dataclass(frozen=True)
class Known:
    """Where the run knows an ID from, for a reader."""

    where: str
    url: str | None = None


def known_ids(
    rows: Sequence[CuratedRow], states: Mapping[str, TrialState]
) -> dict[str, list[Known]]:
    """Every well-formed ID the run knows, with where from; IDs a registry said it does not
    know are left out (they are no correction)."""
    known: dict[str, list[Known]] = defaultdict(list)
    for row in rows:
        if row.registry is not None:
            tid = normalize_id(row.trial_id)
            known[tid].append(
                Known(f"printed in Table {row.table} {_where(row)} for {row.product}")
            )
    for tid, state in states.items():
        rec = state.record
        if rec is None:
            continue
        home = normalize_id(strip_ictrp_prefix(rec.trial_id))
        if state.source == "ictrp" and registry_of(home):
            known[home].append(
                Known("the ID of WHO ICTRP's copy read in this run", rec.evidence_url)
            )
        for cited in rec.secondary_ids:
            for other in registry_ids(cited):
                where = f"cited as a secondary ID of {tid} ({registry_name(rec.registry)})"
                known[other].append(Known(where, rec.evidence_url))
    gone = {tid for tid, s in states.items() if s.outcome is Outcome.NOT_FOUND and s.record is None}
    return {tid: where for tid, where in known.items() if tid not in gone}


def find_suspects(rows: Sequence[CuratedRow], states: Mapping[str, TrialState]) -> list[Finding]:
    """One `id_suspect` per row whose printed ID is malformed, or well-formed but not found
    and near a known ID."""
    suspects = [row for row in rows if _suspect(row, states)]
    if not suspects:
        return []  # the universe of known IDs is built only when there is something to correct
    known = known_ids(rows, states)
    ranked: dict[str, list[Candidate]] = {}  # once per ID, however often the table repeats it
    advised: dict[str, list[str]] = {}
    out = []
    for row in suspects:
        tid = normalize_id(row.trial_id)
        if tid not in ranked:
            ranked[tid] = rank_candidates(tid, known)
        candidates = ranked[tid]
        if row.registry is None and tid not in advised:
            advised[tid] = pattern_advice(tid)
        advice = advised[tid] if row.registry is None else []
        if row.registry is not None and not candidates:
            continue  # well-formed, not found, near nothing known: `not_found` says it all
        out.append(_suspect_finding(row, tid, candidates, advice))
    return out


def _suspect(row: CuratedRow, states: Mapping[str, TrialState]) -> bool:
    """Malformed, or well-formed and the registry said it does not know it."""
    if row.registry is None:
        return True
    state = states.get(normalize_id(row.trial_id))
    return state is not None and state.outcome is Outcome.NOT_FOUND and not state.record


def rank_candidates(trial_id: str, known: Mapping[str, Sequence[Known]]) -> list[Candidate]:
    """Corrections for `trial_id`, best first: strong ones, then fewer edits, then the ID
    known from more places."""
    found: dict[str, Candidate] = {}
    repaired = lookalike_repair(trial_id)
    if repaired is not None:
        fixed, why = repaired
        where = known.get(fixed, ())
        found[fixed] = Candidate(fixed, _with_where(why, where), True, 1, _url(where))
    matches = process.extract(
        trial_id, list(known), scorer=OSA.distance, score_cutoff=NEAR, limit=None
    )
    for other, distance, _ in matches:
        if other == trial_id or other in found:
            continue
        why = _with_where(describe_edit(trial_id, other), known[other])
        found[other] = Candidate(other, why, distance <= 1, int(distance), _url(known[other]))
    return sorted(
        found.values(),
        key=lambda c: (not c.strong, c.distance, -len(known.get(c.trial_id, ())), c.trial_id),
    )


def _with_where(why: str, where: Sequence[Known]) -> str:
    if not where:
        return why
    places = "; ".join(k.where for k in where[:WHERE_LISTED])
    more = len(where) - WHERE_LISTED
    return f"{why}; a known ID: {places}" + (f"; … and {more:,} more" if more > 0 else "")


def _url(where: Sequence[Known]) -> str | None:
    return next((k.url for k in where if k.url), None)


def lookalike_repair(trial_id: str) -> tuple[str, str] | None:
    """Look-alike letters after the prefix read as digits, when that fits the claimed
    registry's pattern: (`NCT01234567`, "letter O for zero") for `NCTO1234567`."""
    key = claimed_registry(trial_id)
    if key is None or registry_of(trial_id) is not None:
        return None
    prefix = len(REGISTRY_TABLE[key].id_prefix)
    tail = trial_id[prefix:]
    fixed = trial_id[:prefix] + "".join(LOOKALIKES.get(c, c) for c in tail)
    if fixed == trial_id or not ID_PATTERNS[key].fullmatch(fixed):
        return None
    names = sorted({LOOKALIKE_NAMES[c] for c in tail if c in LOOKALIKES})
    return fixed, f"{', '.join(names)}: printed {trial_id}, which fits no pattern as printed"


def describe_edit(printed: str, known: str) -> str:
    """What one or two edits turn the printed ID into a known one, in words."""
    if len(printed) == len(known):
        diffs = [i for i, (a, b) in enumerate(zip(printed, known, strict=True)) if a != b]
        if len(diffs) == 2 and diffs[1] == diffs[0] + 1 and printed[diffs[0]] == known[diffs[1]]:
            i = diffs[0]
            return f"two adjacent characters swapped at {i + 1}-{i + 2}: {known}"
    ops = Levenshtein.editops(printed, known)
    if len(ops) != 1:
        return f"{len(ops)} characters different from {known} (weak: IDs are often this close)"
    (op,) = ops
    if op.tag == "insert":
        return f"one character short: {known} has {known[op.dest_pos]!r} at {op.dest_pos + 1}"
    if op.tag == "delete":
        return (
            f"one character too many: {known} lacks the {printed[op.src_pos]!r} at {op.src_pos + 1}"
        )
    a, b = printed[op.src_pos], known[op.dest_pos]
    look = f" ({LOOKALIKE_NAMES[a]})" if LOOKALIKES.get(a) == b else ""
    return f"one character different at {op.src_pos + 1}: printed {a!r}, {known} has {b!r}{look}"


def pattern_advice(trial_id: str) -> list[str]:
    """What the registry's pattern says about a malformed ID (never which character)."""
    key = claimed_registry(trial_id)
    keys = [key] if key is not None else list(ID_PATTERNS)
    out = []
    for k in keys:
        fit = _one_edit_fits(trial_id, k)
        if fit is not None:
            head, detail = fit
            out.append(f"{head} {registry_name(k)}'s pattern {_shape(k)}: {detail}")
    if not out:
        name = f"{registry_name(key)}'s pattern {_shape(key)}" if key else "any registry's pattern"
        out.append(f"more than one character away from {name}")
    return out


def _one_edit_fits(trial_id: str, key: str) -> tuple[str, str] | None:
    """Would one more, one fewer or one other character fit the pattern? (what, in detail)"""
    pattern = ID_PATTERNS[key]
    n = len(trial_id)
    spots = range(n + 1)
    inserted = {
        c for i in spots for c in PROBE if pattern.fullmatch(trial_id[:i] + c + trial_id[i:])
    }
    if inserted:
        short = "digit" if inserted & set(string.digits) else "character"
        return (
            f"one {short} short of",
            f"{n} characters where it needs {n + 1}; which {short} is missing, and where, "
            "cannot be told from the pattern",
        )
    if any(pattern.fullmatch(trial_id[:i] + trial_id[i + 1 :]) for i in range(n)):
        return "one character too many for", f"{n} characters where it needs {n - 1}"
    if any(
        pattern.fullmatch(trial_id[:i] + c + trial_id[i + 1 :]) for i in range(n) for c in PROBE
    ):
        return "one character off from", "one character does not fit where it stands"
    return None


def _shape(key: str) -> str:
    """The pattern as a reader reads it: `jRCT[0-9a-z][0-9]{9}`."""
    return "`" + ID_PATTERNS[key].pattern.replace("\\d", "[0-9]") + "`"


def search_url(key: str | None, trial_id: str) -> str | None:
    """The registry's search page for a reader to look the ID up, when it has one."""
    info = REGISTRY_TABLE.get(key or "")
    if info is None or not info.search_url:
        return None
    return info.search_url.replace("{query}", quote(trial_id, safe=""))


def _suspect_finding(
    row: CuratedRow, trial_id: str, candidates: Sequence[Candidate], advice: Sequence[str]
) -> Finding:
    key = claimed_registry(trial_id)
    search = search_url(key, trial_id)
    strong = [c for c in candidates if c.strong]
    extra: dict[str, str] = {}
    for i, c in enumerate(candidates, 1):
        extra[f"candidate_{i}"] = c.trial_id
        extra[f"candidate_{i}_why"] = c.why
        extra[f"candidate_{i}_strength"] = "strong" if c.strong else "weak"
    if len(strong) == 1:
        extra["suggested"] = strong[0].trial_id
    if advice:
        extra["pattern"] = "; ".join(advice)
    if search:
        extra["search_url"] = search
    parts = [f"printed ID {row.trial_id!r} looks mistyped or truncated"]
    parts += list(advice)
    if candidates:
        listed = "; ".join(f"{i}. {c.trial_id} ({c.why})" for i, c in enumerate(candidates, 1))
        parts.append(f"candidates: {listed}")
    else:
        parts.append("no ID known to this run fits; check the ID against the source")
    evidence = strong[0].url if len(strong) == 1 and strong[0].url else search
    if search:  # the evidence link is the search page unless a record backs the one candidate
        where = "its search page (the evidence link)" if evidence == search else search
        parts.append(f"look it up on {registry_name(key)}: {where}")
    return Finding(
        table=row.table,
        line=row.line,
        trial_id=row.trial_id,
        field="trial_id",
        kind="id_suspect",
        severity=Severity.WARNING,
        review_value=row.trial_id,
        registry_value=extra.get("suggested"),
        evidence_url=evidence,
        message="; ".join(parts),
        extra=extra,
    )


def _where(row: CuratedRow) -> str:
    return f"row {row.row}" if row.row is not None else f"(line {row.line})"
