"""The registry adapters registry-sync can fetch with, listed explicitly (no plugin machinery).

A registry of the registry table (`registry_table.REGISTRY_TABLE`) that has no adapter here ends
its trials with the outcome `unsupported`: reported, never skipped.
"""

from __future__ import annotations

from registry_sync.registries import anzctr, chictr, ctgov, ctr, ictrp, irct, jma, jrct, umin
from registry_sync.registries.base import Registry

ADAPTERS = (
    ctgov.REGISTRY,
    jrct.REGISTRY,
    chictr.REGISTRY,
    ctr.REGISTRY,
    umin.REGISTRY,
    anzctr.REGISTRY,
    irct.REGISTRY,
    jma.REGISTRY,  # retired: every trial `moved`, no request
    ictrp.REGISTRY,  # a source, not a home registry: asked for trials their registry could not give
)
REGISTRIES: dict[str, Registry] = {r.key: r for r in ADAPTERS}

__all__ = ["REGISTRIES", "Registry"]
