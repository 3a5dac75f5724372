"""Several reviews in one run: two overlapping tables cut from the bundled one, run against the
replay, each shared trial fetched once, each review's findings and reports its own."""

from __future__ import annotations

import csv
import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from helpers import BUNDLED_CURATED, BUNDLED_REPLAY, fast_settings
from registry_sync import reviews, snapshot
from registry_sync.cli import main
from registry_sync.errors import RegistrySyncError
from registry_sync.ids import normalize_id
from registry_sync.pipeline import RunRequest, RunResult, run_pipeline
from registry_sync.settings import Settings

A, B = "review_a", "review_b"


def split_tables(folder: Path) -> tuple[Path, Path]:
    """A: the bundled table's first 60 rows; B: its first 20 rows (the same lines as in A, so
    their findings have the same keys in both reviews) and the rest. Together: every row."""
    lines = BUNDLED_CURATED.read_text(encoding="utf-8").splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    folder.mkdir(parents=True, exist_ok=True)
    a, b = folder / f"{A}.csv", folder / f"{B}.csv"
    a.write_text(header + "".join(rows[:60]), encoding="utf-8")
    b.write_text(header + "".join(rows[:20] + rows[60:]), encoding="utf-8")
    return a, b


def _run(data_dir: Path, *tables: Path) -> RunResult:
    settings = fast_settings(data_dir).with_tables(tables)
    return run_pipeline(settings, RunRequest(replay_dir=BUNDLED_REPLAY))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("reviews")
    a, b = split_tables(tmp / "tables")
    return {
        "tables": (a, b),
        "both": _run(tmp / "both", a, b),
        "a": _run(tmp / "a", a),
        "b": _run(tmp / "b", b),
        "whole": _run(tmp / "whole", BUNDLED_CURATED),
    }


def _query(path: Path, sql: str, *args: object) -> list[dict[str, Any]]:
    conn = snapshot.open_snapshot(path)
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def _trial_ids(table: Path) -> set[str]:
    with table.open(encoding="utf-8", newline="") as f:
        return {normalize_id(r["trial_id"]) for r in csv.DictReader(f)}


def _requests_naming(path: Path, trial_id: str) -> int:
    urls = [r["url"] for r in _query(path, "select url from requests")]
    return sum(1 for u in urls if trial_id in u)


def test_each_trial_is_fetched_once_whatever_the_reviews_citing_it(runs: dict[str, Any]) -> None:
    a, b = runs["tables"]
    both, alone_a, alone_b, whole = runs["both"], runs["a"], runs["b"], runs["whole"]
    shared = _trial_ids(a) & _trial_ids(b)
    assert len(shared) >= 15
    sent = {
        k: snapshot.read_meta(r.snapshot_path)["requests_sent"]
        for k, r in runs.items()
        if k != "tables"
    }
    # the union of the two tables asks exactly what the whole table asks, less than two runs
    assert sent["both"] == sent["whole"]
    assert sent["both"] < sent["a"] + sent["b"]
    for tid in shared:
        assert _requests_naming(both.snapshot_path, tid) == _requests_naming(
            alone_a.snapshot_path, tid
        ), tid
    # one state per trial: the outcomes of the union (the whole table's), not one per review
    outcomes = _query(both.snapshot_path, "select trial_id from outcomes")
    assert len(outcomes) == len({o["trial_id"] for o in outcomes})
    whole_ids = {
        o["trial_id"] for o in _query(whole.snapshot_path, "select trial_id from outcomes")
    }
    assert {o["trial_id"] for o in outcomes} == whole_ids
    assert _trial_ids(a) | _trial_ids(b) <= whole_ids
    assert sum(both.outcomes.values()) == sum(whole.outcomes.values())
    assert alone_b.accepted and both.accepted


def _finding_set(path: Path, review: str | None = None) -> set[tuple[Any, ...]]:
    where, args = ("where review = ?", (review,)) if review else ("", ())
    rows = _query(
        path, f"select kind, line, trial_id, field, severity, verdict from findings {where}", *args
    )
    return {tuple(r.values()) for r in rows}


def test_every_row_of_both_reviews_has_its_own_findings(runs: dict[str, Any]) -> None:
    a, b = runs["tables"]
    path = runs["both"].snapshot_path
    curated = _query(path, "select review, count(*) as n from curated group by review")
    assert {r["review"]: r["n"] for r in curated} == {A: 60, B: 105 - 60 + 20}
    # each review's findings are what a run of that review alone finds
    assert _finding_set(path, A) == _finding_set(runs["a"].snapshot_path)
    assert _finding_set(path, B) == _finding_set(runs["b"].snapshot_path)
    assert _finding_set(path, A) and _finding_set(path, B)
    # the first 20 rows are on the same lines in both: the same keys, both kept, apart
    keys = _query(path, "select review, key from findings")
    assert len(reviews.diff_rows(path).findings) == len(keys)
    assert {k["key"] for k in keys if k["review"] == A} & {
        k["key"] for k in keys if k["review"] == B
    }
    meta = snapshot.read_meta(path)
    assert meta["schema_version"] == 5
    assert [(r["name"], r["curated_path"], r["rows"]) for r in meta["reviews"]] == [
        (A, str(a), 60),
        (B, str(b), 65),
    ]
    assert meta["curated_sha256"] == reviews.combined_sha256(
        [(r["name"], r["curated_sha256"]) for r in meta["reviews"]]
    )


def test_each_review_gets_its_own_reports_with_only_its_rows(runs: dict[str, Any]) -> None:
    both = runs["both"]
    paths = both.report_paths
    run_id = both.run_id
    for name in (A, B):
        for fmt in ("md", "json", "html"):
            assert paths[f"{fmt}:{name}"].name == f"{run_id}.{name}.{fmt}"
            assert paths[f"{fmt}:{name}"].is_file()
    only_b = _trial_ids(runs["tables"][1]) - _trial_ids(runs["tables"][0])
    doc_a = json.loads(paths[f"json:{A}"].read_text(encoding="utf-8"))
    assert {f["review"] for f in doc_a["findings"]} == {A}
    assert len(doc_a["findings"]) == len(_finding_set(both.snapshot_path, A))
    assert doc_a["summary"]["rows"] == 60
    assert not {f["trial_id"] for f in doc_a["findings"]} & only_b
    md_a = paths[f"md:{A}"].read_text(encoding="utf-8")
    assert not [t for t in only_b if t in md_a]
    # the run's own files are an index naming each review's report
    index = paths["md"].read_text(encoding="utf-8")
    assert paths["md"].name == f"{run_id}.md"
    assert f"{run_id}.{A}.md" in index and f"{run_id}.{B}.md" in index
    assert [r["name"] for r in both.reviews] == [A, B]
    assert [r["rows"] for r in both.reviews] == [60, 65]


def test_one_table_names_reports_as_ever_with_one_review(runs: dict[str, Any]) -> None:
    alone = runs["a"]
    assert set(alone.report_paths) == {"md", "json", "html"}
    assert alone.report_paths["md"].name == f"{alone.run_id}.md"
    assert alone.reviews == ()
    meta = snapshot.read_meta(alone.snapshot_path)
    assert meta["curated_sha256"] == meta["reviews"][0]["curated_sha256"]
    assert {r["review"] for r in _query(alone.snapshot_path, "select review from findings")} == {A}


def test_cli_report_and_summary_per_review(runs: dict[str, Any]) -> None:
    path = runs["both"].snapshot_path
    runner = CliRunner()
    res = runner.invoke(main, ["report", str(path), "--review", B, "--format", "json"])
    assert res.exit_code == 0, res.output
    assert {f["review"] for f in json.loads(res.output)["findings"]} == {B}
    res = runner.invoke(main, ["report", str(path)])
    assert res.exit_code == 2 and A in res.output and B in res.output
    res = runner.invoke(main, ["report", str(path), "--review", "review_c"])
    assert res.exit_code != 0 and "no review 'review_c'" in res.output


def test_cli_run_prints_one_line_per_review(tmp_path: Path) -> None:
    a, b = split_tables(tmp_path / "tables")
    res = CliRunner().invoke(
        main,
        [
            "run",
            "--replay",
            str(BUNDLED_REPLAY),
            "--curated",
            str(a),
            "--curated",
            str(b),
            "--data-dir",
            str(tmp_path / "data"),
            "--no-progress",
        ],
        env={"REGISTRY_SYNC_MAX_RETRIES": "0"},
    )
    lines = [ln for ln in res.output.splitlines() if ln.startswith("review ")]
    assert [ln.split(":")[0] for ln in lines] == [f"review {A}", f"review {B}"]
    assert "60 rows" in lines[0] and "65 rows" in lines[1]


def test_two_tables_with_one_name_are_an_error_naming_both(tmp_path: Path) -> None:
    one, other = tmp_path / "x" / "r.csv", tmp_path / "y" / "r.csv"
    with pytest.raises(
        RegistrySyncError, match=r"y/r\.csv: has the same review name 'r' as .*x/r\.csv"
    ):
        reviews.check_tables([one, other])
    with pytest.raises(RegistrySyncError, match="given twice"):
        reviews.check_tables([one, one])


def test_a_failing_table_is_named(tmp_path: Path) -> None:
    a, _ = split_tables(tmp_path / "tables")
    bad = tmp_path / "tables" / "broken.csv"
    bad.write_text("no,header,here\n1,2,3\n", encoding="utf-8")
    with pytest.raises(RegistrySyncError, match=r"broken\.csv"):
        _run(tmp_path / "data", a, bad)


def test_combined_hash_changes_with_the_set_of_tables() -> None:
    assert reviews.combined_sha256([(A, "x")]) == "x"
    both = reviews.combined_sha256([(A, "x"), (B, "y")])
    assert both == reviews.combined_sha256([(B, "y"), (A, "x")])
    assert both != reviews.combined_sha256([(A, "x"), (B, "z")])


def test_settings_tables() -> None:
    s = Settings()
    assert s.tables == (s.curated_path,)
    two = s.with_tables([Path("a.csv"), Path("b.csv")])
    assert two.curated_path == Path("a.csv") and two.tables == (Path("a.csv"), Path("b.csv"))
    env = Settings.from_env({"REGISTRY_SYNC_CURATED": "a.csv:b.csv"})
    assert env.tables == (Path("a.csv"), Path("b.csv"))


def _as_schema_4(path: Path, out: Path) -> Path:
    """A copy of `path` as a schema-4 snapshot: no `review` column, no `_meta.reviews`."""
    out.write_bytes(path.read_bytes())
    conn = sqlite3.connect(out)
    try:
        for table in ("curated", "findings"):
            cols = [r[1] for r in conn.execute(f"pragma table_info({table})") if r[1] != "review"]
            listed = ", ".join(f'"{c}"' for c in cols)
            conn.execute(f"create table old_{table} as select {listed} from {table}")
            conn.execute(f"drop table {table}")
            conn.execute(f"alter table old_{table} rename to {table}")
        conn.execute("delete from _meta where key = 'reviews'")
        conn.execute("update _meta set value = '4' where key = 'schema_version'")
        conn.commit()
    finally:
        conn.close()
    return out


def test_a_schema_4_snapshot_reads_as_its_one_review(runs: dict[str, Any], tmp_path: Path) -> None:
    new = runs["a"].snapshot_path
    old = _as_schema_4(new, tmp_path / "old.sqlite")
    meta = snapshot.read_meta(old)
    assert reviews.names(meta) == [A]
    content = reviews.load_review_content(old, A)
    assert len(content.curated) == 60
    assert len(content.findings) == len(_finding_set(new))
    # the same findings keyed alike: an upgrade shows no false new or resolved findings
    assert reviews.diff_rows(old).findings.keys() == reviews.diff_rows(new).findings.keys()
    res = CliRunner().invoke(main, ["diff", str(old), str(new), "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert not doc.get("new_findings") and not doc.get("resolved_findings")
    res = CliRunner().invoke(main, ["report", str(old)])
    assert res.exit_code == 0 and "Drift report" in res.output


def test_replace_keeps_review_on_rows() -> None:
    from registry_sync.model import CuratedRow

    row = CuratedRow(2, 1, "P", "iNK", "x", "s", "NCT03841110", "I", "US", "2019")
    tagged = reviews.tag_rows([row], A)[0]
    assert tagged.review == A and dataclasses.replace(tagged, line=3).review == A


def test_decisions_are_per_review(tmp_path: Path) -> None:
    """A key both reviews have, accepted in review B's decisions file: accepted in B only."""
    a, b = split_tables(tmp_path / "tables")
    first = _run(tmp_path / "data", a, b)
    rows = _query(
        first.snapshot_path,
        "select review, key from findings where registry_value is not null",
    )
    key = sorted(
        {r["key"] for r in rows if r["review"] == A} & {r["key"] for r in rows if r["review"] == B}
    )[0]
    runner = CliRunner()
    args = ["accept", key, "--reason", "kept as published", "--snapshot", str(first.snapshot_path)]
    res = runner.invoke(main, args)
    assert res.exit_code == 2 and str(a) in res.output and str(b) in res.output
    res = runner.invoke(main, [*args, "--curated", str(b)])
    assert res.exit_code == 0, res.output
    assert (b.parent / f"{B}.decisions.csv").is_file()
    assert not (a.parent / f"{A}.decisions.csv").exists()
    second = _run(tmp_path / "data", a, b)
    accepted = _query(
        second.snapshot_path, "select review, accepted_on from findings where key = ?", key
    )
    assert {r["review"]: bool(r["accepted_on"]) for r in accepted} == {A: False, B: True}
    meta = snapshot.read_meta(second.snapshot_path)
    assert [r["decisions"]["accepted"] for r in meta["reviews"]] == [0, 1]
    assert meta["decisions"]["accepted"] == 1


def test_prune_and_restore_know_each_reviews_reports(tmp_path: Path) -> None:
    from registry_sync import retention, runlock

    a, b = split_tables(tmp_path / "tables")
    first = _run(tmp_path / "data", a, b)
    second = _run(tmp_path / "data", a, b)
    settings = fast_settings(tmp_path / "data")
    store, reports_dir = settings.snapshots_dir, settings.reports_dir
    own = reviews.report_files(reports_dir, second.snapshot_path)
    assert len(own) == 6 and all(p.is_file() for p in own)
    # a killed run left the latest without one review's report: rendered again
    own[0].unlink()
    assert own[0] in runlock.restore_reports(store, reports_dir)
    assert own[0].is_file()
    gone = reviews.report_files(reports_dir, first.snapshot_path)
    assert all(p.is_file() for p in gone)
    retention.prune(store, 1, reports_dir)
    assert not first.snapshot_path.exists()
    assert not [p for p in gone if p.exists()]
    assert all(p.is_file() for p in own)
