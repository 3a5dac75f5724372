"""A draft of the curated table from a review's extracted text (pure).

One draft row per ID printed on a table line (an ID printed in two tables gets two rows), then
one per ID found only in the prose. A cell is filled only from what the text states plainly:
a table line `product[refs] … ID phase nation start` gives product, refs, phase, nation and
start; a prose-only ID takes the one product, phase and start its sentences claim (several
different claims: none). Nothing else is guessed: cell type, indication and sponsor stay empty.

`check` requires product, phase and start to be non-empty and `table` to be 1..99, so:
- an unknown product, phase or start is written `?` (check then lists `phase_unparsed` and
  `start_unparsed` for the curator to fill in);
- an ID found only in the prose is put in table 99 (`PROSE_TABLE`), its note saying so.
The note of every row says where the ID was found, and what was odd about it.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from registry_sync.textextract import Claim, Extraction, Mention, parse_claimed_start

COLUMNS = (
    "row", "table", "product", "refs", "cell_type", "indication", "sponsor", "trial_id",
    "phase", "nation", "start", "note",
)  # fmt: skip
UNKNOWN = "?"
PROSE_TABLE = 99
MAX_PLACES = 6  # places listed in a note; then "and N more"


@dataclass(frozen=True)
class DraftRow:
    table: int
    row: int
    trial_id: str
    product: str = ""
    refs: str = ""
    phase: str = ""
    nation: str = ""
    start: str = ""
    note: str = ""

    def cells(self) -> dict[str, str]:
        return {
            "row": str(self.row), "table": str(self.table),
            "product": self.product or UNKNOWN, "refs": self.refs, "cell_type": "",
            "indication": "", "sponsor": "", "trial_id": self.trial_id,
            "phase": self.phase or UNKNOWN, "nation": self.nation,
            "start": self.start or UNKNOWN, "note": self.note,
        }  # fmt: skip


def draft_rows(extraction: Extraction) -> list[DraftRow]:
    """The draft table's rows, in the text's order (table rows first)."""
    places: dict[str, list[Mention]] = defaultdict(list)
    for m in extraction.mentions:
        places[m.trial_id].append(m)
    counters: dict[int, int] = defaultdict(int)
    rows: list[DraftRow] = []
    for m in extraction.mentions:
        if m.cells is None or m.place.table is None:
            continue
        counters[m.place.table] += 1
        c = m.cells
        note = _note(places[m.trial_id], m.note, "")
        table = m.place.table
        rows.append(
            DraftRow(table, counters[table], m.trial_id, product=c.product, refs=c.refs,
                     phase=c.phase, nation=c.nation, start=c.start, note=note)
        )  # fmt: skip
    in_tables = {r.trial_id for r in rows}
    claims: dict[str, list[Claim]] = defaultdict(list)
    for claim in extraction.claims:
        claims[claim.trial_id].append(claim)
    for trial_id, found in places.items():
        if trial_id in in_tables:
            continue
        counters[PROSE_TABLE] += 1
        said = {f: _one(claims[trial_id], f) for f in ("product", "phase", "start")}
        why = "found in the prose only: table 99 is a placeholder, not a table of the review"
        if any(said.values()):
            why += "; filled cells are the prose's claims"
        rows.append(
            DraftRow(PROSE_TABLE, counters[PROSE_TABLE], trial_id, product=said["product"],
                     phase=said["phase"], start=_review_start(said["start"]),
                     note=_note(found, found[0].note, why))
        )  # fmt: skip
    return rows


def _review_start(claimed: str) -> str:
    """A claimed start in the table's notation: `2019年5月` / `May 2019` -> `2019.5`."""
    when = parse_claimed_start(claimed) if claimed else None
    if when is None:
        return ""
    return f"{when.year}.{when.month}" if when.month else str(when.year)


def _one(claims: Sequence[Claim], field: str) -> str:
    values = {c.value for c in claims if c.field == field}
    return values.pop() if len(values) == 1 else ""


def _note(found: Sequence[Mention], odd: str, why: str) -> str:
    where = [m.place.describe() for m in found[:MAX_PLACES]]
    more = f" and {len(found) - MAX_PLACES} more" if len(found) > MAX_PLACES else ""
    parts = [f"draft: found at {'; '.join(where)}{more}", odd, why]
    return " | ".join(p for p in parts if p)


def render_draft_csv(rows: Sequence[DraftRow]) -> str:
    """The draft as CSV text in the curated table's columns."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.cells())
    return out.getvalue()
