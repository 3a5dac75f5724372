"""The corrections an author applies to the review, as CSV (pure over a snapshot's rows).

One row per finding that asks the review to change a printed value: table, row, trial ID,
column, the value as printed, the registry's value in the review's own notation (phase `I/II`,
start at the precision the review printed: `2019` or `2019.3`), the evidence URL, the severity
and the verdict (`wrong_at_publication`, `changed_since` or `unknown`: the snapshot's verdict
column, see `verdict.py`). A trial ID the review printed
wrong gets the one strong candidate of its `id_suspect` finding as the suggested value, else none
and "check the ID". Every cell that a spreadsheet
would run as a formula (`=`, `+`, `-`, `@`, tab, carriage return) is prefixed with `'`.
A finding the review's authors accepted (decisions.py) is left out: they decided not to change
that cell.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

from registry_sync.reconcile import review_phase as review_phase  # part of this module's API

COLUMNS = (
    "table",
    "row",
    "trial_id",
    "column",
    "printed",
    "suggested",
    "evidence_url",
    "severity",
    "verdict",
    "why",
)
# finding kind -> the review's column it corrects
CORRECTED = {
    "phase_mismatch": "phase",
    "start_mismatch": "start",
    "sponsor_mismatch": "sponsor",
    "product_mismatch": "trial_id",
    "not_found": "trial_id",
    "vanished": "trial_id",
    "id_malformed": "trial_id",
}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def review_start(registry_start: str | None, printed: str) -> str:
    """The registry's start at the precision the review printed (`2021`, or `2021.6`)."""
    if not registry_start:
        return ""
    year, _, rest = registry_start.partition("-")
    month = rest.split("-")[0] if rest else ""
    if "." in printed and month:
        return f"{year}.{int(month)}"
    return year


def suggestion(finding: Mapping[str, Any], record: Mapping[str, Any] | None) -> str:
    kind = finding["kind"]
    if kind == "phase_mismatch" and record is not None:
        return review_phase(json.loads(record.get("phases") or "[]"))
    if kind == "start_mismatch" and record is not None:
        return review_start(record.get("start"), str(finding.get("review_value") or ""))
    if kind == "sponsor_mismatch" and record is not None:
        return str(record.get("lead_sponsor") or "")
    return ""  # an ID the registry does not show: the author must look it up


def rows(
    findings: Iterable[Mapping[str, Any]],
    curated: Mapping[int, Mapping[str, Any]],
    records: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    listed = list(findings)
    suspects = {f["line"]: f for f in listed if f["kind"] == "id_suspect"}
    wrong_id = {f["line"] for f in listed if f["kind"] == "product_mismatch"}
    out = []
    for f in listed:
        column = CORRECTED.get(f["kind"])
        if column is None or f.get("accepted_on"):  # accepted: the authors keep the cell
            continue
        if f["line"] in wrong_id and column != "trial_id":
            continue  # another product's record: its values are no correction for this row
        row = curated.get(f["line"], {})
        record = records.get(f["trial_id"])
        entry = {
            "table": f["table"],
            "row": row.get("row"),
            "trial_id": row.get("trial_id", f["trial_id"]),
            "column": column,
            "printed": row.get(column, f.get("review_value")),
            "suggested": suggestion(f, record),
            "evidence_url": f.get("evidence_url") or "",
            "severity": f["severity"],
            "verdict": f.get("verdict") or "unknown",
            "why": f["message"] + _origin_note(record),
        }
        if column == "trial_id" and f["line"] in suspects:
            entry.update(suspect_suggestion(suspects[f["line"]], entry))
        elif f["kind"] == "product_mismatch":  # which ID is right is for the author to find
            entry["why"] = f"check the ID: {entry['why']}"
        out.append(entry)
    return out


def suspect_suggestion(suspect: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, str]:
    """An ID the review printed wrong: the one strong candidate as the suggested value, with
    why; with none or several, no suggested value and "check the ID"."""
    details = json.loads(suspect.get("details") or "{}")
    chosen = str(details.get("suggested") or "")
    if chosen:
        ranks = [k for k, v in details.items() if v == chosen and f"{k}_why" in details]
        why = str(details[f"{ranks[0]}_why"]) if ranks else ""
        return {
            "suggested": chosen,
            "why": f"{entry['why']}; suggested {chosen}: {why}",
            "evidence_url": str(suspect.get("evidence_url") or entry["evidence_url"]),
        }
    return {
        "suggested": "",
        "why": f"{entry['why']}; check the ID: {suspect['message']}",
        "evidence_url": str(entry["evidence_url"] or suspect.get("evidence_url") or ""),
    }


def _origin_note(record: Mapping[str, Any] | None) -> str:
    if record is not None and record.get("origin") == "reconstructed":
        return " [RECONSTRUCTED: a record rebuilt by hand from archived pages]"
    return ""


def neutralise(value: Any) -> str:
    """A cell as text that no spreadsheet runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def render_csv(table_rows: Iterable[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in table_rows:
        writer.writerow([neutralise(r.get(c)) for c in COLUMNS])
    return buffer.getvalue()
