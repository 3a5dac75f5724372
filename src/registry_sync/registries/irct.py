"""IRCT (Iranian Registry of Clinical Trials), through its public HTML trial page.

Source: https://en.irct.ir (also www.irct.ir; the newer irct.behdasht.gov.ir is reported to time
out from abroad). No field documentation found. Route (REGISTRIES.md §7), two pages per trial:
1. search `{base}/search/result?query=<IRCT ID>`, which lists `/trial/{n}` links (no link =
   `not_found`); `n` is IRCT's internal sequential id (the ICTRP `web address` shows it too:
   `http://en.irct.ir/trial/46538` for IRCT20100228003449N28, ICTRP COVID CSV 2020-04);
2. the trial page `{base}/trial/{n}`; an unknown `n` answers 404 (`not_found`).
A WHO-format XML at `/trial/{n}/xml` is reported but no sample exists, so it is not used.

Primary ID: `IRCT` + digits + `N` + digits (new: 14 digits, e.g. IRCT20160704028786N2; old
shorter). Update signal: `Last update:`. Terms: research and non-commercial use; no anti-bot
measures reported; about one request a second, serially (the registry table's policy).

**No real IRCT page or XML exists in our samples: EVERY label below is unverified.** They come
from third-party scrapers' notes (REGISTRIES.md §7: a 2026-09 note, DIRECCT, VaidhyaMegha
`batch/irct/html_json.sh`):
- `<span>IRCT registration number:</span><strong>…</strong>`, likewise `Registration date:` and
  `Last update:` (dates `YYYY-MM-DD`, sometimes with a time);
- `<dt>…</dt><dd><strong>…</strong></dd>` for `Recruitment status`, `Expected recruitment start
  date`, `Actual recruitment start date`, `Trial completion date`, `Scientific title`, `Public
  title`, `Phase`; the value `empty` means missing;
- from the scraper's field names only (weaker still): `Target sample size`, `Description of
  health condition studied`, the `Secondary Ids` section's `Secondary trial Id`, and the
  `Sponsors / Funding sources` section's `Name of organization / entity`.
A page without the registration-number label is a parse_error asking for a real capture.
Vocabularies: statuses `Recruitment complete`, `recruiting` (lower case), `Not yet recruiting`
(DIRECCT 2021); phases `2-3`, `3`, `2` (ICTRP CSV) and `N/A` (notes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
from registry_sync.registries._dates import parse_date
from registry_sync.registries._html import clean, document, label_key, node_text
from registry_sync.registries._values import count as _count
from registry_sync.registries._values import lookup as _lookup
from registry_sync.registries.base import Registry
from registry_sync.registry_table import REGISTRY_TABLE

KEY = "irct"
SEARCH_PATH = "/search/result?query={}"
TRIAL_PATH = "/trial/{}"
TRIAL_LINK = re.compile(r"/trial/(\d+)/?$")
LEADING_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MISSING = frozenset({"", "empty"})  # IRCT prints `empty` for a field left blank (notes)
LAYOUT_HINT = (
    "no IRCT labels found: the page layout is not the one in our notes; capture a real page"
)
T = TypeVar("T")

# Recruitment status -> canonical (model.STATUSES); case variants listed, as DIRECCT saw them.
# `Recruitment complete` says enrolment has ended, not that the trial has: ACTIVE_NOT_RECRUITING
# (CT.gov: "not recruiting; ongoing") is closer than COMPLETED, which IRCT does not claim.
STATUS_MAP: dict[str, str] = {
    "Not yet recruiting": "NOT_YET_RECRUITING",
    "Recruiting": "RECRUITING",
    "recruiting": "RECRUITING",
    "Recruitment complete": "ACTIVE_NOT_RECRUITING",
}

# Phase -> canonical phases. `2-3`, `3`, `2` seen in the ICTRP CSV; `N/A` from the notes;
# `1`, `1-2`, `4` expected by analogy (unverified). Anything else is reported as unmapped.
PHASE_MAP: dict[str, tuple[str, ...]] = {
    "N/A": ("NA",),
    "1": ("PHASE1",),
    "1-2": ("PHASE1", "PHASE2"),
    "2": ("PHASE2",),
    "2-3": ("PHASE2", "PHASE3"),
    "3": ("PHASE3",),
    "4": ("PHASE4",),
}

# Markers of a challenge, WAF or quota page (none reported for IRCT; generic ones).
BLOCK_MARKERS = pages.GENERIC_BLOCK_MARKERS


def fetch(trial_ids: Sequence[str], http: Http, base_url: str) -> list[FetchOutcome]:
    """Search page, then the trial page it links to; one outcome per ID (pages.fetch_each)."""
    root = base_url.rstrip("/")
    return pages.fetch_each(
        trial_ids,
        http,
        registry=KEY,
        url_for=lambda trial_id: root + SEARCH_PATH.format(trial_id),
        next_url=trial_link,
        detect_block=detect_block,
    )


def trial_link(trial_id: str, search: Exchange) -> str | None:
    """`{base}/trial/{n}` for the search hit naming the trial (else the first hit); None = no hit.

    The link is rebuilt on the search page's own base, so a mirror or replay (whose base has a
    path) serves both pages from one place, whichever host the page links.
    """
    tree = document(search.body, search.headers.get("Content-Type", ""))
    hits: list[tuple[str, LexborNode]] = []
    for a in tree.css("a[href]"):
        match = TRIAL_LINK.search(str(a.attributes.get("href") or "").split("?")[0])
        if match:
            hits.append((match[1], a))
    if not hits:
        return None
    named = [n for n, a in hits if _names(a, trial_id)]
    base = search.url.split("/search/result", 1)[0]
    return base + TRIAL_PATH.format((named or [hits[0][0]])[0])


def _names(link: LexborNode, trial_id: str) -> bool:
    """Does the link, or the result item around it (up to 3 levels, holding no other hit),
    name the trial?"""
    node: LexborNode | None = link
    for _ in range(4):
        if node is None or len(node.css("a[href*='/trial/']")) > 1:
            return False
        if trial_id in node_text(node).split():
            return True
        node = node.parent
    return False


def detect_block(exchange: Exchange) -> str | None:
    """Why a 200 answer is a challenge or block page (a marker in its title or headings, the
    pages' layout being unknown); None otherwise (pure)."""
    tree = document(exchange.body, exchange.headers.get("Content-Type", ""))
    heads = " ".join(n.text() for n in tree.css("title, h1, h2")).casefold()
    marker = next((m for m in BLOCK_MARKERS if m in heads), None)
    return None if marker is None else f"challenge or block page ({marker!r} in its title)"


def parse(payload: RawPayload) -> RegistryRecord:
    """One trial page -> record, by the labels in the notes (pure; every label unverified)."""
    tree = document(payload.body, payload.content_type)
    _check_trial(payload, tree)
    unmapped: list[Unmapped] = []
    status_raw = _dd(tree, "Recruitment status")
    phase_raw = _dd(tree, "Phase")
    start_raw, start_type = _start(tree)
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
        completion=_date(_dd(tree, "Trial completion date"), "completion", unmapped),
        last_updated=_date(_strong(tree, "Last update"), "last_updated", unmapped),
        lead_sponsor=_first(
            _dds(_section(tree, "Sponsors / Funding sources"), "Name of organization / entity")
        ),
        brief_title=_dd(tree, "Public title"),
        official_title=_dd(tree, "Scientific title"),
        conditions=_dds(tree, "Description of health condition studied"),
        enrollment=_count(_dd(tree, "Target sample size"), unmapped),
        secondary_ids=_secondary_ids(tree),
        evidence_url=_evidence_url(payload.url),
        unmapped=tuple(unmapped),
    )


def _check_trial(payload: RawPayload, tree: LexborHTMLParser) -> None:
    """ParseError for a page that is no trial page of this trial (block, other layout/trial)."""

    def fail(hint: str) -> ParseError:
        return ParseError(KEY, payload.trial_id, payload.url, hint)

    shown = _strong(tree, "IRCT registration number")
    if shown is None:
        text = (tree.html or "").casefold()
        marker = next((m for m in BLOCK_MARKERS if m in text), None)
        if marker is not None:
            raise fail(f"a challenge or block page ({marker!r}), not a trial page")
        raise fail(LAYOUT_HINT)
    if ids.normalize_id(shown) != payload.trial_id:
        raise fail(f"page is for {shown}, not {payload.trial_id}")


def _strong(tree: LexborHTMLParser | LexborNode, label: str) -> str | None:
    """`<span>label:</span><strong>value</strong>`: the value, None when absent or `empty`."""
    for span in tree.css("span"):
        if label_key(span.text()) == label_key(label):
            return _value(_next_element(span), "strong")
    return None


def _dd(tree: LexborHTMLParser | LexborNode, label: str) -> str | None:
    """`<dt>label</dt><dd>value</dd>`: the first such value, None when absent or `empty`."""
    return _first(_dds(tree, label))


def _dds(tree: LexborHTMLParser | LexborNode | None, label: str) -> tuple[str, ...]:
    """Every `<dd>` value after a `<dt>` printing `label` (repeated in lists), `empty` left out."""
    if tree is None:
        return ()
    found = []
    for dt in tree.css("dt"):
        if label_key(dt.text()) == label_key(label):
            value = _value(_next_element(dt), "dd")
            if value is not None:
                found.append(value)
    return tuple(found)


def _next_element(node: LexborNode) -> LexborNode | None:
    sibling = node.next
    while sibling is not None and sibling.tag in ("-text", "-comment"):
        sibling = sibling.next
    return sibling


def _value(node: LexborNode | None, tag: str) -> str | None:
    if node is None or node.tag != tag:
        return None
    text = node_text(node)
    return None if text.casefold() in MISSING else text


def _section(tree: LexborHTMLParser, heading: str) -> LexborNode | None:
    """The element holding the `<h3>heading</h3>` and its list (notes: `<h3>Secondary Ids</h3>`)."""
    for h3 in tree.css("h3"):
        if label_key(h3.text()) == label_key(heading):
            return h3.parent
    return None


def _start(tree: LexborHTMLParser) -> tuple[str | None, str | None]:
    """The actual recruitment start when given (ACTUAL), else the expected one (ESTIMATED)."""
    if actual := _dd(tree, "Actual recruitment start date"):
        return actual, "ACTUAL"
    if expected := _dd(tree, "Expected recruitment start date"):
        return expected, "ESTIMATED"
    return None, None


def _secondary_ids(tree: LexborHTMLParser) -> tuple[str, ...]:
    """The `Secondary Ids` section's IDs, normalized when they are a known registry's."""
    values = _dds(_section(tree, "Secondary Ids"), "Secondary trial Id")
    return tuple(dict.fromkeys(ids.normalize_id(v) if ids.registry_of(v) else v for v in values))


def _evidence_url(fetched_url: str) -> str | None:
    """The public trial page (`https://en.irct.ir/trial/{n}`) for the `n` the page came from."""
    match = TRIAL_LINK.search(fetched_url.split("?")[0])
    if match is None:
        return None
    return REGISTRY_TABLE[KEY].default_base_url + TRIAL_PATH.format(match[1])


def _date(raw: str | None, field: str, unmapped: list[Unmapped]) -> PartialDate | None:
    """`YYYY-MM-DD`, with or without a time or a trailer (scrapers cut to 10 characters)."""
    if raw is None:
        return None
    found = parse_date(raw)
    if found is None and (lead := LEADING_DATE.match(clean(raw))):
        found = parse_date(lead[0])
    if found is None:
        unmapped.append(Unmapped(field, raw))
    return found


def _first(values: tuple[str, ...]) -> str | None:
    return values[0] if values else None


REGISTRY = Registry(
    key=KEY,
    name=REGISTRY_TABLE[KEY].name,
    id_pattern=ids.ID_PATTERNS[KEY],
    parser_version=1,
    fetch=fetch,
    parse=parse,
    detect_block=detect_block,
)
