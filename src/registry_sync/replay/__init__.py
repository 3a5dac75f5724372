"""A loopback server that replays recorded registry payloads, with fault injection.

`registry-sync run --replay DIR` and the tests start a `ReplayServer` over a *replay directory*
and point the registries' base URLs at it, so the fetch code (the real `Http` client, the real
adapters) runs exactly as it does live; only the base URLs differ.

Layout of a replay directory: one folder per registry key (`ctgov/`, `jrct/`, ...). Each registry
has a small route table (`RegistryRoutes`) and an indexer that reads its folder once, when the
server is built, into one or more key spaces (ctgov: by NCT ID; UMIN would add receipt numbers).
An ID absent from the set is absent from the *set*, not from the registry. A payload under a
`reconstructed/` folder has origin RECONSTRUCTED, any other RECORDED (`ReplayServer.origin`).
Every registry key gets a base URL on the server; a key without routes answers 404, so a replay
run cannot reach a live registry.

Modules: `routes` (what a registry's route table is made of, and the request handlers see), one
module per registry (`ctgov`: its routes and their behaviour), `faults` (what to answer instead,
and the named kinds of `serve-replay --fault`), `server` (the HTTP server).
Adding a registry: a module building a `RegistryRoutes`, listed in `server.REGISTRY_ROUTES`;
tests may pass their own `routes=` to `ReplayServer`.
"""

from __future__ import annotations

from registry_sync.replay.faults import FAULT_KINDS, Fault, FaultSpec, parse_fault_spec
from registry_sync.replay.routes import (
    RegistryRoutes,
    ReplayRequest,
    ReplaySetError,
    Reply,
    Route,
    Store,
    StoredDoc,
)
from registry_sync.replay.server import (
    REGISTRY_ROUTES,
    RecordedRequest,
    ReplayPortInUse,
    ReplayServer,
)

__all__ = [
    "FAULT_KINDS",
    "REGISTRY_ROUTES",
    "Fault",
    "FaultSpec",
    "RecordedRequest",
    "RegistryRoutes",
    "ReplayPortInUse",
    "ReplayRequest",
    "ReplayServer",
    "ReplaySetError",
    "Reply",
    "Route",
    "Store",
    "StoredDoc",
    "parse_fault_spec",
]
