"""China drug-trial registry (CTR): 药物临床试验登记与信息公示平台, www.chinadrugtrials.org.cn.

Source: the CDE's public registry of drug trials run in China; no API, no field documentation
(REGISTRIES.md §4). Primary ID: `CTR` + year + 4-digit sequence (`CTR20252821`).

Route: `POST /clinicaltrials.searchlist.dhtml` with the site's `#searchfrm` fields and
`reg_no=<ID>`; the row `<a onclick="getDetail(this.id)" id="<32-hex>">CTR…</a>` names the
detail page, fetched as `GET /clinicaltrials.searchlistdetail.dhtml?id=<32-hex>`. The site's
own `getDetail` POSTs the form (`id`, `ckm_index`) instead; the GET is one stable URL per trial
(evidence a reader can open) and is how the real detail page we parse was captured (openrd).

Update signal: none. The page has `首次公示信息日期` (first disclosure) and `版本日期` only:
`last_updated` stays None, never the first-disclosure date.

Terms and blocking: a session's first request gets HTTP 202, a JS challenge (瑞数) and
`Set-Cookie`. Like any HTTP client we ask again ONCE per run with only the cookies the server
set (no script is run); challenged again, the trial is `blocked` and the host is stopped for
the run (the table's row: 10 s interval, cookies kept, robots.txt, stop after block).
`共 <i>0</i> 条记录` with a `暂无数据` row is a genuine zero: `not_found`.

Labels verified on a real page (CTR20252821, 2026-08-13): `登记号`, `试验状态`, `申请人名称`
(basic panel only: it recurs under 二、申请人信息 beside a row number), `相关登记号` (empty),
`药物名称` (`曾用名:` tail), `适应症`, `试验专业题目`, `试验通俗题目`, `试验分期` (`I期`),
`目标入组人数`, `第一例受试者入组日期`, `试验完成日期`, the heading `1、试验状态`. From notes
only: `试验终止日期`, statuses other than `已完成` (the real search form's list), phases other
than `I期`, `其它` + `其他说明:`, several applicants. Contact and investigator rows (联系人,
phones, e-mails, 研究者) are never read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from itertools import pairwise
from typing import cast

from selectolax.lexbor import LexborHTMLParser, LexborNode

from registry_sync import ids
from registry_sync.charset import decode_text
from registry_sync.errors import FetchError, ParseError
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
from registry_sync.registries._redact import redact_html
from registry_sync.registries.base import Registry
from registry_sync.registry_table import REGISTRY_TABLE

KEY = "ctr"
SEARCH_PATH = "clinicaltrials.searchlist.dhtml"
DETAIL_PATH = "clinicaltrials.searchlistdetail.dhtml"
# The real `#searchfrm` fields, all empty or default but the registration number.
SEARCH_FORM = {
    **dict.fromkeys(("id", "ckm_index", "sort2", "keywords", "reg_no", "indication"), ""),
    **dict.fromkeys(("case_no", "drugs_name", "drugs_type", "appliers", "communities"), ""),
    **dict.fromkeys(("researchers", "agencies", "state"), ""),
    "sort": "desc",
    "rule": "CTR",
    "secondLevel": "0",
    "currentpage": "1",
}

# 试验状态 (the real search form's `state` list) -> canonical. 进行中 alone is not mapped: it
# does not say whether the trial recruits.
STATUS_MAP: dict[str, str] = {
    "进行中 尚未招募": "NOT_YET_RECRUITING",
    "进行中 招募中": "RECRUITING",
    "进行中 招募完成": "ACTIVE_NOT_RECRUITING",
    "已完成": "COMPLETED",
    "主动暂停": "SUSPENDED",
    "主动终止": "TERMINATED",
    "IEC/IRB暂停": "SUSPENDED",
    "IEC/IRB终止": "TERMINATED",
    "责令暂停": "SUSPENDED",
    "责令终止": "TERMINATED",
}

# 试验分期 -> canonical phases. `其它` (+ `其他说明:` free text) is deliberately absent: unmapped.
PHASE_MAP: dict[str, tuple[str, ...]] = {
    "I期": ("PHASE1",),
    "II期": ("PHASE2",),
    "III期": ("PHASE3",),
    "IV期": ("PHASE4",),
    "I/II期": ("PHASE1", "PHASE2"),
}

_HEX_ID = re.compile(r"[0-9a-f]{32}")
_CHALLENGE_SCRIPT = re.compile(r"<script[^>]*\br=['\"]m['\"]", re.I)  # the challenge's loader
_ZERO = re.compile(r"共\s*<i>\s*0\s*</i>\s*条记录")
# Quirk: dates and counts are per region, `国内：2025-08-12；` / `国际：…`; we take 国内.
_DOMESTIC_DATE = re.compile(r"国内\s*[:：]\s*(\d{4}-\d{1,2}-\d{1,2})")
_DOMESTIC_COUNT = re.compile(r"国内\s*[:：]\s*(\d+)")
_REGION = re.compile(r"(国内|国际)\s*[:：]")
_ID_SPLIT = re.compile(r"[\s,，;；、]+")


def fetch(trial_ids: Sequence[str], http: Http, base_url: str) -> list[FetchOutcome]:
    """One outcome per ID: search by `reg_no`, then the detail page its row points at."""
    retry = _OneCookieRetry(http)
    outcomes = pages.fetch_each(
        trial_ids,
        cast(Http, retry),  # passes everything through to `http`; see _OneCookieRetry
        registry=KEY,
        url_for=partial(search_target, base_url),
        next_url=detail_link,
        detect_block=detect_block,
        is_not_found=is_not_found,
    )
    return [retry.with_challenge(o) for o in outcomes]


def search_target(base_url: str, trial_id: str) -> pages.Post:
    """The search form as the site posts it, for one registration number."""
    return pages.Post(f"{base_url.rstrip('/')}/{SEARCH_PATH}", {**SEARCH_FORM, "reg_no": trial_id})


def detail_link(trial_id: str, exchange: Exchange) -> str | None:
    """The detail page of the result row whose 登记号 is `trial_id`; None when no row is."""
    root = document(exchange.body, exchange.headers.get("Content-Type", ""))
    for link in root.css('table.searchTable a[onclick*="getDetail"]'):
        detail_id = link.attributes.get("id") or ""
        if node_text(link) == trial_id and _HEX_ID.fullmatch(detail_id):
            return f"{DETAIL_PATH}?id={detail_id}"  # relative to the search page's URL
    return None


def detect_block(exchange: Exchange) -> str | None:
    """Why an answer is the anti-bot challenge: a 202, or its markers without a result table."""
    if exchange.status == 202:
        return f"HTTP 202 anti-bot challenge ({len(exchange.body)} bytes, no result table)"
    text = decode_text(exchange.body, exchange.headers.get("Content-Type", ""))
    if "searchTable" in text or "searchDetailTable" in text:
        return None  # real pages carry the challenge's meta token and script too
    if _CHALLENGE_SCRIPT.search(text):
        return "anti-bot challenge page (challenge script, no result table)"
    lowered = text.casefold()
    marker = next((m for m in pages.GENERIC_BLOCK_MARKERS if m in lowered), None)
    return None if marker is None else f"block page ({marker!r} in it, no result table)"


def is_not_found(exchange: Exchange) -> bool:
    """The registry's genuine zero: the result table, a 暂无数据 row and 共 0 条记录."""
    text = decode_text(exchange.body, exchange.headers.get("Content-Type", ""))
    return "searchTable" in text and "暂无数据" in text and bool(_ZERO.search(text))


class _OneCookieRetry:
    """What `fetch_each` sees as `Http`: every call goes through to the run's client, except
    that the run's first challenge answer that set cookies is asked again, once. The client's
    session keeps the cookies the server set (the table's `keep_cookies`), so the retry carries
    those and nothing else. The challenge exchange is put back into its trial's evidence."""

    def __init__(self, http: Http) -> None:
        self._http = http
        self._challenge: Exchange | None = None
        self._retry_id: str | None = None  # request id of the retry's exchange

    def get(self, url: str, *, registry: str = "", accept: str = "text/html") -> Exchange:
        return self._once(partial(self._http.get, url, registry=registry, accept=accept))

    def post(
        self,
        url: str,
        *,
        data: Mapping[str, str] | bytes,
        registry: str = "",
        accept: str = "text/html",
    ) -> Exchange:
        return self._once(
            partial(self._http.post, url, data=data, registry=registry, accept=accept)
        )

    def note_block(self, url: str, reason: str, *, registry: str | None = None) -> None:
        self._http.note_block(url, reason, registry=registry)

    def _once(self, send: Callable[[], Exchange]) -> Exchange:
        answer = send()
        if self._challenge is not None or detect_block(answer) is None:
            return answer
        if "Set-Cookie" not in answer.headers:
            return answer  # no cookies to carry: asking again would be the same request
        self._challenge = answer
        try:
            retried = send()
        except FetchError as exc:
            self._retry_id = exc.exchange.request_id if exc.exchange else None
            raise
        self._retry_id = retried.request_id
        return retried

    def with_challenge(self, outcome: FetchOutcome) -> FetchOutcome:
        """The outcome, with the challenge first in its evidence when its retry is in it."""
        sent = {e.request_id for e in outcome.evidence}
        if self._challenge is None or self._retry_id not in sent:
            return outcome
        return replace(outcome, evidence=(self._challenge, *outcome.evidence))


def parse(payload: RawPayload) -> RegistryRecord:
    """One detail page -> record; contact and investigator rows are never read."""
    root = document(payload.body, payload.content_type)
    basic, rows = _detail_rows(root, payload)
    unmapped: list[Unmapped] = []
    status_raw = _status_raw(root, basic.get("试验状态"))
    phase_raw = rows.get("试验分期")
    start_raw = rows.get("第一例受试者入组日期")
    start = _domestic_date(start_raw, "start", unmapped)
    end_raw = rows.get("试验完成日期") or rows.get("试验终止日期")
    lead = basic.get("申请人名称") or None
    return RegistryRecord(
        registry=KEY,
        trial_id=payload.trial_id,
        status=_status(status_raw, unmapped),
        status_raw=status_raw,
        phases=_phases(phase_raw, unmapped),
        phases_raw=(phase_raw,) if phase_raw else (),
        start=start,
        start_raw=start_raw or None,
        start_type="ACTUAL" if start is not None else None,  # the first subject enrolled
        completion=_domestic_date(end_raw, "completion", unmapped),
        last_updated=None,  # CTR has no last-updated field (never the first-disclosure date)
        lead_sponsor=lead,
        brief_title=rows.get("试验通俗题目") or None,
        official_title=rows.get("试验专业题目") or None,
        conditions=_one(rows.get("适应症")),
        interventions=_one(_drug_name(rows.get("药物名称"))),
        enrollment=_domestic_count(rows.get("目标入组人数"), unmapped),
        secondary_ids=tuple(t for t in _ID_SPLIT.split(rows.get("相关登记号", "")) if t),
        evidence_url=_evidence_url(root),
        unmapped=tuple(unmapped),
    )


def _detail_rows(
    root: LexborHTMLParser, payload: RawPayload
) -> tuple[dict[str, str], dict[str, str]]:
    """(basic panel, whole page) label -> value; ParseError for a challenge or another trial."""
    tables = root.css("table.searchDetailTable")
    if not tables:
        text = decode_text(payload.body, payload.content_type)
        what = "the anti-bot challenge page" if _CHALLENGE_SCRIPT.search(text) else "no detail"
        raise ParseError(KEY, payload.trial_id, payload.url, f"{what} (no searchDetailTable)")
    basic = _pairs(root.css("div#collapseOne table.searchDetailTable"))
    if "登记号" not in basic:
        raise ParseError(KEY, payload.trial_id, payload.url, "no 登记号 in the basic panel")
    if basic["登记号"] != payload.trial_id:
        raise ParseError(KEY, payload.trial_id, payload.url, f"page is for {basic['登记号']}")
    return basic, _pairs(tables)


def _pairs(tables: Sequence[LexborNode]) -> dict[str, str]:
    """Every `<th>label</th><td>value</td>` pair of these tables; the first of a label wins.

    Rows hold several pairs (`登记号 | CTR… | 试验状态 | 已完成`), so cells are read in pairs.
    """
    found: dict[str, str] = {}
    for table in tables:
        for tr in table.css("tr"):
            cells = [c for c in tr.iter() if c.tag in ("th", "td")]
            for label, value in pairwise(cells):
                if label.tag == "th" and value.tag == "td":
                    found.setdefault(label_key(node_text(label)), node_text(value))
    return found


def _status_raw(root: LexborHTMLParser, basic: str | None) -> str | None:
    """试验状态, sub-value included (`进行中 招募中`) when the 六 section heading gives it."""
    heading = next((d for d in root.css("div.sDPTit2") if node_text(d) == "1、试验状态"), None)
    detailed = clean(heading.next.text()) if heading is not None and heading.next else ""
    value = detailed if detailed.startswith(basic or "\0") else basic
    # Quirk: the list writes `进行中&nbsp;招募中`, the notes `进行中（招募中）`: one spelling.
    return re.sub(r"[\s（）()]+", " ", value).strip() if value else None


def _status(raw: str | None, unmapped: list[Unmapped]) -> str | None:
    """试验状态 -> canonical status; an unknown word (or a bare 进行中) is unmapped."""
    if raw and raw not in STATUS_MAP:
        unmapped.append(Unmapped("status", raw))
    return STATUS_MAP.get(raw or "")


def _phases(raw: str | None, unmapped: list[Unmapped]) -> tuple[str, ...]:
    """试验分期 -> phases; `其它` + `其他说明:` free text (and anything new) is unmapped."""
    if not raw:
        return ()
    phases = PHASE_MAP.get(raw.replace(" ", ""))
    if phases is None:
        unmapped.append(Unmapped("phase", raw))
        return ()
    return phases


def _domestic_date(raw: str | None, field: str, unmapped: list[Unmapped]) -> PartialDate | None:
    """The 国内 date of a per-region cell; a bare date as is; anything else unmapped."""
    if not raw:
        return None
    match = _DOMESTIC_DATE.search(raw)
    if match is None and _REGION.search(raw) is None:
        found = parse_date(raw.strip("；; "))
    else:
        found = parse_date(match[1]) if match else None
    if found is None:
        unmapped.append(Unmapped(field, raw))
    return found


def _domestic_count(raw: str | None, unmapped: list[Unmapped]) -> int | None:
    """目标入组人数 `国内: 76 ；` -> 76 (the 国内 target, like the dates)."""
    if not raw:
        return None
    match = _DOMESTIC_COUNT.search(raw) or re.fullmatch(r"(\d+)", raw)
    if match is None:
        unmapped.append(Unmapped("enrollment", raw))
        return None
    return int(match[1])


def _drug_name(raw: str | None) -> str | None:
    """药物名称 without its `曾用名:` (former name) tail."""
    return re.split(r"曾用名\s*[:：]", raw)[0].strip() if raw else None


def _one(value: str | None) -> tuple[str, ...]:
    return (value,) if value else ()


def _evidence_url(root: LexborHTMLParser) -> str | None:
    """The public detail URL, from the page's own export form's 32-hex `id`."""
    for field in root.css('form input[name="id"]'):
        value = field.attributes.get("value") or ""
        if _HEX_ID.fullmatch(value):
            return f"{REGISTRY_TABLE[KEY].default_base_url}/{DETAIL_PATH}?id={value}"
    return None


# Labels and table columns that name people: contacts, investigators (never stored).
PERSONAL_LABELS = ("联系人", "姓名", "电话", "座机", "手机", "Email", "邮政地址", "邮编")
PERSONAL_COLUMNS = ("主要研究者",)


def redact(body: bytes) -> bytes:
    """The page without contact or investigator data, for the snapshot (see `_redact`)."""
    return redact_html(body, PERSONAL_LABELS, PERSONAL_COLUMNS)


REGISTRY = Registry(
    key=KEY,
    name=REGISTRY_TABLE[KEY].name,
    id_pattern=ids.ID_PATTERNS[KEY],
    parser_version=1,
    fetch=fetch,
    parse=parse,
    detect_block=detect_block,
    redact=redact,
)
