"""ClinicalTrials.gov, through its Data API v2 (JSON).

Source: https://clinicaltrials.gov/data-api/api (OpenAPI file `ctg-oas-v2.yaml`). Field
documentation: https://clinicaltrials.gov/data-api/about-api/study-data-structure.

Primary ID: `NCT` + 8 digits. Obsolete or merged IDs are listed in
`identificationModule.nctIdAliases`; a requested alias found there ends `moved`.

Update signal: per record `statusModule.lastUpdatePostDateStruct`; for the whole database
`GET /version` -> `dataTimestamp` (refreshed daily around 09:00 UTC, seen up to ~2 days behind).

Terms: US government (NLM/NIH) data, generally treated as public domain; the content comes
from sponsors and investigators. Terms page: https://clinicaltrials.gov/about-site/terms-conditions
(not re-read for this module). No documented rate limit and no rate-limit headers; we batch
IDs through `filter.ids` (default 500; the API coerces `pageSize` down to 1,000) and `Http`
applies the registry table's policy (interval, attempts, the 32 MB page cap; no robots.txt:
an official API).

Quirks:
- a batch answer simply omits unknown IDs: diff the requested set against `studies`; but
  when a page holds studies without `protocolSection.identificationModule.nctId` (the API's
  answer changed shape), the IDs not found are `parse_error`, not `not_found`;
- pagination: `nextPageToken` until absent, repeating the same parameters with `pageToken`;
  `totalCount` is on the first page only, and a page may have an empty `studies` array;
- `designModule.phases` is an array (phase 1/2 is `["PHASE1","PHASE2"]`) and is absent for
  observational studies (NCT06171568);
- `startDateStruct.date` is `yyyy-MM-dd` or `yyyy-MM`, and old records lack `type`
  (NCT00763412: `{"date": "2006-11"}`);
- `overallStatus: UNKNOWN` carries the real last state in `lastKnownStatus` (NCT04207047);
- countries are per site (`contactsLocationsModule.locations[].country`, NCT06171568: `France`),
  so a country may repeat; we keep each once. `fields` names the leaf, so a live answer carries
  no facility contacts (the replay server projects `fields` the same way);
- whatever a server sends, contacts never reach a snapshot: `redact` empties
  `centralContacts`, `overallOfficials`, `locations[].contacts`, the results' `pointOfContact`
  and the responsible party's name (NCT06171568 carries all of them), and any e-mail address.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlencode

from registry_sync import ids
from registry_sync.errors import BlockedError, FetchError, ParseError, ResponseTooLargeError
from registry_sync.http import Http, too_large_detail
from registry_sync.model import (
    Exchange,
    FetchOutcome,
    Outcome,
    PartialDate,
    RawPayload,
    RegistryRecord,
    Unmapped,
)
from registry_sync.registries import _ticks, pages
from registry_sync.registries._redact import (
    canonical_json,
    redact_doc,
    redact_json,
    redact_walk,
)
from registry_sync.registries.base import Registry
from registry_sync.registry_table import REGISTRY_TABLE

KEY = "ctgov"
DEFAULT_BATCH_SIZE = 1000  # then cut to the URL budget (`batches`): ~540 IDs at 8 KB
MAX_BATCH_SIZE = 1000  # the API coerces pageSize down to 1,000
MAX_PAGES = 1000  # a runaway pagination guard, far above any real answer
STUDY_URL = "https://clinicaltrials.gov/study/{}"

# Only the pieces parse() reads. Branch nodes bring all their descendants.
FIELDS = (
    "protocolSection.identificationModule",
    "protocolSection.statusModule",
    "protocolSection.designModule",
    "protocolSection.sponsorCollaboratorsModule",
    "protocolSection.conditionsModule",
    "protocolSection.armsInterventionsModule",
    # a leaf path: the sites' countries only, never the facilities' contacts (personal data)
    "protocolSection.contactsLocationsModule.locations.country",
    "hasResults",
)

# Where the API puts people: every string under these keys is personal (names, phones, e-mails),
# but a contact's `role` and an official's `affiliation`; and these single fields.
PERSONAL_CONTAINERS = ("centralContacts", "overallOfficials", "contacts", "pointOfContact")
PERSONAL_FIELDS = ("investigatorFullName", "investigatorTitle", "oldNameTitle")

# OAS enum `Status` -> canonical status (model.STATUSES). Same words, listed so a new one shows.
STATUS_MAP: dict[str, str] = {
    "NOT_YET_RECRUITING": "NOT_YET_RECRUITING",
    "RECRUITING": "RECRUITING",
    "ENROLLING_BY_INVITATION": "ENROLLING_BY_INVITATION",
    "ACTIVE_NOT_RECRUITING": "ACTIVE_NOT_RECRUITING",
    "SUSPENDED": "SUSPENDED",
    "TERMINATED": "TERMINATED",
    "COMPLETED": "COMPLETED",
    "WITHDRAWN": "WITHDRAWN",
    "UNKNOWN": "UNKNOWN",
    "WITHHELD": "WITHHELD",
    "NO_LONGER_AVAILABLE": "NO_LONGER_AVAILABLE",
    "AVAILABLE": "AVAILABLE",
    "APPROVED_FOR_MARKETING": "APPROVED_FOR_MARKETING",
    "TEMPORARILY_NOT_AVAILABLE": "TEMPORARILY_NOT_AVAILABLE",
}

# OAS enum `Phase` -> canonical phase (model.PHASES).
PHASE_MAP: dict[str, str] = {
    "EARLY_PHASE1": "EARLY_PHASE1",
    "PHASE1": "PHASE1",
    "PHASE2": "PHASE2",
    "PHASE3": "PHASE3",
    "PHASE4": "PHASE4",
    "NA": "NA",
}

# OAS enum `DateType`.
DATE_TYPE_MAP: dict[str, str] = {"ACTUAL": "ACTUAL", "ESTIMATED": "ESTIMATED"}


def fetch(
    trial_ids: Sequence[str],
    http: Http,
    base_url: str,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    page_size: int | None = None,
) -> list[FetchOutcome]:
    """One outcome per distinct (normalized) ID; never raises for a per-trial problem.

    IDs go `batch_size` to a request (capped at 1,000); `page_size` defaults to the batch
    size, so a batch is one page unless the server pages anyway (tests set it lower).
    """
    size = max(1, min(batch_size, MAX_BATCH_SIZE))
    wanted = list(dict.fromkeys(ids.normalize_id(t) for t in trial_ids))
    outcomes = [_malformed(t) for t in wanted if not ids.ID_PATTERNS[KEY].fullmatch(t)]
    valid = [t for t in wanted if ids.ID_PATTERNS[KEY].fullmatch(t)]
    _ticks.answered(len(outcomes))  # malformed: answered without a request
    per_page = max(1, min(page_size or size, MAX_BATCH_SIZE))
    for batch_ids in batches(valid, base_url, size):
        batch = fetch_fitting(batch_ids, http, base_url, per_page)
        outcomes.extend(batch)
        _ticks.answered(len(batch))
    return outcomes


def batches(
    trial_ids: Sequence[str],
    base_url: str,
    most: int = MAX_BATCH_SIZE,
    advanced: str | None = None,
    max_url: int | None = None,
) -> list[list[str]]:
    """`trial_ids` in order, cut into batches of at most `most` IDs whose request URL (as sent:
    `filter.ids` comma-joined and percent-encoded, `fields`, `pageSize`, `format`) stays within
    `max_url` bytes (the registry table's `max_url_bytes`) (pure)."""
    limit = max_url if max_url is not None else REGISTRY_TABLE[KEY].max_url_bytes
    out: list[list[str]] = []
    current: list[str] = []
    fixed = len(request_url(base_url, [], most, advanced))
    used = fixed
    for tid in trial_ids:
        cost = len(quote(tid, safe="")) + (len(_COMMA) if current else 0)
        if current and (len(current) >= most or (limit is not None and used + cost > limit)):
            out.append(current)
            current, used = [], fixed
            cost = len(quote(tid, safe=""))
        current.append(tid)
        used += cost
    if current:
        out.append(current)
    return out


_COMMA = quote(",", safe="")


def request_url(
    base_url: str, batch: Sequence[str], page_size: int, advanced: str | None = None
) -> str:
    """The URL of a batch's first page, exactly as `Http` sends it."""
    return f"{studies_url(base_url)}?{urlencode(_params(batch, page_size, advanced))}"


def studies_url(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/studies"


def _params(batch: Sequence[str], page_size: int, advanced: str | None) -> dict[str, str]:
    params = {
        "filter.ids": ",".join(batch),
        "fields": ",".join(FIELDS),
        "pageSize": str(page_size),
        "format": "json",
    }
    if advanced is not None:  # an incremental night: only studies the filter lets through
        params["filter.advanced"] = advanced
    return params


def fetch_fitting(
    batch: Sequence[str], http: Http, base_url: str, page_size: int, advanced: str | None = None
) -> list[FetchOutcome]:
    """`fetch_batch`, halving the batch while the server answers 414 (URI Too Long) or 431:
    a server with a shorter limit than `max_url_bytes` costs a few requests, not the batch."""
    outcomes = fetch_batch(batch, http, base_url, page_size, advanced)
    if len(batch) < 2 or not _too_long(outcomes):
        return outcomes
    half = len(batch) // 2
    return [
        *fetch_fitting(batch[:half], http, base_url, min(page_size, half), advanced),
        *fetch_fitting(batch[half:], http, base_url, min(page_size, len(batch) - half), advanced),
    ]


BATCHES_PER_SHARE = 4


def shares(trial_ids: Sequence[str], base_url: str) -> list[list[str]]:
    """The IDs in shares of `BATCHES_PER_SHARE` full batches (about 2,200 IDs at the default
    URL budget): each share is fetched, parsed and stored before a run holds more (pure)."""
    cut = batches(trial_ids, base_url)
    return [
        [t for batch in cut[i : i + BATCHES_PER_SHARE] for t in batch]
        for i in range(0, len(cut), BATCHES_PER_SHARE)
    ]


def requests_for(n: int) -> int:
    """Batch requests for `n` IDs at the default base URL and URL budget (pure)."""
    return len(batches(["NCT00000000"] * n, REGISTRY_TABLE[KEY].default_base_url))


def _too_long(outcomes: Sequence[FetchOutcome]) -> bool:
    return any(
        ex.status in (414, 431)
        for o in outcomes
        if o.outcome is Outcome.REGISTRY_DOWN
        for ex in o.evidence
    )


ID_FIELD = "protocolSection.identificationModule.nctId"


def changed_since(http: Http, base_url: str, advanced: str) -> set[str]:
    """Every study ClinicalTrials.gov says changed under `filter.advanced`, registry-wide: the
    NCT IDs only (`fields` the ID alone, 1,000 a page; the pages are in `Http`'s record).
    Cheaper than asking our own IDs with the filter when they need more batches than the
    changed studies fill pages (`changed_pages` tells). Raises FetchError when a page cannot
    be read."""
    params = {
        "filter.advanced": advanced,
        "fields": ID_FIELD,
        "pageSize": str(MAX_BATCH_SIZE),
        "format": "json",
    }
    found: set[str] = set()
    for _, studies in _pages(http, studies_url(base_url), params):
        found.update(i for s in studies if (i := _nct_id(s)))
    return found


def changed_pages(http: Http, base_url: str, advanced: str) -> int | None:
    """How many pages of 1,000 `changed_since` would take (one small request: the
    `totalCount` of the filter), or None when the answer gives no count."""
    params = {
        "filter.advanced": advanced,
        "fields": ID_FIELD,
        "pageSize": "1",
        "countTotal": "true",
        "format": "json",
    }
    resp = http.get(studies_url(base_url), params=params, registry=KEY)
    try:
        total = json.loads(resp.body).get("totalCount")
    except (ValueError, AttributeError):
        return None
    return -(-total // MAX_BATCH_SIZE) if isinstance(total, int) else None


def fetch_changed(
    trial_ids: Sequence[str],
    http: Http,
    base_url: str,
    advanced: str,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[FetchOutcome]:
    """An incremental night: the outcomes of the IDs `filter.advanced` lets through (studies
    updated since, see `incremental.py`); an ID the answer leaves out gets no outcome (it did not
    change). A batch that fails gives its error outcome for every ID of it."""
    size = max(1, min(batch_size, MAX_BATCH_SIZE))
    valid = list(dict.fromkeys(t for t in trial_ids if ids.ID_PATTERNS[KEY].fullmatch(t)))
    outcomes: list[FetchOutcome] = []
    for batch_ids in batches(valid, base_url, size, advanced):
        batch = fetch_fitting(batch_ids, http, base_url, len(batch_ids), advanced)
        outcomes.extend(o for o in batch if o.outcome is not Outcome.NOT_FOUND)
    return outcomes


def fetch_batch(
    batch: Sequence[str], http: Http, base_url: str, page_size: int, advanced: str | None = None
) -> list[FetchOutcome]:
    """Fetch one `filter.ids` batch, following `nextPageToken`, and account for every ID.

    Evidence: an ID found names the page it was on; an ID absent names every page; an ID the
    batch could not answer names the failing exchange (none when nothing was sent).
    """
    url = studies_url(base_url)
    params = _params(batch, page_size, advanced)
    found: dict[str, FetchOutcome] = {}
    pages: list[Exchange] = []
    unreadable = 0
    try:
        for page, studies in _pages(http, url, params):
            pages.append(page)
            found.update(match_studies(batch, studies, page, redacted=True))
            unreadable += sum(1 for s in studies if _nct_id(s) is None)
    except ResponseTooLargeError as exc:  # the same page will be as big next time
        detail = f"{too_large_detail(exc)}: {exc.url}"
        return _rest(batch, found, Outcome.PARSE_ERROR, detail, exc.url or url, _evidence(exc))
    except BlockedError as exc:
        return _rest(batch, found, Outcome.BLOCKED, str(exc), exc.url or url, _evidence(exc))
    except FetchError as exc:
        return _rest(batch, found, Outcome.REGISTRY_DOWN, str(exc), exc.url or url, _evidence(exc))
    first_url = pages[0].url if pages else url
    if unreadable:  # an ID may be among studies we cannot read: not an absence we can vouch for
        detail = (
            f"{unreadable} stud{'y' if unreadable == 1 else 'ies'} on {first_url} without "
            "protocolSection.identificationModule.nctId: the answer's shape has changed"
        )
        return _rest(batch, found, Outcome.PARSE_ERROR, detail, first_url, tuple(pages))
    detail = f"absent from every page of {first_url}"
    return _rest(batch, found, Outcome.NOT_FOUND, detail, first_url, tuple(pages))


def _evidence(exc: FetchError) -> tuple[Exchange, ...]:
    return () if exc.exchange is None else (exc.exchange,)


def _pages(
    http: Http, url: str, params: dict[str, str]
) -> Iterator[tuple[Exchange, list[dict[str, Any]]]]:
    """Each page of one query as (exchange, studies); raises FetchError on a bad page."""
    token: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        query = params if token is None else {**params, "pageToken": token}
        resp = http.get(url, params=query, registry=KEY)
        blocked = detect_block(resp)
        if blocked is not None:
            raise BlockedError(f"{blocked}: {resp.url}", url=resp.url, exchange=resp)
        try:
            doc = _page_doc(resp.body)
        except ValueError as exc:
            message = f"invalid JSON from {resp.url}: {exc}"
            raise FetchError(message, url=resp.url, exchange=resp) from exc
        # personal data out of the page once, here: its studies are cut from the redacted page
        # (one pass over a page of up to 1,000 studies, not one for it and one per study)
        cleaned = redact_walk(doc, *_PERSONAL)
        kept = replace(resp, body=canonical_json(cleaned), served_sha256=resp.sha256)
        studies, token = _studies(cleaned)
        yield kept, studies
        if token is None:
            return
        if token in seen:
            message = f"pagination loop at {resp.url}: token repeated"
            raise FetchError(message, url=resp.url, exchange=resp)
        seen.add(token)
    raise FetchError(f"more than {MAX_PAGES} pages from {url}", url=url)


def detect_block(exchange: Exchange) -> str | None:
    """Why a 200 answer of the JSON API is a block page: HTML with a block marker (pure)."""
    head = exchange.body[:HEAD_BLOCK_BYTES].lstrip()
    if not head.startswith(b"<"):
        return None  # JSON (or nothing): the page parser decides
    text = head.decode("utf-8", errors="replace").casefold()
    marker = next((m for m in pages.GENERIC_BLOCK_MARKERS if m in text), None)
    return None if marker is None else f"an HTML block page ({marker!r} in it)"


HEAD_BLOCK_BYTES = 16 * 1024


def split_page(body: bytes) -> tuple[list[dict[str, Any]], str | None]:
    """A `/studies` page as (studies, nextPageToken); ValueError when it is not one (pure)."""
    return _studies(_page_doc(body))


def _page_doc(body: bytes) -> dict[str, Any]:
    try:
        page = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from exc
    if not isinstance(page, dict) or not isinstance(page.get("studies"), list):
        raise ValueError("no 'studies' array")
    return page


def _studies(page: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    studies = [s for s in page["studies"] if isinstance(s, dict)]
    token = page.get("nextPageToken")
    return studies, token if isinstance(token, str) and token else None


def match_studies(
    batch: Sequence[str],
    studies: Sequence[dict[str, Any]],
    resp: Exchange,
    *,
    redacted: bool = False,
) -> dict[str, FetchOutcome]:
    """Outcomes for the IDs of `batch` that this page answers: `ok` by nctId, `moved` by alias.

    Each names the page's exchange as its evidence. `redacted`: the studies come from a page
    already redacted (then each is only written out, not walked again).
    """
    wanted = set(batch)
    container = resp.served_sha256 or hashlib.sha256(resp.body).hexdigest()  # as served
    found: dict[str, FetchOutcome] = {}
    for study in studies:
        ident = _obj(_obj(study, "protocolSection"), "identificationModule")
        nct_id = _str(ident, "nctId")
        if nct_id in wanted:
            payload = _payload(nct_id, study, resp, container, redacted)
            found[nct_id] = FetchOutcome(
                KEY, nct_id, Outcome.OK, payload=payload, url=resp.url, evidence=(resp,)
            )
        for alias in _strs(ident.get("nctIdAliases")):
            if alias in wanted and alias not in found and nct_id:
                detail = f"registered now as {nct_id}"
                found[alias] = FetchOutcome(
                    KEY,
                    alias,
                    Outcome.MOVED,
                    detail,
                    url=resp.url,
                    evidence=(resp,),
                    moved_to=nct_id,
                )
    return found


def _nct_id(study: dict[str, Any]) -> str | None:
    return _str(_obj(_obj(study, "protocolSection"), "identificationModule"), "nctId")


def _payload(
    nct_id: str, study: dict[str, Any], resp: Exchange, container: str, redacted: bool
) -> RawPayload:
    """The study as canonical JSON, personal data already out (the bytes `redact` would give,
    in one pass); `request_id` names the page it was cut from."""
    body = canonical_json(study) if redacted else redact_doc(study, *_PERSONAL)
    return RawPayload(
        KEY,
        nct_id,
        resp.url,
        resp.fetched_at,
        body,
        container_sha256=container,
        request_id=resp.request_id,
        redacted=True,
    )


def _rest(
    batch: Sequence[str],
    found: dict[str, FetchOutcome],
    outcome: Outcome,
    detail: str,
    url: str,
    evidence: tuple[Exchange, ...],
) -> list[FetchOutcome]:
    """The outcomes found so far, then `outcome` for every ID of `batch` not found."""
    missing = [
        FetchOutcome(KEY, t, outcome, detail, url=url, evidence=evidence)
        for t in batch
        if t not in found
    ]
    return [*found.values(), *missing]


def _malformed(trial_id: str) -> FetchOutcome:
    return FetchOutcome(KEY, trial_id, Outcome.ID_MALFORMED, "not NCT followed by 8 digits")


def data_timestamp(http: Http, base_url: str) -> str | None:
    """`/version` -> `dataTimestamp` ("data as of", UTC), or None when it cannot be had."""
    try:
        resp = http.get(f"{base_url.rstrip('/')}/version", registry=KEY)
        answer = json.loads(resp.body)
    except (FetchError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    stamp = answer.get("dataTimestamp") if isinstance(answer, dict) else None
    return stamp if isinstance(stamp, str) and stamp else None


def parse(payload: RawPayload) -> RegistryRecord:
    """One study object (single-study document or a `/studies` page element) -> record."""
    study = _load_study(payload)
    proto = _obj(study, "protocolSection")
    ident, status = _obj(proto, "identificationModule"), _obj(proto, "statusModule")
    design, sponsors = _obj(proto, "designModule"), _obj(proto, "sponsorCollaboratorsModule")
    unmapped: list[Unmapped] = []
    start_struct = _obj(status, "startDateStruct")
    phases_raw = tuple(_strs(design.get("phases")))
    return RegistryRecord(
        registry=KEY,
        trial_id=payload.trial_id,
        status=_lookup(STATUS_MAP, _str(status, "overallStatus"), "status", unmapped),
        status_raw=_str(status, "overallStatus"),
        last_known_status=_lookup(
            STATUS_MAP, _str(status, "lastKnownStatus"), "last_known_status", unmapped
        ),
        phases=tuple(p for r in phases_raw if (p := _lookup(PHASE_MAP, r, "phase", unmapped))),
        phases_raw=phases_raw,
        start=_date(status, "startDateStruct", "start", unmapped),
        start_raw=_str(start_struct, "date"),
        start_type=_lookup(DATE_TYPE_MAP, _str(start_struct, "type"), "start_type", unmapped),
        primary_completion=_date(
            status, "primaryCompletionDateStruct", "primary_completion", unmapped
        ),
        completion=_date(status, "completionDateStruct", "completion", unmapped),
        last_updated=_date(status, "lastUpdatePostDateStruct", "last_updated", unmapped),
        lead_sponsor=_str(_obj(sponsors, "leadSponsor"), "name"),
        collaborators=_names(sponsors.get("collaborators"), "name"),
        brief_title=_str(ident, "briefTitle"),
        official_title=_str(ident, "officialTitle"),
        conditions=tuple(_strs(_obj(proto, "conditionsModule").get("conditions"))),
        interventions=_names(_obj(proto, "armsInterventionsModule").get("interventions"), "name"),
        enrollment=_count(_obj(design, "enrollmentInfo"), unmapped),
        enrollment_type=_lookup(
            DATE_TYPE_MAP, _str(_obj(design, "enrollmentInfo"), "type"), "enrollment_type", unmapped
        ),
        status_verified=_partial(_str(status, "statusVerifiedDate"), "status_verified", unmapped),
        why_stopped=_str(status, "whyStopped"),
        has_results=study.get("hasResults") if isinstance(study.get("hasResults"), bool) else None,
        secondary_ids=_names(ident.get("secondaryIdInfos"), "id"),
        evidence_url=STUDY_URL.format(payload.trial_id),
        unmapped=tuple(unmapped),
        countries=_countries(proto),
    )


def _countries(proto: dict[str, Any]) -> tuple[str, ...]:
    """The sites' countries, each once, in the registry's order."""
    sites = _obj(proto, "contactsLocationsModule").get("locations")
    return tuple(dict.fromkeys(_names(sites, "country")))


def _load_study(payload: RawPayload) -> dict[str, Any]:
    """The study object, checked to be the trial asked for; ParseError when structurally wrong."""
    try:
        study = json.loads(payload.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(KEY, payload.trial_id, payload.url, f"not JSON ({exc})") from exc
    if not isinstance(study, dict):
        raise ParseError(KEY, payload.trial_id, payload.url, "not a JSON object")
    nct_id = _str(_obj(_obj(study, "protocolSection"), "identificationModule"), "nctId")
    if nct_id != payload.trial_id:
        hint = f"page is for {nct_id or 'no NCT ID'}, not {payload.trial_id}"
        raise ParseError(KEY, payload.trial_id, payload.url, hint)
    return study


def _lookup(
    table: dict[str, str], raw: str | None, field: str, unmapped: list[Unmapped]
) -> str | None:
    """table[raw]; an unknown raw value is recorded as Unmapped and gives None."""
    if raw is None:
        return None
    if raw not in table:
        unmapped.append(Unmapped(field, raw))
        return None
    return table[raw]


def _date(
    module: dict[str, Any], key: str, field: str, unmapped: list[Unmapped]
) -> PartialDate | None:
    return _partial(_str(_obj(module, key), "date"), field, unmapped)


def _partial(raw: str | None, field: str, unmapped: list[Unmapped]) -> PartialDate | None:
    """`yyyy-MM` or `yyyy-MM-dd`; anything else is recorded as Unmapped."""
    if raw is None:
        return None
    try:
        return PartialDate.from_iso(raw)
    except ValueError:
        unmapped.append(Unmapped(field, raw))
        return None


def _count(enrollment: dict[str, Any], unmapped: list[Unmapped]) -> int | None:
    raw = enrollment.get("count")
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    unmapped.append(Unmapped("enrollment", str(raw)))
    return None


def _obj(container: dict[str, Any], key: str) -> dict[str, Any]:
    value = container.get(key)
    return value if isinstance(value, dict) else {}


def _str(container: dict[str, Any], key: str) -> str | None:
    value = container.get(key)
    return value if isinstance(value, str) else None


def _strs(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _names(value: object, key: str) -> tuple[str, ...]:
    """`[{key: ...}, ...]` -> the string values of `key`, in order."""
    items = value if isinstance(value, list) else []
    return tuple(s for item in items if isinstance(item, dict) and (s := _str(item, key)))


_PERSONAL = (PERSONAL_CONTAINERS, PERSONAL_FIELDS)


def redact(body: bytes) -> bytes:
    """A `/studies` page, a study, or a version-history answer without personal contact data
    (see `_redact.redact_json`); parse() reads none of it."""
    return redact_json(body, PERSONAL_CONTAINERS, PERSONAL_FIELDS)


REGISTRY = Registry(
    key=KEY,
    name="ClinicalTrials.gov",
    id_pattern=ids.ID_PATTERNS[KEY],
    # 2: enrollment type, status verified, why stopped, results posted; 3: site countries
    parser_version=3,
    fetch=fetch,
    parse=parse,
    data_timestamp=data_timestamp,
    detect_block=detect_block,
    requests_for=lambda n: requests_for(n) + 1,  # the batches, then /version
    redact=redact,
    shares=lambda trial_ids, base_url: shares(trial_ids, base_url),
)
