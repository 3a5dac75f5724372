"""The adapter contract every registry module fulfils.

A registry module ends with one `Registry` value. `fetch` does I/O only (through `Http`) and
returns one `FetchOutcome` per requested ID, never raising for a per-trial problem; `parse` is
pure and turns one `RawPayload` into a `RegistryRecord`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from registry_sync.http import Http
from registry_sync.model import Exchange, FetchOutcome, RawPayload, RegistryRecord
from registry_sync.registry_table import REGISTRY_TABLE, RegistryInfo

# fetch(ids, http, base_url) -> one outcome per id, in any order
FetchFn = Callable[[Sequence[str], Http, str], list[FetchOutcome]]
ParseFn = Callable[[RawPayload], RegistryRecord]
# data_timestamp(http, base_url) -> the registry's own "data as of" stamp, or None
DataTimestampFn = Callable[[Http, str], str | None]
# detect_block(exchange) -> why a 200 answer is a block (challenge, WAF page), or None
DetectBlockFn = Callable[[Exchange], str | None]
# requests_for(n) -> how many requests fetching n trials takes (for the politeness bound)
RequestsForFn = Callable[[int], int]


def one_per_trial(n: int) -> int:
    return n


@dataclass(frozen=True)
class Registry:
    key: str  # "ctgov": module name, fixture folder, snapshot column, CLI word
    name: str  # human name for reports
    id_pattern: re.Pattern[str]
    parser_version: int  # bump when parse() output changes; stored in every snapshot
    fetch: FetchFn
    parse: ParseFn
    data_timestamp: DataTimestampFn | None = None
    detect_block: DetectBlockFn | None = None  # pure; a block page served as 200
    requests_for: RequestsForFn = one_per_trial  # requests needed for n trials
    # redact(body) -> the body without personal data (contacts, investigators), kept instead
    redact: Callable[[bytes], bytes] | None = None
    # shares(ids, base_url) -> the IDs cut into the shares a run hands to one `fetch` call at a
    # time (None: all at once), parsing and storing each share's answers before holding more:
    # memory stays bounded at any table size
    shares: Callable[[Sequence[str], str], list[list[str]]] | None = None

    @property
    def info(self) -> RegistryInfo:
        """The registry's row of the registry table (hosts, politeness, terms)."""
        return REGISTRY_TABLE[self.key]
