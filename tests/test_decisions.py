"""Decisions that stick: an accepted finding shows as accepted night after night, until the
registry's value changes; a broken decisions file stops the run before anything is written."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import EXPECTATIONS, fast_settings, replay_copy, review_subset
from registry_sync import decisions, diff
from registry_sync.cli import main
from registry_sync.decisions import Decision, DecisionsError
from registry_sync.model import Finding, Severity
from registry_sync.pipeline import RunRequest, run_pipeline
from test_layers import modules_loaded_by

HEADER = "key,registry_value,reason,decided_on,decided_by\n"
PHASE_KEY = "phase_mismatch:2:40:NCT06482268:phase"


def sponsor_finding(registry_value: str | None = "Masonic Cancer Center") -> Finding:
    return Finding(
        table=1,
        line=4,
        trial_id="NCT04363346",
        field="sponsor",
        kind="sponsor_mismatch",
        severity=Severity.INFO,
        review_value="Fate",
        registry_value=registry_value,
        message="review says sponsor Fate; registry lead sponsor is Masonic Cancer Center",
    )


SPONSOR_KEY = "sponsor_mismatch:1:4:NCT04363346:sponsor"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "review.decisions.csv"
    path.write_text(text, encoding="utf-8")
    return path


# --- loading: every problem is one error naming the file and line ------------------------


def test_decisions_file_sits_beside_the_curated_table_named_after_it() -> None:
    path = decisions.decisions_path(Path("data/curated/review_2025_hpsc.csv"))
    assert path == Path("data/curated/review_2025_hpsc.decisions.csv")


def test_no_decisions_file_means_no_decisions(tmp_path: Path) -> None:
    loaded = decisions.load_decisions(tmp_path / "absent.decisions.csv")
    assert loaded.rows == () and loaded.sha256 is None


def test_a_good_file_loads_with_lines_and_sha256(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "\ufeff" + HEADER + "\n"
        f'{SPONSOR_KEY},"Masonic Cancer Center",parent company,2025-12-01,JS\n'
        f"{PHASE_KEY},PHASE1,counts the extension,2025-12-02,\n",
    )
    loaded = decisions.load_decisions(path)
    assert [(d.key, d.line, d.decided_by) for d in loaded.rows] == [
        (SPONSOR_KEY, 3, "JS"),
        (PHASE_KEY, 4, ""),
    ]
    assert loaded.sha256 is not None and len(loaded.sha256) == 64


def test_decided_by_and_registry_value_columns_may_be_left_out(tmp_path: Path) -> None:
    path = write(tmp_path, f"key,reason,decided_on\n{SPONSOR_KEY},parent company,2025-12-01\n")
    (d,) = decisions.load_decisions(path).rows
    assert (d.registry_value, d.decided_by) == ("", "")


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        (
            "key,registry_value,reason,decided_on,comment\n",
            "line 1, column 'comment'",
            "unknown column",
        ),
        ("key,registry_value,decided_on\n", "line 1, column 'reason'", "lacks this column"),
        (
            HEADER
            + f"{SPONSOR_KEY},x,parent company,2025-12-01,\n{PHASE_KEY},PHASE1, ,2025-12-01,\n",
            "line 3, column 'reason'",
            "empty cell",
        ),
        (
            HEADER + f"{SPONSOR_KEY},x,parent company,01/12/2025,\n",
            "line 2, column 'decided_on'",
            "'01/12/2025' is not a date as YYYY-MM-DD",
        ),
        (
            HEADER + f"{SPONSOR_KEY},x,parent company,2025-02-30,\n",
            "line 2, column 'decided_on'",
            "not a date",
        ),
        (
            HEADER
            + f"{SPONSOR_KEY},x,parent company,2025-12-01,\n"
            + "\n"
            + f"{SPONSOR_KEY},y,parent company again,2025-12-02,\n",
            "line 4, column 'key'",
            "the first is on line 2",
        ),
        (
            HEADER + "sponsor_mismatch:1:NCT04363346:sponsor,x,why,2025-12-01,\n",
            "line 2, column 'key'",
            "not a finding key",
        ),
        (HEADER + f"{SPONSOR_KEY},x,why\n", "line 2", "the row has 3 cells, the header has 5"),
    ],
)
def test_a_broken_decisions_file_is_one_error_naming_file_and_line(
    tmp_path: Path, text: str, where: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DecisionsError) as caught:
        decisions.load_decisions(path)
    message = str(caught.value)
    assert message.startswith(f"{path}, {where}: "), message
    assert problem in message
    assert "\n" not in message


def test_a_decisions_file_not_in_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "review.decisions.csv"
    path.write_bytes((HEADER + f"{SPONSOR_KEY},x,Soci\xe9t\xe9,2025-12-01,\n").encode("latin-1"))
    with pytest.raises(DecisionsError, match=r", line 2: not UTF-8"):
        decisions.load_decisions(path)


# --- apply: accepted while the registry value is the same --------------------------------


def decision(value: str, on: str = "2025-12-01") -> Decision:
    return Decision(SPONSOR_KEY, value, "we name the sponsor by its parent company", on, "JS")


def test_same_registry_value_is_accepted_whitespace_aside() -> None:
    (f,) = decisions.apply([sponsor_finding()], [decision("  Masonic   Cancer Center ")])
    assert f.accepted_reason == "we name the sponsor by its parent company"
    assert f.accepted_on == "2025-12-01"
    assert f.extra["accepted_by"] == "JS"
    assert f.message == sponsor_finding().message


def test_no_registry_value_matches_an_empty_decided_value() -> None:
    (f,) = decisions.apply([sponsor_finding(None)], [decision("")])
    assert f.accepted_on == "2025-12-01"


def test_changed_registry_value_is_live_again_saying_what_was_accepted() -> None:
    (f,) = decisions.apply([sponsor_finding("Fate Therapeutics")], [decision("Masonic")])
    assert f.accepted_reason == "" and f.accepted_on == ""
    assert f.message.endswith(
        "accepted on 2025-12-01 for 'Masonic'; the registry now says 'Fate Therapeutics'"
    )
    assert f.extra["reopened_value"] == "Masonic"


def test_a_decision_for_another_key_leaves_the_finding_alone() -> None:
    other = Decision(PHASE_KEY, "PHASE1", "why", "2025-12-01")
    assert decisions.apply([sponsor_finding()], [other]) == [sponsor_finding()]


def test_a_decision_that_matches_no_finding_is_reported_not_dropped() -> None:
    other = Decision(PHASE_KEY, "PHASE1", "why", "2025-12-01")
    found = [sponsor_finding()]
    applied = decisions.apply(found, [decision("Masonic Cancer Center"), other])
    assert decisions.unmatched(applied, [decision("x"), other]) == [other]
    meta = decisions.summarise(
        decisions.Decisions(Path("d.csv"), "abc", (decision("Masonic Cancer Center"), other)),
        applied,
    )
    assert meta["accepted"] == 1 and meta["reopened"] == 0
    assert meta["unmatched"] == [PHASE_KEY]
    assert meta["notes"] == [f"decision for {PHASE_KEY} matches no finding this run"]


def test_close_keys_put_the_same_trial_first() -> None:
    known = [SPONSOR_KEY, "status:1:4:NCT04363346:status", PHASE_KEY]
    assert decisions.close_keys("sponsor_mismatch:1:5:NCT04363346:sponsor", known)[:2] == [
        SPONSOR_KEY,
        "status:1:4:NCT04363346:status",
    ]


# --- writing -------------------------------------------------------------------------------


def test_write_appends_and_replaces_a_decision_in_place(tmp_path: Path) -> None:
    path = tmp_path / "review.decisions.csv"
    first = Decision(SPONSOR_KEY, "Masonic, Minnesota", "=parent company", "2025-12-01", "JS")
    decisions.write_decision(path, first)
    decisions.write_decision(path, Decision(PHASE_KEY, "PHASE1", "extension", "2025-12-02"))
    again = decisions.write_decision(
        path, Decision(SPONSOR_KEY, "Masonic", "renamed", "2025-12-03")
    )
    assert [(d.key, d.reason, d.line) for d in again.rows] == [
        (SPONSOR_KEY, "renamed", 2),
        (PHASE_KEY, "extension", 3),
    ]
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert rows[0]["registry_value"] == "Masonic"


def test_write_never_overwrites_a_broken_file(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + f"{SPONSOR_KEY},x,,2025-12-01,\n")
    before = path.read_bytes()
    with pytest.raises(DecisionsError, match="line 2, column 'reason'"):
        decisions.write_decision(path, Decision(PHASE_KEY, "PHASE1", "why", "2025-12-01"))
    assert path.read_bytes() == before


def test_decisions_loads_neither_requests_nor_pandas() -> None:
    assert modules_loaded_by("registry_sync.decisions") == []


# --- diff: accepted since, reopened --------------------------------------------------------


def rows_of(run_id: str, *findings: dict[str, object]) -> diff.SnapshotRows:
    return diff.SnapshotRows(run_id, {}, {}, {str(f["key"]): f for f in findings})


def finding_row(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "key": SPONSOR_KEY,
        "table": 1,
        "trial_id": "NCT04363346",
        "kind": "sponsor_mismatch",
        "severity": "info",
        "message": "review says sponsor Fate",
        "accepted_on": None,
        "accepted_reason": None,
        "details": "{}",
    }
    return {**base, **changes}


def test_diff_shows_a_finding_accepted_since_as_accepted_not_new_or_resolved() -> None:
    accepted = finding_row(accepted_on="2025-12-01", accepted_reason="parent company")
    d = diff.diff_snapshots(rows_of("a", finding_row()), rows_of("b", accepted))
    assert d.accepted_findings == [accepted]
    assert d.new_findings == [] and d.resolved_findings == [] and d.reopened_findings == []
    # first seen already accepted: accepted too, never "new"
    d = diff.diff_snapshots(rows_of("a"), rows_of("b", accepted))
    assert d.accepted_findings == [accepted] and d.new_findings == []
    # accepted both nights: nothing to say
    assert diff.diff_snapshots(rows_of("a", accepted), rows_of("b", accepted)).empty
    md = "\n".join(
        diff.render_diff_markdown(diff.diff_snapshots(rows_of("a"), rows_of("b", accepted)))
    )
    assert "**Accepted by the authors** (1):" in md
    assert "(accepted on 2025-12-01: parent company)" in md


def test_diff_shows_an_accepted_finding_whose_value_changed_as_reopened() -> None:
    accepted = finding_row(accepted_on="2025-12-01", accepted_reason="parent company")
    reopened = finding_row(details=json.dumps({"reopened_on": "2025-12-01"}))
    d = diff.diff_snapshots(rows_of("a", accepted), rows_of("b", reopened))
    assert d.reopened_findings == [reopened]
    assert d.new_findings == [] and d.accepted_findings == []
    # reopened both nights: not reopened again
    assert diff.diff_snapshots(rows_of("a", reopened), rows_of("b", reopened)).empty
    assert '"reopened_findings"' in diff.diff_json(d)


# --- end to end over the loopback replay --------------------------------------------------

TRIALS = ("NCT06482268", "NCT04363346")  # CT1-DAP001 printed I/II, registered PHASE1; FT516


@pytest.fixture
def subset(tmp_path: Path) -> tuple[Path, Path]:
    """A two-trial review table and a replay set holding those two trials."""
    return review_subset(tmp_path, TRIALS), replay_copy(tmp_path, *TRIALS)


def phase_key(snapshot_path: Path) -> tuple[str, dict[str, object]]:
    found = diff.load_rows(snapshot_path).findings
    (key,) = [k for k in found if k.startswith("phase_mismatch:") and "NCT06482268" in k]
    return key, dict(found[key])


def test_accept_run_again_and_reopen_when_the_registry_changes(
    tmp_path: Path, subset: tuple[Path, Path]
) -> None:
    curated, replay = subset
    settings = fast_settings(tmp_path / "data", curated)
    runner = CliRunner()
    store = ["--data-dir", str(settings.data_dir)]

    first = run_pipeline(settings, RunRequest(replay_dir=replay))
    key, row = phase_key(first.snapshot_path)
    before = json.loads(runner.invoke(main, ["report", "--format", "json", *store]).output)
    assert before["summary"]["rows_out_of_date"] == 1
    corrections = runner.invoke(main, ["report", "--format", "corrections", *store]).output
    assert "NCT06482268" in corrections

    done = runner.invoke(
        main,
        ["accept", key, "--reason", "we print the planned phase", "--on", "2025-12-01", *store],
    )
    assert done.exit_code == 0, done.output
    assert f"added: {key} at registry value '{row['registry_value']}'" in done.output
    path = decisions.decisions_path(curated)
    (written,) = decisions.load_decisions(path).rows
    assert (written.key, written.registry_value) == (key, row["registry_value"])

    second = run_pipeline(settings, RunRequest(replay_dir=replay))
    assert second.decisions["accepted"] == 1 and second.decisions["path"] == str(path)
    md = runner.invoke(main, ["report", *store]).output
    assert "## Accepted by the authors" in md
    accepted_part = md.split("## Accepted by the authors")[1].split("\n## ")[0]
    assert "**accepted on 2025-12-01**: we print the planned phase" in accepted_part
    assert "NCT06482268" not in md.split("## Where the review differs")[1].split("\n## ")[0]
    assert "Rows where the review is out of date (errors and warnings): 0" in md
    doc = json.loads(runner.invoke(main, ["report", "--format", "json", *store]).output)
    assert doc["summary"]["rows_out_of_date"] == 0
    assert doc["summary"]["findings_accepted"] == 1
    (shown,) = [f for f in doc["findings"] if f["key"] == key]
    assert shown["accepted"] is True and shown["accepted_reason"] == "we print the planned phase"
    corrections = runner.invoke(main, ["report", "--format", "corrections", *store]).output
    assert "NCT06482268" not in corrections
    changes = runner.invoke(main, ["diff", *store]).output
    assert "**Accepted by the authors** (1):" in changes and "New findings" not in changes
    snapshots = str(settings.snapshots_dir)
    listed = runner.invoke(main, ["accept", "--list", "--mode", "replay", "--store", snapshots])
    assert f"{key} (2025-12-01): we print the planned phase -> accepted" in listed.output

    # the registry changes its phase: the finding is live again, saying what was accepted
    study = replay / "ctgov" / "NCT06482268.json"
    record = json.loads(study.read_text(encoding="utf-8"))
    record["protocolSection"]["designModule"]["phases"] = ["PHASE2"]
    study.write_text(json.dumps(record), encoding="utf-8")
    third = run_pipeline(settings, RunRequest(replay_dir=replay))
    assert third.decisions["accepted"] == 0 and third.decisions["reopened"] == 1
    _, now = phase_key(third.snapshot_path)
    assert now["accepted_on"] is None
    assert str(now["message"]).endswith(
        f"accepted on 2025-12-01 for '{row['registry_value']}'; "
        f"the registry now says '{now['registry_value']}'"
    )
    assert now["registry_value"] != row["registry_value"]
    md = runner.invoke(main, ["report", *store]).output
    assert "Rows where the review is out of date (errors and warnings): 1" in md
    assert "## Accepted by the authors" not in md
    changes = runner.invoke(main, ["diff", *store]).output
    assert "**Reopened (accepted, but the registry's value changed)** (1):" in changes
    relisted = runner.invoke(main, ["accept", "--list", *store]).output
    assert "-> reopened: accepted for" in relisted


def test_accept_refuses_an_unknown_key_naming_close_ones(
    tmp_path: Path, subset: tuple[Path, Path]
) -> None:
    curated, replay = subset
    settings = fast_settings(tmp_path / "data", curated)
    first = run_pipeline(settings, RunRequest(replay_dir=replay))
    key, _ = phase_key(first.snapshot_path)
    wrong = key.replace(":phase", ":phse")
    result = CliRunner().invoke(
        main,
        ["accept", wrong, "--reason", "x", "--snapshot", str(first.snapshot_path)],
    )
    assert result.exit_code == 4
    assert f"Error: no finding '{wrong}' in this snapshot; close keys: {key}" in result.output
    assert not decisions.decisions_path(curated).exists()
    # KEY without --reason is a usage error, not a silent empty reason
    result = CliRunner().invoke(main, ["accept", key, "--snapshot", str(first.snapshot_path)])
    assert result.exit_code == 2 and "--reason" in result.output


def test_a_broken_decisions_file_stops_the_run_before_anything_is_written(
    tmp_path: Path, subset: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_SYNC_EXPECTATIONS_DIR", str(EXPECTATIONS))
    curated, replay = subset
    settings = fast_settings(tmp_path / "data", curated)
    first = run_pipeline(settings, RunRequest(replay_dir=replay))
    stored = sorted(settings.snapshots_dir.iterdir())
    path = decisions.decisions_path(curated)
    path.write_text(
        HEADER + f"{PHASE_KEY},PHASE1,why,2025-12-01,\n{PHASE_KEY},PHASE1,again,2025-12-02,\n"
    )
    with pytest.raises(DecisionsError, match=r"decisions\.csv, line 3, column 'key'"):
        run_pipeline(settings, RunRequest(replay_dir=replay))
    assert sorted(settings.snapshots_dir.iterdir()) == stored
    assert first.snapshot_path.exists()
    # the CLI says it in one line
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--replay",
            str(replay),
            "--curated",
            str(curated),
            "--data-dir",
            str(settings.data_dir),
        ],
    )
    assert result.exit_code == 4
    assert result.output.strip().startswith(f"Error: {path}, line 3, column 'key': a second")
    assert len(result.output.strip().splitlines()) == 1


def test_an_unmatched_decision_is_kept_and_reported_as_a_note(
    tmp_path: Path, subset: tuple[Path, Path]
) -> None:
    curated, replay = subset
    settings = fast_settings(tmp_path / "data", curated)
    gone = "phase_mismatch:9:99:NCT00000000:phase"
    path = decisions.decisions_path(curated)
    path.write_text(HEADER + f"{gone},PHASE1,a row since deleted,2025-12-01,\n", encoding="utf-8")
    result = run_pipeline(settings, RunRequest(replay_dir=replay))
    note = f"decision for {gone} matches no finding this run"
    assert result.decisions["unmatched"] == [gone] and result.decisions["notes"] == [note]
    assert result.decisions["sha256"] is not None
    assert f"- Note: {note}" in result.report_markdown
    assert gone in path.read_text(encoding="utf-8")  # never dropped from the file


def test_runs_started_in_the_same_second_sort_by_start_not_by_random_tail(tmp_path: Path) -> None:
    # found by the test above: `diff` compared the wrong two of three quick runs 1 time in 6
    from registry_sync import snapshot

    store = tmp_path / "snapshots"
    for run_id, micros in (("20261125T000000Z-ffff", "000001"), ("20261125T000000Z-0000", "5")):
        meta = {"mode": "replay", "started_at": f"2026-11-25T00:00:00.{micros:0<6}+00:00"}
        data = snapshot.SnapshotData(run_id, meta, [], [], [], [], {}, {})
        snapshot.write_snapshot(store, data, accepted=True)
    assert [i.run_id for i in snapshot.list_snapshots(store)] == [
        "20261125T000000Z-ffff",
        "20261125T000000Z-0000",
    ]
    old, new = diff.two_newest(store)
    assert (old.stem, new.stem) == ("20261125T000000Z-ffff", "20261125T000000Z-0000")


def test_concurrent_writers_lose_no_decision(tmp_path: Path) -> None:
    """Two `accept`s at once: each reads the file under a lock, so neither overwrites the
    other's decision (without the lock, a read-modify-write race loses some)."""
    import threading

    path = tmp_path / "t.decisions.csv"
    keys = [f"phase_mismatch:2:{line}:NCT06482268:phase" for line in range(10, 40)]

    def write(key: str) -> None:
        decisions.write_decision(path, Decision(key, "PHASE1", "why", "2025-12-01"))

    threads = [threading.Thread(target=write, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(d.key for d in decisions.load_decisions(path).rows) == sorted(keys)
