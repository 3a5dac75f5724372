"""A registry that changed its pages: most of its pages fail to parse in one run -> one line.

Pages are derived from the real recorded ones: jRCT's page of jRCTs051180190
(`data/replay/jrct/recorded/`, SOURCES.md there) filed under three of the review's jRCT IDs,
then the same pages with their Trial ID label renamed (a layout change the parser cannot read);
ClinicalTrials.gov's bundled documents served in a `/studies` page whose studies lost their
`protocolSection` key (an API answer whose shape changed). Each scenario runs twice against one
loopback server: first the good pages, then the changed ones through a fault, so the second run
carries the first run's values forward.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from helpers import BUNDLED_REPLAY, fast_settings, replay_copy, review_subset
from registry_sync import layout, snapshot
from registry_sync.model import Outcome, TrialState
from registry_sync.pipeline import RunResult, run_pipeline
from registry_sync.replay import Fault, ReplayServer
from registry_sync.replay.routes import HTML

REAL_JRCT = BUNDLED_REPLAY / "jrct" / "recorded" / "latest-detail_jRCTs051180190_ja_2020-03.html"
REAL_JRCT_ID = "jRCTs051180190"
JRCT_IDS = ("jRCT2033200431", "jRCT2033200116", "jRCTa050190117")  # Table 1 of the review
ID_LABEL = "臨床研究実施計画番号"
RENAMED_LABEL = "研究計画番号"  # the page's Trial ID label, renamed
NCT_IDS = ("NCT06482268", "NCT04363346", "NCT04331613")


def rows_of(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def jrct_page(trial_id: str, *, label: str = ID_LABEL) -> bytes:
    """The real recorded page, showing `trial_id` (and `label` for its Trial ID row)."""
    text = REAL_JRCT.read_bytes().decode("utf-8")
    assert text.count(ID_LABEL) == 1 and REAL_JRCT_ID in text
    return text.replace(REAL_JRCT_ID, trial_id).replace(ID_LABEL, label).encode("utf-8")


def jrct_replay(tmp_path: Path) -> Path:
    out = tmp_path / "synthetic-replay" / "jrct"
    out.mkdir(parents=True)
    for trial_id in JRCT_IDS:
        (out / f"latest-detail_{trial_id}_from_{REAL_JRCT_ID}.html").write_bytes(
            jrct_page(trial_id)
        )
    return out.parent


def twice_jrct(tmp_path: Path, changed: tuple[str, ...]) -> tuple[RunResult, RunResult]:
    """A good run, then one where the pages of `changed` have the renamed label."""
    curated = review_subset(tmp_path, JRCT_IDS)
    with ReplayServer(jrct_replay(tmp_path)) as server:
        settings = fast_settings(tmp_path, curated, **server.base_urls())
        first = run_pipeline(settings)
        for trial_id in changed:
            body = jrct_page(trial_id, label=RENAMED_LABEL)
            fault = Fault(headers={"Content-Type": HTML}, body=body)
            server.add_fault(f"/jrct/latest-detail/{trial_id}", fault, times=None)
        second = run_pipeline(settings)
    assert first.outcomes == {"ok": 3}
    return first, second


def test_jrct_pages_with_a_renamed_label_are_one_layout_line(tmp_path: Path) -> None:
    first, second = twice_jrct(tmp_path, JRCT_IDS)
    assert second.outcomes == {"parse_error": 3} and second.accepted
    # one line, on the console and in the report, naming the first error and its evidence
    (line,) = second.notices
    assert line.startswith(
        "jRCT seems to have changed its pages (or its answer's shape): 3 of 3 trials did not "
        "parse this run; last good values kept, marked stale. First error (jRCT2033200431):"
    )
    assert "no 臨床研究実施計画番号/Trial ID label" in line
    meta = json.loads(
        rows_of(second.snapshot_path, "select value from _meta where key = 'layout_changes'")[0][0]
    )
    change = meta["jrct"]
    assert (change["failed"], change["of"], change["first_trial"]) == (3, 3, "jRCT2033200431")
    (request_id,) = change["evidence"]["request_ids"]
    # the evidence is kept: the request and the changed page (as stored: contacts redacted,
    # the request keeping the sha256 of what was served)
    ((sha,),) = rows_of(
        second.snapshot_path, f"select sha256 from payloads where request_id = '{request_id}'"
    )
    body = snapshot.payload_bodies(second.snapshot_path, [sha])[sha]
    assert RENAMED_LABEL.encode() in body and ID_LABEL.encode() not in body
    # values carried forward, stale, from the good run
    stale = rows_of(second.snapshot_path, "select stale, carried_from from records")
    assert stale == [(1, first.run_id)] * 3
    # the report groups the three errors under the line instead of a row per trial
    md = second.report_markdown
    assert f"> **{line}**" in md
    unchecked = md.split("## Trials that could not be checked")[1]
    assert (
        "- **3 trials `parse_error`** (jRCT 3): jRCT seems to have changed its pages" in unchecked
    )
    assert "| Trial | Registry |" not in unchecked
    assert unchecked.count("cannot parse") == 1  # the first error, once
    html = second.report_paths["html"].read_text(encoding="utf-8")
    assert html.count('data-label="Outcome"><code>parse_error</code>') == 1


def test_one_page_that_fails_to_parse_is_not_a_layout_change(tmp_path: Path) -> None:
    _, second = twice_jrct(tmp_path, JRCT_IDS[:1])
    assert second.outcomes == {"ok": 2, "parse_error": 1}
    assert second.notices == ()
    meta = rows_of(second.snapshot_path, "select value from _meta where key = 'layout_changes'")
    assert json.loads(meta[0][0]) == {}
    # reported per trial, as before
    assert f"| {JRCT_IDS[0]} | jRCT | parse_error |" in second.report_markdown
    assert "seems to have changed its pages" not in second.report_markdown


def shape_changed_page() -> bytes:
    """A `/studies` page of the bundled documents, each with `protocolSection` renamed."""
    studies = []
    for nct_id in NCT_IDS:
        doc = json.loads(next((BUNDLED_REPLAY / "ctgov").rglob(f"{nct_id}.json")).read_bytes())
        doc["protocol"] = doc.pop("protocolSection")
        studies.append(doc)
    return json.dumps({"studies": studies}).encode()


def test_ctgov_answer_without_protocol_section_is_one_layout_line(tmp_path: Path) -> None:
    curated = review_subset(tmp_path, NCT_IDS)
    with ReplayServer(replay_copy(tmp_path, *NCT_IDS)) as server:
        settings = fast_settings(tmp_path, curated, **server.base_urls())
        first = run_pipeline(settings)
        fault = Fault(headers={"Content-Type": "application/json"}, body=shape_changed_page())
        server.add_fault("/ctgov/api/v2/studies", fault, times=None)
        second = run_pipeline(settings)
    assert first.outcomes == {"ok": 3}
    # not "not found" (and no `vanished` per trial): the answer could not be read
    assert second.outcomes == {"parse_error": 3}
    assert "vanished" not in second.findings
    (line,) = second.notices
    assert line.startswith("ClinicalTrials.gov seems to have changed its pages")
    assert "3 studies on http://127.0.0.1:" in line and "without protocolSection" in line
    stale = rows_of(second.snapshot_path, "select stale, carried_from from records")
    assert stale == [(1, first.run_id)] * 3


def state(trial_id: str, outcome: Outcome, source: str = "") -> TrialState:
    return TrialState("ctgov", trial_id, outcome, f"{trial_id}: why", source=source or None)


def test_layout_threshold_needs_three_and_half_of_one_source() -> None:
    def found(*outcomes: Outcome, source: str = "") -> dict[str, layout.LayoutChange]:
        return layout.detect(state(f"T{i}", o, source) for i, o in enumerate(outcomes))

    bad, ok = Outcome.PARSE_ERROR, Outcome.OK
    assert found(bad, bad) == {}  # two are not enough
    assert found(bad, bad, bad, ok, ok, ok, ok) == {}  # three of seven: not most
    change = found(bad, ok, bad, bad, ok, ok)["ctgov"]  # three of six
    assert (change.failed, change.of, change.first_trial, change.first_error) == (
        3,
        6,
        "T0",
        "T0: why",
    )
    # grouped by who answered: WHO ICTRP's pages are its own source
    assert set(found(bad, bad, bad, source="ictrp")) == {"ictrp"}
