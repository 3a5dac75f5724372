"""A review's text -> located registry-ID mentions, and what the prose claims about them (pure).

IDs: every registry of the registry table, by its own prefix (`ids`), found in the NFKC form of
each line (full-width digits and letters, `Ⅱ`, `（` become ASCII). An ID broken over a line
(`NCT0480` / `2733`, or `NCT0480-` / `2733` hyphenated by typesetting) is joined when the joined
form is a valid ID and the first part alone is not. `JPRN-` (WHO ICTRP's prefix for Japanese
registries) is dropped with a note. An ID no registry pattern matches is kept, with a note.

Where: the page (PDF), the line, the paragraph (blank-line separated block), and the review's
table when the line is inside one: a table starts at a caption line (`表1  …`, `Table 1  …`)
and ends at the first prose line (8 or more CJK characters, or 12 or more words ending a
sentence). A table line of the form `product[refs] … ID phase nation start` gives its cells.

Claims (`prose_claims`): in the prose sentence holding an ID (or, when the sentence holds
several IDs, the comma clause holding only this one):
- start: a year (`2017年`, `2019年5月`, `in May 2019`) followed within 20 characters by a start
  verb (启动 开展 开始 发起 登记 注册, 进入…临床/试验/期/研究, 開始 実施 登録), or preceded by an
  English one (started, initiated, began, launched, commenced, enrolled, registered … in);
  a year near an ID with no such verb (a result, an approval, a publication) is no claim;
- phase: one phase (`I/II期`, `第Ⅱ相`, `phase 1/2`), only when the scope names exactly one;
- product: the name printed right before the parenthesis holding the ID (`FT500(NCT03841110)`).
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from registry_sync.curated import parse_review_phase
from registry_sync.ids import ID_PATTERNS, claimed_registry, normalize_id, registry_of
from registry_sync.model import PartialDate
from registry_sync.registry_table import REGISTRY_TABLE

_PREFIXES = sorted({r.id_prefix for r in REGISTRY_TABLE.values() if r.id_prefix}, key=len)[::-1]
_ID = re.compile(
    r"(?<![A-Za-z0-9])(?P<jprn>JPRN-)?(?P<id>(?:"
    + "|".join(re.escape(p) for p in _PREFIXES)
    + r")(?:-?[0-9A-Za-z])*-?)",
    re.IGNORECASE,
)
_LEADING_TAIL = re.compile(r"\s*([0-9][0-9A-Za-z]*)")
_CAPTION = re.compile(r"^\s*(?:表\s*(\d{1,2})\s{2,}|Table\s+(\d{1,2})(?:\s{2,}|[.:]\s))")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
_TABLE_TAIL = re.compile(
    r"\s+(?P<phase>(?:[IV]+|[0-4])[ab]?(?:/(?:[IV]+|[0-4])[ab]?)?|IIT)"
    r"\s+(?P<nation>[A-Z]{2,4})\s+(?P<start>(?:19|20)\d{2}(?:\.\d{1,2})?)\s*$"
)
_PRODUCT_CELL = re.compile(r"^\s*(?P<product>[^\[\]]{2,40}?)\s*\[(?P<refs>\d[\d,\-– ]*)\]\s")
_SENTENCE_END = re.compile(r"[。！？!?；;\n]|\.(?=\s+[A-Z\u4e00-\u9fff])")
_CLAUSE_END = re.compile(r"[,，]")
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}
_YEAR_CJK = re.compile(r"(?P<y>(?:19|20)\d{2})\s*年\s*(?:(?P<m>1[0-2]|0?[1-9])\s*月)?")
_START_VERBS = "启动|開始|开展|開展|开始|发起|登记|注册|登録|実施"
_START_AFTER = re.compile(
    rf"^[^。；;\d]{{0,20}}?(?:{_START_VERBS}|进入[^。；;\d]{{0,6}}(?:临床|試験|试验|期|研究))"
)
_NOT_START = re.compile(r"获批|批准|受理|申请|公布|发表|完成|报道|報告|承認|上市")
_START_VERB = re.compile(_START_VERBS)
_OPENING_YEAR = re.compile(
    r"\s*(?P<date>(?:19|20)\d{2}\s*年\s*(?:(?:1[0-2]|0?[1-9])\s*月)?)\s*[,，]"
)
_CITATION = re.compile(r"\[\d+(?:\s*[-–,]\s*\d+)*\]")
_START_EN = re.compile(
    r"\b(?:started|starts|initiated|began|begun|launched|commenced|enrolled|registered)\b"
    r"[^.;]{0,30}?\bin\s+(?:(?P<mon>[A-Z][a-z]{2,8})\.?\s+)?(?P<y>(?:19|20)\d{2})\b"
)
_PHASE = re.compile(
    r"(?<![A-Za-z])(?P<p>(?:[IV]+|[0-4])[ab]?(?:\s*/\s*(?:[IV]+|[0-4])[ab]?)?)\s*期"
    r"|第\s*(?P<jp>(?:[IV]+|[0-4])(?:\s*/\s*(?:[IV]+|[0-4]))?)\s*相"
    r"|\b[Pp]hase\s+(?P<en>(?:[IV]+|[0-4])[ab]?(?:\s*/\s*(?:[IV]+|[0-4])[ab]?)?)\b"
)
_PRODUCT_BEFORE = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9\-‐/._]*[A-Za-z0-9])\s*\(\s*$")


SENTENCE_REACH = 400  # characters either side of an ID a sentence may span (the longest the
# review holds an ID in is 325 characters); keeps a run-on text linear


@dataclass(frozen=True)
class Place:
    """Where something stands in the review's text."""

    page: int | None  # 1-based page of a PDF; None for text without pages
    line: int  # line on the page (or in the file), 1-based
    paragraph: int  # blank-line separated block, counted over the whole text, 1-based
    table: int | None  # the review's table number when the line is inside one

    def describe(self) -> str:
        parts = [f"page {self.page}"] if self.page is not None else []
        parts.append(f"line {self.line}")
        parts.append(f"table {self.table}" if self.table is not None else f"para {self.paragraph}")
        return ", ".join(parts)


@dataclass(frozen=True)
class TableCells:
    """What a table line states plainly about its one ID (empty: not stated on the line)."""

    product: str = ""
    refs: str = ""
    phase: str = ""
    nation: str = ""
    start: str = ""


@dataclass(frozen=True)
class Mention:
    trial_id: str  # canonical spelling (ids.normalize_id), malformed ones as printed
    printed: str  # as found (after NFKC), joined across a line break when it was split
    place: Place
    note: str  # "" or what is odd about it: malformed, JPRN- prefix, split over lines
    cells: TableCells | None  # a table line's cells; None in prose
    offset: int = -1  # where it starts in the prose stream (-1: in a table)
    length: int = 0

    @property
    def valid(self) -> bool:
        return registry_of(self.trial_id) is not None


@dataclass(frozen=True)
class Claim:
    """One thing the prose says about one ID."""

    trial_id: str
    field: str  # "start" | "phase" | "product"
    value: str  # as printed: "2019年", "I/II", "FT500"
    quote: str  # the sentence it stands in
    place: Place  # where the ID stands


@dataclass(frozen=True)
class Extraction:
    mentions: tuple[Mention, ...]
    claims: tuple[Claim, ...]
    prose: str  # the prose stream (table lines left out), which mention offsets point into


@dataclass(frozen=True)
class _Line:
    page: int | None
    number: int
    paragraph: int
    table: int | None
    text: str  # NFKC


def extract(pages: Sequence[str], *, paged: bool) -> Extraction:
    """Mentions and claims of a text's pages."""
    lines = list(_lines(pages, paged=paged))
    parts: list[str] = []
    size = 0
    mentions: list[Mention] = []
    for index, line in enumerate(lines):
        text = line.text.strip()
        if line.table is not None:
            mentions.extend(_line_mentions(lines, index, base=None))
            if parts and parts[-1] != "\n":  # a table between two prose lines ends a sentence
                parts.append("\n")
                size += 1
            continue
        joined = _joiner(parts[-1] if parts else "", text) + text
        mentions.extend(_line_mentions(lines, index, base=size + len(joined) - len(text)))
        parts.append(joined)
        size += len(joined)
    prose = "".join(parts)
    return Extraction(tuple(mentions), tuple(prose_claims(prose, mentions)), prose)


def _joiner(before: str, after: str) -> str:
    """How two lines join in the prose: nothing beside CJK or after a hyphen, else a space."""
    if not before or before.endswith(("\n", "-", "‐")) or _CJK.match(after[:1]):
        return ""
    return "" if _CJK.match(before[-1:]) else " "


def _lines(pages: Sequence[str], *, paged: bool) -> Iterator[_Line]:
    paragraph, table, blank = 1, None, False
    for page_index, page in enumerate(pages):
        for number, raw in enumerate(page.splitlines(), start=1):
            text = unicodedata.normalize("NFKC", raw)
            if not text.strip():
                blank = True
                continue
            if blank:
                paragraph, blank = paragraph + 1, False
            caption = _CAPTION.match(text)
            if caption:
                table = int(caption.group(1) or caption.group(2))
            elif table is not None and _is_prose(text):
                table = None
            yield _Line(page_index + 1 if paged else None, number, paragraph, table, text)


def _is_prose(text: str) -> bool:
    if len(_CJK.findall(text)) >= 8:
        return True
    words = text.split()
    return len(words) >= 12 and text.rstrip().endswith((".", "。"))


def _line_mentions(lines: list[_Line], index: int, base: int | None) -> Iterator[Mention]:
    """The IDs on line `index`; `base`: where the line starts in the prose (None: a table)."""
    line = lines[index]
    text = line.text.strip()
    found = list(_ID.finditer(text))
    for match in found:
        printed = match.group("id").rstrip("-")
        if not any(ch.isdigit() for ch in printed):
            continue
        notes = ["printed with the ICTRP prefix JPRN-"] if match.group("jprn") else []
        at_end = not text[match.end() :].strip()
        if at_end and registry_of(printed) is None:
            joined = _join_next(lines, index, match.group("id"))
            if joined is not None:
                printed = joined
                notes.append("split over two lines; joined")
        trial_id = normalize_id(printed)
        if registry_of(trial_id) is None:
            notes.append(_malformed_note(trial_id))
        cells = _table_cells(text, match, len(found)) if line.table is not None else None
        place = Place(line.page, line.number, line.paragraph, line.table)
        offset = -1 if base is None else base + match.start()
        yield Mention(trial_id, printed, place, "; ".join(notes), cells, offset, len(printed))


def _join_next(lines: list[_Line], index: int, head: str) -> str | None:
    """`head` + the digits that start the next line, when that is a valid ID."""
    if index + 1 >= len(lines):
        return None
    tail = _LEADING_TAIL.match(lines[index + 1].text)
    if tail is None:
        return None
    for candidate in (head + tail.group(1), head.rstrip("-‐") + tail.group(1)):
        if registry_of(candidate) is not None:
            return candidate
    return None


def _malformed_note(trial_id: str) -> str:
    key = claimed_registry(trial_id)
    if key is None:
        return "malformed: matches no registry's ID pattern"
    pattern = ID_PATTERNS[key].pattern
    return f"malformed: looks like a {REGISTRY_TABLE[key].name} ID but does not match {pattern}"


def _table_cells(text: str, match: re.Match[str], ids_on_line: int) -> TableCells:
    """The cells a table line states unambiguously: only a line with one ID."""
    if ids_on_line != 1:
        return TableCells()
    tail = _TABLE_TAIL.match(text[match.end() :])
    head = _PRODUCT_CELL.match(text[: match.start()])
    return TableCells(
        product=head["product"].strip() if head else "",
        refs=head["refs"].strip() if head else "",
        phase=tail["phase"] if tail else "",
        nation=tail["nation"] if tail else "",
        start=tail["start"] if tail else "",
    )


# --- claims ------------------------------------------------------------------------------------


def prose_claims(prose: str, mentions: Sequence[Mention]) -> Iterator[Claim]:
    """The start, phase and product claims of each prose mention's sentence (see the module)."""
    in_prose = sorted((m for m in mentions if m.offset >= 0), key=lambda m: m.offset)
    offsets = [m.offset for m in in_prose]
    masked = list(_CITATION.sub(lambda c: "※" * len(c.group()), prose))
    for m in in_prose:
        masked[m.offset : m.offset + m.length] = "#" * m.length
    scan = "".join(masked)
    for m in in_prose:
        first, last = _span(prose, m.offset, _SENTENCE_END)
        sentence = sentence_at(prose, m.offset)
        ids = _ids_between(in_prose, offsets, first, last)
        whole = (first, last)
        if len(ids) > 1:
            first, last = _clause(prose, m.offset, first, last)
            if len(_ids_between(in_prose, offsets, first, last)) > 1:
                first = last = m.offset  # no scope of its own: only the product claim
        scope = scan[first:last]
        year = _start_claim(scope) or (_opening_year(scope) if (first, last) == whole else "")
        if year:
            yield Claim(m.trial_id, "start", year, sentence, m.place)
        phase = _phase_claim(scope)
        if phase:
            yield Claim(m.trial_id, "phase", phase, sentence, m.place)
        product = _product_claim(prose, m.offset)
        if product:
            yield Claim(m.trial_id, "product", product, sentence, m.place)


def _ids_between(in_prose: list[Mention], offsets: list[int], first: int, last: int) -> set[str]:
    """The distinct IDs of the prose mentions (sorted by offset) within [first, last)."""
    lo, hi = bisect.bisect_left(offsets, first), bisect.bisect_left(offsets, last)
    return {m.trial_id for m in in_prose[lo:hi]}


def sentence_at(prose: str, offset: int) -> str:
    """The sentence of the prose stream that holds `offset`."""
    first, last = _span(prose, offset, _SENTENCE_END)
    return prose[first:last].strip()


def _span(
    text: str, at: int, ends: re.Pattern[str], lo: int = 0, hi: int | None = None
) -> tuple[int, int]:
    # a sentence is read within SENTENCE_REACH characters of the ID: linear in the text's size
    lo, hi = max(lo, at - SENTENCE_REACH), min(len(text) if hi is None else hi, at + SENTENCE_REACH)
    first = lo
    for match in ends.finditer(text, lo, at):
        first = match.end()
    after = ends.search(text, at, hi)
    return first, (after.start() if after else hi)


def _clause(text: str, at: int, lo: int, hi: int) -> tuple[int, int]:
    """The comma clause of text[lo:hi] around `at`; commas inside parentheses do not count."""
    depth, first, last = 0, lo, hi
    for index in range(lo, hi):
        char = text[index]
        depth += (char == "(") - (char == ")") if depth or char != ")" else 0
        if depth == 0 and _CLAUSE_END.match(char):
            if index < at:
                first = index + 1
            else:
                last = index
                break
    return first, last


def _opening_year(scope: str) -> str:
    """`2019年5月, X 启动了 …`: a year opening the sentence dates its start verb."""
    opening = _OPENING_YEAR.match(scope)
    if opening is None:
        return ""
    rest = scope[opening.end() :]
    if _YEAR_CJK.search(rest) or _NOT_START.search(rest) or not _START_VERB.search(rest):
        return ""
    return opening["date"].replace(" ", "")


def _start_claim(scope: str) -> str:
    """The one start date the scope states (as printed), "" when none or several."""
    found: set[str] = set()
    for match in _YEAR_CJK.finditer(scope):
        after = scope[match.end() :]
        verb = _START_AFTER.match(after)
        if verb and not _NOT_START.search(verb.group()):
            found.add(match.group().replace(" ", ""))
    for match in _START_EN.finditer(scope):
        month = match["mon"]
        if month and month[:3].lower() not in _MONTHS:
            continue
        found.add(f"{month} {match['y']}" if month else match["y"])
    return found.pop() if len(found) == 1 else ""


def parse_claimed_start(value: str) -> PartialDate | None:
    """`2019年5月` -> 2019-05; `May 2019` -> 2019-05; `2017年` / `2017` -> 2017."""
    cjk = _YEAR_CJK.fullmatch(value)
    if cjk:
        return PartialDate(int(cjk["y"]), int(cjk["m"]) if cjk["m"] else None)
    parts = value.split()
    if len(parts) == 2 and parts[0][:3].lower() in _MONTHS and parts[1].isdigit():
        return PartialDate(int(parts[1]), _MONTHS[parts[0][:3].lower()])
    return PartialDate(int(value)) if value.isdigit() else None


def _phase_claim(scope: str) -> str:
    found = {
        re.sub(r"\s+", "", match["p"] or match["jp"] or match["en"])
        for match in _PHASE.finditer(scope)
    }
    parsed = {parse_review_phase(p) for p in found}
    return found.pop() if len(found) == 1 and None not in parsed else ""


def _product_claim(prose: str, offset: int) -> str:
    """The name printed right before `(` ID (or `(` ID1、ID2 …), if any."""
    before = prose[max(0, offset - 80) : offset]
    group = re.search(r"\(\s*(?:[#A-Za-z0-9\-]+\s*[、,]\s*)*$", before)
    if group is None:
        return ""
    name = _PRODUCT_BEFORE.search(before[: group.start() + 1])
    if name is None or not any(ch.isalpha() for ch in name["name"]):
        return ""
    return name["name"]
