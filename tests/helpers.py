"""Shared test helpers: paths to the bundled data and fast settings for a tmp data dir."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from registry_sync.settings import HttpSettings, Settings

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_CURATED = ROOT / "data" / "curated" / "review_2025_hpsc.csv"
BUNDLED_REPLAY = ROOT / "data" / "replay"
EXPECTATIONS = ROOT / "expectations"
FIXTURES = ROOT / "tests" / "fixtures"

FAST_HTTP = HttpSettings(
    max_retries=0, backoff_base=0.0, connect_timeout=2.0, read_timeout=5.0, min_interval={}
)


def fast_settings(data_dir: Path, curated: Path = BUNDLED_CURATED, **base_urls: str) -> Settings:
    """Settings for a test run: tmp data dir, no retries, no throttle, the repo's suites."""
    settings = Settings(
        data_dir=data_dir, curated_path=curated, expectations_dir=EXPECTATIONS, http=FAST_HTTP
    )
    return settings.with_base_urls(base_urls) if base_urls else settings


def replay_copy(tmp: Path, *nct_ids: str) -> Path:
    """A replay dir holding only these of the bundled ClinicalTrials.gov documents."""
    out = tmp / "replay"
    (out / "ctgov").mkdir(parents=True, exist_ok=True)
    for path in (BUNDLED_REPLAY / "ctgov").rglob("NCT*.json"):
        if path.stem in nct_ids:
            shutil.copy(path, out / "ctgov" / path.name)
    return out


def absurd_start_replay(tmp: Path, *nct_ids: str) -> Path:
    """A synthetic replay dir: real bundled records (NCT06482268 by default) whose start date
    is made 1985-01-01, which fails a per-record expectation: one such record is quarantined;
    three or more, when they are most of the run's records, make the quality gate reject it."""
    out = tmp / "synthetic-replay"
    (out / "ctgov").mkdir(parents=True, exist_ok=True)
    for nct_id in nct_ids or ("NCT06482268",):
        source = next((BUNDLED_REPLAY / "ctgov").rglob(f"{nct_id}.json"))
        doc = json.loads(source.read_text(encoding="utf-8"))
        doc["protocolSection"]["statusModule"]["startDateStruct"] = {"date": "1985-01-01"}
        (out / "ctgov" / f"{nct_id}.json").write_text(json.dumps(doc), encoding="utf-8")
    return out


def review_subset(tmp: Path, ids: Sequence[str]) -> Path:
    """The bundled table's rows whose trial ID is one of `ids`, with its header."""
    lines = BUNDLED_CURATED.read_text(encoding="utf-8").splitlines(keepends=True)
    keep = [lines[0]] + [ln for ln in lines[1:] if any(f",{i}," in ln for i in ids)]
    path = tmp / "curated.csv"
    path.write_text("".join(keep), encoding="utf-8")
    return path
