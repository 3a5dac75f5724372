"""UMIN-CTR (UMIN Clinical Trials Registry), through its public HTML pages.

Source: https://www.umin.ac.jp/ctr/ (no API, no field documentation beyond the page labels).
Route (REGISTRIES.md §5), two pages per trial, both kept as evidence:
1. search `{base}/cgi-open-bin/ctr/index.cgi?sort=03&function=04&ctrno=UMIN…`: the trial's
   result row links the view page `ctr_view.cgi?recptno=R…` (no row = `not_found`);
2. view `{base}/cgi-open-bin/ctr/ctr_view.cgi?recptno=R…` (Japanese page, bilingual labels).

Primary ID `UMIN` + 9 digits; the view page is keyed by the receipt number `R` + 9 digits.
Update signal: `最終更新日/Last modified on` (body; the header's `最終更新日` as a fallback).
Terms: none found on automated access; about one request a second, serially (registry table).

Labels verified on a real page (R000031865 = UMIN000027821, 2020 layout): the header `UMIN試験ID`,
`試験進捗状況`, `最終更新日`; `一般向け試験名/Public title`, `科学的試験名/Scientific Title`,
`対象疾患名/Condition`, `試験のフェーズ/Developmental phase`, `介入N/Interventions/Control_N`,
`目標参加者数/Target sample size`, `試験進捗状況/Recruitment status`,
`登録・組入れ開始（予定）日/Anticipated trial start date`, `フォロー終了(予定)日/Last follow-up
date` (empty there), `最終更新日/Last modified on`, the sections `実施責任組織/Sponsor` ->
`機関名/Institute`, `研究費提供組織/Funding Source` -> `機関名/Organization`,
`その他の関連組織/Other related organizations` -> `共同実施組織/Co-sponsor`, `他機関から発行された
試験ID/Secondary IDs` -> `試験IDN/Study ID_N` (empty there: `いいえ/NO`), `URL(日本語)`.
Values verified: status `限定募集中/Enrolling by invitation`, phase `第Ⅱ相/Phase II`. From notes
only: the other statuses and phases in the tables below; an "actual" start-date label.

Quirks: a value is either one cell `JA/EN` or two cells (JA, EN): the EN half maps, the raw
keeps both; phases print full-width Roman numerals (`第Ⅱ相`); body dates are split over cells
(`2017 | 年 | 07 | 月 | 01 | 日`), header dates are `YYYY/MM/DD`; the page declares a bogus
`<meta charset="ja">` before the real UTF-8 one (charset.decode_text skips it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

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
from registry_sync.registries._html import Row, document, find_row, label_key, label_rows, node_text
from registry_sync.registries._redact import redact_page
from registry_sync.registries._values import count as _count
from registry_sync.registries._values import date as _date
from registry_sync.registries.base import Registry
from registry_sync.registry_table import REGISTRY_TABLE

KEY = "umin"
SEARCH = "/cgi-open-bin/ctr/index.cgi?sort=03&function=04&ctrno={}"
T = TypeVar("T")
OTHER = "その他"  # the sponsor's JA cell when the institute is not in UMIN's list ("Other")

# Recruitment status, EN half (notes list; `Enrolling by invitation` verified) -> STATUSES.
STATUS_MAP: dict[str, str] = {
    "Preinitiation": "NOT_YET_RECRUITING",
    "Open public recruiting": "RECRUITING",
    "Open public recruiting(outpatients can be recruited publicly)": "RECRUITING",
    "Recruiting": "RECRUITING",
    "Enrolling by invitation": "ENROLLING_BY_INVITATION",
    "Enrolling by invitation(outpatients are not recruited publicly)": "ENROLLING_BY_INVITATION",
    "No longer recruiting": "ACTIVE_NOT_RECRUITING",
    "Completed": "COMPLETED",
    "Main results already published": "COMPLETED",
    "Suspended": "SUSPENDED",
    "Terminated": "TERMINATED",
}

# Developmental phase -> PHASES. EN halves (notes; `Phase II` verified), then the JA halves with
# their full-width Roman numerals (U+2160...) for a cell that has no EN half.
PHASE_MAP: dict[str, tuple[str, ...]] = {
    "Phase I": ("PHASE1",),
    "Phase I,II": ("PHASE1", "PHASE2"),
    "Phase II": ("PHASE2",),
    "Phase II,III": ("PHASE2", "PHASE3"),  # by analogy with `Phase I,II`; not in the notes
    "Phase III": ("PHASE3",),
    "Phase IV": ("PHASE4",),
    "Not applicable": ("NA",),
    "第Ⅰ相": ("PHASE1",),
    "第Ⅰ・Ⅱ相": ("PHASE1", "PHASE2"),
    "第Ⅱ相": ("PHASE2",),
    "第Ⅱ・Ⅲ相": ("PHASE2", "PHASE3"),
    "第Ⅲ相": ("PHASE3",),
    "第Ⅳ相": ("PHASE4",),
    "該当せず": ("NA",),
}

# Markers of a challenge, WAF or quota page in its title or heading (none reported for UMIN;
# generic ones, so a trial whose free text says "access denied" is not taken for a block).
BLOCK_MARKERS = ("captcha", "access denied", "the requested url was rejected", "too many requests")


def fetch(trial_ids: Sequence[str], http: Http, base_url: str) -> list[FetchOutcome]:
    """Search page, then the view page it links to; one outcome per ID (pages.fetch_each)."""
    root = base_url.rstrip("/")
    return pages.fetch_each(
        trial_ids,
        http,
        registry=KEY,
        url_for=lambda trial_id: root + SEARCH.format(trial_id),
        next_url=view_link,
        detect_block=detect_block,
    )


def view_link(trial_id: str, search: Exchange) -> str | None:
    """The view link of the trial's result row, or None when no row names the trial (no hit).

    The 2020 page links `./ctr_view.cgi?…` (fetch_each resolves it against the search URL). A
    link to another UMIN host (upload.umin.ac.jp and center6 serve the same pages) is moved to
    the search page's own base, so a replay or mirror serves both pages from one place.
    """
    tree = document(search.body, search.headers.get("Content-Type", ""))
    for link in tree.css("a[href*='ctr_view.cgi?recptno=']"):
        row = link.parent
        while row is not None and row.tag != "tr":
            row = row.parent
        # the link's own row; `UMIN…<br />2017/07/01` is one cell, so split it on spaces
        cells = [node_text(td).split() for td in row.iter() if td.tag == "td"] if row else []
        if any(trial_id in words for words in cells):
            return _rebase(str(link.attributes.get("href") or ""), search.url)
    return None


def _rebase(href: str, page_url: str) -> str:
    """An absolute link to a UMIN host, re-rooted at the search page's base; else as given."""
    link = urlsplit(href)
    if link.netloc not in REGISTRY_TABLE[KEY].hosts:
        return href
    base = page_url.split("/cgi-open-bin/", 1)[0]
    return f"{base}{link.path}" + (f"?{link.query}" if link.query else "")


def detect_block(exchange: Exchange) -> str | None:
    """Why a 200 answer is no UMIN-CTR page: a challenge marker, or no UMIN-CTR page at all."""
    return _block_reason(document(exchange.body, exchange.headers.get("Content-Type", "")))


def _block_reason(tree: LexborHTMLParser) -> str | None:
    heads = " ".join(n.text() for n in tree.css("title, h1, h2")).casefold()
    marker = next((m for m in BLOCK_MARKERS if m in heads), None)
    if marker is not None:
        return f"challenge or block page ({marker!r} in its title)"
    if "UMIN" not in (tree.html or ""):  # every UMIN-CTR page carries its "UMIN-CTR" heading
        return "the answer is not a UMIN-CTR page (an interstitial, WAF or quota page)"
    return None


def parse(payload: RawPayload) -> RegistryRecord:
    """One view page -> record; ParseError for a block page, another trial or no known label."""
    tree = document(payload.body, payload.content_type)
    rows = label_rows(tree)
    _check_trial(payload, tree, rows)
    unmapped: list[Unmapped] = []
    status_raw = _value(rows, "試験進捗状況/Recruitment status") or _value(rows, "試験進捗状況")
    phases_raw = _value(rows, "試験のフェーズ/Developmental phase")
    # verified `登録・組入れ開始（予定）日/Anticipated trial start date`; by its stem, so a label
    # that says the start is actual (not seen) is read too
    start_row = find_row(rows, "登録・組入れ開始", startswith=True)
    start_raw = start_row.value if start_row and start_row.value else None
    return RegistryRecord(
        registry=KEY,
        trial_id=payload.trial_id,
        status=_lookup(STATUS_MAP, status_raw, "status", unmapped),
        status_raw=status_raw,
        phases=_lookup(PHASE_MAP, phases_raw, "phase", unmapped) or (),
        phases_raw=(phases_raw,) if phases_raw else (),
        start=_date(start_raw, "start", unmapped),
        start_raw=start_raw,
        start_type=_start_type(start_row.label) if start_raw and start_row else None,
        completion=_date(
            _value(rows, "フォロー終了(予定)日/Last follow-up date"), "completion", unmapped
        ),
        last_updated=_date(
            _value(rows, "最終更新日/Last modified on") or _value(rows, "最終更新日"),
            "last_updated",
            unmapped,
        ),
        lead_sponsor=_institute(_section(tree, "実施責任組織/Sponsor"), "機関名/Institute"),
        collaborators=_collaborators(tree),
        brief_title=_english_cell(find_row(rows, "一般向け試験名/Public title")),
        official_title=_english_cell(find_row(rows, "科学的試験名/Scientific Title")),
        conditions=_matching(rows, r"対象疾患名/condition"),
        interventions=_matching(rows, r"介入\d+/interventions/control_\d+"),
        enrollment=_count(_value(rows, "目標参加者数/Target sample size"), unmapped),
        secondary_ids=_secondary_ids(_section(tree, "他機関から発行された試験ID/Secondary IDs")),
        # the page parsed, as UMIN prints its public address; else the address it came from
        evidence_url=_value(rows, "URL(日本語)") or payload.url,
        unmapped=tuple(unmapped),
    )


def _check_trial(payload: RawPayload, tree: LexborHTMLParser, rows: list[Row]) -> None:
    """ParseError unless this is a UMIN-CTR view page for the trial asked for."""

    def fail(hint: str) -> ParseError:
        return ParseError(KEY, payload.trial_id, payload.url, hint)

    shown = _value(rows, "UMIN試験ID")
    if shown is None:
        raise fail(_block_reason(tree) or "none of the expected labels (no UMIN試験ID)")
    if ids.normalize_id(shown) != payload.trial_id:
        raise fail(f"page is for {shown or 'no UMIN ID'}, not {payload.trial_id}")


def _value(rows: Sequence[Row], label: str) -> str | None:
    """The joined value cells of the row labelled `label` (None without such a row)."""
    row = find_row(rows, label)
    return None if row is None else row.value


def _english(text: str) -> str:
    """`限定募集中/Enrolling by invitation` -> `Enrolling by invitation`; no `/`: as given."""
    return text.split("/", 1)[1].strip() if "/" in text else text


def _english_cell(row: Row | None) -> str | None:
    """A two-cell value (JA, EN): the EN cell, else the JA one; None when both are empty."""
    if row is None:
        return None
    return next((v for v in reversed(row.values[:2]) if v), None)


def _lookup(table: dict[str, T], raw: str | None, field: str, unmapped: list[Unmapped]) -> T | None:
    """The EN half looked up, then the JA half, then the whole value; else Unmapped."""
    if not raw:
        return None
    for candidate in (_english(raw), raw.split("/", 1)[0].strip(), raw):
        if candidate in table:
            return table[candidate]
    unmapped.append(Unmapped(field, raw))
    return None


def _start_type(label: str) -> str | None:
    """The label says which: `（予定）`/`Anticipated` -> ESTIMATED, `Actual` -> ACTUAL."""
    key = label_key(label)
    if "actual" in key:
        return "ACTUAL"
    return "ESTIMATED" if "anticipated" in key or "予定" in key else None


def _section(tree: LexborHTMLParser, heading: str) -> list[Row]:
    """The rows of the table headed `heading` (a one-cell first row), [] when absent."""
    for table in tree.css("table"):
        first = table.css_first("tr")
        if first is not None and label_key(first.text()) == label_key(heading):
            return label_rows(table)
    return []


def _institute(rows: Sequence[Row], label: str) -> str | None:
    """An institute row (JA, EN): EN, else JA; `その他` defers to its free-text row."""
    name = _english_cell(find_row(rows, label))
    if name in (OTHER, None):  # "Other": the name is in the row for institutes not listed
        return _english_cell(find_row(rows, f"{label} （機関選択不可の場合）"))
    return name


def _collaborators(tree: LexborHTMLParser) -> tuple[str, ...]:
    """Co-sponsors and funders (CT.gov counts funders as collaborators), deduplicated."""
    others = _section(tree, "その他の関連組織/Other related organizations")
    names = (
        _institute(_section(tree, "研究費提供組織/Funding Source"), "機関名/Organization"),
        _english_cell(find_row(others, "共同実施組織/Co-sponsor")),
        _english_cell(find_row(others, "その他の研究費提供組織/Name of secondary funder(s)")),
    )
    return tuple(dict.fromkeys(n for n in names if n))


def _matching(rows: Sequence[Row], pattern: str) -> tuple[str, ...]:
    """The non-empty EN (else JA) values of every row whose label matches `pattern`."""
    wanted = re.compile(pattern)
    values = (_english_cell(r) for r in rows if wanted.fullmatch(label_key(r.label)))
    return tuple(v for v in values if v)


def _secondary_ids(rows: Sequence[Row]) -> tuple[str, ...]:
    """`試験IDN/Study ID_N` values; a registry ID gets its canonical spelling."""
    found = _matching(rows, r"試験id\d+/study id_\d+")
    return tuple(ids.normalize_id(v) if ids.registry_of(v) else v for v in found)


# Row labels of personal values: investigators' and contacts' names, phones, e-mails (label
# cells are the centred ones; the value cells after them are emptied before storing).
PERSONAL_LABELS = (
    "Name of lead principal investigator",
    "Name of contact person",
    "電話/TEL",
    "電話/Tel",
    "Email/Email",
)


def redact(body: bytes) -> bytes:
    """The view page without personal contact data (R000031865 names its investigator, phone
    and e-mail); parse() reads none of it."""
    return redact_page(body, PERSONAL_LABELS, label_cells='td[align="center"]')


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
