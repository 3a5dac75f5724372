"""Settings in one place, read from the environment only when asked (never at import time)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from registry_sync import __version__
from registry_sync.registry_table import REGISTRY_TABLE

# Registry key -> what a live run talks to, and seconds between requests to one host.
DEFAULT_BASE_URLS: dict[str, str] = {k: r.default_base_url for k, r in REGISTRY_TABLE.items()}
DEFAULT_MIN_INTERVAL: dict[str, float] = {k: r.min_interval for k, r in REGISTRY_TABLE.items()}

CONTACT = "https://github.com/registry-sync/registry-sync"


def user_agent(contact: str = CONTACT) -> str:
    """Honest User-Agent: who we are, and how a registry operator can reach whoever runs us."""
    return f"registry-sync/{__version__} (+{contact}; review reconciliation)"


@dataclass(frozen=True)
class HttpSettings:
    user_agent: str = field(default_factory=user_agent)
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_retries: int | None = None  # None: each registry's `attempts` from the registry table
    backoff_base: float = 1.0  # seconds; attempt n waits base * 2**n, capped
    backoff_cap: float = 60.0
    retry_after_cap: float = 300.0  # never sleep longer than this on a Retry-After
    min_interval: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIN_INTERVAL))
    max_bytes: Mapping[str, int] = field(default_factory=dict)  # per registry; else the table's


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    curated_path: Path = Path("data/curated/review_2025_hpsc.csv")
    # several reviews in one run (see `reviews.py`); empty = just `curated_path`
    curated_paths: tuple[Path, ...] = ()
    base_urls: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_BASE_URLS))
    http: HttpSettings = field(default_factory=HttpSettings)
    expectations_dir: Path = Path("expectations")
    fetch_workers: int | None = None  # registries fetched at once; None = all side by side
    history: bool = False  # read ClinicalTrials.gov version history for the verdicts (slow)
    lock_wait: float = 10.0  # seconds a run waits for another run on the same data dir

    @property
    def tables(self) -> tuple[Path, ...]:
        """The reviews' tables a run checks: `curated_paths`, else `curated_path` alone."""
        return self.curated_paths or (self.curated_path,)

    def with_tables(self, paths: Sequence[Path]) -> Settings:
        """Settings for these tables (the first is also `curated_path`); none: unchanged."""
        if not paths:
            return self
        return replace(self, curated_path=paths[0], curated_paths=tuple(paths))

    @property
    def snapshots_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def cache_dir(self) -> Path:
        """Immutable payloads kept between runs (ClinicalTrials.gov record versions)."""
        return self.data_dir / "cache"

    def base_url(self, registry: str) -> str:
        return self.base_urls.get(registry, DEFAULT_BASE_URLS.get(registry, "")).rstrip("/")

    def with_base_urls(self, overrides: Mapping[str, str]) -> Settings:
        return replace(self, base_urls={**self.base_urls, **overrides})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, /, **overrides: object) -> Settings:
        """Defaults, then REGISTRY_SYNC_* variables, then explicit keyword overrides."""
        env = os.environ if env is None else env
        base_urls = dict(DEFAULT_BASE_URLS)
        for key in DEFAULT_BASE_URLS:
            value = env.get(f"REGISTRY_SYNC_{key.upper()}_URL")
            if value:
                base_urls[key] = value
        kwargs: dict[str, object] = {"base_urls": base_urls}
        if env.get("REGISTRY_SYNC_DATA_DIR"):
            kwargs["data_dir"] = Path(env["REGISTRY_SYNC_DATA_DIR"])
        if env.get("REGISTRY_SYNC_CURATED"):  # several tables: separated like PATH (os.pathsep)
            paths = tuple(Path(p) for p in env["REGISTRY_SYNC_CURATED"].split(os.pathsep) if p)
            kwargs["curated_path"] = paths[0]
            kwargs["curated_paths"] = paths if len(paths) > 1 else ()
        if env.get("REGISTRY_SYNC_FETCH_WORKERS"):
            kwargs["fetch_workers"] = max(1, int(env["REGISTRY_SYNC_FETCH_WORKERS"]))
        if env.get("REGISTRY_SYNC_HISTORY", "").strip().lower() in {"1", "true", "yes", "on"}:
            kwargs["history"] = True
        if env.get("REGISTRY_SYNC_LOCK_WAIT"):
            kwargs["lock_wait"] = max(0.0, float(env["REGISTRY_SYNC_LOCK_WAIT"]))
        if env.get("REGISTRY_SYNC_EXPECTATIONS_DIR"):
            kwargs["expectations_dir"] = Path(env["REGISTRY_SYNC_EXPECTATIONS_DIR"])
        http_kwargs: dict[str, object] = {}
        if env.get("REGISTRY_SYNC_CONTACT"):
            http_kwargs["user_agent"] = user_agent(env["REGISTRY_SYNC_CONTACT"])
        if env.get("REGISTRY_SYNC_USER_AGENT"):
            http_kwargs["user_agent"] = env["REGISTRY_SYNC_USER_AGENT"]
        if env.get("REGISTRY_SYNC_MAX_RETRIES"):
            http_kwargs["max_retries"] = int(env["REGISTRY_SYNC_MAX_RETRIES"])
        if http_kwargs:
            kwargs["http"] = HttpSettings(**http_kwargs)  # type: ignore[arg-type]
        kwargs.update(overrides)
        return cls(**kwargs)  # type: ignore[arg-type]
