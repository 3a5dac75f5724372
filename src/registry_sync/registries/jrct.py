"""jRCT (Japan Registry of Clinical Trials), one server-rendered HTML page per trial.

Source: the Japanese detail page `{base}/latest-detail/{jRCT ID}` (host and base URL from the
registry table; old pages and links use `jrct.niph.go.jp`, today's `jrct.mhlw.go.jp`). The
English page is `{base}/en-latest-detail/{ID}`; we fetch the Japanese one, the only one we
have a real sample of. No API and no field documentation; REGISTRIES.md §2 has the notes.

Primary ID: `jRCT` + kind (`2` drug/device trial, `1`, `s` specified clinical research, `a`/`b`/
`c` regenerative medicine) + 9 digits (`ids.ID_PATTERNS["jrct"]`).

Update signal: `最終公表日` (last publication; EN `Last modified on`). It is blank on our 2020
page (a record never re-published, we suppose, but nothing documents that), so `last_updated`
is then None: `初回公表日` (first publication) is *not* used in its place.

Terms (https://jrct.mhlw.go.jp/agreement): PDL1.0; crawlers and comprehensive collection need
the helpdesk's permission. So: only the review's IDs, one page each, serially, at the registry
table's interval (5 s) with robots.txt honoured; never enumerate IDs, never search.

Quirks (each handled where commented):
- an unknown ID is HTTP 500 with the site's generic page: decided by content, not status;
- labels are bilingual `JA / EN` in some rows and JA-only in others, and the layout changed
  since 2020, so values are found by label text only, never by position or element id;
- dates: era `平成31年3月26日`, `2017年07月01日`, English `Aug. 06, 2019` (shared date kit);
- phases are bare digits (`2`, `1-2`) or `Not applicable`;
- jRCTs/jRCTa records have no sponsor row: the lead (representative) physician's institution
  `研究責任（代表）医師の所属機関` is the de-facto sponsor; we keep the institution (its English
  name from the same page when given), never a person's name.

Labels verified on a real page (jRCTs051180190, 2020): 臨床研究実施計画番号, 進捗状況 (also as
`進捗状況 / Recruitment status`), 試験のフェーズ (/ Phase), 研究名称 / Scientific Title（Acronym）,
平易な研究名称 / Public Title（Acronym）, 第1症例登録日, 症例登録開始予定日, 実施期間（開始日）,
実施期間（終了日）, 最終公表日, 研究責任（代表）医師の所属機関, 所属機関（実施医療機関） /
Affiliation, 対象疾患名 / Health Condition(s) or Problem(s) Studied, 医薬品等の一般名称,
実施予定被験者数, 他の臨床研究登録機関発行の研究番号; status `募集中` / `Recruiting`, phase `2`.
From notes only (UNVERIFIED): every English-page label (Trial ID, Recruitment Status, Phase,
Date of First Enrolment (taken as planned: ESTIMATED), Actual date of first enrollment, Last
modified on, Scientific Title, Public Title, Secondary ID No., Completion Date or Terminated
date); statuses 募集前/Pending, 募集終了/Not Recruiting, 募集中断/Suspended, 研究終了/Complete;
phases other than `2`. Not read: English `Primary Sponsor` (ICTRP shows a person there for
jRCTs records). jRCT2 (治験) pages are unseen: whether they carry the institution row is unknown.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from selectolax.lexbor import LexborHTMLParser

from registry_sync import ids
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
from registry_sync.registries._html import document, label_key, node_text
from registry_sync.registries._redact import redact_page
from registry_sync.registries._values import count as _count
from registry_sync.registries._values import date as _date
from registry_sync.registries._values import lookup, nfkc
from registry_sync.registries.base import Registry
from registry_sync.registry_table import REGISTRY_TABLE

KEY = "jrct"
T = TypeVar("T")
JA_PATH = "/latest-detail/{}"  # the English page, `/en-latest-detail/{}`, is not fetched

# Raw status (JA page, EN page) -> canonical (model.STATUSES).
STATUS_MAP: dict[str, str] = {
    "募集中": "RECRUITING",  # verified
    "Recruiting": "RECRUITING",  # verified
    "募集前": "NOT_YET_RECRUITING",
    "Pending": "NOT_YET_RECRUITING",
    "募集終了": "NOT_RECRUITING",
    "Not Recruiting": "NOT_RECRUITING",
    "募集中断": "SUSPENDED",
    "Suspended": "SUSPENDED",
    "研究終了": "COMPLETED",
    "Complete": "COMPLETED",
}

# Raw phase -> canonical phases (model.PHASES); jRCT prints bare digits and digit ranges.
PHASE_MAP: dict[str, tuple[str, ...]] = {
    "1": ("PHASE1",),
    "1-2": ("PHASE1", "PHASE2"),
    "2": ("PHASE2",),  # verified
    "2-3": ("PHASE2", "PHASE3"),
    "3": ("PHASE3",),
    "4": ("PHASE4",),
    "Not applicable": ("NA",),
}

# Labels, Japanese first (verified), then English (notes only).
ID_LABELS = ("臨床研究実施計画番号", "Trial ID")
STATUS_LABELS = ("進捗状況", "Recruitment Status")
PHASE_LABELS = ("試験のフェーズ", "Phase")
SCIENTIFIC_TITLE = ("研究名称", "Scientific Title", "Scientific Title（Acronym）")
PUBLIC_TITLE = ("平易な研究名称", "Public Title", "Public Title（Acronym）")
# First enrolment (actual), then planned first enrolment, then the planned period's start.
START_LABELS: tuple[tuple[tuple[str, ...], str | None], ...] = (
    (("第1症例登録日", "Actual date of first enrollment"), "ACTUAL"),
    (("症例登録開始予定日", "Date of First Enrolment"), "ESTIMATED"),
    (("実施期間（開始日）",), None),
)
COMPLETION_LABELS = ("実施期間（終了日）", "Completion Date or Terminated date")
LAST_UPDATED_LABELS = ("最終公表日", "Last modified on")
INSTITUTION_LABELS = ("研究責任（代表）医師の所属機関",)
AFFILIATION_LABELS = ("所属機関（実施医療機関）",)
CONDITION_LABELS = ("対象疾患名", "Health Condition(s) or Problem(s) Studied")
INTERVENTION_LABELS = ("医薬品等の一般名称",)
ENROLLMENT_LABELS = ("実施予定被験者数",)
SECONDARY_ID_LABELS = ("他の臨床研究登録機関発行の研究番号", "Secondary ID No.")
ALL_LABELS = (*ID_LABELS, *STATUS_LABELS, *PHASE_LABELS, *SCIENTIFIC_TITLE, *PUBLIC_TITLE)

# Text of challenge / WAF / rate-limit pages (none documented for jRCT; generic markers).
BLOCK_MARKERS = (
    "captcha",
    "access denied",
    "request rejected",
    "the requested url was rejected",
    "アクセスが制限",
    "too many requests",
)
_LABEL_SPLIT = re.compile(r"\s*/\s*")
_LIST_SPLIT = re.compile(r"[、,，;；]\s*")
_ID_TOKEN = re.compile(r"[\s,、，;；/／]+")


@dataclass(frozen=True)
class _Row:
    """One `<tr>`: every label its `<th>` cells print (each `JA / EN` half too), `<td>` values."""

    labels: frozenset[str]
    values: tuple[str, ...]


def fetch(trial_ids: Sequence[str], http: Http, base_url: str) -> list[FetchOutcome]:
    """The Japanese page of each of the review's IDs, serially (registry="jrct" policy)."""
    base = base_url.rstrip("/")
    outcomes = pages.fetch_each(
        trial_ids,
        http,
        registry=KEY,
        url_for=lambda trial_id: base + JA_PATH.format(trial_id),
        detect_block=detect_block,
        is_not_found=lambda exchange: not _shows_trial(exchange, _trial_of(exchange)),
    )
    return [_classify_500(o) for o in outcomes]


def _trial_of(exchange: Exchange) -> str:
    """The jRCT ID a detail URL asks for (its last path segment)."""
    return exchange.url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]


def _shows_trial(exchange: Exchange, trial_id: str) -> bool:
    """Does the page name the trial: its ID label, or its ID anywhere?"""
    text = pages.decode_text(exchange.body, exchange.headers.get("Content-Type", ""))
    return trial_id in text or any(label in text for label in ID_LABELS)


def _classify_500(outcome: FetchOutcome) -> FetchOutcome:
    """Quirk: jRCT answers an unknown ID with HTTP 500 and its generic page. A 500 whose page
    has neither the ID label nor the ID is `not_found`; one that shows the trial stays down."""
    last = outcome.evidence[-1] if outcome.evidence else None
    if outcome.outcome is not Outcome.REGISTRY_DOWN or last is None or last.status != 500:
        return outcome
    if _shows_trial(last, outcome.trial_id):
        detail = f"HTTP 500 from {last.url}, yet the page shows {outcome.trial_id}: server error"
        return replace(outcome, detail=detail, url=last.url)
    detail = f"jRCT has no {outcome.trial_id}: HTTP 500 generic page without it ({last.url})"
    return replace(outcome, outcome=Outcome.NOT_FOUND, detail=detail, url=last.url)


def detect_block(exchange: Exchange) -> str | None:
    """A 200 page without any jRCT label that reads like a challenge/WAF page (pure)."""
    text = pages.decode_text(exchange.body, exchange.headers.get("Content-Type", ""))
    return _block_reason(text)


def _block_reason(text: str) -> str | None:
    if any(label in text for label in ID_LABELS):
        return None
    lowered = text.casefold()
    marker = next((m for m in BLOCK_MARKERS if m in lowered), None)
    return None if marker is None else f"jRCT served a block page ({marker!r} and no trial)"


def parse(payload: RawPayload) -> RegistryRecord:
    """One jRCT detail page (JA, or EN: unverified) -> record; pure."""
    doc = document(payload.body, payload.content_type)
    rows = _rows(doc)
    _check_page(payload, doc, rows)
    unmapped: list[Unmapped] = []
    status_raw = _first(rows, STATUS_LABELS)
    phase_raw = _first(rows, PHASE_LABELS)
    start, start_raw, start_type = _start(rows, unmapped)
    return RegistryRecord(
        registry=KEY,
        trial_id=payload.trial_id,
        status=lookup(STATUS_MAP, status_raw, "status", unmapped, key=nfkc),
        status_raw=status_raw,
        phases=lookup(PHASE_MAP, phase_raw, "phase", unmapped, key=nfkc) or (),
        phases_raw=(phase_raw,) if phase_raw else (),
        start=start,
        start_raw=start_raw,
        start_type=start_type,
        completion=_date(_first(rows, COMPLETION_LABELS), "completion", unmapped),
        last_updated=_date(_first(rows, LAST_UPDATED_LABELS), "last_updated", unmapped),
        lead_sponsor=_sponsor(rows),
        brief_title=_english_first(rows, PUBLIC_TITLE),
        official_title=_english_first(rows, SCIENTIFIC_TITLE),
        conditions=_tuple(_english_first(rows, CONDITION_LABELS)),
        interventions=_split(_first(rows, INTERVENTION_LABELS)),
        enrollment=_count(_first(rows, ENROLLMENT_LABELS), unmapped),
        secondary_ids=_secondary_ids(rows),
        evidence_url=REGISTRY_TABLE[KEY].default_base_url + JA_PATH.format(payload.trial_id),
        unmapped=tuple(unmapped),
    )


def _check_page(payload: RawPayload, doc: LexborHTMLParser, rows: Sequence[_Row]) -> None:
    """ParseError for a challenge page, a page without jRCT labels, or another trial's page."""
    text = node_text(doc.body)
    if reason := _block_reason(text):
        raise ParseError(KEY, payload.trial_id, payload.url, reason)
    shown = _first(rows, ID_LABELS)
    if shown is None:
        found = [label for label in ALL_LABELS if _find(rows, (label,))]
        hint = "no 臨床研究実施計画番号/Trial ID label" + ("" if found else " nor any jRCT label")
        raise ParseError(KEY, payload.trial_id, payload.url, hint)
    if ids.normalize_id(shown) != payload.trial_id:
        raise ParseError(KEY, payload.trial_id, payload.url, f"page is for {shown}")


def _rows(doc: LexborHTMLParser) -> list[_Row]:
    """Every row with a `<th>` label and a `<td>` value; a `JA / EN` label answers to both."""
    rows = []
    for tr in doc.css("tr"):
        heads = [node_text(c) for c in tr.iter() if c.tag == "th"]
        values = tuple(node_text(c) for c in tr.iter() if c.tag == "td")
        if heads and values:
            labels = {_key(h) for h in heads}
            labels.update(_key(part) for h in heads for part in _LABEL_SPLIT.split(h))
            rows.append(_Row(frozenset(labels), values))
    return rows


def _key(label: str) -> str:
    """NFKC (full-width brackets and digits), casefolded: `（開始日）` == `(開始日)`."""
    return label_key(unicodedata.normalize("NFKC", label))


def _find(rows: Iterable[_Row], labels: Sequence[str]) -> list[_Row]:
    wanted = {_key(label) for label in labels}
    return [row for row in rows if row.labels & wanted]


def _first(rows: Sequence[_Row], labels: Sequence[str]) -> str | None:
    """The first non-empty first value among rows with one of `labels`; None when none."""
    return next((r.values[0] for r in _find(rows, labels) if r.values[0]), None)


def _english_first(rows: Sequence[_Row], labels: Sequence[str]) -> str | None:
    """A bilingual row's EN cell (the review is in English), else the first value."""
    for row in _find(rows, labels):
        if len(row.values) > 1 and row.values[1]:
            return row.values[1]
    return _first(rows, labels)


def _sponsor(rows: Sequence[_Row]) -> str | None:
    """Quirk: the lead physician's institution is the de-facto sponsor (jRCTs/jRCTa). Its
    English name comes from the bilingual affiliation row whose JA cell is the same name."""
    institution = _first(rows, INSTITUTION_LABELS)
    if institution is None:
        return None
    for row in _find(rows, AFFILIATION_LABELS):
        if len(row.values) > 1 and row.values[0] == institution and row.values[1]:
            return row.values[1]
    return institution


def _start(
    rows: Sequence[_Row], unmapped: list[Unmapped]
) -> tuple[PartialDate | None, str | None, str | None]:
    """Actual first enrolment, else planned first enrolment, else the period's start."""
    for labels, kind in START_LABELS:
        raw = _first(rows, labels)
        if raw is not None:
            return _date(raw, "start", unmapped), raw, kind
    return None, None, None


def _tuple(value: str | None) -> tuple[str, ...]:
    return (value,) if value else ()


def _split(value: str | None) -> tuple[str, ...]:
    """`A、B、C` (the JA list comma) -> (A, B, C)."""
    return tuple(part for part in _LIST_SPLIT.split(value or "") if part)


def _secondary_ids(rows: Sequence[_Row]) -> tuple[str, ...]:
    """Other registries' IDs (`UMIN000027821`), canonically spelled; words like なし dropped."""
    found: list[str] = []
    for row in _find(rows, SECONDARY_ID_LABELS):
        for token in _ID_TOKEN.split(" ".join(row.values)):
            if any(ch.isdigit() for ch in token):
                found.append(ids.normalize_id(token))
    return tuple(dict.fromkeys(found))


# Row labels of personal values (researchers' and contacts' names, phones, faxes, e-mails);
# the value cells after them (Japanese, then English) are emptied before the page is stored.
PERSONAL_LABELS = ("氏名", "電話", "FAX", "E-mail", "Email", "メール")


def redact(body: bytes) -> bytes:
    """The detail page without personal contact data (jRCTs051180190 names its researchers,
    their phones and e-mails); parse() reads none of it."""
    return redact_page(body, PERSONAL_LABELS)


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
