"""Against the real ClinicalTrials.gov API: only with `pytest --live`, never in CI.

Checks what the offline tests cannot: that the live API still answers our batched query with
our `fields` list, in the shape the parser expects.
"""

from __future__ import annotations

import pytest

from registry_sync.http import Http
from registry_sync.model import Outcome
from registry_sync.registries import ctgov
from registry_sync.settings import DEFAULT_BASE_URLS

pytestmark = pytest.mark.live


def test_live_ctgov_batch_answers_and_parses_review_trials() -> None:
    http = Http()
    try:
        ids = ["NCT04802733", "NCT06482268", "NCT00000000"]
        outcomes = {o.trial_id: o for o in ctgov.fetch(ids, http, DEFAULT_BASE_URLS["ctgov"])}
        stamp = ctgov.data_timestamp(http, DEFAULT_BASE_URLS["ctgov"])
    finally:
        http.close()
    assert outcomes["NCT00000000"].outcome is Outcome.NOT_FOUND
    for trial_id in ids[:2]:
        payload = outcomes[trial_id].payload
        assert outcomes[trial_id].outcome is Outcome.OK and payload is not None
        record = ctgov.parse(payload)
        assert record.status is not None and record.phases and record.start is not None
    assert stamp is not None
