"""ANZCTR (Australian New Zealand Clinical Trials Registry), through its public review page.

Source: https://www.anzctr.org.au (no API; an XML form `&isXml=true` is reported but no sample of
it exists, so it is not used). Field documentation: the registry's "ANZCTR Data field
explanation" PDF (not re-read for this module). Route (REGISTRIES.md §6), one page per trial:
`{base}/Trial/Registration/TrialReview.aspx?ACTRN=<14 digits>` — the digits WITHOUT the `ACTRN`
prefix.

Primary ID: `ACTRN` + 14 digits. Update signal: `Date last updated` (`CXUPDATEDATE`).
Terms: none found on automated access; no anti-bot measures reported; about one request a
second, serially (the registry table's policy, applied by `Http`).

Values sit in `<span id="ctl00_body_CX…">`, the page's own label system: parse reads them by id
and checks the visible label beside each (a changed label is reported as `Unmapped("label", …)`).
Labels verified on a real page (ACTRN12605000001695, 2018-06 layout): `Trial ID` (CXACTRNUMBER),
`Date submitted`, `Date registered`, `Date last updated` (CXUPDATEDATE), `Public title`,
`Scientific title`, `Secondary ID [n]` (TXSECONDARYID repeater), health conditions
(TXHEALTHCONDITION), `Description of intervention(s) / exposure`, `Phase`, `Recruitment status`,
`Date of first participant enrolment` -> `Anticipated` / `Actual`, `Date of last data collection`
-> `Anticipated` / `Actual`, `Sample size` -> `Target` / `Final`, `Primary sponsor` `Name`
(CXPRIMARYSPONSORNAME), `Secondary sponsor category [n]` / `Name [n]` (TXSECONDARYSPONSOR).
Values verified: status `Completed`, phase `Phase 2`, dates `1/02/2005`, `16/12/2009`.
From notes only (DIRECCT 2021, ICTRP CSV): the other statuses and phases below; how ANZCTR
answers an unknown ACTRN (assumed: the same page with an empty Trial ID, or HTTP 404); the
2026 layout (ours is from 2018 and may have changed: a page without the spans is a parse_error).

Quirks: dates are day-first and the day is not zero-padded (`1/02/2005`); the page starts with
blank lines and uses CRLF; empty fields are present as empty spans; the start date is the actual
one when filled, else the anticipated one; `Phase 0` has no canonical phase (reported).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from selectolax.lexbor import LexborHTMLParser, LexborNode

from registry_sync import ids
from registry_sync.errors import ParseError
from registry_sync.http import Http
from registry_sync.model import (
    Exchange,
    FetchOutcome,
    PartialDate,
    RawPayload,
    RegistryRecord,
    Unmapped,
)
from registry_sync.registries import pages
from registry_sync.registries._html import document, label_key, node_text
from registry_sync.registries._redact import redact_page
from registry_sync.registries._values import count as _count
from registry_sync.registries._values import date as _shared_date
from registry_sync.registries._values import lookup as _lookup
from registry_sync.registries.base import Registry
from registry_sync.registry_table import REGISTRY_TABLE

KEY = "anzctr"
REVIEW_PATH = "/Trial/Registration/TrialReview.aspx?ACTRN={}"
SPAN = "ctl00_body_{}"
REPEATER = "ctl00_body_repeater_{}_ctl{{}}_{}"  # a repeated block's nth item (ctl00, ctl01…)
T = TypeVar("T")
Value = Callable[[str], str | None]  # span id -> its text, None when empty

# span id -> the label printed beside it (2018 page). Start/end labels repeat ("Anticipated").
LABELS: dict[str, str] = {
    "CXACTRNUMBER": "Trial ID",
    "CXUPDATEDATE": "Date last updated",
    "CXSTUDYTITLE": "Public title",
    "CXSCIENTIFICTITLE": "Scientific title",
    "CXINTERVENTIONS": "Description of intervention(s) / exposure",
    "CXPHASE": "Phase",
    "CXRECRUITMENTSTATUS": "Recruitment status",
    "CXANTICIPATEDSTARTDATE": "Anticipated",
    "CXACTUALSTARTDATE": "Actual",
    "CXANTICIPATEDLASTVISITDATE": "Anticipated",
    "CXACTUALLASTVISITDATE": "Actual",
    "CXSAMPLESIZE": "Target",
    "CXACTUALSAMPLESIZE": "Final",
    "CXPRIMARYSPONSORNAME": "Name",
}

# Recruitment status -> canonical (model.STATUSES). `Completed` verified; the rest DIRECCT 2021.
STATUS_MAP: dict[str, str] = {
    "Not yet recruiting": "NOT_YET_RECRUITING",
    "Recruiting": "RECRUITING",
    "Active, not recruiting": "ACTIVE_NOT_RECRUITING",
    "Completed": "COMPLETED",
    "Withdrawn": "WITHDRAWN",
    "Stopped early": "TERMINATED",  # ANZCTR's word for ended before its planned end
    "Suspended": "SUSPENDED",  # likely, unverified (REGISTRIES.md §6)
}

# Phase -> canonical phases (model.PHASES). `Phase 2` verified; `Not Applicable`, `Phase 3`,
# `Phase 4` seen in the ICTRP CSV; the rest expected. `Phase 0` is deliberately absent: it has no
# canonical equivalent (EARLY_PHASE1 is not the same thing), so it is reported as unmapped.
PHASE_MAP: dict[str, tuple[str, ...]] = {
    "Not Applicable": ("NA",),
    "Phase 1": ("PHASE1",),
    "Phase 1 / Phase 2": ("PHASE1", "PHASE2"),
    "Phase 2": ("PHASE2",),
    "Phase 2 / Phase 3": ("PHASE2", "PHASE3"),
    "Phase 3": ("PHASE3",),
    "Phase 4": ("PHASE4",),
}

# Secondary ID / sponsor values that mean "none".
NIL = frozenset({"", "nil", "nil known", "none", "n/a", "na"})

# Markers of a challenge, WAF or quota page (none reported for ANZCTR; generic ones), looked for
# only in a page that lacks the review page's Trial ID span.
BLOCK_MARKERS = pages.GENERIC_BLOCK_MARKERS


def _date(raw: str | None, field: str, unmapped: list[Unmapped]) -> PartialDate | None:
    """Day-first, the day not zero-padded (`1/02/2005`); anything else is Unmapped."""
    return _shared_date(raw, field, unmapped, day_first=True)


def fetch(trial_ids: Sequence[str], http: Http, base_url: str) -> list[FetchOutcome]:
    """One review page per trial, addressed by the 14 digits (pages.fetch_each)."""
    root = base_url.rstrip("/")
    return pages.fetch_each(
        trial_ids,
        http,
        registry=KEY,
        url_for=lambda trial_id: root + REVIEW_PATH.format(_digits(trial_id)),
        detect_block=detect_block,
        is_not_found=is_not_found,
    )


def _digits(trial_id: str) -> str:
    """`ACTRN12620000870954` -> `12620000870954`: the route wants the digits only (quirk)."""
    return trial_id.removeprefix("ACTRN")


def detect_block(exchange: Exchange) -> str | None:
    """Why a 200 answer is a challenge or block page; None for an ANZCTR page (pure)."""
    text = exchange.body.decode("utf-8", errors="replace")
    if SPAN.format("CXACTRNUMBER") in text:
        return None  # the review page (or its empty not-found shell)
    lowered = text.casefold()
    marker = next((m for m in BLOCK_MARKERS if m in lowered), None)
    return None if marker is None else f"challenge or block page ({marker!r} in it)"


def is_not_found(exchange: Exchange) -> bool:
    """The review page's shell with an empty Trial ID: ANZCTR has no such trial (assumed)."""
    tree = document(exchange.body, exchange.headers.get("Content-Type", ""))
    span = tree.css_first(f"#{SPAN.format('CXACTRNUMBER')}")
    return span is not None and not node_text(span)


def parse(payload: RawPayload) -> RegistryRecord:
    """One review page -> record, reading the `ctl00_body_CX…` spans by id (pure)."""
    tree = document(payload.body, payload.content_type)
    _check_trial(payload, tree)
    unmapped: list[Unmapped] = []
    value = _reader(tree, unmapped)
    start_raw, start_type = _start(value)
    status_raw = value("CXRECRUITMENTSTATUS")
    phase_raw = value("CXPHASE")
    return RegistryRecord(
        registry=KEY,
        trial_id=payload.trial_id,
        status=_lookup(STATUS_MAP, status_raw, "status", unmapped),
        status_raw=status_raw,
        phases=_lookup(PHASE_MAP, phase_raw, "phase", unmapped) or (),
        phases_raw=(phase_raw,) if phase_raw else (),
        start=_date(start_raw, "start", unmapped),
        start_raw=start_raw,
        start_type=start_type,
        completion=_date(
            value("CXACTUALLASTVISITDATE") or value("CXANTICIPATEDLASTVISITDATE"),
            "completion",
            unmapped,
        ),
        last_updated=_date(value("CXUPDATEDATE"), "last_updated", unmapped),
        lead_sponsor=value("CXPRIMARYSPONSORNAME"),
        collaborators=_secondary_sponsors(tree),
        brief_title=value("CXSTUDYTITLE"),
        official_title=value("CXSCIENTIFICTITLE"),
        conditions=_repeated(tree, "TXHEALTHCONDITION", "CXHEALTHCONDITION"),
        interventions=tuple(filter(None, [value("CXINTERVENTIONS")])),
        enrollment=_count(value("CXACTUALSAMPLESIZE") or value("CXSAMPLESIZE"), unmapped),
        secondary_ids=_secondary_ids(tree),
        evidence_url=REGISTRY_TABLE[KEY].default_base_url
        + REVIEW_PATH.format(_digits(payload.trial_id)),
        unmapped=tuple(dict.fromkeys(unmapped)),  # a label checked twice is reported once
    )


def _check_trial(payload: RawPayload, tree: LexborHTMLParser) -> None:
    """ParseError for a page that is no review page of this trial (block, shell, other trial)."""

    def fail(hint: str) -> ParseError:
        return ParseError(KEY, payload.trial_id, payload.url, hint)

    span = tree.css_first(f"#{SPAN.format('CXACTRNUMBER')}")
    if span is None:
        marker = next((m for m in BLOCK_MARKERS if m in (tree.html or "").casefold()), None)
        if marker is not None:
            raise fail(f"a challenge or block page ({marker!r}), not a trial page")
        raise fail("no ANZCTR Trial ID span (ctl00_body_CXACTRNUMBER): the layout has changed")
    shown = ids.normalize_id(node_text(span))
    if not shown:
        raise fail("the page's Trial ID is empty: ANZCTR's shell for an unknown trial")
    if shown != payload.trial_id:
        raise fail(f"page is for {shown}, not {payload.trial_id}")


def _reader(tree: LexborHTMLParser, unmapped: list[Unmapped]) -> Value:
    """`value(span)`: the span's text (None when empty or absent); checks its printed label."""

    def value(span_id: str) -> str | None:
        node = tree.css_first(f"#{SPAN.format(span_id)}")
        if node is None:
            return None
        expected = LABELS.get(span_id)
        printed = _label_beside(node)
        if expected and printed is not None and label_key(printed) != label_key(expected):
            unmapped.append(Unmapped("label", f"{span_id}: {printed}"))
        return node_text(node) or None

    return value


def _label_beside(span: LexborNode) -> str | None:
    """The text of the label block just before the span's content block (`review-element-*`)."""
    content = span.parent
    if content is None:
        return None
    sibling = content.prev
    while sibling is not None and sibling.tag in ("-text", "-comment"):
        sibling = sibling.prev
    if sibling is None or "name" not in str(sibling.attributes.get("class") or ""):
        return None
    return node_text(sibling)


def _start(value: Value) -> tuple[str | None, str | None]:
    """The actual start when filled (ACTUAL), else the anticipated one (ESTIMATED)."""
    if actual := value("CXACTUALSTARTDATE"):
        return actual, "ACTUAL"
    if anticipated := value("CXANTICIPATEDSTARTDATE"):
        return anticipated, "ESTIMATED"
    return None, None


def _repeated(tree: LexborHTMLParser, block: str, span_id: str) -> tuple[str, ...]:
    """Every non-empty value of a repeated block (`TXHEALTHCONDITION` items), in page order."""
    return tuple(v for n in _items(tree, block, span_id) if (v := node_text(n)))


def _items(tree: LexborHTMLParser, block: str, span_id: str) -> list[LexborNode]:
    """The value spans of every item of a repeated block, in order (`..._ctl00_CXNAME`, ...)."""
    pattern = REPEATER.format(block, span_id)
    found: list[LexborNode] = []
    for n in range(100):  # far above any real list; ASP.NET numbers items ctl00, ctl01, ...
        node = tree.css_first("#" + pattern.format(f"{n:02d}"))
        if node is None:
            return found
        found.append(node)
    return found


def _secondary_sponsors(tree: LexborHTMLParser) -> tuple[str, ...]:
    """Secondary sponsor names; the `None` category with `nil` name (2018 page) means none."""
    kinds = [node_text(n) for n in _items(tree, "TXSECONDARYSPONSOR", "CXTYPE")]
    names = [node_text(n) for n in _items(tree, "TXSECONDARYSPONSOR", "CXNAME")]
    return tuple(
        name
        for kind, name in zip(kinds, names, strict=False)
        if kind.casefold() not in NIL and name.casefold() not in NIL
    )


def _secondary_ids(tree: LexborHTMLParser) -> tuple[str, ...]:
    """Secondary IDs: a known registry's ID when the value holds one (`NCT…`), else the value
    as printed (`National Clinical Trials Registry: NCTR570`); `Nil known` means none."""
    found: list[str] = []
    for text in _repeated(tree, "TXSECONDARYID", "CXSECONDARYID"):
        if text.casefold() in NIL:
            continue
        known = [ids.normalize_id(t) for t in text.replace(":", " ").split()]
        known = [t for t in known if ids.registry_of(t) is not None]
        found.extend(known or [text])
    return tuple(dict.fromkeys(found))


# The contacts' personal fields (ASP.NET ids `..._TXCONTACT<n>_ctl00_CX<FIELD>`).
PERSONAL_SPANS = ", ".join(
    f'span[id*="TXCONTACT"][id$="_CX{field}"]'
    for field in ("NAME", "ADDRESS", "PHONE", "FAX", "EMAIL")
)


def redact(body: bytes) -> bytes:
    """The review page without its contacts' names, addresses, phones and e-mails
    (ACTRN12605000001695 lists them); parse() reads none of it."""
    return redact_page(body, (), elements=PERSONAL_SPANS)


REGISTRY = Registry(
    key=KEY,
    name=REGISTRY_TABLE[KEY].name,
    id_pattern=ids.ID_PATTERNS[KEY],
    parser_version=1,
    fetch=fetch,
    parse=parse,
    redact=redact,
    detect_block=detect_block,
)
