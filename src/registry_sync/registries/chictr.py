"""ChiCTR, the Chinese Clinical Trial Registry (www.chictr.org.cn), through its HTML pages.

Source: no API, no bulk export, no robots.txt (REGISTRIES.md §3). A registration number is
looked up with `searchproj.html?regno=ChiCTR…&btngo=btn`; the row of that number links the
detail page `showproj.html?proj=N` (N is an internal project number, not derived from the ID),
which is the payload. Its `下载XML文档` export (WHO TRDS XML) is parsed by `parse_xml` when we
have it; `fetch` does not follow it (the link is an opaque token, and every request counts).

Primary ID: `ChiCTR` + 10 digits; older `ChiCTR-XXX-########` (`ChiCTR-IOR-17013052`) is valid
too. The registry prints IDs with and without hyphens; rows and pages are matched hyphen-blind.

Update signal: `最近更新日期：/Date of Last Refreshed on：` (`2024-05-28 08:56:14`).

Terms: attribution, no bulk redistribution; an Alibaba Cloud WAF guards the site. We try each
page once (the registry table's attempts, no cookies kept) and stop the host after one block;
a 405, a JS challenge (`acw_sc__v2`), a slider CAPTCHA and the "daily maximum views" page are
`blocked`, never solved. The last one also means "no such project": ChiCTR cannot tell which.

Labels (`<td class="left_title"><p class="cn">…：</p><p class="en">…：</p></td>` + the next
cell; some rows are split into a `cn` and an `en` row). Verified on the real 2025 page
(ChiCTR2400084905): 注册号/Registration number, 最近更新日期/Date of Last Refreshed on, 注册题目/
Public title, 研究课题的正式科学名称/Scientific title, 研究实施负责（组长）单位/Primary sponsor,
试验主办单位(项目批准或申办者)/Secondary sponsor (nested 单位(医院)/Institution hospital), 研究疾病/
Target disease, 研究所处阶段/Study phase (`III期临床试验` / `3`), 研究实施时间/Study execute time,
干预措施/Interventions (nested Intervention, 样本量), 征募研究对象情况/Recruiting status,
在二级注册机构或其它机构的注册号 (empty on that page). From notes only: a status cell that also
holds `年龄范围…` or `样本量：…` (stripped), non-empty secondary IDs, old hyphenated IDs on a
page. Vocabularies: the `Stage` and `StudyImp` `<select>`s of the real 2025 search page;
English statuses from DIRECCT's notes.

Quirks:
- start = the `From` date of 研究实施时间, completion = its `To` date; the page never says
  whether they are planned or actual, so `start_type` stays None;
- phase `0` (`探索性研究/预试验`) is exploratory/pilot, not phase 0: reported unmapped, as are
  `Retrospective study` and the two "new technique" codes; `4` is both 上市后药物 and IV期;
- enrollment is the sum of the groups' 样本量 (the page has no total);
- the detail page never prints its own proj number; `evidence_url` takes it from the URL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import parse_qs, quote, urlsplit
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from selectolax.lexbor import LexborHTMLParser, LexborNode

from registry_sync import ids
from registry_sync.errors import ParseError
from registry_sync.http import Http
from registry_sync.model import (
    Exchange,
    FetchOutcome,
    RawPayload,
    RegistryRecord,
    Unmapped,
)
from registry_sync.registries import pages
from registry_sync.registries._html import clean, document, label_key, node_text
from registry_sync.registries._redact import REDACTED, redact_page, redact_xml
from registry_sync.registries._values import date as _date
from registry_sync.registries.base import Registry
from registry_sync.registry_table import REGISTRY_TABLE

KEY = "chictr"
SEARCH_PATH = "searchproj.html?regno={}&btngo=btn"
DETAIL_PATH = "showproj.html?proj={}"

# 征募研究对象情况 / StudyImp <select> (Chinese) and DIRECCT's English strings -> canonical.
STATUS_MAP: dict[str, str] = {
    "尚未开始": "NOT_YET_RECRUITING",
    "正在进行": "RECRUITING",
    "暂停或中断": "SUSPENDED",
    "结束": "COMPLETED",
    "Not yet recruiting": "NOT_YET_RECRUITING",
    "Recruiting": "RECRUITING",
    "Suspending": "SUSPENDED",
    "Completed": "COMPLETED",
}

# 研究所处阶段 / Stage <select>: Chinese label or English code -> canonical phases. Not here on
# purpose (no canonical equivalent, reported unmapped): 探索性研究/预试验 = 0 (pilot, NOT phase 0),
# 治疗新技术临床试验, 诊断试验新技术临床试验, 回顾性研究 / Retrospective study.
PHASE_MAP: dict[str, tuple[str, ...]] = {
    "I期临床试验": ("PHASE1",),
    "II期临床试验": ("PHASE2",),
    "III期临床试验": ("PHASE3",),
    "上市后药物": ("PHASE4",),  # post-marketing, code 4
    "IV期临床试验": ("PHASE4",),
    "I期+II期": ("PHASE1", "PHASE2"),
    "II-III期临床试验": ("PHASE2", "PHASE3"),
    "其它": ("NA",),
    "1": ("PHASE1",),
    "2": ("PHASE2",),
    "3": ("PHASE3",),
    "4": ("PHASE4",),
    "1-2": ("PHASE1", "PHASE2"),
    "2-3": ("PHASE2", "PHASE3"),
    "N/A": ("NA",),
}

# A 200 page that is a WAF answer: body marker -> reason (REGISTRIES.md §3, "Detectors").
BLOCK_MARKERS: tuple[tuple[str, str], ...] = (
    ("当天最大查看次数", "daily view cap or no such project (当天最大查看次数): cannot tell which"),
    ("aliyunCaptcha", "Alibaba Cloud slider CAPTCHA (aliyunCaptcha)"),
    ("滑动验证", "Alibaba Cloud slider CAPTCHA (滑动验证)"),
    ("acw_sc__v2", "Alibaba Cloud WAF JS challenge (acw_sc__v2)"),
    ("block_message", "Alibaba Cloud WAF block page (block_message)"),
    ("TraceID:", "Alibaba Cloud WAF block page (TraceID)"),
)
SHELL_MAX_BYTES = 8_000  # the WAF shells are ~2.6 KB and ~5.8 KB; real pages are 30 KB and up
_TRAILERS = re.compile(r"\s*(?:年龄范围|样本量[：:]).*$", re.S)  # stripped from the status cell
_EXECUTE = re.compile(r"From\s+(?P<start>.+?)\s*(?:至\s*)?To\s+(?P<end>.+?)\s*$")
_SPLIT_IDS = re.compile(r"[;；,，、\n]+")


def fetch(trial_ids: Sequence[str], http: Http, base_url: str) -> list[FetchOutcome]:
    """Search by registration number, then the detail page its row links; once each."""
    base = base_url.rstrip("/")
    return pages.fetch_each(
        trial_ids,
        http,
        registry=KEY,
        url_for=lambda trial_id: f"{base}/{SEARCH_PATH.format(quote(trial_id))}",
        next_url=next_url,
        detect_block=detect_block,
    )


def next_url(trial_id: str, exchange: Exchange) -> str | None:
    """The `showproj.html?proj=` link of the search row whose regno is `trial_id`, or None."""
    tree = document(exchange.body, exchange.headers.get("Content-Type", ""))
    wanted = _bare(trial_id)
    for row in tree.css("tr"):
        if any(_bare(node_text(td)) == wanted for td in row.css("td")):
            link = row.css_first('a[href*="showproj.html?proj="]')
            if link is not None:
                return link.attributes.get("href") or None
    return None


def detect_block(exchange: Exchange) -> str | None:
    """Why a ChiCTR answer is a WAF page (405, challenge, CAPTCHA, daily cap), else None."""
    if exchange.status == 405:
        return "HTTP 405 from the Alibaba Cloud WAF"
    text = exchange.body.decode("utf-8", errors="replace")
    for marker, reason in BLOCK_MARKERS:
        if marker in text:
            return reason
    small = len(exchange.body) < SHELL_MAX_BYTES
    if small and "left_title" not in text and "data-total" not in text:
        return f"a {len(exchange.body)}-byte page without left_title: a WAF challenge shell"
    return None


def parse(payload: RawPayload) -> RegistryRecord:
    """A detail page (or, by its XML declaration, the XML export) -> record."""
    if payload.body.lstrip().startswith(b"<?xml") or "xml" in payload.content_type:
        return parse_xml(payload)
    cells = _cells(document(payload.body, payload.content_type), payload)
    regno = _text(cells, "注册号", "Registration number")
    _check_trial(payload, regno)
    unmapped: list[Unmapped] = []
    cn_phase, en_phase = _text(cells, "研究所处阶段"), _text(cells, "Study phase")
    execute = _EXECUTE.search(_text(cells, "研究实施时间", "Study execute time") or "")
    start_raw = execute["start"] if execute else None
    status_raw = _status_cell(_text(cells, "征募研究对象情况", "Recruiting status"))
    return RegistryRecord(
        registry=KEY,
        trial_id=payload.trial_id,
        status=_status(status_raw, unmapped),
        status_raw=status_raw,
        phases=_phases(cn_phase, en_phase, unmapped),
        phases_raw=tuple(p for p in (cn_phase, en_phase) if p),
        start=_date(start_raw, "start", unmapped),
        start_raw=start_raw,
        completion=_date(execute["end"] if execute else None, "completion", unmapped),
        last_updated=_date(
            _text(cells, "最近更新日期", "Date of Last Refreshed on"), "last_updated", unmapped
        ),
        lead_sponsor=_text(cells, "Primary sponsor", "研究实施负责（组长）单位"),
        collaborators=_nested(
            cells, ("Secondary sponsor", "试验主办单位(项目批准或申办者)"), "Institution hospital"
        ),
        brief_title=_text(cells, "Public title", "注册题目"),
        official_title=_text(cells, "Scientific title", "研究课题的正式科学名称"),
        conditions=tuple(c for c in [_text(cells, "Target disease", "研究疾病")] if c),
        interventions=_nested(cells, ("Interventions", "干预措施"), "Intervention"),
        enrollment=_enrollment(cells, unmapped),
        secondary_ids=_split_ids(_text(cells, "在二级注册机构或其它机构的注册号")),
        evidence_url=_evidence_url(payload),
        unmapped=tuple(unmapped),
    )


def _cells(tree: LexborHTMLParser, payload: RawPayload) -> dict[str, LexborNode]:
    """Label (each `<p>` of a `td.left_title`, by `label_key`) -> the value cell after it."""
    cells: dict[str, LexborNode] = {}
    for title in tree.css("td.left_title"):
        value = _next_td(title)
        labels = [node_text(p) for p in title.css("p")] or [node_text(title)]
        for label in labels:
            if value is not None and label:
                cells.setdefault(label_key(label), value)
    if not cells:
        text = payload.body.decode("utf-8", errors="replace")
        hint = next((r for m, r in BLOCK_MARKERS if m in text), "no ChiCTR labels on the page")
        raise ParseError(KEY, payload.trial_id, payload.url, hint)
    return cells


def _next_td(node: LexborNode) -> LexborNode | None:
    """The cell after a label cell (text nodes and comments skipped)."""
    value = node.next
    while value is not None and value.tag != "td":
        value = value.next
    return value


def _text(cells: dict[str, LexborNode], *labels: str) -> str | None:
    """The first non-empty value among `labels` (cleaned), else None."""
    for label in labels:
        node = cells.get(label_key(label))
        if node is not None and (value := node_text(node)):
            return value
    return None


def _nested(cells: dict[str, LexborNode], labels: tuple[str, ...], inner: str) -> tuple[str, ...]:
    """Distinct values of `inner` inside the first `labels` cell (sponsors, groups)."""
    return tuple(dict.fromkeys(_inner_values(cells, labels, inner)))


def _inner_values(cells: dict[str, LexborNode], labels: tuple[str, ...], inner: str) -> list[str]:
    """Every value of the `inner` label inside a cell holding small label/value tables."""
    outer = next((cells[k] for k in map(label_key, labels) if k in cells), None)
    found: list[str] = []
    for td in outer.css("td") if outer is not None else []:
        if label_key(node_text(td)) == label_key(inner):
            value = _next_td(td)
            if value is not None and (text := node_text(value)):
                found.append(text)
    return found


def _check_trial(payload: RawPayload, regno: str | None) -> None:
    """ParseError unless the page is the asked trial's (hyphens aside: ChiCTR prints both)."""
    if regno is None:
        raise ParseError(KEY, payload.trial_id, payload.url, "no 注册号/Registration number")
    if _bare(regno) != _bare(payload.trial_id):
        hint = f"page is for {regno}, not {payload.trial_id}"
        raise ParseError(KEY, payload.trial_id, payload.url, hint)


def _status_cell(raw: str | None) -> str | None:
    """`尚未开始 Not yet recruiting`, without the age range or sample size older pages append."""
    return _TRAILERS.sub("", raw).strip() or None if raw else None


def _status(raw: str | None, unmapped: list[Unmapped]) -> str | None:
    """The Chinese word first, then the English words; unknown -> Unmapped."""
    if raw is None:
        return None
    cn, _, en = raw.partition(" ")
    for candidate in (raw, cn, en.strip()):
        if candidate in STATUS_MAP:
            return STATUS_MAP[candidate]
    unmapped.append(Unmapped("status", raw))
    return None


def _phases(cn: str | None, en: str | None, unmapped: list[Unmapped]) -> tuple[str, ...]:
    """The Chinese label (it tells 上市后药物 from IV期), else the code; unknown -> Unmapped."""
    for raw in (cn, en):
        if raw is not None and raw in PHASE_MAP:
            return PHASE_MAP[raw]
    if cn or en:
        unmapped.append(Unmapped("phase", "/".join(p for p in (cn, en) if p)))
    return ()


def _enrollment(cells: dict[str, LexborNode], unmapped: list[Unmapped]) -> int | None:
    """The sum of the groups' 样本量 (the page prints no total); a non-number -> Unmapped."""
    sizes = _inner_values(cells, ("Interventions", "干预措施"), "样本量")  # equal sizes all count
    if not sizes:
        return None
    if not all(s.isdigit() for s in sizes):
        unmapped.append(Unmapped("enrollment", "; ".join(sizes)))
        return None
    return sum(int(s) for s in sizes)


def _split_ids(raw: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for part in _SPLIT_IDS.split(raw or "") if (c := clean(part))))


def _evidence_url(payload: RawPayload) -> str:
    """The public detail page by the proj number we fetched; else the public regno search."""
    base = REGISTRY_TABLE[KEY].default_base_url.rstrip("/")
    proj = parse_qs(urlsplit(payload.url).query).get("proj", [""])[0]
    if proj.isdigit():
        return f"{base}/{DETAIL_PATH.format(proj)}"
    return f"{base}/{SEARCH_PATH.format(quote(payload.trial_id))}"


def _bare(trial_id: str) -> str:
    """An ID without hyphens or case, for matching `ChiCTR-IOR-17013052` spellings."""
    return ids.normalize_id(trial_id).replace("-", "").casefold()


def parse_xml(payload: RawPayload) -> RegistryRecord:
    """The `下载XML文档` export (WHO TRDS: `<trials><Triall><main>`, the registry's typo) -> record.

    It has no last-update date. Contacts are never read; a `primary_sponsor` that is one of
    the contacts' names (ChiCTR2000034346) is reported, not stored.
    """
    try:
        root = ElementTree.fromstring(payload.body)
    except ElementTree.ParseError as exc:
        raise ParseError(KEY, payload.trial_id, payload.url, f"not XML ({exc})") from exc
    main = root.find(".//main")
    if main is None:
        raise ParseError(KEY, payload.trial_id, payload.url, "no <main> element")
    _check_trial(payload, _xml(main, "trial_id"))
    unmapped: list[Unmapped] = []
    status_raw, phase_raw = _xml(main, "recruitment_status"), _xml(main, "phase")
    start_raw, size = _xml(main, "date_enrolment"), _xml(main, "target_size")
    if size is not None and not size.isdigit():
        unmapped.append(Unmapped("enrollment", size))
    return RegistryRecord(
        registry=KEY,
        trial_id=payload.trial_id,
        status=_status(status_raw, unmapped),
        status_raw=status_raw,
        phases=_phases(None, phase_raw, unmapped),
        phases_raw=tuple(p for p in [phase_raw] if p),
        start=_date(start_raw, "start", unmapped),
        start_raw=start_raw,
        lead_sponsor=_xml_sponsor(root, main, unmapped),
        collaborators=_xml_all(root, ".//secondary_sponsor/sponsor_name"),
        brief_title=_xml(main, "public_title"),
        official_title=_xml(main, "scientific_title"),
        conditions=_xml_all(main, "hc_freetext"),
        enrollment=int(size) if size is not None and size.isdigit() else None,
        secondary_ids=_xml_all(root, ".//secondary_ids/secondary_id/sec_id"),
        evidence_url=_xml(main, "url"),
        unmapped=tuple(unmapped),
    )


def _xml(parent: Element, path: str) -> str | None:
    node = parent.find(path)
    return (clean(node.text) or None) if node is not None else None


def _xml_all(parent: Element, path: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for n in parent.findall(path) if (t := clean(n.text))))


def _xml_sponsor(root: Element, main: Element, unmapped: list[Unmapped]) -> str | None:
    """`primary_sponsor`, unless it is a contact's personal name (then reported, not kept)."""
    sponsor = _xml(main, "primary_sponsor")
    names = {clean(n.text) for n in root.findall(".//contacts/contact/firstname")}
    if sponsor is not None and sponsor in names:
        unmapped.append(Unmapped("lead_sponsor", "a contact's personal name (not stored)"))
        return None
    return sponsor


# Personal labels of the project page (applicant, study leader, ethics contact: names, phones,
# faxes, e-mails); the cells after them are emptied before storing.
PERSONAL_LABELS = (
    "申请注册联系人：",
    "研究负责人：",
    "伦理委员会联系人：",
    "Contact Name of the ethic committee",
    "电话",
    "传真",
    "电子邮件",
    "邮箱",
)
# The XML export's personal elements.
PERSONAL_TAGS = (
    "firstname",
    "middlename",
    "lastname",
    "telephone",
    "email",
    "contact_name",
    "contact_phone",
    "contact_email",
)


def redact(body: bytes) -> bytes:
    """The project page or XML export without personal contact data (ChiCTR2400084905's page
    and ChiCTR2000034346's export carry names, phones and e-mails). A `primary_sponsor` that
    is a contact's name is a person too: it goes with them, and parse() still reports it."""
    if not body.lstrip().startswith(b"<?xml"):
        return redact_page(body, PERSONAL_LABELS, label_cells="td.left_title")
    names = {m.strip() for m in re.findall(rb"<firstname>([^<]+)</firstname>", body)}
    body = re.sub(
        rb"<primary_sponsor>([^<]+)</primary_sponsor>",
        lambda m: (
            b"<primary_sponsor>%s</primary_sponsor>" % REDACTED.encode()
            if m[1].strip() in names
            else m[0]
        ),
        body,
    )
    return redact_xml(body, PERSONAL_TAGS)


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
