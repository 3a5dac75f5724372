"""The fault matrix: every fault of `replay.matrix.MATRIX_FAULTS` against every registry of
`TARGETS`, through `run_pipeline` over the loopback server.

Per fault, one run faults every home registry at once (each answers for one trial whose real
page the replay set holds), and one run faults WHO ICTRP, asked for NCT04280705 while
ClinicalTrials.gov answers 403 (so ICTRP's copy is what the first run kept). Each faulted run
starts from a copy of a clean first run's data directory, on the same server (same base URLs,
so the run may carry values forward). The registries' own attempts apply (the registry table);
sleeps are recorded, not slept, so a retried fault costs no time.

Each cell must end in its expected typed outcome; a trial that is not `ok` keeps the first run's
values, marked stale; the run completes and says it is partial. The README's table "What each
fault yields" must equal what this matrix observed (`matrix.render_table`).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from helpers import BUNDLED_REPLAY, FAST_HTTP, ROOT, fast_settings
from registry_sync import coverage
from registry_sync.http import Http
from registry_sync.model import Outcome
from registry_sync.pipeline import RunResult, run_pipeline
from registry_sync.registry_table import registry_name
from registry_sync.replay import Fault, ReplayServer
from registry_sync.replay.matrix import MATRIX_FAULTS, MatrixFault, Observed, render_table
from registry_sync.snapshot_schema import _RECORD_VALUES


@dataclass(frozen=True)
class MatrixTarget:
    """One column: the registry whose answers are faulted, for which review trial."""

    key: str  # the registry (or source) faulted
    trial_id: str  # a trial whose real page the replay set holds
    all: str  # path prefix of every request to it
    first: str  # ... of a trial's first request (the search, where there is one)
    page: str  # ... of the trial's own page
    home_down: str = ""  # for a source (ICTRP): the home registry's prefix, kept blocked


TARGETS: tuple[MatrixTarget, ...] = (
    MatrixTarget(
        "ctgov",
        "NCT06482268",
        "/ctgov/api/v2/studies",
        "/ctgov/api/v2/studies",
        "/ctgov/api/v2/studies",
    ),
    MatrixTarget(
        "jrct", "jRCTs051180190", "/jrct/", "/jrct/latest-detail/", "/jrct/latest-detail/"
    ),
    MatrixTarget(
        "chictr", "ChiCTR2400084905", "/chictr/", "/chictr/searchproj.html", "/chictr/showproj.html"
    ),
    MatrixTarget(
        "ctr",
        "CTR20252821",
        "/ctr/",
        "/ctr/clinicaltrials.searchlist.dhtml",
        "/ctr/clinicaltrials.searchlistdetail.dhtml",
    ),
    MatrixTarget(
        "umin",
        "UMIN000027821",
        "/umin/",
        "/umin/cgi-open-bin/ctr/index.cgi",
        "/umin/cgi-open-bin/ctr/ctr_view.cgi",
    ),
    MatrixTarget("anzctr", "ACTRN12605000001695", "/anzctr/", "/anzctr/Trial/", "/anzctr/Trial/"),
    MatrixTarget("irct", "IRCT20100228003449N28", "/irct/", "/irct/search/", "/irct/trial/"),
    MatrixTarget(
        "ictrp",
        "NCT04280705",
        "/ictrp/Trial2.aspx",
        "/ictrp/Trial2.aspx",
        "/ictrp/Trial2.aspx",
        home_down="/ctgov/api/v2/studies",
    ),
)


def prefix(target: MatrixTarget, fault: MatrixFault) -> str:
    return {"all": target.all, "first": target.first, "page": target.page}[fault.on]


HEADER = "row,table,product,refs,cell_type,indication,sponsor,trial_id,phase,nation,start,note\n"
READ_TIMEOUT = 0.5
TIMEOUT_DELAY = 1.5  # longer than the read timeout: the client gives up first
HOMES = tuple(t for t in TARGETS if not t.home_down)
SOURCES = tuple(t for t in TARGETS if t.home_down)
README = ROOT / "README.md"
TABLE_START = "<!-- fault-matrix:start -->"
TABLE_END = "<!-- fault-matrix:end -->"


def review(path: Path, targets: tuple[MatrixTarget, ...]) -> Path:
    rows = [
        f"{i},9,{t.key} sample,,,,,{t.trial_id},II,XX,2020,test-only row: a real replayed page\n"
        for i, t in enumerate(targets, 1)
    ]
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return path


def query(result: RunResult, sql: str, *args: object) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{result.snapshot_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def values(result: RunResult, trial_id: str) -> dict[str, Any] | None:
    rows = query(result, "select * from records where trial_id = ?", trial_id)
    return {k: rows[0][k] for k in _RECORD_VALUES} if rows else None


class Group:
    """One group of the matrix: its server, review, clean first run and faulted runs."""

    def __init__(self, tmp: Path, targets: tuple[MatrixTarget, ...]) -> None:
        self.tmp = tmp
        self.targets = targets
        self.sleeps: list[float] = []
        self.server = ReplayServer(BUNDLED_REPLAY)
        self.server.start()
        http = replace(FAST_HTTP, max_retries=None, read_timeout=READ_TIMEOUT)
        curated = review(tmp / "review.csv", targets)
        self.settings = replace(
            fast_settings(tmp / "clean", curated, **self.server.base_urls()), http=http
        )
        self.first = self.run(self.settings.data_dir)

    def base_faults(self) -> None:
        for t in self.targets:
            if t.home_down:
                self.server.add_fault(t.home_down, Fault(status=403), times=None)

    def run(self, data_dir: Path) -> RunResult:
        self.base_faults()
        http = Http(self.settings.http, sleep=self.sleeps.append)
        try:
            return run_pipeline(replace(self.settings, data_dir=data_dir), http=http)
        finally:
            http.close()
            self.server.clear_faults()

    def faulted(self, fault: MatrixFault) -> RunResult:
        data_dir = self.tmp / fault.name
        shutil.copytree(self.settings.data_dir, data_dir)
        kind = fault.fault
        if fault.kind == "timeout":
            kind = replace(kind, delay=TIMEOUT_DELAY)
        for t in self.targets:
            self.server.add_fault(prefix(t, fault), kind, times=fault.times)
        return self.run(data_dir)

    def observe(self, second: RunResult, target: MatrixTarget) -> Observed:
        [row] = query(second, "select * from outcomes where trial_id = ?", target.trial_id)
        outcome = Outcome(row["outcome"])
        detail = str(row["detail"])
        if target.home_down:  # what WHO ICTRP answered, which the trial's detail says
            said = re.search(r"WHO ICTRP: (\w+)", detail)
            outcome = Outcome(said[1]) if said else Outcome.OK
        carried = bool(row["stale"]) and row["carried_from"] == self.first.run_id
        kept = values(second, target.trial_id) == values(self.first, target.trial_id)
        partial = second.partial and outcome is not Outcome.OK  # this fault makes it partial
        return Observed(outcome, carried and kept, partial, detail)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, str], Any]]:
    """(fault, registry) -> (Observed, clean run, faulted run, group)."""
    cells: dict[tuple[str, str], Any] = {}
    groups = [
        Group(tmp_path_factory.mktemp("homes"), HOMES),
        Group(tmp_path_factory.mktemp("sources"), SOURCES),
    ]
    try:
        for group in groups:
            for fault in MATRIX_FAULTS:
                second = group.faulted(fault)
                for t in group.targets:
                    cells[(fault.name, t.key)] = (group.observe(second, t), second, group)
        yield cells
    finally:
        for group in groups:
            group.server.stop()
    assert [g.server.errors for g in groups] == [[], []]


@pytest.mark.parametrize("target", TARGETS, ids=[t.key for t in TARGETS])
@pytest.mark.parametrize("fault", MATRIX_FAULTS, ids=[f.name for f in MATRIX_FAULTS])
def test_fault_ends_in_its_typed_outcome_and_keeps_the_last_good_values(
    matrix: dict[tuple[str, str], Any], fault: MatrixFault, target: MatrixTarget
) -> None:
    observed, second, group = matrix[(fault.name, target.key)]
    assert not group.first.partial or target.home_down  # the clean run was clean
    assert values(group.first, target.trial_id) is not None  # ... and found the values
    assert observed.outcome is fault.outcome_for(target.key), observed.detail
    assert second.accepted and second.snapshot_path.exists()  # the run completed
    if fault.outcome_for(target.key) is Outcome.OK and not target.home_down:
        row = values(second, target.trial_id)
        assert row == values(group.first, target.trial_id)  # fresh, the same values
        [state] = query(second, "select stale from outcomes where trial_id = ?", target.trial_id)
        assert state["stale"] == 0
    else:
        assert observed.carried, observed.detail  # the first run's values, marked stale
        if coverage.makes_partial(observed.outcome):  # the registry could not be checked
            assert second.partial and second.exit_code == 1
            if not target.home_down:  # the console's one line names the registry
                assert registry_name(target.key) in second.partial_because


def test_429_retry_after_is_honoured_by_registries_that_retry(
    matrix: dict[tuple[str, str], Any],
) -> None:
    """Every registry tried more than once waited the 1 s Retry-After (recorded, not slept);
    none waited longer."""
    _, second, group = matrix[("429", "ctgov")]
    retry_after = query(second, "select count(*) as n from requests where status = 429")
    assert retry_after[0]["n"] >= len(HOMES)
    assert 1.0 in group.sleeps and max(group.sleeps) <= group.settings.http.retry_after_cap


def test_readme_table_is_what_the_matrix_observed(
    matrix: dict[tuple[str, str], Any], update_golden: bool
) -> None:
    observed = {cell: value[0] for cell, value in matrix.items()}
    table = render_table(observed, [t.key for t in TARGETS])
    text = README.read_text(encoding="utf-8")
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    if update_golden:
        README.write_text(f"{text[:start]}\n{table}{text[end:]}", encoding="utf-8")
        return
    assert text[start:end] == f"\n{table}", f"README table is stale; it should read:\n{table}"
