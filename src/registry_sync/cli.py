"""`registry-sync`: a thin Click shell over the library. Messages, not tracebacks (unless --debug).

Exit codes: 0 complete; 1 partial (a registry could not be checked: down, blocked, or an answer
not understood; see `coverage`); 2 usage error; 3 quality gate failed (records rejected, or the
review's table broke its suite); 4 other error (and `verify`: a problem found). A finding about
the review (a malformed ID) is not partial. A reader that stops reading (`| head`) is not an
error: the command stops quietly.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from registry_sync import report as report_mod
from registry_sync import snapshot
from registry_sync.errors import RegistrySyncError, ValidationFailed
from registry_sync.escape import console
from registry_sync.registry_table import ALL_KEYS, TRIAL_REGISTRIES
from registry_sync.settings import Settings

if TYPE_CHECKING:
    from registry_sync.pipeline import RunResult

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_GATE, EXIT_ERROR = 0, 1, 2, 3, 4

F = TypeVar("F", bound=Callable[..., Any])


def _friendly_errors(fn: F) -> F:
    """Turn our errors into one clear line and an exit code; --debug shows the traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:  # the reader stopped reading (`| head`): not an error
            _quiet_stdout()
            ctx.exit(EXIT_OK)
        except click.ClickException:  # usage errors: Click prints them and exits 2
            raise
        except (RegistrySyncError, ValueError, OSError, sqlite3.Error) as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"Error: {console(exc)}", err=True)
            ctx.exit(EXIT_GATE if isinstance(exc, ValidationFailed) else EXIT_ERROR)
        except Exception as exc:  # a bug: still one line, the traceback behind --debug
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(
                f"Error: unexpected {type(exc).__name__}: {console(exc)} "
                "(run with --debug for the traceback, and please report it)",
                err=True,
            )
            ctx.exit(EXIT_ERROR)

    return wrapper  # type: ignore[return-value]


def _quiet_stdout() -> None:
    """Point standard output at /dev/null so that the interpreter's last flush into the
    closed pipe does not print 'Exception ignored ... BrokenPipeError' on the way out."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's capture)
        pass


def _settings(data_dir: Path | None, curated: Path | Sequence[Path] | None) -> Settings:
    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    settings = Settings.from_env(**overrides)
    if isinstance(curated, Path):
        return settings.with_tables([curated])
    return settings.with_tables(curated or ())


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where snapshots/ and reports/ live (default: data, or $REGISTRY_SYNC_DATA_DIR).",
)


text_option = click.option(
    "--text",
    "text",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The review's text (txt, md, html or pdf): list where its prose and its table disagree "
    "(default: the `text` its .review.toml names, if any).",
)


def snapshot_choice_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--snapshot PATH`, or the latest of `--mode` in `--store`: for commands that read one."""
    for option in (
        click.option(
            "--store",
            type=click.Path(path_type=Path, file_okay=False),
            default=None,
            help="The snapshot store (default: <data-dir>/snapshots).",
        ),
        click.option(
            "--mode",
            type=click.Choice(("live", "replay", "custom")),
            default=None,
            help="The latest snapshot of this kind of run (default: the latest of any kind).",
        ),
        click.option(
            "--snapshot",
            "snapshot_path",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="This snapshot instead of a latest one.",
        ),
    ):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="registry-sync")
def main(debug: bool) -> None:
    """Reconcile a review's table of clinical trials with the trial registries."""


def _count(n: int, word: str) -> str:
    """`1 row`, `2 rows`."""
    return f"{n} {word}" + ("" if n == 1 else "s")


@main.command()
@click.option(
    "--registry",
    "registries",
    multiple=True,
    type=click.Choice(TRIAL_REGISTRIES),
    help="Only trials of this registry.",
)
@click.option("--ids", "ids", multiple=True, help="Only these trial IDs (repeat, or comma-join).")
@click.option(
    "--replay",
    "replay_dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="Serve recorded payloads from DIR on loopback instead of the live registries.",
)
@click.option(
    "--curated",
    type=click.Path(path_type=Path),
    multiple=True,
    help="A review's table (default: data/curated/review_2025_hpsc.csv); repeat for several "
    "reviews in one run: each trial is fetched once, each review gets its own report.",
)
@click.option(
    "--base-url",
    "base_urls",
    multiple=True,
    metavar="KEY=URL",
    help="A registry's base URL, e.g. ctgov=http://127.0.0.1:8123/ctgov/api/v2 "
    "(overrides REGISTRY_SYNC_<KEY>_URL).",
)
@click.option(
    "--no-progress",
    "--quiet",
    "-q",
    "no_progress",
    is_flag=True,
    help="No progress bars (shown only when standard error is a terminal).",
)
@click.option(
    "--history",
    is_flag=True,
    default=False,
    help="Read ClinicalTrials.gov version history (internal API, cached) to tell 'wrong at "
    "publication' from 'changed since' (or REGISTRY_SYNC_HISTORY=1).",
)
@click.option(
    "--full",
    is_flag=True,
    default=False,
    help="Fetch every ClinicalTrials.gov record, even when only those updated since the last "
    "run's data timestamp could be asked for (an incremental night).",
)
@text_option
@data_dir_option
@_friendly_errors
def run(
    registries: tuple[str, ...],
    ids: tuple[str, ...],
    replay_dir: Path | None,
    curated: tuple[Path, ...],
    base_urls: tuple[str, ...],
    no_progress: bool,
    history: bool,
    full: bool,
    text: Path | None,
    data_dir: Path | None,
) -> None:
    """Fetch, reconcile, gate and snapshot; print a summary and where the report is."""
    from registry_sync import progress
    from registry_sync.pipeline import RunRequest, run_pipeline

    split_ids = tuple(i.strip() for chunk in ids for i in chunk.split(",") if i.strip())
    request = RunRequest(
        registries=registries, ids=split_ids, replay_dir=replay_dir, full=full, text=text
    )
    settings = _settings(data_dir, curated).with_base_urls(_parse_base_urls(base_urls))
    if history:
        settings = dataclasses.replace(settings, history=True)
    if progress.wanted(disabled=no_progress):
        with progress.FetchProgress() as bars:
            result = run_pipeline(settings, request, on_progress=bars)
    else:
        result = run_pipeline(settings, request)
    try:
        _run_summary(result)
    except BrokenPipeError:  # the reader stopped reading; the run's code still counts
        _quiet_stdout()
    sys.exit(result.exit_code)


def _incremental_line(inc: Mapping[str, Any]) -> str:
    """`ClinicalTrials.gov: incremental since <date>: n changed, m unchanged (...)`, or why the
    night was a full fetch; nothing when the run asked no ClinicalTrials.gov trial."""
    if not inc:
        return ""
    if inc.get("mode") != "incremental":
        return f"ClinicalTrials.gov: full fetch ({console(str(inc.get('why', '')))})"
    return (
        f"ClinicalTrials.gov: incremental since {inc.get('since')}: {inc.get('changed', 0)} "
        f"changed, {inc.get('unchanged', 0)} unchanged ({inc.get('reused', 0)} reused from the "
        f"last snapshot, not stale), {inc.get('fetched_in_full', 0)} fetched in full"
    )


def _run_summary(result: RunResult) -> None:
    """What a run did, a line each; `partial:` names each registry not checked, and why."""
    click.echo(
        f"run {result.run_id} ({result.mode}): {'PARTIAL' if result.partial else 'complete'}"
    )
    if result.partial:
        click.echo(f"partial: {console(result.partial_because)}")
    if line := _incremental_line(result.incremental):
        click.echo(line)
    click.echo("trials: " + ", ".join(f"{k} {v}" for k, v in sorted(result.outcomes.items())))
    click.echo(
        "findings: " + (", ".join(f"{k} {v}" for k, v in sorted(result.findings.items())) or "none")
    )
    for r in result.reviews:  # several reviews: one line each
        click.echo(
            f"review {console(r['name'])}: {_count(r['rows'], 'row')}, "
            f"{_count(r['findings'], 'finding')}, "
            f"{_count(r.get('rows_out_of_date', 0), 'row')} out of date"
            + (f"; report {r['report']}" if r.get("report") else "")
        )
    for line in result.notices:  # a registry's changed pages, quarantined records: one line each
        click.echo(line)
    d = result.decisions
    if d.get("count"):
        click.echo(
            f"decisions: {d['accepted']} accepted, {d['reopened']} reopened, "
            f"{len(d['unmatched'])} matching no finding ({d['path']})"
        )
    if not result.accepted:
        click.echo(f"quality gate: REJECTED: {result.validation['records'].get('summary', '')}")
    t = result.timing
    if t:
        click.echo(
            f"time: fetch {t['fetch_s']:.1f} s; politeness lower bound for a live run "
            f"{t['politeness_lower_bound_s']:.0f} s ({t['politeness_bound_because']})"
            + (f"; asked WHO ICTRP for {t['ictrp_asked']}" if t.get("ictrp_asked") else "")
        )
    if (
        result.mode != "replay"
        and result.outcomes.get("registry_down")
        and not result.outcomes.get("ok")
    ):
        click.echo(
            "hint: no registry answered (no network?); the offline demo replays recorded "
            "payloads: registry-sync run --replay data/replay"
        )
    if result.cleaned:
        click.echo(_cleaned_line(result.cleaned))
    click.echo(f"snapshot: {result.snapshot_path}")
    click.echo(f"report: {result.report_paths['md']}")
    click.echo(f"html report: {result.report_paths['html']}")


def _parse_base_urls(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, url = pair.partition("=")
        if not sep or key not in ALL_KEYS or not url.startswith(("http://", "https://")):
            raise click.BadParameter(
                f"{pair!r}: expected KEY=URL with KEY one of {', '.join(ALL_KEYS)}",
                param_hint="--base-url",
            )
        out[key] = url
    return out


def _cleaned_line(paths: tuple[Path, ...]) -> str:
    return f"cleaned {len(paths)} file(s) left by killed runs: " + ", ".join(p.name for p in paths)


@main.command()
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.option(
    "--clean", is_flag=True, help="Remove what killed runs left now (unless a run is going)."
)
@_friendly_errors
def snapshots(data_dir: Path | None, as_json: bool, clean: bool) -> None:
    """List the snapshots, oldest first; `*` marks latest, `rejected` the gate's rejects."""
    from registry_sync import runlock

    settings = _settings(data_dir, None)
    store = settings.snapshots_dir
    if clean and store.exists():
        with runlock.hold(settings.data_dir, wait=0):
            cleaned = runlock.clean_leftovers(store, settings.reports_dir)
        if cleaned:
            click.echo(_cleaned_line(cleaned), err=True)
    latest = snapshot.latest_snapshot(store)
    unreadable: list[tuple[Path, str]] = []
    infos = snapshot.list_snapshots(store, unreadable=unreadable) if store.exists() else []
    leftovers = snapshot.leftover_temp_files(store, settings.reports_dir) if store.exists() else []
    if leftovers:
        holder = runlock.held_by(settings.data_dir)
        click.echo(
            f"{len(leftovers)} file(s) left by killed runs (not snapshots): "
            + ", ".join(p.name for p in leftovers)
            + (
                f"; a run is going ({holder.describe()}): some may be its own"
                if holder is not None
                else "; the next run removes them (or `snapshots --clean` now)"
            ),
            err=True,
        )
    for path, why in unreadable:  # listed, never fatal: the others are still shown
        if as_json:
            click.echo(json.dumps({"path": str(path), "unreadable": console(why)}))
        else:
            why = why.removeprefix(f"{path}: ")
            click.echo(f"! {path}: unreadable, not listed ({console(why)})")
    if not infos:
        click.echo(f"no {'readable ' if unreadable else ''}snapshots in {store}")
        return
    for i in infos:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "run_id": i.run_id,
                        "path": str(i.path),
                        "mode": i.mode,
                        "accepted": i.accepted,
                        "partial": i.partial,
                        "latest": i.path == latest,
                        "counts": i.counts,
                    }
                )
            )
            continue
        mark = "*" if latest is not None and i.path == latest else " "
        state = ("partial" if i.partial else "complete") if i.accepted else "rejected"
        outcomes = i.counts.get("outcomes", {}) if isinstance(i.counts, dict) else {}
        click.echo(
            f"{mark} {i.run_id}  {i.mode:<6}  {state:<8}  "
            f"ok {outcomes.get('ok', 0)}/{i.counts.get('trials', 0)}  {i.path}"
        )


@main.command()
@click.argument("snapshot_path", required=False, type=click.Path(path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(report_mod.FORMATS), default="md", show_default=True
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
@click.option(
    "--review",
    "review_name",
    default=None,
    help="The report of this review (a run of several reviews; its table's file stem).",
)
@data_dir_option
@_friendly_errors
def report(
    snapshot_path: Path | None,
    fmt: str,
    output: Path | None,
    review_name: str | None,
    data_dir: Path | None,
) -> None:
    """Render the drift report of SNAPSHOT (default: the latest); for a run of several
    reviews, of the one named by --review."""
    from registry_sync import reviews

    if snapshot_path is None:
        store = _settings(data_dir, None).snapshots_dir
        snapshot_path = snapshot.latest_snapshot(store)
        if snapshot_path is None:
            raise RegistrySyncError(f"no snapshot in {store} yet: run `registry-sync run` first")
        _restore_reports(_settings(data_dir, None))
    meta = snapshot.read_meta(snapshot_path)
    name = reviews.pick(meta, review_name)
    if name is None:
        raise click.UsageError(
            f"run {meta.get('run_id')} checked several reviews; pick one with --review "
            f"({', '.join(reviews.names(meta))})"
        )
    text = report_mod.render(reviews.load_review_content(snapshot_path, name), fmt)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")


def _restore_reports(settings: Settings) -> None:
    """The latest snapshot's report files, rendered again when a killed run left them missing."""
    from registry_sync import runlock

    store, reports_dir = settings.snapshots_dir, settings.reports_dir
    written = runlock.restore_reports_if_free(settings.data_dir, store, reports_dir)
    if written:
        click.echo("regenerated missing reports: " + ", ".join(str(p) for p in written), err=True)


@main.command("diff")
@click.argument("old", required=False, type=click.Path(path_type=Path))
@click.argument("new", required=False, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(("md", "json")), default="md", show_default=True)
@data_dir_option
@_friendly_errors
def diff_command(old: Path | None, new: Path | None, fmt: str, data_dir: Path | None) -> None:
    """What changed between two snapshots (default: the two newest of the latest's kind)."""
    from registry_sync import diff

    if (old is None) != (new is None):
        raise click.UsageError("give both OLD and NEW, or neither")
    if old is None or new is None:
        old, new = diff.two_newest(_settings(data_dir, None).snapshots_dir)
    from registry_sync import reviews

    changes = diff.diff_snapshots(reviews.diff_rows(old), reviews.diff_rows(new))
    if fmt == "json":
        click.echo(diff.diff_json(changes), nl=False)
    else:
        click.echo("\n".join(diff.render_diff_markdown(changes)))


@main.command()
@click.argument("key", required=False)
@click.option("--reason", default=None, help="Why the review keeps its value (required).")
@click.option(
    "--on", "on", default=None, metavar="YYYY-MM-DD", help="Date decided (default: today)."
)
@click.option("--by", "by", default="", help="Who decided (initials or name).")
@snapshot_choice_options
@click.option(
    "--curated",
    type=click.Path(path_type=Path),
    default=None,
    help="The review's table whose decisions file to write (default: the snapshot's).",
)
@click.option("--list", "as_list", is_flag=True, help="List the decisions and what each does.")
@data_dir_option
@_friendly_errors
def accept(
    key: str | None,
    reason: str | None,
    on: str | None,
    by: str,
    snapshot_path: Path | None,
    mode: str | None,
    store: Path | None,
    curated: Path | None,
    as_list: bool,
    data_dir: Path | None,
) -> None:
    """Accept finding KEY: the review keeps its value, and reports show it as accepted until
    the registry's value changes. Written to <curated stem>.decisions.csv beside the table."""
    from datetime import date

    from registry_sync import decisions, diff, reviews

    if snapshot_path is not None and mode is not None:
        raise click.UsageError("give --snapshot or --mode, not both")
    path = snapshot_path or _latest_of(store or _settings(data_dir, None).snapshots_dir, mode)
    rows = diff.load_rows(path)
    meta = snapshot.read_meta(path)
    if len(reviews.names(meta)) > 1:  # a run of several reviews: the one whose table is named
        if curated is None:
            tables = ", ".join(str(e.get("curated_path")) for e in meta["reviews"])
            raise click.UsageError(
                f"run {meta.get('run_id')} checked several reviews; name the table whose "
                f"decisions to write with --curated ({tables})"
            )
        rows = reviews.review_rows(path, str(reviews.pick(meta, reviews.review_name(curated))))
    if curated is None:
        curated = Path(str(meta.get("curated_path")))
    where = decisions.decisions_path(curated)
    if as_list:
        _list_decisions(where, rows)
        return
    if key is None or reason is None:
        raise click.UsageError("give KEY and --reason (or --list)")
    made = decisions.decide(rows.findings, key, reason, on or date.today().isoformat(), by)
    had = key in decisions.load_decisions(where).by_key()
    written = decisions.write_decision(where, made)
    click.echo(
        f"{'replaced' if had else 'added'}: {console(made.key)} at registry value "
        f"'{console(made.registry_value)}', accepted on {made.decided_on}"
        + (f" by {console(made.decided_by)}" if made.decided_by else "")
        + f": {console(made.reason)}"
    )
    click.echo(f"wrote {where} ({len(written.rows)} decision(s)); the next run shows it accepted")


def _list_decisions(where: Path, rows: Any) -> None:
    """Each decision in the file and what it does to the snapshot's findings."""
    from registry_sync import decisions

    listed = decisions.load_decisions(where).rows
    click.echo(f"{where}: {len(listed)} decision(s); against run {rows.run_id}:")
    for d in listed:
        click.echo(
            f"  {console(d.key)} ({console(d.decided_on)}): {console(d.reason)} -> "
            f"{console(decisions.status(d, rows.findings))}"
        )


@main.command()
@snapshot_choice_options
@click.option("--port", type=int, default=8001, show_default=True, help="Port on 127.0.0.1.")
@click.option(
    "--metadata-only",
    is_flag=True,
    help="Write the Datasette metadata, print its path, serve nothing (Datasette not needed).",
)
@data_dir_option
@_friendly_errors
def browse(
    mode: str | None,
    store: Path | None,
    snapshot_path: Path | None,
    port: int,
    metadata_only: bool,
    data_dir: Path | None,
) -> None:
    """Open a snapshot in Datasette, read-only, with table and column descriptions and facets."""
    import importlib.util
    import os

    from registry_sync import browse as browse_mod

    if snapshot_path is not None and mode is not None:
        raise click.UsageError("give --snapshot or --mode, not both")
    settings = _settings(data_dir, None)
    path = snapshot_path or _latest_of(store or settings.snapshots_dir, mode)
    path = path.resolve()  # `latest.sqlite` is a link: serve (and name) the run's own file
    db_name = browse_mod.database_name(path)
    metadata = browse_mod.build_metadata(snapshot.read_meta(path), db_name)
    out = settings.reports_dir / f"{path.stem}.datasette.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if metadata_only:
        click.echo(str(out))
        return
    if importlib.util.find_spec("datasette") is None:
        raise RegistrySyncError(
            "Datasette is not installed: pip install 'registry-sync[browse]' "
            "(or pip install 'datasette>=0.65')"
        )
    command = [sys.executable, "-m", "datasette", "serve", "--immutable", str(path)]
    command += ["--metadata", str(out), "--host", "127.0.0.1", "--port", str(port)]
    click.echo(f"browsing {path} at http://127.0.0.1:{port}/{db_name} (Ctrl-C to stop)", err=True)
    sys.stderr.flush()
    os.execv(sys.executable, command)  # Datasette takes this process over: one PID to stop


def _latest_of(store: Path, mode: str | None) -> Path:
    """The newest accepted snapshot of `mode` (`custom`: of any custom base URLs) or of any."""
    if mode is None:
        found = snapshot.latest_snapshot(store)
    elif mode == "custom":
        infos = snapshot.list_snapshots(store, include_rejected=False) if store.exists() else []
        found = next((i.path for i in reversed(infos) if i.mode == "custom"), None)
    else:
        found = snapshot.latest_of_mode(store, mode) if store.exists() else None
    if found is None:
        hint = "registry-sync run --replay data/replay" if mode == "replay" else "registry-sync run"
        raise RegistrySyncError(f"no {mode or 'accepted'} snapshot in {store} yet: run `{hint}`")
    return found


@main.command()
@click.option(
    "--curated",
    type=click.Path(path_type=Path),
    multiple=True,
    help="The review's table to check (default: the bundled one); repeat for several.",
)
@click.option(
    "--max-lines",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Print at most N findings of each kind, then how many more (0: all).",
)
@text_option
@_friendly_errors
def check(curated: tuple[Path, ...], max_lines: int, text: Path | None) -> None:
    """Load and gate the review's table alone, and list what it shows without any registry
    (with `--text`, or the `text` its .review.toml names, where its prose and table disagree);
    with several tables, each in turn (exit non-zero when any fails its gate)."""
    from registry_sync import reviews

    settings = _settings(None, curated)
    tables = reviews.check_tables(settings.tables)
    if text is not None and len(tables) > 1:
        raise click.UsageError(
            "--text names one review's text; with several tables, name each review's text "
            "in its .review.toml"
        )
    failed = False
    for i, path in enumerate(tables):
        if i:
            click.echo("")
        failed |= not _check_table(settings, path, max_lines, text)
    if failed:
        sys.exit(EXIT_GATE)


def _check_table(settings: Settings, path: Path, max_lines: int, text: Path | None) -> bool:
    """One table of `check`: its rows, its gate, its findings; False when the gate failed."""
    from registry_sync import frames, validate
    from registry_sync.curated import bounded_lines, load_curated, printable
    from registry_sync.reconcile import reconcile
    from registry_sync.review_meta import load_review_meta
    from registry_sync.textsource import text_conflicts

    table = load_curated(path)
    if text is None:
        meta = load_review_meta(path)
        text = meta.text_path if meta else None
    conflicts = text_conflicts(table.rows, text)  # read before printing: a bad file is one line
    gate = validate.validate_curated(frames.curated_frame(table.rows), settings.expectations_dir)
    by_registry: dict[str, int] = {}
    for r in table.rows:
        by_registry[r.registry or "malformed"] = by_registry.get(r.registry or "malformed", 0) + 1
    click.echo(
        f"{path}: {len(table.rows)} rows; "
        + ", ".join(f"{k} {v}" for k, v in sorted(by_registry.items()))
    )
    click.echo(printable(f"quality gate: {gate.summary()}", 2000))
    if not gate.success:  # the table cannot be used: its findings would add nothing
        click.echo("findings not listed: fix the gate's critical failures first")
        return False
    rows = {r.line: r.row for r in table.rows}
    lines = (
        (
            f.kind,
            f"Table {f.table} "
            + (f"row {rows[f.line]}" if rows.get(f.line) else f"CSV line {f.line}")
            + f", {f.trial_id}: {f.kind} ({f.severity}): {f.message}",
        )
        for f in [*reconcile(table.rows, {}), *conflicts]
    )
    for line in bounded_lines(lines, max_lines):
        click.echo(line)
    return True


@main.command()
@click.argument("review", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the draft table here (CSV) and list the IDs found; default: the CSV to stdout.",
)
@_friendly_errors
def extract(review: Path, output: Path | None) -> None:
    """Find every registry ID in a review's text (txt, md, html, pdf) and draft its table."""
    from registry_sync.curated import printable
    from registry_sync.textdraft import draft_rows, render_draft_csv
    from registry_sync.textsource import extract_file

    found = extract_file(review)
    csv_text = render_draft_csv(draft_rows(found))
    if output is None:
        click.echo(csv_text, nl=False)
        return
    output.write_text(csv_text, encoding="utf-8")
    ids = {m.trial_id for m in found.mentions}
    click.echo(
        f"{review}: {len(found.mentions)} mentions of {len(ids)} IDs, {len(found.claims)} claims; "
        f"draft written to {output}"
    )
    for m in found.mentions:
        note = f" ({m.note})" if m.note else ""
        click.echo(printable(f"{m.trial_id}: {m.place.describe()}{note}"))
    for c in found.claims:
        click.echo(printable(f"{c.trial_id}: {c.field} {c.value!r} ({c.place.describe()})", 200))


@main.command("serve-replay")
@click.argument("replay_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--port", type=int, default=8123, show_default=True)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="PATH_PREFIX=KIND[:N]",
    help="Answer requests whose path starts with PATH_PREFIX with a fault (only the first N "
    "if given), e.g. /ctgov/api/v2/studies=503:2. KIND: 503, 429, timeout, drop, truncate, "
    "403, 405, 404, empty, html-block, malformed, oversize, redirect-login, redirect-host, "
    "notfound-shell, other-trial (README: What each fault yields). Repeatable; tried in order.",
)
@_friendly_errors
def serve_replay(replay_dir: Path, port: int, faults: tuple[str, ...]) -> None:
    """Serve a replay set on 127.0.0.1 until interrupted (for pointing REGISTRY_SYNC_*_URL at).

    Every registry gets a URL; one the set has no routes for answers 404, never the live site.
    """
    from registry_sync.replay import ReplayServer, parse_fault_spec

    try:
        specs = [parse_fault_spec(spec) for spec in faults]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from exc
    server = ReplayServer(replay_dir, port=port)
    for spec in specs:
        server.add_fault(spec.prefix, spec.fault, times=spec.times)
    with server:  # stdout: only the export lines, so that `eval "$(...)"` works
        for key, url in server.base_urls().items():
            click.echo(f"export REGISTRY_SYNC_{key.upper()}_URL={url}")
        click.echo(f"serving {replay_dir} on {server.url} (Ctrl-C to stop)", err=True)
        rules = server.faults
        click.echo("faults: " + (f"{len(rules)}" if rules else "none"), err=True)
        for rule in rules:
            click.echo(f"  {rule.describe()}", err=True)
        server.wait()


@main.command()
@click.argument("snapshot_path", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--all", "check_all", is_flag=True, help="Every snapshot in the store.")
@data_dir_option
@_friendly_errors
def verify(snapshot_path: Path | None, check_all: bool, data_dir: Path | None) -> None:
    """Check SNAPSHOT (default: the latest) or --all: its integrity, and that every payload
    it names is kept and hashes to its sha256. One line per problem; exit 0 clean, 4 not."""
    from registry_sync import retention

    store = _settings(data_dir, None).snapshots_dir
    if check_all:
        count, problems = retention.verify_all(store)
    else:
        path = snapshot_path or snapshot.latest_snapshot(store)
        if path is None:
            raise RegistrySyncError(f"no snapshot in {store} yet: run `registry-sync run` first")
        count, problems = 1, retention.verify(path)
    for problem in problems:
        click.echo(console(problem.line()))
    click.echo(f"verified {count} snapshot(s): {len(problems)} problem(s)", err=True)
    if problems:
        sys.exit(EXIT_ERROR)


@main.command()
@click.option("--keep", type=int, required=True, help="Snapshots kept of each kind (newest).")
@click.option("--dry-run", is_flag=True, help="Say what would go; delete nothing.")
@data_dir_option
@_friendly_errors
def prune(keep: int, dry_run: bool, data_dir: Path | None) -> None:
    """Delete all but the newest KEEP snapshots of each kind (and any a pointer names), their
    reports, then the payloads no remaining snapshot names. Takes the run lock."""
    from registry_sync import retention, runlock

    settings = _settings(data_dir, None)
    store = settings.snapshots_dir
    if keep < 1:
        raise click.BadParameter("must be at least 1", param_hint="--keep")
    if dry_run:
        doomed, kept = retention.plan(store, keep)
        for path in doomed:
            click.echo(f"would delete {path}")
        click.echo(f"would delete {len(doomed)} snapshot(s), keep {len(kept)}", err=True)
        return
    with runlock.hold(settings.data_dir, wait=settings.lock_wait):
        runlock.clean_leftovers(store, settings.reports_dir)
        result = retention.prune(store, keep, settings.reports_dir)
    for path in result.deleted:
        click.echo(f"deleted {path}")
    click.echo(
        f"deleted {len(result.deleted)} snapshot(s), kept {len(result.kept)}; "
        f"{result.bodies_deleted} payload(s) collected; "
        f"{result.bytes_reclaimed / 1e6:,.1f} MB reclaimed",
        err=True,
    )
    if result.skipped_collect:
        click.echo(f"payloads not collected: {console(result.skipped_collect)}", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
