"""JMACCT-CTR (日本医師会 治験促進センター 臨床試験登録システム), IDs `JMA-IIA` + 5 digits: retired.

Source: none any more. "令和5年3月に日本医薬情報センター臨床試験情報(JapicCTI)及び日本医師会
臨床試験登録システム(JMACCT-CTR)の登録情報をjRCTに統合" (MHLW 臨床研究部会 material, 2023-12,
https://wic-net.com/material/document/13197/3; also https://wic-net.com/material/document/16517/32).
The old site (`dbcentre3.jmacct.med.or.jp/jmactr/…`, the registry table's host) is treated as
gone: this module never sends a request to it. REGISTRIES.md §8 has the notes.

Primary ID: `JMA-IIA` + 5 digits (`ids.ID_PATTERNS["jma"]`). Update signal: none (retired).
Terms: the registry table's row ("Retired: merged into jRCT in March 2023").

Every well-formed ID ends `moved` with no new home: no documented mapping from JMA-IIA IDs to
jRCT IDs was found. The pipeline then links it to a jRCT record of the same run that lists it
among its secondary IDs (`fallback.link_moved`), or asks WHO ICTRP for `JPRN-JMA-IIA…` (the
registry table's ICTRP prefix). A malformed ID ends `id_malformed`. `parse` always raises
`ParseError`: nothing is ever fetched, so there is nothing to parse.

Labels verified on a real page: none (no JMACCT page survives). From notes only: everything.
"""

from __future__ import annotations

from collections.abc import Sequence

from registry_sync import ids
from registry_sync.errors import ParseError
from registry_sync.http import Http
from registry_sync.model import FetchOutcome, Outcome, RawPayload, RegistryRecord
from registry_sync.registries.base import Registry
from registry_sync.registry_table import REGISTRY_TABLE

KEY = "jma"
MOVED_DETAIL = (
    "JMACCT-CTR was merged into jRCT in March 2023 (MHLW 2023-12); no jRCT record listing "
    "{} is known in this run"
)


def fetch(trial_ids: Sequence[str], http: Http, base_url: str) -> list[FetchOutcome]:
    """One outcome per distinct normalized ID, with no request sent: `moved` or `id_malformed`."""
    outcomes = []
    for trial_id in dict.fromkeys(ids.normalize_id(t) for t in trial_ids):
        if ids.ID_PATTERNS[KEY].fullmatch(trial_id):
            outcomes.append(
                FetchOutcome(KEY, trial_id, Outcome.MOVED, MOVED_DETAIL.format(trial_id))
            )
        else:
            detail = f"not a {REGISTRY_TABLE[KEY].name} ID"
            outcomes.append(FetchOutcome(KEY, trial_id, Outcome.ID_MALFORMED, detail))
    return outcomes


def parse(payload: RawPayload) -> RegistryRecord:
    """Always a ParseError: JMACCT pages are never fetched, so no payload can be one."""
    hint = "JMACCT-CTR is retired (merged into jRCT in March 2023); its pages are not parsed"
    raise ParseError(KEY, payload.trial_id, payload.url, hint)


REGISTRY = Registry(
    key=KEY,
    name=REGISTRY_TABLE[KEY].name,
    id_pattern=ids.ID_PATTERNS[KEY],
    parser_version=1,
    fetch=fetch,
    parse=parse,
    requests_for=lambda n: 0,  # nothing is ever sent
)
