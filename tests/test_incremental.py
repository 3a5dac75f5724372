"""Incremental nights: a second ClinicalTrials.gov run asks only for what changed since the last
run's data timestamp (`filter.advanced` on LastUpdatePostDate) and reuses the rest, not stale."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from click.testing import CliRunner

from helpers import BUNDLED_REPLAY, fast_settings, replay_copy, review_subset
from registry_sync import collect, diff, incremental, pipeline, snapshot
from registry_sync.cli import main
from registry_sync.http import Http
from registry_sync.pipeline import RunRequest, RunResult, run_pipeline
from registry_sync.registries import REGISTRIES, ctgov
from registry_sync.replay import ReplayServer
from registry_sync.settings import HttpSettings

SUBSET = ("NCT04363346", "NCT04331613", "NCT04631406")
STAMP = "2026-09-04T09:00:06"  # synthetic `/version` answer, shaped as REGISTRIES.md §1 shows


def synthetic_replay(tmp: Path) -> Path:
    """The bundled reconstructed studies of SUBSET plus a synthetic `ctgov/version.json`."""
    out = replay_copy(tmp, *SUBSET)
    version = {"apiVersion": "2.0.5", "dataTimestamp": STAMP}
    (out / "ctgov" / "version.json").write_text(json.dumps(version), encoding="utf-8")
    return out


def edit_study(replay: Path, nct_id: str, last_update: str, phases: list[str]) -> None:
    path = replay / "ctgov" / f"{nct_id}.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {
        "date": last_update,
        "type": "ACTUAL",
    }
    doc["protocolSection"]["designModule"]["phases"] = phases
    path.write_text(json.dumps(doc), encoding="utf-8")


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def studies_queries(path: Path) -> list[dict[str, list[str]]]:
    """The query strings of the `/studies` requests this run made (not carried rows)."""
    started = snapshot.read_meta(path)["started_at"]
    sql = "select url, fetched_at from requests"
    urls = [str(u) for u, at in rows(path, sql) if str(at) >= started]
    return [parse_qs(urlsplit(u).query) for u in urls if urlsplit(u).path.endswith("/studies")]


def run(tmp_path: Path, replay: Path, *, full: bool = False) -> RunResult:
    settings = fast_settings(tmp_path, review_subset(tmp_path, SUBSET))
    return run_pipeline(settings, RunRequest(replay_dir=replay, full=full))


def test_a_first_run_is_full(tmp_path: Path) -> None:
    first = run(tmp_path, synthetic_replay(tmp_path))
    assert first.outcomes == {"ok": 3}
    assert first.incremental["mode"] == "full"
    assert first.incremental["why"] == "no earlier snapshot of this kind of run"
    queries = studies_queries(first.snapshot_path)
    assert queries and all("filter.advanced" not in q for q in queries)


def test_second_run_with_nothing_changed_reuses_records_not_stale(tmp_path: Path) -> None:
    replay = synthetic_replay(tmp_path)
    first = run(tmp_path, replay)
    second = run(tmp_path, replay)
    inc = second.incremental
    assert inc["mode"] == "incremental" and inc["since"] == "2026-09-03"
    assert (inc["asked"], inc["returned"], inc["changed"], inc["unchanged"]) == (3, 0, 0, 3)
    assert inc["reused"] == 3 and inc["fetched_in_full"] == 0
    queries = studies_queries(second.snapshot_path)
    assert len(queries) == 1  # one filtered request, no full fetch after it
    assert snapshot.read_meta(second.snapshot_path)["requests_sent"] == 2  # and /version
    assert queries[0]["filter.advanced"] == ["AREA[LastUpdatePostDate]RANGE[2026-09-03,MAX]"]
    assert sorted(queries[0]["filter.ids"][0].split(",")) == sorted(SUBSET)
    sql = "select trial_id, status, phases, start, content_hash, stale from records order by 1"
    before, after = rows(first.snapshot_path, sql), rows(second.snapshot_path, sql)
    assert after == before  # same values and hashes, none stale
    assert all(stale == 0 for *_, stale in after)
    details = rows(second.snapshot_path, "select outcome, detail from outcomes")
    assert {o for o, _ in details} == {"ok"}
    assert all(
        str(d).startswith("unchanged since 2026-09-03") and STAMP in str(d) for _, d in details
    )
    fetched = "select trial_id, fetched_at from records order by 1"
    assert rows(second.snapshot_path, fetched) == rows(first.snapshot_path, fetched)
    assert snapshot.read_meta(second.snapshot_path)["incremental"] == inc
    assert diff.diff_snapshots(
        diff.load_rows(first.snapshot_path), diff.load_rows(second.snapshot_path)
    ).empty


def test_a_study_updated_between_runs_is_fetched_and_its_change_shows(tmp_path: Path) -> None:
    replay = synthetic_replay(tmp_path)
    first = run(tmp_path, replay)
    edit_study(replay, "NCT04363346", "2026-09-05", ["PHASE3"])
    second = run(tmp_path, replay)
    inc = second.incremental
    assert (inc["returned"], inc["changed"], inc["unchanged"], inc["reused"]) == (1, 1, 2, 2)
    phase = "select phases, stale from records where trial_id = 'NCT04363346'"
    assert rows(second.snapshot_path, phase) == [('["PHASE3"]', 0)]
    d = diff.diff_snapshots(
        diff.load_rows(first.snapshot_path), diff.load_rows(second.snapshot_path)
    )
    assert [(c.trial_id, c.field, c.new) for c in d.changes if c.field == "phases"] == [
        ("NCT04363346", "phases", '["PHASE3"]')
    ]
    detail = "select detail from outcomes where trial_id = 'NCT04363346'"
    assert not str(rows(second.snapshot_path, detail)[0][0]).startswith("unchanged")


def test_full_forces_a_full_fetch(tmp_path: Path) -> None:
    replay = synthetic_replay(tmp_path)
    run(tmp_path, replay)
    again = run(tmp_path, replay, full=True)
    assert again.incremental["mode"] == "full" and "--full" in again.incremental["why"]
    queries = studies_queries(again.snapshot_path)
    assert queries and all("filter.advanced" not in q for q in queries)
    assert "unchanged" not in str(rows(again.snapshot_path, "select detail from outcomes"))


def test_a_changed_review_table_or_missing_timestamp_is_full(tmp_path: Path) -> None:
    replay = synthetic_replay(tmp_path)
    run(tmp_path, replay)
    fewer = fast_settings(tmp_path, review_subset(tmp_path, SUBSET[:2]))
    changed = run_pipeline(fewer, RunRequest(replay_dir=replay))
    assert changed.incremental["why"] == "the review's table changed since the last run"
    (replay / "ctgov" / "version.json").unlink()
    run(tmp_path, replay)  # full (table changed back); no data timestamp recorded
    last = run(tmp_path, replay)
    assert last.incremental["why"] == "the last run has no ClinicalTrials.gov data timestamp"


def test_decide_is_full_when_the_parser_changed() -> None:
    meta = {
        "run_id": "r1",
        "curated_sha256": "abc",
        "parser_versions": {"ctgov": 2},
        "data_timestamps": {"ctgov": STAMP},
    }
    plan = incremental.decide(meta, curated_sha256="abc", parser_version=3)
    assert not plan.incremental and "parser changed (version 2 -> 3)" in plan.why
    same = incremental.decide(meta, curated_sha256="abc", parser_version=2)
    assert same.incremental and same.since == "2026-09-03" and same.previous_run == "r1"


@pytest.mark.parametrize(
    ("expression", "served"),
    [
        ("AREA[LastUpdatePostDate]RANGE[2022-04-05,MAX]", ["NCT04363346", "NCT04631406"]),
        ("AREA[LastUpdatePostDate]RANGE[MIN,2022-04-04]", ["NCT04331613"]),
        ("AREA[LastUpdatePostDate]RANGE[2030-01-01,MAX]", []),
    ],
)
def test_replay_honours_the_last_update_range(
    tmp_path: Path, expression: str, served: list[str]
) -> None:
    with ReplayServer(synthetic_replay(tmp_path)) as server:
        params = {"filter.ids": ",".join(SUBSET), "filter.advanced": expression, "pageSize": "10"}
        answer = requests.get(
            f"{server.base_urls()['ctgov']}/studies", params=params, timeout=5
        ).json()
        bad = requests.get(
            f"{server.base_urls()['ctgov']}/studies",
            params={"filter.advanced": "AREA[StartDate]2022"},
            timeout=5,
        )
    got = [s["protocolSection"]["identificationModule"]["nctId"] for s in answer["studies"]]
    assert sorted(got) == served
    assert bad.status_code == 400


def test_cli_full_flag_and_summary_line(tmp_path: Path) -> None:
    replay = synthetic_replay(tmp_path)
    curated = review_subset(tmp_path, SUBSET)
    args = ["run", "--replay", str(replay), "--curated", str(curated), "--data-dir", str(tmp_path)]
    runner = CliRunner()
    first = runner.invoke(main, args)
    second = runner.invoke(main, args)
    forced = runner.invoke(main, [*args, "--full"])
    assert "ClinicalTrials.gov: full fetch (no earlier snapshot" in first.output
    assert "incremental since 2026-09-03: 0 changed, 3 unchanged" in second.output
    assert "ClinicalTrials.gov: full fetch (--full" in forced.output


def test_stored_rows_give_back_the_parsed_records(tmp_path: Path) -> None:
    """A reused record is rebuilt from its row, never re-parsed: every record of the whole
    bundled review (all registries) comes back equal to the parsed one, and a row whose values
    were altered no longer hashes to its content_hash, so it is not reused."""
    result = run_pipeline(fast_settings(tmp_path), RunRequest(replay_dir=BUNDLED_REPLAY))
    stored = snapshot.load_records(result.snapshot_path)
    assert len(stored) >= 15
    for tid, rec in stored.items():
        assert rec.payload is not None
        assert incremental.stored_record(rec.row) == collect.reparse(rec.payload, REGISTRIES), tid
    row = dict(next(iter(stored.values())).row)
    row["lead_sponsor"] = "someone else"
    assert incremental.stored_record(row) is None
    slim = snapshot.load_records(result.snapshot_path, bodies=False)
    assert all(r.payload is not None and r.payload.body == b"" for r in slim.values())
    assert {t: r.payload.sha256 for t, r in slim.items() if r.payload} == {
        t: r.payload.sha256 for t, r in stored.items() if r.payload
    }


def test_a_large_set_asks_the_registry_what_changed_not_every_batch(tmp_path: Path) -> None:
    """1,700 cited studies need 4 filtered batches by ID; the registry's changed studies fit
    one page: the night asks for the count, that page, and the changed studies of ours, then
    stops. SYNTHETIC: copies of a real recorded study (as bench_scale.py builds them)."""
    source = (BUNDLED_REPLAY / "ctgov" / "recorded").glob("study_NCT03418623_*.json")
    text = next(source).read_text(encoding="utf-8")
    folder = tmp_path / "replay" / "ctgov" / "synthetic"
    folder.mkdir(parents=True)
    cited = [f"NCT9{i:07d}" for i in range(1700)]
    for nct in cited:
        (folder / f"{nct}.json").write_text(text.replace("NCT03418623", nct), encoding="utf-8")
    edit = [cited[5], cited[1234]]
    for nct in edit:
        doc = json.loads((folder / f"{nct}.json").read_text(encoding="utf-8"))
        doc["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2026-09-05"}
        (folder / f"{nct}.json").write_text(json.dumps(doc), encoding="utf-8")
    advanced = incremental.advanced_filter("2026-09-03")
    http = Http(HttpSettings(min_interval={}))
    with ReplayServer(tmp_path / "replay") as server:
        base = server.base_urls()["ctgov"]
        assert len(ctgov.batches(cited, base, advanced=advanced)) == 4
        outcomes, how = pipeline.ask_changed(cited, http, base, advanced)
        sent = [parse_qs(urlsplit(ex.url).query) for ex in http.exchanges]
    http.close()
    assert how == "registry-wide"
    assert sorted(o.trial_id for o in outcomes) == edit
    assert all(o.outcome.value == "ok" for o in outcomes)
    assert len(sent) == 3  # the count, the one page of changed IDs, our changed studies
    assert sent[0]["countTotal"] == ["true"] and "filter.ids" not in sent[1]
    assert sorted(sent[2]["filter.ids"][0].split(",")) == edit


@pytest.mark.parametrize("has_results", [True, False, None])
def test_a_record_survives_the_text_columns_of_a_snapshot(has_results: bool | None) -> None:
    """SQLite keeps a boolean in a TEXT column as '1'/'0': read back, it is the same record,
    hashing to the same content_hash (else every such study would be fetched in full)."""
    from registry_sync.model import PartialDate, RegistryRecord
    from registry_sync.snapshot_schema import TABLES, normalized_record

    rec = RegistryRecord(
        "ctgov",
        "NCT90000001",
        status="COMPLETED",
        phases=("PHASE2",),
        start=PartialDate(2006, 11),
        enrollment=12,
        has_results=has_results,
        countries=("France",),
    )
    conn = sqlite3.connect(":memory:")
    values = normalized_record(rec)
    (table,) = [t for t in TABLES if t.name == "records"]  # the snapshot's own column types
    kinds = {str: "TEXT", int: "INTEGER", bytes: "BLOB"}
    conn.execute(f"create table t ({', '.join(f'{k} {kinds[table.columns[k]]}' for k in values)})")
    conn.execute(f"insert into t values ({', '.join('?' * len(values))})", list(values.values()))
    conn.row_factory = sqlite3.Row
    row = dict(conn.execute("select * from t").fetchone())
    row["content_hash"] = incremental.record_hash(rec)
    assert incremental.stored_record(row) == rec
