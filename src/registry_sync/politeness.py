"""The least time a live run must take to stay polite (pure): computed, never slept.

Per registry: the requests its adapter needs for the trials asked (`Registry.requests_for`),
plus one robots.txt per host where the registry table says to read it, spaced by the table's
interval. Registries run side by side, so the run's bound is the slowest registry's. The WHO
ICTRP fallback is not in it (who needs it is only known after the fetch), nor the time the
registries take to answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from registry_sync.registries import REGISTRIES
from registry_sync.registry_table import REGISTRY_TABLE, registry_name


@dataclass(frozen=True)
class Bound:
    key: str
    requests: int
    interval: float

    @property
    def seconds(self) -> float:
        return max(self.requests - 1, 0) * self.interval

    def describe(self) -> str:
        return f"{registry_name(self.key)}: {self.requests} requests {self.interval:g} s apart"


def bounds(by_registry: Mapping[str, Sequence[str]]) -> list[Bound]:
    """One bound per registry fetched (registries without an adapter send nothing)."""
    out = []
    for key, ids in by_registry.items():
        adapter, info = REGISTRIES.get(key), REGISTRY_TABLE.get(key)
        if adapter is None or info is None or not ids:
            continue
        requests = adapter.requests_for(len(ids))
        if requests and info.honour_robots:
            requests += 1  # robots.txt of its host, once per run
        out.append(Bound(key, requests, info.min_interval))
    return out


def lower_bound(by_registry: Mapping[str, Sequence[str]]) -> tuple[float, str]:
    """Seconds a live run needs at least, and why (the slowest registry)."""
    found = bounds(by_registry)
    if not found:
        return 0.0, "nothing to fetch"
    slowest = max(found, key=lambda b: b.seconds)
    return slowest.seconds, slowest.describe()
