"""The whole review, every registry, against the loopback server: every outcome kind in one run,
sources recorded, stale values carried forward, WHO ICTRP asked where it helps.

The table is the bundled review plus five rows (test-only, built here) citing the trials whose
real pages the replay set holds for the other registries (UMIN000027821, jRCTs051180190,
ChiCTR2400084905, CTR20252821, ACTRN12605000001695), so those registries can answer `ok` too.
The registries are reached through `--base-url`-style settings (a `custom` run), so a trial the
set lacks is `not_found` as a registry would say, not `not_in_replay`.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from helpers import BUNDLED_CURATED, BUNDLED_REPLAY, FIXTURES, fast_settings
from registry_sync import snapshot
from registry_sync.pipeline import RunRequest, RunResult, run_pipeline
from registry_sync.replay import Fault, ReplayServer

SAMPLE_ROWS = """\
1,9,UMIN sample,,,,,UMIN000027821,II,JP,2017,test-only row: a real recorded UMIN page
2,9,jRCT sample,,,,,jRCTs051180190,II,JP,2017,test-only row: a real recorded jRCT page
3,9,ChiCTR sample,,,,,ChiCTR2400084905,III,CN,2024,test-only row: a real recorded ChiCTR page
4,9,CTR sample,,,,,CTR20252821,I,CN,2025,test-only row: a real recorded CTR page
5,9,ANZCTR sample,,,,,ACTRN12605000001695,II,AU,2005,test-only row: a real recorded ANZCTR page
"""
OUTCOME_KINDS = {"ok", "not_found", "blocked", "registry_down", "parse_error", "id_malformed"}


def review_with_samples(tmp_path: Path) -> Path:
    path = tmp_path / "review_plus_samples.csv"
    path.write_text(BUNDLED_CURATED.read_text(encoding="utf-8") + SAMPLE_ROWS, encoding="utf-8")
    return path


def pairs(result: RunResult, sql: str) -> dict[str, object]:
    """A two-column query as a dict."""
    return {str(k): v for k, v, *_ in query(result, sql)}


def query(result: RunResult, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{result.snapshot_path}?mode=ro", uri=True)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, RunResult]:
    tmp = tmp_path_factory.mktemp("whole")
    with ReplayServer(BUNDLED_REPLAY) as server:
        settings = fast_settings(tmp, review_with_samples(tmp), **server.base_urls())
        first = run_pipeline(settings, RunRequest())
        jrct_page = (
            FIXTURES / "jrct" / "latest-detail_jRCTs051180190_ja_2020-03.html"
        ).read_bytes()
        server.add_fault("/umin/", Fault(status=503), times=None)  # down
        server.add_fault("/chictr/", Fault(status=405), times=None)  # the WAF's block
        server.add_fault(  # another trial's page for a review ID
            "/jrct/latest-detail/jRCT2053190081",
            Fault(status=200, body=jrct_page, headers={"Content-Type": "text/html"}),
            times=None,
        )
        second = run_pipeline(settings, RunRequest())
    return first, second


def test_first_run_every_registry_answers(runs: tuple[RunResult, RunResult]) -> None:
    first, _ = runs
    sources = pairs(first, "select source, count(*) from records group by source")
    assert sources == {"ctgov": 15, "umin": 1, "jrct": 1, "chictr": 1, "ctr": 1, "anzctr": 1}
    assert "unsupported" not in first.outcomes


def test_second_run_has_every_outcome_kind(runs: tuple[RunResult, RunResult]) -> None:
    _, second = runs
    assert set(second.outcomes) >= OUTCOME_KINDS | {"moved"}
    outcomes = pairs(second, "select trial_id, outcome from outcomes")
    assert outcomes["UMIN000027821"] == "registry_down"
    assert outcomes["ChiCTR2400084905"] == "blocked"
    assert outcomes["jRCT2053190081"] == "parse_error"
    assert outcomes["jRCT209022038"] == "id_malformed"
    assert outcomes["JMA-IIA00412"] == "moved"
    assert outcomes["CTR20252821"] == "ok" and outcomes["NCT06482268"] == "ok"
    assert sum(second.outcomes.values()) == 103 + 5


def test_blocked_and_down_trials_keep_their_values_stale(runs: tuple[RunResult, RunResult]) -> None:
    first, second = runs
    rows = query(
        second,
        "select trial_id, source, stale, carried_from from records "
        "where trial_id in ('UMIN000027821', 'ChiCTR2400084905') order by 1",
    )
    assert rows == [
        ("ChiCTR2400084905", "chictr", 1, first.run_id),
        ("UMIN000027821", "umin", 1, first.run_id),
    ]


def test_ictrp_is_asked_for_what_the_registries_could_not_give(
    runs: tuple[RunResult, RunResult],
) -> None:
    _, second = runs
    asked = Counter(
        str(url).split("TrialID=")[1][:5]
        for (url,) in query(second, "select url from requests where registry = 'ictrp'")
        if "TrialID=" in str(url)
    )
    # UMIN (4 trials down) and ChiCTR (3 blocked) as JPRN-UMIN / ChiCTR forms, the JMA trial
    assert asked["JPRN-"] == 5 and asked["ChiCT"] == 3
    detail = pairs(second, "select trial_id, detail from outcomes")
    assert "WHO ICTRP: not_found" in str(detail["UMIN000011929"])
    # the 405 ended ChiCTR for the run: one request sent, the rest refused unsent
    sent = query(
        second,
        "select status from requests where registry = 'chictr' and fetched_at >= "
        "(select json_extract(value, '$') from _meta where key = 'started_at')",
    )
    assert sent == [(405,)]  # the request carried with the stale values is run 1's (200)
    assert second.timing["ictrp_asked"] == 8


def test_no_contact_data_is_stored_yet_what_was_served_is_named(
    runs: tuple[RunResult, RunResult],
) -> None:
    first, _ = runs
    detail = (
        FIXTURES / "ctr" / "detail_CTR20252821_completed_phase1_contacts-redacted_2026-08-13.html"
    )
    bodies = list(snapshot.payload_bodies(first.snapshot_path).values())
    assert len(bodies) == query(first, "select count(*) from payloads")[0][0]
    assert bodies
    assert not [b for b in bodies if b"redacted@example.invalid" in b]
    assert not [b for b in bodies if "研究者姓名已在夹具中抹去".encode() in b]
    served = hashlib.sha256(detail.read_bytes()).hexdigest()
    rows = query(
        first, "select redacted from requests where body_sha256 = ?".replace("?", f"'{served}'")
    )
    assert rows == [(1,)]  # the detail page as served is named by its sha256, stored redacted
