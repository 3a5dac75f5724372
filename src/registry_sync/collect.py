"""Collect one registry's outcomes and hold its adapter to the per-trial contract.

The contract: every requested ID gets exactly one outcome. An adapter that forgets an ID, adds
one nobody asked for, answers twice, or raises, never makes a trial vanish or ends the run:

- a missing outcome becomes `parse_error` ("the adapter returned no outcome");
- an outcome for an ID not asked for, or a second one for the same ID, is dropped and logged;
- any exception from `fetch` makes that registry's trials `registry_down`, naming it;
- any exception from `data_timestamp` leaves the stamp empty, with a note;
- any exception from `parse` makes that trial `parse_error`, naming it.

Parsing dispatches on who served the payload (`RawPayload.served_by`): the home registry, or a
source such as WHO ICTRP for a copy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from registry_sync.errors import ParseError, RegistryDownError
from registry_sync.http import Http
from registry_sync.ids import normalize_id
from registry_sync.model import (
    Exchange,
    FetchOutcome,
    Outcome,
    RawPayload,
    RegistryRecord,
    TrialState,
)
from registry_sync.registries.base import Registry
from registry_sync.registry_table import registry_name

log = logging.getLogger(__name__)

FetchFn = Callable[[str, Sequence[str], Http, str], list[FetchOutcome]]
Redactor = Callable[[bytes], bytes]
StampFn = Callable[[str, Http, str], "str | None"]


@dataclass
class Collected:
    """One registry's share of a run."""

    key: str
    outcomes: list[FetchOutcome] = field(default_factory=list)
    timestamp: str | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def fetch_one(
    key: str,
    ids: Sequence[str],
    http: Http,
    base_url: str,
    fetch: FetchFn,
    data_timestamp: StampFn,
    *,
    home: str | None = None,
    redact: Redactor | None = None,
    stamp: bool = True,
) -> Collected:
    """Fetch trials through `fetch` (a step, maybe a task) of registry or source `key`; never
    raises for anything the adapter does. `home` is set when `key` is a source asked for
    another registry's trials (WHO ICTRP for a blocked registry): the outcomes stay the home
    registry's, marked as served by the source. `stamp`: also ask the registry's data
    timestamp (the first share of a registry's IDs does)."""
    started = time.monotonic()
    got = Collected(key)
    registry, source = (home, key) if home else (key, "")
    try:
        outcomes = fetch(key, ids, http, base_url)
    except RegistryDownError as exc:  # no answer at all: no data timestamp to ask for
        outcomes = list(exc.outcomes)
    except Exception as exc:  # an adapter bug must not end the run or lose other registries
        detail = f"the {registry_name(key)} adapter raised {_named(exc)}"
        got.notes.append(f"{key}: {detail}")
        log.warning("%s: %s", key, detail)
        outcomes = [
            FetchOutcome(registry, t, Outcome.REGISTRY_DOWN, detail, source=source) for t in ids
        ]
    else:
        if home is None and stamp:  # once per registry per run, not per share of its IDs
            got.timestamp = _stamp(key, http, base_url, data_timestamp, got.notes)
    checked = enforce_contract(registry, ids, outcomes, got.notes, source=source)
    once = remembered(redact)
    got.outcomes = [redact_outcome(o, once) for o in checked]
    got.seconds = time.monotonic() - started
    return got


def remembered(redact: Redactor | None) -> Redactor | None:
    """`redact` that does each distinct body once: a ClinicalTrials.gov batch page is the
    evidence of every trial in the batch (redacting it per trial was quadratic: 331 s for
    1,000 trials)."""
    if redact is None:
        return None
    # keyed by the object (one page is one bytes object shared by every trial's evidence), which
    # is kept alive beside its redacted copy so that its id cannot be reused meanwhile
    done: dict[int, tuple[bytes, bytes]] = {}

    def once(body: bytes) -> bytes:
        if id(body) not in done:
            done[id(body)] = (body, redact(body))
        return done[id(body)][1]

    return once


def redact_outcome(o: FetchOutcome, redact: Redactor | None) -> FetchOutcome:
    """The outcome with personal data taken out of its payload and every exchange it keeps
    (the registry's `redact`); parsing then reads the redacted copy, as a stale re-parse will."""
    if redact is None:
        return o
    payload = o.payload
    if payload is not None and not payload.redacted:
        payload = replace(payload, body=_safely(redact, payload.body), redacted=True)
    return replace(
        o, payload=payload, evidence=tuple(redact_exchange(e, redact) for e in o.evidence)
    )


def redact_exchange(ex: Exchange, redact: Redactor | None) -> Exchange:
    """A copy of an answer without personal data, still naming the sha256 of what was served."""
    if redact is None or ex.status is None or not ex.body or ex.served_sha256 is not None:
        return ex
    return replace(ex, body=_safely(redact, ex.body), served_sha256=ex.sha256)


def _safely(redact: Redactor, body: bytes) -> bytes:
    try:
        return redact(body)
    except Exception as exc:  # never store what could not be cleaned
        log.warning("redaction failed (%s): body not kept", _named(exc))
        return b""


def _stamp(
    key: str, http: Http, base_url: str, data_timestamp: StampFn, notes: list[str]
) -> str | None:
    try:
        return data_timestamp(key, http, base_url)
    except Exception as exc:
        notes.append(f"{key}: data timestamp not read: {_named(exc)}")
        return None


def enforce_contract(
    key: str,
    ids: Sequence[str],
    outcomes: Sequence[FetchOutcome],
    notes: list[str],
    *,
    source: str = "",
) -> list[FetchOutcome]:
    """Exactly one outcome per requested ID of registry `key`, in request order; violations go
    to `notes`. `source` is who was asked, when not the registry itself."""
    who = source or key
    wanted = list(dict.fromkeys(normalize_id(t) for t in ids))
    asked = set(wanted)
    got: dict[str, FetchOutcome] = {}
    for o in outcomes:
        tid = normalize_id(o.trial_id)
        if tid not in asked:
            _violation(notes, who, f"dropped an outcome for {o.trial_id!r}: not asked for")
        elif tid in got:
            _violation(notes, who, f"dropped a second outcome for {tid} ({o.outcome.value})")
        else:
            same = o.trial_id == tid and o.registry == key and o.source == source
            got[tid] = o if same else replace(o, registry=key, trial_id=tid, source=source)
    missing = [t for t in wanted if t not in got]
    if missing:
        _violation(notes, who, f"returned no outcome for {len(missing)} ID(s): {missing[:5]}")
    return [
        got.get(t)
        or FetchOutcome(
            key, t, Outcome.PARSE_ERROR, "the adapter returned no outcome", source=source
        )
        for t in wanted
    ]


def _violation(notes: list[str], key: str, text: str) -> None:
    notes.append(f"{key}: adapter contract: {text}")
    log.warning("%s adapter contract: %s", key, text)


def parse_outcome(o: FetchOutcome, parsers: Mapping[str, Registry]) -> TrialState:
    """Turn a fetch outcome into a trial state, parsing the payload when there is one."""
    evidence = tuple(e.request_id for e in o.evidence)
    if o.outcome is not Outcome.OK or o.payload is None:
        return TrialState(
            o.registry,
            o.trial_id,
            o.outcome,
            o.detail,
            source_url=o.url,
            evidence=evidence,
            source=o.source or None,
            moved_to=o.moved_to,
        )
    payload = o.payload
    try:
        record = _parse(payload, parsers)
    except Exception as exc:  # ParseError, or a parser bug: this trial only
        detail = str(exc) if isinstance(exc, ParseError) else f"parser raised {_named(exc)}"
        return TrialState(
            o.registry,
            o.trial_id,
            Outcome.PARSE_ERROR,
            detail,
            source_url=payload.url,
            payload_sha256=payload.sha256,
            source=payload.served_by,
            evidence=evidence,
        )
    return TrialState(
        o.registry,
        o.trial_id,
        Outcome.OK,
        o.detail,
        record=record,
        fetched_at=payload.fetched_at,
        source_url=payload.url,
        payload_sha256=payload.sha256,
        source=payload.served_by,
        evidence=evidence,
    )


def _parse(payload: RawPayload, parsers: Mapping[str, Registry]) -> RegistryRecord:
    parser = parsers.get(payload.served_by)
    if parser is None:
        raise ParseError(
            payload.registry, payload.trial_id, payload.url, f"no parser for {payload.served_by}"
        )
    return parser.parse(payload)


def reparse(payload: RawPayload, parsers: Mapping[str, Registry]) -> RegistryRecord | None:
    """A stored payload parsed again with today's parser (None when it no longer parses)."""
    try:
        return _parse(payload, parsers)
    except Exception as exc:
        log.warning("%s: stored payload no longer parses: %s", payload.trial_id, _named(exc))
        return None


def _named(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
