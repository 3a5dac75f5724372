"""ClinicalTrials.gov record version history: fetch (I/O) and parse (pure).

Source: the website's **internal, undocumented** API under `/api/int` (the public Data API v2
has no history). Optional and fragile: its shape may change without notice; a failure here
never changes a trial's outcome or values (see `verdict.TrialHistory.error`).

What we call, as two maintained clients do (read in their source, not verified live):
- the version list: `GET https://clinicaltrials.gov/api/int/studies/{nct}?history=true`,
  read as `history.changes[]`, each `{version, date, status}` (version 0 is the first;
  `date` is `yyyy-MM-dd`). `ropensci/cthist` `clinicaltrials_gov_dates()` reads
  `index$history$changes` with `version`, `date`, `status`; `rfhb/ctrdata`
  `ctrLoadQueryIntoDbCtgov2()` reads `.history.changes[] | {version, date}`.
- one version: `GET https://clinicaltrials.gov/api/int/studies/{nct}/history/{n}`, read as
  `{"studyVersion": n, "study": {protocolSection…}}`; cthist reads `version$study$
  protocolSection`, ctrdata `.studyVersion` and `.study`. The `study` object has the Data
  API v2 shape, so `registries.ctgov.parse` reads it.

The base is the ctgov base URL with its `/v2` replaced by `/int`, so a replay or custom base
works the same way. Requests go through `Http` as registry `ctgov` (its host, throttle and
recorded exchanges). Versions are immutable: each one read is cached on disk
(`<cache>/<NCT>/v<n>.json`) and never asked again; the list is asked once per run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from registry_sync import snapshot
from registry_sync.errors import FetchError, ParseError
from registry_sync.http import Http
from registry_sync.model import RawPayload, RegistryRecord
from registry_sync.registries import ctgov
from registry_sync.verdict import TrialHistory, VersionEntry, Window, versions_needed

KEY = "ctgov"


def history_base(ctgov_base: str) -> str:
    """`https://clinicaltrials.gov/api/v2` -> `https://clinicaltrials.gov/api/int`."""
    base = ctgov_base.rstrip("/")
    return base[: -len("/v2")] + "/int" if base.endswith("/v2") else base + "/int"


def parse_version_list(body: bytes) -> tuple[VersionEntry, ...]:
    """`{"history": {"changes": [{"version": 0, "date": "2021-06-14", "status": …}]}}` ->
    entries by version; ValueError when the shape is not that (pure)."""
    doc = _json(body)
    history = doc.get("history")
    changes = history.get("changes") if isinstance(history, dict) else None
    if not isinstance(changes, list) or not changes:
        raise ValueError("no 'history.changes' list")
    entries = []
    for change in changes:
        number = change.get("version") if isinstance(change, dict) else None
        posted = change.get("date") if isinstance(change, dict) else None
        if not isinstance(number, int) or isinstance(number, bool) or not isinstance(posted, str):
            raise ValueError(f"a change without an integer version and a date: {change!r}")
        try:
            day = date.fromisoformat(posted)
        except ValueError as exc:
            raise ValueError(f"version {number}: date {posted!r} is not yyyy-MM-dd") from exc
        status = change.get("status")
        entries.append(VersionEntry(number, day, status if isinstance(status, str) else None))
    return tuple(sorted(entries, key=lambda e: e.version))


def parse_version(
    body: bytes, nct_id: str, version: int, url: str, fetched_at: datetime
) -> RegistryRecord:
    """One version document -> the record as it was then (pure). ParseError when it is not
    the version asked for, or not that trial's."""
    try:
        doc = _json(body)
    except ValueError as exc:
        raise ParseError(KEY, nct_id, url, f"history version: {exc}") from exc
    study, number = doc.get("study"), doc.get("studyVersion")
    if not isinstance(study, dict):
        raise ParseError(KEY, nct_id, url, "history version without a 'study' object")
    if number is not None and number != version:
        raise ParseError(KEY, nct_id, url, f"asked for version {version}, got {number}")
    study_body = json.dumps(study, sort_keys=True, ensure_ascii=False).encode()
    return ctgov.parse(RawPayload(KEY, nct_id, url, fetched_at, study_body))


def _json(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    return doc


def fetch_histories(
    trial_ids: Sequence[str], http: Http, ctgov_base: str, window: Window, cache_dir: Path
) -> dict[str, TrialHistory]:
    """Each trial's version list and the versions in effect at publication; never raises for
    one trial's problem (it becomes that trial's `error`)."""
    base = history_base(ctgov_base)
    return {t: fetch_history(t, http, base, window, cache_dir) for t in trial_ids}


def fetch_history(
    nct_id: str, http: Http, base: str, window: Window, cache_dir: Path
) -> TrialHistory:
    evidence: list[str] = []
    try:
        resp = http.get(f"{base}/studies/{nct_id}", params={"history": "true"}, registry=KEY)
        evidence.append(resp.request_id)
        try:
            versions = parse_version_list(resp.body)
        except ValueError as exc:
            raise ParseError(KEY, nct_id, resp.url, f"version list: {exc}") from exc
        records = {
            n: _version(nct_id, n, http, base, cache_dir, evidence)
            for n in versions_needed(versions, window)
        }
    except (FetchError, ParseError) as exc:
        if isinstance(exc, FetchError) and exc.exchange is not None:
            evidence.append(exc.exchange.request_id)
        return TrialHistory(nct_id, error=_reason(exc), evidence=tuple(evidence))
    return TrialHistory(nct_id, versions, records, evidence=tuple(evidence))


def _version(
    nct_id: str, number: int, http: Http, base: str, cache_dir: Path, evidence: list[str]
) -> RegistryRecord:
    """One version, from the cache when read before (versions never change)."""
    url = f"{base}/studies/{nct_id}/history/{number}"
    cached = cache_dir / nct_id / f"v{number}.json"
    if cached.is_file():
        read_at = datetime.fromtimestamp(cached.stat().st_mtime, UTC)
        return parse_version(cached.read_bytes(), nct_id, number, url, read_at)
    resp = http.get(url, registry=KEY)
    evidence.append(resp.request_id)
    record = parse_version(resp.body, nct_id, number, resp.url, resp.fetched_at)  # good: cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    # kept without contacts (as every stored ClinicalTrials.gov body), through a temp name no
    # other writer uses
    tmp = snapshot.temp_name(cached)
    try:
        tmp.write_bytes(ctgov.redact(resp.body))
        tmp.replace(cached)
    finally:
        tmp.unlink(missing_ok=True)
    return record


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."
