"""The registry table is the one list of registries: everything else reads it, and the README's
table of registry policies is the table itself."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import ROOT
from registry_sync import ids, settings
from registry_sync.registry_table import (
    ALL_KEYS,
    MB,
    REGISTRY_TABLE,
    TRIAL_REGISTRIES,
    RegistryInfo,
    ictrp_id,
    registry_name,
)
from registry_sync.replay import ReplayServer

SRC = ROOT / "src" / "registry_sync"


def readme_row(r: RegistryInfo) -> str:
    """How the README prints one registry's policy."""
    ictrp = "—" if r.ictrp_id_prefix is None else f"`{r.ictrp_id_prefix}<ID>`"
    return (
        f"| `{r.key}` | {r.name} | {r.default_base_url} | {r.min_interval:g} | {r.attempts} | "
        f"{r.task_retries} | {'kept' if r.keep_cookies else 'dropped'} | "
        f"{'yes' if r.stop_after_block else 'no'} | "
        f"{'obeyed' if r.honour_robots else 'not read'} | {r.max_page_bytes // MB} MB | "
        f"{ictrp} | {r.terms} |"
    )


def test_readme_prints_the_registry_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for info in REGISTRY_TABLE.values():
        assert readme_row(info) in readme, f"README's registry table is out of date: {info.key}"


def test_every_registry_has_a_politeness_interval_and_a_host() -> None:
    for info in REGISTRY_TABLE.values():
        assert info.min_interval >= 1.0, info.key  # jma once had none
        assert info.attempts >= 1 and info.task_retries >= 0
        assert info.default_base_url.startswith("https://"), info.key
        assert info.default_base_url.split("/")[2] in info.hosts, info.key


def test_ids_and_settings_read_the_table() -> None:
    assert set(ids.ID_PATTERNS) == set(TRIAL_REGISTRIES)
    assert set(settings.DEFAULT_BASE_URLS) == set(ALL_KEYS)
    assert settings.DEFAULT_MIN_INTERVAL["jma"] == REGISTRY_TABLE["jma"].min_interval
    assert "ictrp" in ALL_KEYS and "ictrp" not in TRIAL_REGISTRIES  # a source, not a home


def test_ictrp_id_forms() -> None:
    assert ictrp_id("jrct", "jRCTs031190226") == "JPRN-jRCTs031190226"
    assert ictrp_id("chictr", "ChiCTR2000029949") == "ChiCTR2000029949"
    assert ictrp_id("ctr", "CTR20252821") is None  # ICTRP does not carry CTR
    assert registry_name("ctr") == "China Drug Trials (CTR)" and registry_name(None) == "?"


def test_replay_server_answers_for_every_key(tmp_path: Path) -> None:
    (tmp_path / "ctgov").mkdir()
    with ReplayServer(tmp_path) as server:
        assert set(server.base_urls()) == set(ALL_KEYS)


def test_no_other_module_lists_registries() -> None:
    """A second list of registry keys anywhere in src/ is a defect waiting to drift."""
    keys = [k for k in ALL_KEYS if k != "ctgov"]
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "registry_table.py":
            continue
        text = path.read_text(encoding="utf-8")
        quoted = {k for k in keys if re.search(rf"[\"']{k}[\"']", text)}
        if len(quoted) >= 3:
            offenders.append(f"{path.relative_to(SRC)}: {sorted(quoted)}")
    assert offenders == []
