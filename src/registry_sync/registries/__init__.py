"""The registries registry-sync can fetch from, listed explicitly (no plugin machinery).

A registry whose IDs `ids.py` recognises but which is not listed here ends its trials with the
outcome `unsupported`: reported, never skipped.
"""

from __future__ import annotations

from registry_sync.registries import ctgov
from registry_sync.registries.base import Registry

REGISTRIES: dict[str, Registry] = {r.key: r for r in (ctgov.REGISTRY,)}

REGISTRY_NAMES: dict[str, str] = {
    "ctgov": "ClinicalTrials.gov",
    "jrct": "jRCT",
    "chictr": "ChiCTR",
    "ctr": "China Drug Trials (CTR)",
    "umin": "UMIN-CTR",
    "anzctr": "ANZCTR",
    "irct": "IRCT",
    "jma": "JMACCT (JMA-IIA)",
    "ictrp": "WHO ICTRP",
}

__all__ = ["REGISTRIES", "REGISTRY_NAMES", "Registry"]
