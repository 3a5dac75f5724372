"""`registry-sync browse`: Datasette metadata that describes every table and column of the
snapshot schema, with facets and a sort; the real whole-review replay snapshot served by
Datasette in-process (its ASGI test client, no port)."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import json
from collections.abc import Mapping
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from helpers import BUNDLED_CURATED, BUNDLED_REPLAY, EXPECTATIONS, fast_settings
from registry_sync import browse
from registry_sync.cli import main
from registry_sync.pipeline import RunRequest, RunResult, run_pipeline
from registry_sync.snapshot_schema import TABLES


def test_every_schema_column_has_a_description() -> None:
    assert browse.undescribed() == []
    meta = browse.build_metadata({"run_id": "r1", "mode": "replay"}, "r1")
    tables = meta["databases"]["r1"]["tables"]
    assert set(tables) == {t.name for t in TABLES}
    for t in TABLES:
        assert tables[t.name]["description"], t.name
        assert list(tables[t.name]["columns"]) == list(t.columns)
        assert all(tables[t.name]["columns"].values()), t.name


def test_no_description_for_a_column_the_schema_lacks() -> None:
    columns = {t.name: set(t.columns) for t in TABLES}
    for name, (_, described) in browse.DESCRIPTIONS.items():
        assert set(described) <= columns[name], f"{name}: {set(described) - columns[name]}"


def test_a_new_schema_column_without_description_is_named() -> None:
    findings = next(t for t in TABLES if t.name == "findings")
    grown = dataclasses.replace(findings, columns={**findings.columns, "product_score": str})
    assert browse.undescribed([grown]) == ["findings.product_score"]


def test_facets_sort_and_title() -> None:
    meta = browse.build_metadata(
        {
            "run_id": "20261125T030000Z-3fa2",
            "mode": "live",
            "curated_path": "data/curated/review_2025_hpsc.csv",
            "partial": True,
            "counts": {"rows": 105, "trials": 103},
        },
        "db",
    )
    assert meta["title"] == "registry-sync: review_2025_hpsc, run 20261125T030000Z-3fa2 (live)"
    assert "partial" in meta["description"] and "105 rows" in meta["description"]
    tables = meta["databases"]["db"]["tables"]
    assert tables["findings"]["facets"] == ["kind", "severity", "verdict", "table"]
    assert tables["findings"]["sort"] == "table"
    assert tables["outcomes"]["facets"][:2] == ["outcome", "registry"]
    assert tables["records"]["facets"][0] == "registry"
    assert tables["curated"]["label_column"] == "product"
    assert 'order by f."table", f.line' in meta["databases"]["db"]["queries"]["what_to_fix"]["sql"]


@pytest.fixture(scope="module")
def replay_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """The whole review against the bundled replay set: a real snapshot to browse."""
    data = tmp_path_factory.mktemp("browse-data")
    return run_pipeline(fast_settings(data), RunRequest(replay_dir=BUNDLED_REPLAY))


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("REGISTRY_SYNC_EXPECTATIONS_DIR", str(EXPECTATIONS))
    monkeypatch.setenv("REGISTRY_SYNC_CURATED", str(BUNDLED_CURATED))
    return CliRunner()


def data_dir_of(run: RunResult) -> Path:
    return run.snapshot_path.parent.parent


def metadata_via_cli(runner: CliRunner, run: RunResult, *args: str) -> Path:
    result = runner.invoke(
        main, ["browse", "--data-dir", str(data_dir_of(run)), "--metadata-only", *args]
    )
    assert result.exit_code == 0, result.output
    return Path(result.output.strip())


async def fetch(snapshot: Path, metadata: Mapping[str, Any], *paths: str) -> list[Any]:
    from datasette.app import Datasette

    ds = Datasette(immutables=[str(snapshot)], metadata=dict(metadata))
    await ds.invoke_startup()
    return [await ds.client.get(p) for p in paths]


def test_datasette_shows_the_findings_with_facets_and_descriptions(
    runner: CliRunner, replay_run: RunResult
) -> None:
    path = metadata_via_cli(runner, replay_run, "--mode", "replay")
    assert path.name == f"{replay_run.run_id}.datasette.json"
    metadata = json.loads(path.read_text(encoding="utf-8"))
    db = replay_run.run_id
    page, facets, fix, home = asyncio.run(
        fetch(
            replay_run.snapshot_path,
            metadata,
            f"/{db}/findings",
            f"/{db}/findings.json?_size=0",
            f"/{db}/what_to_fix.json?_shape=array",
            "/",
        )
    )
    assert page.status_code == 200
    html = page.text
    for column in ("kind", "severity", "verdict", "table"):
        assert f'id="facet-{column}"' in html, column
    assert "What to check or fix in the review" in html
    assert "Stable key from night to night" in html  # a column description
    assert "registry-sync: review_2025_hpsc" in home.text

    counted = {f["value"]: f["count"] for f in facets.json()["facet_results"]["kind"]["results"]}
    assert counted == replay_run.findings
    assert facets.json()["human_description_en"] == "sorted by table"

    rows = fix.json()
    assert rows and {r["severity"] for r in rows} <= {"error", "warning"}
    assert [r["table"] for r in rows] == sorted(r["table"] for r in rows)
    hs001 = next(r for r in rows if r["trial_id"] == "NCT04945018")
    assert (hs001["table"], hs001["row"], hs001["product"]) == (1, 24, "HS-001")


def test_browse_without_datasette_says_how_to_install(
    runner: CliRunner, replay_run: RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def no_datasette(name: str, *args: Any, **kwargs: Any) -> ModuleSpec | None:
        return None if name == "datasette" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", no_datasette)
    result = runner.invoke(main, ["browse", "--snapshot", str(replay_run.snapshot_path)])
    assert result.exit_code == 4
    assert result.output.strip().splitlines() == [
        "Error: Datasette is not installed: pip install 'registry-sync[browse]' "
        "(or pip install 'datasette>=0.65')"
    ]


def test_browse_picks_the_mode_asked_for(runner: CliRunner, replay_run: RunResult) -> None:
    store = replay_run.snapshot_path.parent
    result = runner.invoke(
        main, ["browse", "--store", str(store), "--mode", "live", "--metadata-only"]
    )
    assert result.exit_code == 4
    assert f"Error: no live snapshot in {store} yet: run `registry-sync run`" in result.output
    latest = metadata_via_cli(runner, replay_run)  # no mode: `latest`, here the replay run
    assert latest.name == f"{replay_run.run_id}.datasette.json"


def test_browse_snapshot_and_mode_together_is_a_usage_error(
    runner: CliRunner, replay_run: RunResult
) -> None:
    result = runner.invoke(
        main, ["browse", "--snapshot", str(replay_run.snapshot_path), "--mode", "live"]
    )
    assert result.exit_code == 2
    assert "give --snapshot or --mode, not both" in result.output


def test_browse_names_a_file_that_is_not_a_snapshot(runner: CliRunner, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.sqlite"
    bogus.write_text("hello", encoding="utf-8")
    result = runner.invoke(main, ["browse", "--snapshot", str(bogus), "--metadata-only"])
    assert result.exit_code == 4
    assert "not a registry-sync snapshot" in result.output
