"""Bodies out of memory as soon as they are parsed: into the run's payload store, keeping only
their sha256 and length (`model.StoredBody`).

A 100,000-trial run receives about a hundred batch pages and a hundred thousand study extracts;
held until the snapshot is written they were most of its peak memory. The fetch stage hands
each job's payloads and exchanges here right after parsing them; the snapshot then names
bodies the store already holds (each `put` is one durable transaction, so a published snapshot
never names a body the store lacks; a run killed before publishing leaves bodies no snapshot
names, which `prune` collects).

Without a writer (`BodySink(None)`) nothing moves: bodies stay in memory, as tests of the
snapshot writer and an inline export want.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from registry_sync.model import Exchange, RawPayload, StoredBody
from registry_sync.payload_store import Writer


class BodySink:
    def __init__(self, writer: Writer | None) -> None:
        self.writer = writer

    def stash(
        self, payloads: Sequence[RawPayload], exchanges: Sequence[Exchange]
    ) -> tuple[list[RawPayload], list[Exchange]]:
        """The same payloads and exchanges, their bodies in the store (one transaction)."""
        if self.writer is None:
            return list(payloads), list(exchanges)
        keep_p = [p for p in payloads if p.stored is None and p.body]
        keep_e = [e for e in exchanges if e.stored is None and e.status is not None and e.body]
        bodies = {p.sha256: p.body for p in keep_p} | {e.sha256: e.body for e in keep_e}
        if bodies:
            self.writer.put(bodies.items())
        return [_slim_payload(p) for p in payloads], [_slim_exchange(e) for e in exchanges]


def _slim_payload(p: RawPayload) -> RawPayload:
    if p.stored is not None or not p.body:
        return p
    return replace(p, body=b"", stored=StoredBody(p.sha256, len(p.body)))


def _slim_exchange(e: Exchange) -> Exchange:
    if e.stored is not None or e.status is None or not e.body:
        return e
    return replace(e, body=b"", stored=StoredBody(e.sha256, len(e.body)))
