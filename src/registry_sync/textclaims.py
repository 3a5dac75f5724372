"""The review's prose against its own table: `text_table_conflict` findings (pure).

A claim (`textextract.Claim`) is compared with every row printing the same ID:
- start: the prose's year differs from the row's start year (or both give a month, and they
  differ);
- phase: the prose's phases differ from the row's (a row whose phase is unreadable is skipped:
  `phase_unparsed` already says so);
- product: the prose's name is neither the row's product nor part of it (nor it of the name),
  spaces, case and dashes aside; a name that is the row's indication, cell type or sponsor
  (`SCI(NCT04812431)`) is no product claim. An ID printed for two products (a `duplicate_id`)
  conflicts only when the name matches none of them;
- trial_id: the prose prints a valid ID of which a row's malformed ID is a truncation
  (`jRCT2090220384` in the prose, `jRCT209022038` in the table).
Each finding quotes the sentence and says where it stands (`extra`: quote, where).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

from registry_sync.curated import parse_review_phase
from registry_sync.ids import normalize_id
from registry_sync.model import CuratedRow, Finding, Severity
from registry_sync.textextract import (
    Claim,
    Extraction,
    parse_claimed_start,
    sentence_at,
)

KIND = "text_table_conflict"
QUOTE_CHARS = 300  # a quote is cut here (with "…"): a sentence, not a page
_NAME_NOISE = re.compile(r"[\s\-‐‑–—_/.()®™]+")


def text_findings(rows: Sequence[CuratedRow], extraction: Extraction) -> list[Finding]:
    """Every disagreement between the prose's claims and the table's rows."""
    by_id: dict[str, list[CuratedRow]] = defaultdict(list)
    for row in rows:
        by_id[normalize_id(row.trial_id)].append(row)
    findings = [f for claim in extraction.claims for f in _claim_findings(claim, by_id)]
    findings.extend(_truncated_ids(rows, extraction, by_id))
    return sorted(findings, key=lambda f: (f.table, f.line, f.field))


def _claim_findings(claim: Claim, by_id: dict[str, list[CuratedRow]]) -> Iterator[Finding]:
    rows = by_id.get(claim.trial_id, [])
    if claim.field == "product":
        if rows and not any(_same_product(claim.value, r) for r in rows):
            for row in rows:
                if not _names_another_field(claim.value, row):
                    yield _finding(row, claim, row.product, f"names the product {claim.value!r}")
        return
    for row in rows:
        if claim.field == "start" and _start_differs(claim.value, row):
            yield _finding(row, claim, row.start, f"says it started in {claim.value}")
        if claim.field == "phase" and _phase_differs(claim.value, row):
            yield _finding(row, claim, row.phase, f"gives phase {claim.value}")


def _start_differs(value: str, row: CuratedRow) -> bool:
    said, printed = parse_claimed_start(value), row.start_date
    if said is None or printed is None:
        return False
    if said.year != printed.year:
        return True
    return None not in (said.month, printed.month) and said.month != printed.month


def _phase_differs(value: str, row: CuratedRow) -> bool:
    said = parse_review_phase(value)
    return said is not None and row.phases is not None and said != row.phases


def _squash(name: str) -> str:
    return _NAME_NOISE.sub("", name).casefold()


def _same_product(name: str, row: CuratedRow) -> bool:
    said, printed = _squash(name), _squash(row.product)
    if not said or not printed:
        return False
    return said == printed or (
        min(len(said), len(printed)) >= 3 and (said in printed or printed in said)
    )


def _names_another_field(name: str, row: CuratedRow) -> bool:
    said = _squash(name)
    return any(said in _squash(cell) for cell in (row.indication, row.cell_type, row.sponsor))


def _truncated_ids(
    rows: Iterable[CuratedRow], extraction: Extraction, by_id: dict[str, list[CuratedRow]]
) -> Iterator[Finding]:
    malformed = [r for r in rows if r.registry is None]
    seen: set[tuple[int, str]] = set()
    for m in extraction.mentions:
        if m.cells is not None or not m.valid or m.trial_id in by_id:
            continue
        for row in malformed:
            printed = normalize_id(row.trial_id)
            if m.trial_id.startswith(printed) and (row.line, m.trial_id) not in seen:
                seen.add((row.line, m.trial_id))
                quote = sentence_at(extraction.prose, m.offset)
                claim = Claim(m.trial_id, "trial_id", m.trial_id, quote, m.place)
                yield _finding(row, claim, row.trial_id, f"prints the full ID {m.trial_id}")


def _finding(row: CuratedRow, claim: Claim, printed: str, says: str) -> Finding:
    quote = claim.quote if len(claim.quote) <= QUOTE_CHARS else claim.quote[:QUOTE_CHARS] + "…"
    where = claim.place.describe()
    quoted = f': "{quote}"' if quote else ""
    return Finding(
        table=row.table,
        line=row.line,
        trial_id=row.trial_id,
        field=claim.field,
        kind=KIND,
        severity=Severity.WARNING,
        review_value=printed,
        registry_value=claim.value,
        message=f"the review's text ({where}) {says}; its table prints {printed!r}{quoted}",
        extra={"quote": quote, "where": where, "source": "review text"},
    )
