"""A loopback server that replays recorded registry payloads, with fault injection.

`registry-sync run --replay DIR` and the tests start a `ReplayServer` over a *replay directory*
and point the registries' base URLs at it, so the fetch code (the real `Http` client, the real
adapters) runs exactly as it does live; only the base URLs differ.

Layout of a replay directory: one folder per registry key (`ctgov/`, `jrct/`, ...). Each registry
has a small route table (`RegistryRoutes`) and an indexer that reads its folder once, when the
server is built. An ID absent from the set is absent from the *set*, not from the registry.

Modules: `routes` (what a registry's route table is made of), one module per registry
(`ctgov`: its routes and their behaviour), `server` (the HTTP server and fault injection).
Adding a registry: a module building a `RegistryRoutes`, listed in `server.REGISTRY_ROUTES`.
"""

from __future__ import annotations

from registry_sync.replay.routes import RegistryRoutes, ReplaySetError
from registry_sync.replay.server import REGISTRY_ROUTES, Fault, RecordedRequest, ReplayServer

__all__ = [
    "REGISTRY_ROUTES",
    "Fault",
    "RecordedRequest",
    "RegistryRoutes",
    "ReplayServer",
    "ReplaySetError",
]
