"""Recall and precision of `registry-sync extract` against the bundled curated table, and the
`text_table_conflict` findings on the bundled review. A script that prints; not a test.

    .venv/bin/python bench/bench_extract.py [--text PATH]

The review's full text is not shipped: by default it is read from the project's shared seed,
../shared/seeds/000_03ff2c5d7f43333e.txt (a PDF text extraction); when that is absent the
script says so and exits 0. It measures:

1. IDs: the distinct IDs `extract` finds vs the distinct IDs of data/curated/review_2025_hpsc.csv
   (recall = found and curated / curated; precision = found and curated / found).
2. Draft cells: for each curated row, the draft row of the same table and ID; a start or phase
   cell is "filled" when not `?`, "right" when it reads as the curated cell does
   (`parse_review_start` / `parse_review_phase`, or the same text). Recall = right / curated
   rows; precision = right / filled. Product likewise (same text, spaces and dashes aside).
3. Prose claims: each start and phase claim of the prose against the rows printing its ID:
   agrees, or disagrees (a `text_table_conflict`); then every finding with its quote.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

from registry_sync.curated import load_curated, parse_review_phase, parse_review_start
from registry_sync.ids import normalize_id
from registry_sync.model import CuratedRow
from registry_sync.textclaims import text_findings
from registry_sync.textdraft import DraftRow, draft_rows
from registry_sync.textextract import Claim, parse_claimed_start
from registry_sync.textsource import extract_file

ROOT = Path(__file__).resolve().parent.parent
CURATED = ROOT / "data" / "curated" / "review_2025_hpsc.csv"
SEED = ROOT.parent / "shared" / "seeds" / "000_03ff2c5d7f43333e.txt"


def ratio(part: int, whole: int) -> str:
    return f"{part}/{whole} = {part / whole:.1%}" if whole else f"{part}/0"


def same_start(a: str, b: str) -> bool:
    return a == b or (parse_review_start(a) or a) == (parse_review_start(b) or b)


def same_phase(a: str, b: str) -> bool:
    return a == b or (parse_review_phase(a) or a) == (parse_review_phase(b) or b)


def squash(name: str) -> str:
    return re.sub(r"[\s\-‐‑–—]+", "", name).casefold()


def cell_figures(rows: tuple[CuratedRow, ...], drafts: list[DraftRow]) -> None:
    by_key = {(d.table, d.trial_id): d for d in drafts}
    for label, get, same in (
        ("start", lambda r: r.start, same_start),
        ("phase", lambda r: r.phase, same_phase),
        ("product", lambda r: r.product, lambda a, b: squash(a) == squash(b)),
    ):
        filled = right = 0
        for row in rows:
            draft = by_key.get((row.table, normalize_id(row.trial_id)))
            value = getattr(draft, label, "") if draft else ""
            if not value:
                continue
            filled += 1
            right += bool(same(value, get(row)))
        print(f"  {label:8} recall {ratio(right, len(rows))}; precision {ratio(right, filled)}")


def claim_agrees(claim: Claim, row: CuratedRow) -> bool:
    if claim.field == "phase":
        return parse_review_phase(claim.value) == row.phases
    said = parse_claimed_start(claim.value)
    printed = row.start_date
    if said is None or printed is None:
        return True
    same_month = None in (said.month, printed.month) or said.month == printed.month
    return said.year == printed.year and same_month


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--text", type=Path, default=SEED, help="the review's text")
    args = parser.parse_args(argv)
    if not args.text.is_file():
        print(f"{args.text}: not found; the review's full text is not shipped with the project.")
        print("Point --text at it (the shared seed 000_03ff2c5d7f43333e.txt) to measure.")
        return 0
    rows = load_curated(CURATED).rows
    found = extract_file(args.text)
    drafts = draft_rows(found)
    curated_ids = {normalize_id(r.trial_id) for r in rows}
    got = {m.trial_id for m in found.mentions}
    print(f"{args.text}: {len(found.mentions)} mentions, {len(got)} distinct IDs")
    print(f"{CURATED.name}: {len(rows)} rows, {len(curated_ids)} distinct IDs\n")
    both = got & curated_ids
    print("1. IDs")
    print(f"  recall {ratio(len(both), len(curated_ids))}; precision {ratio(len(both), len(got))}")
    print(f"  curated, not found: {sorted(curated_ids - got) or 'none'}")
    print(f"  found, not curated: {sorted(got - curated_ids) or 'none'}")
    tabled = {(d.table, d.trial_id) for d in drafts if d.table != 99}
    keys = {(r.table, normalize_id(r.trial_id)) for r in rows}
    print(f"  (table, ID) pairs: recall {ratio(len(tabled & keys), len(keys))}; "
          f"precision {ratio(len(tabled & keys), len(tabled))}")  # fmt: skip
    print("\n2. Draft cells (from table lines) against the curated rows")
    cell_figures(rows, drafts)
    print("\n3. Prose claims against the rows printing their ID")
    by_id: dict[str, list[CuratedRow]] = {}
    for row in rows:
        by_id.setdefault(normalize_id(row.trial_id), []).append(row)
    tally: Counter[str] = Counter()
    for claim in found.claims:
        if claim.field not in ("start", "phase"):
            continue
        matched = by_id.get(claim.trial_id, [])
        if not matched:
            tally[f"{claim.field}: ID in no row"] += 1
            continue
        agrees = all(claim_agrees(claim, r) for r in matched)
        tally[f"{claim.field}: {'agrees' if agrees else 'disagrees'}"] += 1
    for key, count in sorted(tally.items()):
        print(f"  {key}: {count}")
    findings = text_findings(rows, found)
    print(f"\n4. text_table_conflict findings: {len(findings)}")
    for f in findings:
        row = next(r for r in rows if r.line == f.line)
        print(
            f"  Table {f.table} row {row.row}, {f.trial_id}, {f.field}: table {f.review_value!r}, "
            f"text {f.registry_value!r} ({f.extra['where']})\n    \u201c{f.extra['quote']}\u201d"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
