"""The Great Expectations quality gate: run a suite from `expectations/` and return plain data.

This is the only module that imports `great_expectations`, and it does so inside functions: the
import costs about 3 s and most commands never validate. Suites are JSON files in the shape
`ExpectationSuite.to_json_dict()` writes; each run uses a fresh ephemeral context (no files, no
network, progress bars off) and a whole-dataframe batch.

GX 1.x stores a `severity` on every expectation but does not act on it: a suite "fails" in GX
when any expectation fails. The gate here is ours: a report fails when an expectation of severity
`critical` fails or raises; `warning` and `info` failures are reported only. A metric error (GX
catches it and hides it in `exception_info`) counts as a failure of that expectation and its
message is kept in `ExpectationOutcome.error`.

Date columns of the records frame are ISO partial strings ("2021", "2021-06", "2021-06-14").
GX cannot compare those with date bounds (STACK_NOTES §4), so `add_date_columns` adds a
datetime64 twin of each (`start_dt`: year -> 1 Jan, month -> day 1) and the suite bounds them
with `"YYYY-MM-DDT00:00:00"` strings and the `latest_plausible_date` parameter.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from registry_sync.errors import RegistrySyncError
from registry_sync.model import PartialDate
from registry_sync.quarantine import SetCheck
from registry_sync.registry_table import TRIAL_REGISTRIES

SEVERITIES = ("critical", "warning", "info")
MAX_EXAMPLES = 10

CURATED_SUITE_FILE = "curated.json"
RECORDS_SUITE_FILE = "records.json"

# Columns that name a row in examples ("table=1 line=27 trial_id=NCT04982081").
CURATED_KEYS = ("table", "line", "trial_id")
RECORDS_KEYS = ("registry", "trial_id")

# ISO partial-date columns of the records frame; each gets a datetime64 twin "<name>_dt".
RECORDS_DATE_COLUMNS = ("start", "primary_completion", "completion", "last_updated")
DATE_SUFFIX = "_dt"

# Upper date bound: this many years after the run date.
HORIZON_YEARS = 10
LATEST_DATE_PARAMETER = "latest_plausible_date"
REGISTRY_KEYS_PARAMETER = "registry_keys"


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict, in plain values."""

    expectation: str  # e.g. "expect_column_values_to_be_unique"
    column: str | None  # "a,b" for pair and compound expectations; None for table-level ones
    severity: str  # "critical" | "warning" | "info"
    success: bool
    unexpected_count: int | None
    examples: tuple[str, ...]  # up to MAX_EXAMPLES offending values / row keys
    observed: str | None
    error: str | None  # exception text, from either shape of exception_info
    description: str  # meta.notes, or a generated sentence

    def brief(self) -> str:
        """A short phrase for one-line summaries."""
        text = self.expectation + (f"[{self.column}]" if self.column else "")
        if self.error:
            text += f" raised: {_shorten(self.error, 80)}"
        elif self.unexpected_count:
            text += f" {self.unexpected_count} unexpected"
        elif self.observed is not None and not self.examples:
            text += f" observed {_shorten(self.observed, 60)}"
        if self.examples:
            text += f" (e.g. {_shorten(self.examples[0], 80)})"
        return text


@dataclass(frozen=True)
class ValidationReport:
    """All outcomes of one suite run, in suite order, and the gate's verdict."""

    suite: str
    success: bool  # False iff any critical expectation failed or errored
    outcomes: tuple[ExpectationOutcome, ...]

    def failures(self, severity: str | None = None) -> list[ExpectationOutcome]:
        """Failed (or errored) outcomes, optionally of one severity only."""
        if severity is not None and severity not in SEVERITIES:
            raise ValueError(f"unknown severity {severity!r}; use one of {', '.join(SEVERITIES)}")
        return [
            o
            for o in self.outcomes
            if not o.success and (severity is None or o.severity == severity)
        ]

    def to_dict(self) -> dict[str, object]:
        """JSON-able: only str, int, bool, None, lists and dicts."""
        return {
            "suite": self.suite,
            "success": self.success,
            "passed": sum(o.success for o in self.outcomes),
            "total": len(self.outcomes),
            "summary": self.summary(),
            "outcomes": [{**asdict(o), "examples": list(o.examples)} for o in self.outcomes],
        }

    def summary(self) -> str:
        """One line: '<suite>: 11/12 expectations passed; 1 critical failure: ...'."""
        passed = sum(o.success for o in self.outcomes)
        parts = [f"{self.suite}: {passed}/{len(self.outcomes)} expectations passed"]
        for severity, label in (("critical", "critical failure"), ("warning", "warning")):
            failed = self.failures(severity)
            if failed:
                plural = "s" if len(failed) > 1 else ""
                listed = ", ".join(o.brief() for o in failed)
                parts.append(f"{len(failed)} {label}{plural}: {listed}")
        return _one_line("; ".join(parts))


# --- public entry points -------------------------------------------------------------------


def validate_curated(df: pd.DataFrame, expectations_dir: Path) -> ValidationReport:
    """Run `curated.json` over the review's table (one row per printed line)."""
    frame = blank_to_null(df)
    return run_suite(
        frame,
        expectations_dir / CURATED_SUITE_FILE,
        keys=CURATED_KEYS,
        parameters={REGISTRY_KEYS_PARAMETER: list(TRIAL_REGISTRIES)},
    )


def validate_records(df: pd.DataFrame, expectations_dir: Path, today: dt.date) -> ValidationReport:
    """Run `records.json` over one run's registry records; dates are bounded relative to `today`."""
    frame = add_date_columns(blank_to_null(df), RECORDS_DATE_COLUMNS)
    return run_suite(
        frame,
        expectations_dir / RECORDS_SUITE_FILE,
        keys=RECORDS_KEYS,
        parameters=records_parameters(today),
    )


def records_parameters(today: dt.date) -> dict[str, object]:
    """The `$PARAMETER` values of `records.json` for a run on `today` (GX and quarantine)."""
    return {LATEST_DATE_PARAMETER: latest_plausible_date(today)}


def with_set_checks(report: ValidationReport, checks: Sequence[SetCheck]) -> ValidationReport:
    """The records report with quarantine's set-level rules appended as critical outcomes (a
    failing one rejects the run, as a failing critical GX expectation does)."""
    extra = tuple(
        ExpectationOutcome(
            expectation=c.name,
            column=None,
            severity="critical",
            success=c.success,
            unexpected_count=c.count,
            examples=c.examples,
            observed=c.observed,
            error=None,
            description=c.description,
        )
        for c in checks
    )
    outcomes = report.outcomes + extra
    success = report.success and all(c.success for c in checks)
    return ValidationReport(suite=report.suite, success=success, outcomes=outcomes)


def run_suite(
    df: pd.DataFrame,
    suite_path: Path,
    *,
    keys: Sequence[str],
    parameters: Mapping[str, object] | None = None,
) -> ValidationReport:
    """Validate `df` against the suite JSON at `suite_path`; `keys` name rows in examples.

    GX returns only the index of each unexpected row, and the example rows' keys are looked up
    here (`_name_rows`). GX's own lookup (`unexpected_index_column_names`) goes row by row: 25 s
    for 100,000 repeated trial IDs, 16 s for 20,000 records failing two warnings; this takes
    milliseconds.
    """
    suite_json = load_suite_json(suite_path)
    index_keys = [k for k in keys if k in df.columns]
    results, suite = _gx_validate(df, suite_json, parameters)
    by_id = {r.expectation_config.id: r for r in results}
    for result in results:
        _name_rows(result, df, index_keys)
    outcomes = tuple(
        _outcome(expectation, by_id.get(expectation.id), index_keys)
        for expectation in suite.expectations
    )
    success = not any(o.severity == "critical" and not o.success for o in outcomes)
    return ValidationReport(suite=str(suite.name), success=success, outcomes=outcomes)


# --- frame preparation (pure) --------------------------------------------------------------


def blank_to_null(df: pd.DataFrame) -> pd.DataFrame:
    """A copy where empty or whitespace-only strings are null: a blank cell is a missing value."""
    out = df.copy()
    for column in out.columns:
        series = out[column]
        if series.dtype == bool or pd.api.types.is_numeric_dtype(series):
            continue
        blank = series.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
        if blank.any():
            out[column] = series.mask(blank)
    return out


def add_date_columns(df: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """A copy with a datetime64 `<column>_dt` beside each ISO partial-date string column.

    "2021" -> 2021-01-01, "2021-06" -> 2021-06-01. Null or malformed strings give NaT; the suite
    catches malformed ones with a regex on the string column, so nothing is dropped silently.
    """
    out = df.copy()
    for column in columns:
        if column in out.columns:
            values = [partial_date_to_datetime64(v) for v in out[column]]
            out[column + DATE_SUFFIX] = pd.Series(
                np.array(values, dtype="datetime64[us]"), index=out.index
            )
    return out


def partial_date_to_datetime64(value: object) -> np.datetime64:
    """First instant of an ISO partial date; NaT for null or anything PartialDate rejects."""
    if not isinstance(value, str):
        return np.datetime64("NaT", "us")
    try:
        date = PartialDate.from_iso(value)
    except ValueError:
        return np.datetime64("NaT", "us")
    return np.datetime64(f"{date.year:04d}-{date.month or 1:02d}-{date.day or 1:02d}", "us")


def latest_plausible_date(today: dt.date) -> dt.datetime:
    """`today` plus HORIZON_YEARS, at midnight (29 February falls back to the 28th)."""
    year = today.year + HORIZON_YEARS
    day = today.day
    if today.month == 2 and day == 29:
        day = 28
    return dt.datetime(year, today.month, day)


# --- suite loading and the GX call ---------------------------------------------------------


def load_suite_json(path: Path) -> dict[str, Any]:
    """The suite file as a dict; every problem becomes one clear RegistrySyncError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistrySyncError(
            f"{path}: expectation suite not found; check Settings.expectations_dir "
            "(REGISTRY_SYNC_EXPECTATIONS_DIR)"
        ) from None
    except json.JSONDecodeError as exc:
        raise RegistrySyncError(f"{path}: not valid JSON ({exc}); fix the suite file") from None
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise RegistrySyncError(f"{path}: not an expectation suite (no 'expectations' list)")
    return data


def _gx_validate(
    df: pd.DataFrame,
    suite_json: dict[str, Any],
    parameters: Mapping[str, object] | None,
) -> tuple[list[Any], Any]:
    """Import GX, build the suite and a whole-dataframe batch, validate; return results, suite."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX logs an INFO line per ephemeral context ("Created temporary directory ..."): noise.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    suite = gx.ExpectationSuite(**suite_json)
    for number, expectation in enumerate(suite.expectations):
        # GX reorders results (grouped by column); ids let us put them back in suite order.
        expectation.id = expectation.id or f"{suite.name}-{number:03d}"
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("registry_sync")
        .add_dataframe_asset(str(suite.name))
        .add_batch_definition_whole_dataframe("whole_frame")
        .get_batch(batch_parameters={"dataframe": df})
    )
    # COMPLETE: every unexpected row's index label (cheap), named here, not by GX (`_name_rows`).
    result_format: dict[str, Any] = {"result_format": "COMPLETE"}
    result = batch.validate(
        suite, result_format=result_format, expectation_parameters=dict(parameters or {})
    )
    return list(result.results), suite


# --- turning a GX result into plain data ---------------------------------------------------


def _name_rows(result: Any, df: pd.DataFrame, keys: Sequence[str]) -> None:
    """Replace the index labels GX lists for unexpected rows by the rows' key columns and tested
    columns, for as many rows as it takes to show MAX_EXAMPLES distinct ones: the shape (and the
    examples) GX gives when it is asked for `unexpected_index_column_names`, at the cost of a few
    lookups instead of one per unexpected row."""
    details = result.result
    labels = details.get("unexpected_index_list") if isinstance(details, dict) else None
    if not keys or not labels or isinstance(labels[0], Mapping):
        return
    domain = _domain_columns(result.expectation_config.kwargs)
    wanted = [c for c in dict.fromkeys([*domain, *keys]) if c in df.columns]
    named: list[dict[str, Any]] = []
    seen: set[str] = set()
    for label in labels:
        row = {c: df.at[label, c] for c in wanted}
        shown = _format_row(row, keys)
        if shown not in seen:
            seen.add(shown)
            named.append(row)
            if len(named) == MAX_EXAMPLES:
                break
    details["unexpected_index_list"] = named


def _domain_columns(kwargs: Mapping[str, Any]) -> list[str]:
    """The columns an expectation tests, in the order GX names them in an unexpected row."""
    if isinstance(kwargs.get("column"), str):
        return [kwargs["column"]]
    if "column_A" in kwargs and "column_B" in kwargs:
        return [str(kwargs["column_A"]), str(kwargs["column_B"])]
    return [str(c) for c in kwargs.get("column_list") or []]


def _outcome(expectation: Any, result: Any, keys: Sequence[str]) -> ExpectationOutcome:
    """One ExpectationOutcome from the suite's expectation and its GX result (None if missing)."""
    kwargs: dict[str, Any] = expectation.configuration.kwargs
    severity = str(getattr(expectation.severity, "value", expectation.severity))
    base: dict[str, Any] = {
        "expectation": str(expectation.expectation_type),
        "column": _column_of(kwargs),
        "severity": severity,
        "description": _description(expectation, kwargs),
    }
    if result is None:
        return ExpectationOutcome(
            **base,
            success=False,
            unexpected_count=None,
            examples=(),
            observed=None,
            error="GX returned no result for this expectation",
        )
    details: dict[str, Any] = dict(result.result or {})
    error = exception_text(result.exception_info)
    count = details.get("unexpected_count")
    return ExpectationOutcome(
        **base,
        success=bool(result.success) and error is None,
        unexpected_count=int(count) if count is not None else None,
        examples=_examples(details, keys),
        observed=_observed(details),
        error=error,
    )


def exception_text(info: object) -> str | None:
    """The exception message(s) in either shape of `exception_info`, or None when none was raised.

    Shape 1: {"raised_exception": bool, "exception_message": str, ...}.
    Shape 2 (metric errors): {"MetricConfigurationID(...)": {same keys}, ...}.
    """
    if not isinstance(info, Mapping):
        return None
    if "raised_exception" in info:
        entries: list[Mapping[str, Any]] = [info]
    else:
        entries = [v for v in info.values() if isinstance(v, Mapping)]
    messages: list[str] = []
    for entry in entries:
        if not entry.get("raised_exception"):
            continue
        message = entry.get("exception_message") or _last_line(entry.get("exception_traceback"))
        text = _one_line(str(message or "exception raised without a message"))
        if text not in messages:
            messages.append(text)
    return "; ".join(messages) or None


def _examples(details: Mapping[str, Any], keys: Sequence[str]) -> tuple[str, ...]:
    """Offending rows named by their key columns, else offending values, else missing columns."""
    rows = details.get("unexpected_index_list")
    found: Iterable[str]
    if rows and isinstance(rows[0], Mapping):
        found = (_format_row(row, keys) for row in rows)
    elif details.get("unexpected_list"):
        found = (_format_value(v) for v in details["unexpected_list"])
    else:
        mismatched = (details.get("details") or {}).get("mismatched") or {}
        found = (f"missing column {c!r}" for c in mismatched.get("missing", []))
    distinct: dict[str, None] = {}
    for text in found:  # the first MAX_EXAMPLES distinct ones: 100,000 need not all be shown
        distinct.setdefault(text)
        if len(distinct) == MAX_EXAMPLES:
            break
    return tuple(distinct)


def _format_row(row: Mapping[str, Any], keys: Sequence[str]) -> str:
    """`registry=ctgov trial_id=NCT04982081: status=WEIRD`."""
    head = " ".join(f"{k}={_format_value(row[k])}" for k in keys if k in row)
    tail = " ".join(f"{k}={_format_value(v)}" for k, v in row.items() if k not in keys)
    return f"{head}: {tail}" if head and tail else head or tail


def _format_value(value: object) -> str:
    """Readable text for the scalars GX puts in results (Timestamps, numpy values, tuples, NaN)."""
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_format_value(v) for v in value) + ")"
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value) if not np.isnat(value) else None
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if isinstance(value, pd.Timestamp | dt.datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _observed(details: Mapping[str, Any]) -> str | None:
    if "observed_value" not in details:
        return None
    return _shorten(_format_value(details["observed_value"]), 500)


def _column_of(kwargs: Mapping[str, Any]) -> str | None:
    if isinstance(kwargs.get("column"), str):
        return str(kwargs["column"])
    if "column_A" in kwargs and "column_B" in kwargs:
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    if isinstance(kwargs.get("column_list"), list):
        return ",".join(str(c) for c in kwargs["column_list"])
    return None


def _description(expectation: Any, kwargs: Mapping[str, Any]) -> str:
    notes = (expectation.meta or {}).get("notes")
    if isinstance(notes, str) and notes.strip():
        return notes.strip()
    readable = str(expectation.expectation_type).removeprefix("expect_").replace("_", " ")
    column = _column_of(kwargs)
    return f"Expects {readable}" + (f" for {column}." if column else ".")


def _last_line(text: object) -> str | None:
    lines = [line for line in str(text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shorten(text: str, limit: int) -> str:
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
