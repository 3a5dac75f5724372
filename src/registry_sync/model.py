"""Plain, frozen data shared by every module: no I/O here."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Outcome(StrEnum):
    """How one trial ended one run. Every trial gets exactly one."""

    OK = "ok"
    NOT_FOUND = "not_found"
    BLOCKED = "blocked"
    REGISTRY_DOWN = "registry_down"
    PARSE_ERROR = "parse_error"
    ID_MALFORMED = "id_malformed"
    MOVED = "moved"
    UNSUPPORTED = "unsupported"  # the registry is known, its adapter is not built yet
    NOT_IN_REPLAY = "not_in_replay"  # replay runs only: the recorded set holds no payload for it
    QUARANTINED = "quarantined"  # its record failed a per-record expectation: values not used


class Precision(StrEnum):
    YEAR = "year"
    MONTH = "month"
    DAY = "day"


_PRECISION_RANK = {Precision.YEAR: 0, Precision.MONTH: 1, Precision.DAY: 2}


@dataclass(frozen=True, order=True)
class PartialDate:
    """A date known to year, month or day. `2021` and `2021-06-14` are both valid starts."""

    year: int
    month: int | None = None
    day: int | None = None

    def __post_init__(self) -> None:
        if self.day is not None and self.month is None:
            raise ValueError("a day needs a month")
        if self.month is not None and not 1 <= self.month <= 12:
            raise ValueError(f"month {self.month} out of range")
        if self.day is not None:
            datetime(self.year, self.month or 1, self.day)  # raises ValueError on 2021-02-30

    @property
    def precision(self) -> Precision:
        if self.day is not None:
            return Precision.DAY
        if self.month is not None:
            return Precision.MONTH
        return Precision.YEAR

    def iso(self) -> str:
        if self.month is None:
            return f"{self.year:04d}"
        if self.day is None:
            return f"{self.year:04d}-{self.month:02d}"
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"

    def truncate(self, precision: Precision) -> PartialDate:
        """The same date, known no finer than `precision`."""
        if _PRECISION_RANK[precision] >= _PRECISION_RANK[self.precision]:
            return self
        if precision is Precision.YEAR:
            return PartialDate(self.year)
        return PartialDate(self.year, self.month)

    def agrees_with(self, other: PartialDate) -> bool:
        """Equal at the coarser of the two precisions: `2021` agrees with `2021-06-14`."""
        coarser = min(self.precision, other.precision, key=_PRECISION_RANK.__getitem__)
        return self.truncate(coarser) == other.truncate(coarser)

    @classmethod
    def from_iso(cls, text: str) -> PartialDate:
        """`2021`, `2021-06` or `2021-06-14`; raises ValueError otherwise."""
        parts = text.strip().split("-")
        if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
            raise ValueError(f"not an ISO partial date: {text!r}")
        nums = [int(p) for p in parts]
        return cls(nums[0], nums[1] if len(nums) > 1 else None, nums[2] if len(nums) > 2 else None)


# Canonical phases: ClinicalTrials.gov's vocabulary, the richest of the registries.
PHASES = ("EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4", "NA")

# Canonical statuses: ClinicalTrials.gov's overallStatus vocabulary, plus the coarse
# NOT_RECRUITING some registries (ICTRP, jRCT) use.
STATUSES = (
    "NOT_YET_RECRUITING",
    "RECRUITING",
    "ENROLLING_BY_INVITATION",
    "ACTIVE_NOT_RECRUITING",
    "NOT_RECRUITING",
    "SUSPENDED",
    "TERMINATED",
    "COMPLETED",
    "WITHDRAWN",
    "UNKNOWN",
    "WITHHELD",
    "NO_LONGER_AVAILABLE",
    "AVAILABLE",
    "APPROVED_FOR_MARKETING",
    "TEMPORARILY_NOT_AVAILABLE",
)


@dataclass(frozen=True)
class CuratedRow:
    """One line of the review's table, exactly as printed, plus what we could parse of it."""

    line: int  # line number in the CSV file (header is line 1)
    table: int
    product: str
    cell_type: str
    indication: str
    sponsor: str
    trial_id: str  # as printed
    phase: str  # as printed, e.g. "I/II", "IIT", "Ⅲ"
    nation: str
    start: str  # as printed, e.g. "2021", "2025.3"
    refs: str = ""
    note: str = ""
    row: int | None = None  # position within its table, when the CSV has a `row` column
    registry: str | None = None  # registry key from ids.registry_of(); None when malformed
    phases: frozenset[str] | None = None  # canonical phases; None when unparsed
    start_date: PartialDate | None = None  # None when unparsed
    review: str = ""  # the review whose table holds the row (its file stem); set by the run


class Origin(StrEnum):
    """Where a run's values for one registry came from."""

    LIVE = "live"  # the registry's own default address
    CUSTOM = "custom"  # a base URL that is not the registry's default (a mirror, a stand-in)
    RECORDED = "recorded"  # replay of a payload recorded from the registry
    RECONSTRUCTED = "reconstructed"  # replay of a record rebuilt by hand from archived pages


@dataclass(frozen=True)
class StoredBody:
    """A body kept in the payload store instead of in memory: its sha256 and length. A run
    puts each page and extract there as soon as it is parsed, so that a 100,000-trial run
    never holds every body at once."""

    sha256: str
    size: int


@dataclass(frozen=True)
class Exchange:
    """One HTTP request and its answer as served (body capped), kept as evidence.

    `status` is None when no answer came (timeout, cut connection); `error` then says why.
    """

    request_id: str  # unique across runs: a snapshot refers to it and may carry it forward
    registry: str  # the registry key (or source, e.g. "ictrp") the request was made for
    method: str
    url: str  # the final URL, with the query string we sent
    status: int | None
    fetched_at: datetime  # UTC
    # case-insensitive; all of them (the snapshot keeps a few); not part of equality or hash
    headers: Mapping[str, str] = dataclasses.field(compare=False, hash=False)
    body: bytes
    truncated: bool = False  # the answer was bigger than the registry's cap: this is its head
    error: str | None = None
    # when `body` is a redacted copy (personal data removed): the sha256 of the bytes as served
    served_sha256: str | None = None
    # set when the body went to the payload store and was dropped here (see `stored`)
    stored: StoredBody | None = dataclasses.field(default=None, compare=False)

    @functools.cached_property
    def sha256(self) -> str:  # computed once: a batch page is every trial's evidence
        return self.stored.sha256 if self.stored else hashlib.sha256(self.body).hexdigest()

    @property
    def size(self) -> int:
        return self.stored.size if self.stored else len(self.body)

    @property
    def has_body(self) -> bool:
        """An answer with bytes, here or in the payload store."""
        return bool(self.body) or self.stored is not None

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip()


@dataclass(frozen=True)
class RawPayload:
    """Bytes a registry served for one trial, with where and when we got them.

    `registry` is the trial's home registry; `source` who served these bytes (the registry
    itself, or `ictrp` for a copy); `request_id` the exchange they were served in (a study's
    extract from a batch page refers to the page's exchange).
    """

    registry: str
    trial_id: str
    url: str
    fetched_at: datetime  # UTC, timezone-aware
    body: bytes
    content_type: str = "application/json"
    # sha256 of the whole response this record was cut from (a batch page), when not the same
    container_sha256: str | None = None
    source: str = ""  # "" = the home registry itself
    request_id: str | None = None
    # set when the body went to the payload store and was dropped here (see `stored`)
    stored: StoredBody | None = dataclasses.field(default=None, compare=False)
    redacted: bool = False  # personal data already taken out by the adapter that cut it

    @functools.cached_property
    def sha256(self) -> str:  # computed once: a batch page is every trial's evidence
        return self.stored.sha256 if self.stored else hashlib.sha256(self.body).hexdigest()

    @property
    def size(self) -> int:
        return self.stored.size if self.stored else len(self.body)

    @property
    def served_by(self) -> str:
        return self.source or self.registry


@dataclass(frozen=True)
class Unmapped:
    """A registry value our vocabulary tables do not know. Reported, never coerced."""

    field: str
    raw: str


@dataclass(frozen=True)
class RegistryRecord:
    """One trial as a registry describes it now: normalized values beside the raw ones."""

    registry: str
    trial_id: str
    status: str | None = None  # canonical (STATUSES) or None when unmapped/absent
    status_raw: str | None = None
    last_known_status: str | None = None
    phases: tuple[str, ...] = ()  # canonical (PHASES)
    phases_raw: tuple[str, ...] = ()
    start: PartialDate | None = None
    start_raw: str | None = None
    start_type: str | None = None  # "ACTUAL" | "ESTIMATED" | None
    primary_completion: PartialDate | None = None
    completion: PartialDate | None = None
    last_updated: PartialDate | None = None
    lead_sponsor: str | None = None
    collaborators: tuple[str, ...] = ()
    brief_title: str | None = None
    official_title: str | None = None
    conditions: tuple[str, ...] = ()
    interventions: tuple[str, ...] = ()
    enrollment: int | None = None
    secondary_ids: tuple[str, ...] = ()
    evidence_url: str | None = None  # the public page a reader can open
    unmapped: tuple[Unmapped, ...] = ()
    # a copy's own date: WHO ICTRP's "Last refreshed on" (None for the registry's own record)
    refreshed: PartialDate | None = None
    enrollment_type: str | None = None  # "ACTUAL" | "ESTIMATED" | None
    status_verified: PartialDate | None = None  # when the sponsor last confirmed the status
    why_stopped: str | None = None  # the registry's reason, for a stopped trial
    has_results: bool | None = None  # results posted in the registry
    countries: tuple[str, ...] = ()  # where its sites are, as the registry names the countries


@dataclass(frozen=True)
class FetchOutcome:
    """What fetching one trial gave: a payload when ok, else why not.

    `evidence` holds every exchange that led to this outcome (a search page, then the detail
    page it pointed at; a block page; a not-found answer), so the snapshot can show it.
    """

    registry: str
    trial_id: str
    outcome: Outcome
    detail: str = ""
    payload: RawPayload | None = None
    url: str | None = None
    evidence: tuple[Exchange, ...] = ()
    source: str = ""  # "" = the home registry itself
    moved_to: str = ""  # `moved`: the ID the trial is registered under now, when known

    @property
    def served_by(self) -> str:
        return self.source or self.registry


@dataclass(frozen=True)
class TrialState:
    """What one run knows about one trial: its outcome and, when any, the record to compare."""

    registry: str | None  # the trial's home registry; None when its ID is malformed
    trial_id: str  # normalized
    outcome: Outcome
    detail: str = ""
    record: RegistryRecord | None = None
    stale: bool = False  # record carried forward from an earlier snapshot
    fetched_at: datetime | None = None
    source_url: str | None = None
    payload_sha256: str | None = None
    carried_from: str | None = None  # run id the stale record comes from
    source: str | None = None  # who served the values: the home registry, or e.g. "ictrp"
    origin: Origin = Origin.LIVE
    evidence: tuple[str, ...] = ()  # request ids of the exchanges behind the outcome
    moved_to: str = ""  # `moved`: the ID the trial is registered under now, when known


class Verdict(StrEnum):
    """When the review went wrong: already at publication, or the registry moved on since."""

    WRONG_AT_PUBLICATION = "wrong_at_publication"
    CHANGED_SINCE = "changed_since"
    UNKNOWN = "unknown"


# Finding kinds visible in the review's printed table alone (wrong when it was printed).
REVIEW_KINDS = (
    "id_malformed",
    "id_suspect",
    "duplicate_id",
    "review_inconsistent",
    "phase_unparsed",
    "start_unparsed",
    "text_table_conflict",  # the review's prose and its table disagree (textclaims)
)


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    """One thing a reader of the review should know about one row."""

    table: int
    line: int
    trial_id: str
    field: str
    kind: str
    severity: Severity
    review_value: str | None
    registry_value: str | None
    evidence_url: str | None = None
    message: str = ""
    stale: bool = False
    extra: dict[str, str] = dataclasses.field(default_factory=dict, compare=False, hash=False)
    verdict: Verdict = Verdict.UNKNOWN
    # an author's decision to accept the finding (decisions file beside the curated table)
    accepted_reason: str = ""
    accepted_on: str = ""
    review: str = ""  # the review whose row this is (its table's file stem); set by the run
