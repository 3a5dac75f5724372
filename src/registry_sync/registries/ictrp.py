"""WHO ICTRP (trialsearch.who.int): the cross-registry fallback, a copy of other registries' trials.

Source: the portal's public record page `Trial2.aspx?TrialID=<ICTRP ID>` (ASP.NET, values in
`<span id="DataList3_ctl01_…Label">`); REGISTRIES.md §9. ICTRP is not a home registry: the
pipeline asks it, after the primary fetch, for trials whose home registry blocked us, was down
or is gone, by their HOME IDs. Records keep the home registry's key and ID, `source="ictrp"`.

IDs: the ICTRP TrialID is the registry table's prefix + the home ID (`registry_table.ictrp_id`:
`JPRN-jRCTs031190226`, `ChiCTR2000029949`, `NCT04280705`); CTR is not carried (`not_found`,
nothing sent).

Update signal: `Last refreshed on` (`21 March 2022`) is ICTRP's own refresh -> `refreshed`; the
source registry's update date is not given, so `last_updated` stays None.

Terms: free portal data; attribute WHO ICTRP with its processing date (`refreshed`); no
commercial use; the paid XML web service forbids storage and is not used. A few requests,
about one a second (the registry table's `ictrp` row governs every request).

Verified on a real page (`Trial2_NCT04280705`, 2026): the DataList3 ids read here, countries
`DataList2_ctlNN_Country_Label`, conditions `DataList8_ctlNN_Condition_FreeTextLabel`,
interventions `DataList10_ctlNN_Intervention_FreeTextLabel`, secondary IDs
`DataList16_ctlNN_SecondaryIDLabel`; the empty shell (`Trial2_empty-shell_ISRCTN11928588`).
Verified on the real 2026 XML export: every tag read by `parse_export`. From notes only: the
`JPRN-`/ChiCTR TrialIDs on a Trial2 page (seen in exports), the `Pending` status, outage pages
(`outage_reason`: an ASP.NET error page, an empty body) and block pages (`detect_block`).

Quirks:
- not found is HTTP 200 with the page's empty shell (no `DataList3_ctl01_*` labels);
- the criteria text holds raw `<` and `>`: values are read by element id from an HTML5 tree,
  so a stray `<` in free text cannot shift them;
- status case differs (`Not Recruiting` / `Not recruiting`);
- phases are passed through from the source: ChiCTR's `0` (exploratory), `4` (post-marketing
  or phase IV) and `N/A` (其它, other) are ambiguous and reported, not mapped;
- `Date of first enrolment` is source-formatted (`February 21, 2020`, `2020-02-16`,
  `27/02/2020` day-first);
- ChiCTR's target size is per group (`Group A:57;Group B:57;`): the groups are summed;
- the XML export pads values with a newline and indentation, escapes `<br>` into text, and
  joins list items with `;` (an item holding its own `;` comes out in pieces, text kept).

Outcomes: record page -> ok; empty shell -> not_found; a WAF/CAPTCHA page -> blocked (the
`ictrp` policy then stops asking ICTRP this run); a 200 ASP.NET error page or an empty body ->
registry_down (an outage is transient, not a block: `outage_reason`, not `detect_block`);
HTTP errors as `pages.fetch_each` maps them; CTR -> not_found, nothing sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TypeVar
from urllib.parse import quote
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from selectolax.lexbor import LexborHTMLParser

from registry_sync import ids, registry_table
from registry_sync.errors import ParseError
from registry_sync.http import Http
from registry_sync.model import (
    Exchange,
    FetchOutcome,
    Outcome,
    PartialDate,
    RawPayload,
    RegistryRecord,
    Unmapped,
)
from registry_sync.registries import pages
from registry_sync.registries._html import clean, document, node_text
from registry_sync.registries._redact import redact_html
from registry_sync.registries._values import casefolded, lookup
from registry_sync.registries._values import date as _shared_date
from registry_sync.registries.base import Registry

KEY = "ictrp"
PUBLIC_PAGE = registry_table.REGISTRY_TABLE[KEY].default_base_url + "/Trial2.aspx?TrialID={}"
RECORD_MARK = b"DataList3_ctl01_"  # a record page has these labels; the empty shell has none
DETAIL = "DataList3_ctl01_{}"  # one value of the record, by its element id

# Record field -> (its Trial2 element id after `DataList3_ctl01_`, its XML export tag).
FIELDS = {
    "trial_id": ("TrialIDLabel", "TrialID"),
    "refreshed": ("Last_updatedLabel", "Last_Refreshed_on"),
    "sponsor": ("Primary_sponsorLabel", "Primary_sponsor"),
    "public_title": ("Public_titleLabel", "Public_title"),
    "scientific_title": ("Scientific_titleLabel", "Scientific_title"),
    "enrolment": ("Date_enrollementLabel", "Date_enrollement"),  # sic: ICTRP's spelling
    "target_size": ("Target_sizeLabel", "Target_size"),
    "status": ("Recruitment_statusLabel", "Recruitment_Status"),
    "phase": ("PhaseLabel", "Phase"),
}
# List field -> (its Trial2 DataList, element id suffix, XML export tag: `;`-joined there).
LISTS = {
    "countries": ("DataList2", "_Country_Label", "Countries"),
    "conditions": ("DataList8", "_Condition_FreeTextLabel", "Condition"),
    "interventions": ("DataList10", "_Intervention_FreeTextLabel", "Intervention"),
    "secondary_ids": ("DataList16", "_SecondaryIDLabel", "Secondary_ID"),
}

# `Recruitment status` (casefolded: ICTRP writes `Not Recruiting` and `Not recruiting`).
# `Authorised` (EUCTR) and `Pending` are not mapped: reported.
STATUS_MAP: dict[str, str] = {
    "recruiting": "RECRUITING",
    "not recruiting": "NOT_RECRUITING",
    "completed": "COMPLETED",
}

# `Phase` as the source registry wrote it (casefolded) -> canonical phases.
PHASE_MAP: dict[str, tuple[str, ...]] = {
    "early phase 1": ("EARLY_PHASE1",),  # NCT
    "phase 1": ("PHASE1",),
    "phase 2": ("PHASE2",),
    "phase 3": ("PHASE3",),
    "phase 4": ("PHASE4",),
    "phase 1/phase 2": ("PHASE1", "PHASE2"),
    "phase 2/phase 3": ("PHASE2", "PHASE3"),
    "1": ("PHASE1",),  # JPRN, IRCT: bare numbers
    "2": ("PHASE2",),
    "3": ("PHASE3",),
    "4": ("PHASE4",),
    "1-2": ("PHASE1", "PHASE2"),
    "2-3": ("PHASE2", "PHASE3"),
    "not applicable": ("NA",),  # JPRN `Not applicable`, ANZCTR `Not Applicable`
    "n/a": ("NA",),  # NCT
}
# ChiCTR's codes (REGISTRIES.md §3): `0` exploratory/pilot, `4` post-marketing or phase IV,
# `N/A` "other": none of them is a phase, so only the unambiguous ones map.
CHICTR_PHASE_MAP: dict[str, tuple[str, ...]] = {
    k: PHASE_MAP[k] for k in ("1", "2", "3", "1-2", "2-3")
}
PHASE_MAPS: dict[str, dict[str, tuple[str, ...]]] = {"chictr": CHICTR_PHASE_MAP}

# A 200 page that is a WAF/challenge answer, not ICTRP's (none seen from ICTRP yet: notes only).
BLOCK_MARKERS = (
    (b"The requested URL was rejected", "a WAF rejected the request"),
    (b"Access Denied", "access denied page"),
    (b"captcha", "a CAPTCHA page"),
)
# A 200 page that says ICTRP itself is failing (ASP.NET error pages; notes only).
OUTAGE_MARKERS = (
    (b"Server Error in '/' Application", "an ASP.NET server error page"),
    (b"<title>Runtime Error</title>", "an ASP.NET runtime error page"),
)
# The home IDs `fetch` accepts: every registry ICTRP carries (ICTRP has no IDs of its own here).
CARRIED_ID_PATTERN = re.compile(
    "|".join(
        f"(?:{info.id_pattern.pattern})"
        for info in registry_table.REGISTRY_TABLE.values()
        if info.id_pattern is not None and info.ictrp_id_prefix is not None
    )
)
T = TypeVar("T")
_GROUP_SIZE = re.compile(r"[^;:]*:\s*(\d+)\s*")  # ChiCTR `Group A:57`
_BR = re.compile(r"<br\s*/?>", re.I)


def _date(raw: str | None, field: str, unmapped: list[Unmapped]) -> PartialDate | None:
    """A source-formatted date; slashed ones are day-first (`27/02/2020`, ICTRP's form)."""
    return _shared_date(raw, field, unmapped, day_first=True)


def fetch(trial_ids: Sequence[str], http: Http, base_url: str) -> list[FetchOutcome]:
    """One outcome per distinct home ID, in input order; outcomes carry the HOME key and ID."""
    wanted = list(dict.fromkeys(ids.normalize_id(t) for t in trial_ids))
    groups: dict[str | None, list[str]] = {}
    for trial_id in wanted:
        groups.setdefault(ids.registry_of(trial_id), []).append(trial_id)
    found: dict[str, FetchOutcome] = {}
    for home, group in groups.items():
        for outcome in _fetch_group(home, group, http, base_url.rstrip("/")):
            found.setdefault(outcome.trial_id, outcome)
    return [found[t] for t in wanted if t in found]


def _fetch_group(home: str | None, group: list[str], http: Http, base: str) -> list[FetchOutcome]:
    """One home registry's trials: asked of ICTRP only where it carries that registry."""
    if home is None:
        detail = "not an ID of any registry WHO ICTRP could carry"
        return [
            _unsent(ids.claimed_registry(t) or KEY, t, Outcome.ID_MALFORMED, detail) for t in group
        ]
    if registry_table.REGISTRY_TABLE[home].ictrp_id_prefix is None:  # CTR: not carried
        detail = f"WHO ICTRP does not carry {registry_table.registry_name(home)}; nothing asked"
        return [_unsent(home, t, Outcome.NOT_FOUND, detail) for t in group]
    outcomes = pages.fetch_each(
        group,
        http,
        registry=home,
        source=KEY,
        url_for=lambda t: trial_url(base, home, t),
        detect_block=detect_block,
        is_not_found=is_not_found,
    )
    return [_down_if_outage(o) for o in outcomes]


def trial_url(base: str, home: str, trial_id: str) -> str:
    """`{base}/Trial2.aspx?TrialID=<ICTRP ID>` for a home registry's trial it carries."""
    return f"{base}/Trial2.aspx?TrialID={quote(registry_table.ictrp_id(home, trial_id) or '')}"


def _unsent(registry: str, trial_id: str, outcome: Outcome, detail: str) -> FetchOutcome:
    return FetchOutcome(registry, trial_id, outcome, detail, source=KEY)


def _down_if_outage(outcome: FetchOutcome) -> FetchOutcome:
    """An `ok` whose page is ICTRP's error page is an outage: `registry_down`, evidence kept."""
    page = outcome.evidence[-1] if outcome.outcome is Outcome.OK and outcome.evidence else None
    reason = outage_reason(page) if page is not None else None
    if reason is None:
        return outcome
    return replace(outcome, outcome=Outcome.REGISTRY_DOWN, detail=reason, payload=None)


def has_record(body: bytes) -> bool:
    """A Trial2 page with a record (the empty shell has no `DataList3_ctl01_*` labels)."""
    return RECORD_MARK in body


def is_not_found(exchange: Exchange) -> bool:
    """ICTRP's 200 empty shell: a page with no record that is not an outage page."""
    return outage_reason(exchange) is None and not has_record(exchange.body)


def outage_reason(exchange: Exchange) -> str | None:
    """Why a 200 answer shows ICTRP failing (error page, empty body), or None (pure)."""
    if not exchange.body.strip():
        return f"WHO ICTRP answered an empty page ({exchange.url})"
    if "aspxerrorpath=" in exchange.url:  # ASP.NET customErrors redirect
        return f"WHO ICTRP redirected to its error page ({exchange.url})"
    head = exchange.body[:20_000]
    for marker, what in OUTAGE_MARKERS:
        if marker in head and not has_record(exchange.body):
            return f"WHO ICTRP answered {what} ({exchange.url})"
    return None


def detect_block(exchange: Exchange) -> str | None:
    """Why a 200 answer is a WAF/CAPTCHA page rather than ICTRP's own page, or None (pure)."""
    if has_record(exchange.body):
        return None
    lowered = exchange.body[:20_000].lower()
    for marker, what in BLOCK_MARKERS:
        if marker.lower() in lowered:
            return f"WHO ICTRP: {what} ({exchange.url})"
    return None


def parse(payload: RawPayload) -> RegistryRecord:
    """A Trial2 record page -> the home registry's trial as WHO ICTRP shows it (pure)."""
    asked = _asked_id(payload)
    root = document(payload.body, payload.content_type)
    values = {f: node_text(root.css_first(f"#{DETAIL.format(i)}")) for f, (i, _) in FIELDS.items()}
    shown = values["trial_id"]
    if not shown:
        hint = "no record on the page (WHO ICTRP's empty shell, or not a Trial2 page)"
        raise ParseError(KEY, payload.trial_id, payload.url, hint)
    if shown != asked:
        raise ParseError(KEY, payload.trial_id, payload.url, f"page is for {shown}, not {asked}")
    lists = {f: _trial2_list(root, dl, suffix) for f, (dl, suffix, _) in LISTS.items()}
    return _record(payload.registry, payload.trial_id, values, lists)


def _asked_id(payload: RawPayload) -> str:
    asked = registry_table.ictrp_id(payload.registry, payload.trial_id)
    if asked is None:
        hint = f"WHO ICTRP does not carry {registry_table.registry_name(payload.registry)}"
        raise ParseError(KEY, payload.trial_id, payload.url, hint)
    return asked


def _trial2_list(root: LexborHTMLParser, datalist: str, suffix: str) -> tuple[str, ...]:
    """The non-empty values of a DataList's rows (`DataList2_ctl01_Country_Label`, ...)."""
    nodes = root.css(f'[id^="{datalist}_ctl"][id$="{suffix}"]')
    return tuple(text for node in nodes if (text := node_text(node)))


def source_url(payload: RawPayload) -> str | None:
    """The source registry's URL ICTRP links to (ChiCTR `showproj…?proj=<n>`, IRCT
    `/trial/<n>`): the second route to a trial whose registry needs a search (pure)."""
    node = document(payload.body, payload.content_type).css_first(
        f"#{DETAIL.format('HyperLink12')}"
    )
    if node is None:
        return None
    return clean(node.attributes.get("href") or node_text(node)) or None


def countries(payload: RawPayload) -> tuple[str, ...]:
    """The countries a Trial2 page lists (also in the parsed record's `countries`; pure)."""
    datalist, suffix, _ = LISTS["countries"]
    return _trial2_list(document(payload.body, payload.content_type), datalist, suffix)


def parse_export(body: bytes, url: str = "") -> list[RegistryRecord]:
    """A portal XML export (`<Trials_downloaded_from_ICTRP>`, downloaded by hand) -> records.

    A trial of a home registry gets its key and home ID (`JPRN-UMIN000007004` -> `umin`,
    `UMIN000007004`); one of a registry we do not follow (EUCTR, LBCTR...) keeps `ictrp` and
    its ICTRP ID. Contacts and ethics-committee fields are never read.
    """
    try:
        root = SafeET.fromstring(body)
    except (SafeET.ParseError, DefusedXmlException) as exc:
        raise ParseError(KEY, "", url, f"not a safe, well-formed XML export ({exc})") from exc
    if root.tag != "Trials_downloaded_from_ICTRP":
        raise ParseError(KEY, "", url, f"root is <{root.tag}>, not <Trials_downloaded_from_ICTRP>")
    return [_export_record(trial, url) for trial in root.iter("Trial")]


def _export_record(trial: Element, url: str) -> RegistryRecord:
    values = {f: _export_text(trial.findtext(tag)) for f, (_, tag) in FIELDS.items()}
    if not values["trial_id"]:
        raise ParseError(KEY, "", url, "a <Trial> without a <TrialID>")
    lists = {f: _split(trial.findtext(tag)) for f, (_, _, tag) in LISTS.items()}
    home, trial_id = home_of(values["trial_id"])
    return _record(home, trial_id, values, lists)


def home_of(ictrp_trial_id: str) -> tuple[str, str]:
    """(home key, home ID) for an ICTRP TrialID; (`ictrp`, TrialID) when no home registry fits."""
    for key, info in registry_table.REGISTRY_TABLE.items():
        prefix = info.ictrp_id_prefix
        if prefix is None or info.id_pattern is None or not ictrp_trial_id.startswith(prefix):
            continue
        home_id = ictrp_trial_id[len(prefix) :]
        if info.id_pattern.fullmatch(home_id):
            return key, home_id
    return KEY, ictrp_trial_id


def _export_text(raw: str | None) -> str:
    """An export value: `<br>` and the padding newline/indent made single spaces."""
    return clean(_BR.sub(" ", raw or ""))


def _split(raw: str | None) -> tuple[str, ...]:
    """An export list: items are joined with `;` (and `<br>` in EUCTR conditions)."""
    parts = re.split(r";|<br\s*/?>", raw or "", flags=re.I)
    return tuple(item for part in parts if (item := clean(part)))


def _record(
    home: str, trial_id: str, values: Mapping[str, str], lists: Mapping[str, tuple[str, ...]]
) -> RegistryRecord:
    """The record shape both forms share; every unknown raw value becomes an `Unmapped`."""
    unmapped: list[Unmapped] = []
    status_raw, phase_raw, start_raw = values["status"], values["phase"], values["enrolment"]
    return RegistryRecord(
        registry=home,
        trial_id=trial_id,
        status=lookup(STATUS_MAP, status_raw, "status", unmapped, key=casefolded),
        status_raw=status_raw or None,
        phases=lookup(PHASE_MAPS.get(home, PHASE_MAP), phase_raw, "phase", unmapped, key=casefolded)
        or (),
        phases_raw=(phase_raw,) if phase_raw else (),
        start=_date(start_raw, "start", unmapped),
        start_raw=start_raw or None,
        lead_sponsor=values["sponsor"] or None,
        brief_title=values["public_title"] or None,
        official_title=values["scientific_title"] or None,
        conditions=lists["conditions"],
        interventions=lists["interventions"],
        enrollment=_enrollment(values["target_size"], unmapped),
        secondary_ids=lists["secondary_ids"],
        countries=lists["countries"],
        evidence_url=PUBLIC_PAGE.format(quote(values["trial_id"])),
        unmapped=tuple(unmapped),
        refreshed=_date(values["refreshed"], "refreshed", unmapped),
    )


def _enrollment(raw: str, unmapped: list[Unmapped]) -> int | None:
    """`1062`, or ChiCTR's per-group sizes `Group A:57;Group B:57;` summed; else Unmapped."""
    if not raw:
        return None
    if raw.isdigit():
        return int(raw)
    groups = [g for g in raw.split(";") if g.strip()]
    sizes = [m[1] for g in groups if (m := _GROUP_SIZE.fullmatch(g))]
    if groups and len(sizes) == len(groups):
        return sum(int(s) for s in sizes)
    unmapped.append(Unmapped("enrollment", raw))
    return None


def redact(body: bytes) -> bytes:
    """The record page without its contacts table (`DataList4`: names, e-mails, phones)."""
    return redact_html(body, tables=("#DataList4",))


REGISTRY = Registry(
    key=KEY,
    name=registry_table.REGISTRY_TABLE[KEY].name,
    id_pattern=CARRIED_ID_PATTERN,
    parser_version=2,  # 2: countries (Trial2 DataList2, export `Countries`)
    fetch=fetch,
    parse=parse,
    detect_block=detect_block,
    redact=redact,
)
