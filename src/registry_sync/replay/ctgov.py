"""ClinicalTrials.gov replay routes (`/ctgov/api/v2`), behaving as REGISTRIES.md §1 says the
API does:

- `GET /studies?filter.ids=A,B|C&pageSize=N&pageToken=T&countTotal=true&format=json`: IDs comma-
  or pipe-separated; studies in the set are returned in request order, absent IDs are simply
  absent; `pageSize` defaults to 10 and is coerced down to 1000; `nextPageToken` (opaque) while
  more remain; `totalCount` on the first page only, and only with `countTotal=true`; a
  `pageToken` must come with the same other parameters (`countTotal` aside), else 400. Without
  `filter.ids` every study in the set is listed, by NCT ID. `fields` is honoured for dotted
  paths and top-level keys (`protocolSection.statusModule`, `hasResults`): each study carries only
  those branches, a list's items projected one by one (`...locations.country` keeps each
  location's country alone), as the API returns them; without `fields`, whole documents.
  `filter.advanced` is honoured for one expression only,
  `AREA[LastUpdatePostDate]RANGE[<from>,<to>]` (dates `yyyy-MM-dd`, or `MIN`/`MAX`; the API's
  documented example): a study is served when its `lastUpdatePostDateStruct.date` is in the
  range, inclusive (a `yyyy-MM` date counts as the month's first day); any other expression is
  a 400. Any other parameter is a 400, so a fetcher that relies on a
  filter the replay does not implement fails loudly instead of seeing the wrong studies.
- `GET /studies/{nctId}`: the recorded bytes, or 404 `text/plain`.
- `GET /version`: `ctgov/version.json` when the set has one, else 404.

The set is every `*.json` under `ctgov/` (recursively) that is a single study document (has
`protocolSection.identificationModule.nctId`); list pages and `version.json` are skipped. One key
space, `nct_id`; a document under `ctgov/reconstructed/` has origin RECONSTRUCTED.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from registry_sync.replay.routes import (
    KeySpaces,
    RegistryRoutes,
    ReplayRequest,
    ReplaySetError,
    Reply,
    Route,
    Store,
    StoredDoc,
    add_doc,
    check_params,
    load_doc,
    text_reply,
)

CTGOV_MAX_PAGE_SIZE = 1000
CTGOV_DEFAULT_PAGE_SIZE = 10
_CTGOV_LIST_PARAMS = frozenset(
    {"filter.ids", "filter.advanced", "pageSize", "pageToken", "countTotal", "fields"}
)
_LAST_UPDATE_RANGE = re.compile(
    r"AREA\[LastUpdatePostDate\]RANGE\[\s*(MIN|\d{4}-\d{2}-\d{2})\s*,\s*(MAX|\d{4}-\d{2}-\d{2})\s*\]"
)
_CTGOV_STUDY_PARAMS = frozenset({"fields", "markupFormat"})


NCT_ID = "nct_id"  # the one key space


def index_ctgov(folder: Path) -> KeySpaces:
    """Every single-study JSON document under `folder`, by NCT ID; other JSON is skipped."""
    docs: dict[str, StoredDoc] = {}
    for path in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
        raw = path.read_bytes()
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise ReplaySetError(f"{path}: not valid JSON ({exc}); fix or remove it") from exc
        nct_id = _nct_id(doc)
        if nct_id is not None:
            add_doc(docs, nct_id, load_doc(folder, path, raw))
    return {NCT_ID: docs}


def _nct_id(doc: object) -> str | None:
    ident = doc.get("protocolSection", {}) if isinstance(doc, dict) else {}
    ident = ident.get("identificationModule", {}) if isinstance(ident, dict) else {}
    nct_id = ident.get("nctId") if isinstance(ident, dict) else None
    return nct_id.upper() if isinstance(nct_id, str) else None


def _ctgov_study(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
    if problem := check_params(request.query, _CTGOV_STUDY_PARAMS):
        return problem
    doc = store.lookup(NCT_ID, match["nct"].upper())
    if doc is None:
        return text_reply(404, f"Study not found: {match['nct']}")
    return Reply(200, doc.body)


def _ctgov_version(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
    path = store.folder / "version.json"
    if not path.is_file():
        return text_reply(404, "this replay set has no ctgov/version.json")
    return Reply(200, path.read_bytes())


def _ctgov_studies(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
    query = request.query
    if problem := check_params(query, _CTGOV_LIST_PARAMS):
        return problem
    size_text = query.get("pageSize", str(CTGOV_DEFAULT_PAGE_SIZE))
    if not size_text.isdigit() or int(size_text) < 1:
        return text_reply(400, f"pageSize must be a positive integer, got {size_text!r}")
    size = min(int(size_text), CTGOV_MAX_PAGE_SIZE)
    signature = _signature(query)
    offset = 0
    if "pageToken" in query:
        decoded = _decode_token(query["pageToken"], signature)
        if decoded is None:
            return text_reply(400, "pageToken does not belong to these parameters")
        offset = decoded
    ids = _ctgov_ids(store, query.get("filter.ids"))
    docs = store.space(NCT_ID)
    if "filter.advanced" in query:
        bounds = _LAST_UPDATE_RANGE.fullmatch(query["filter.advanced"].strip())
        if bounds is None:
            message = "the replay server implements filter.advanced only as "
            message += "AREA[LastUpdatePostDate]RANGE[<from>,<to>]"
            return text_reply(400, message)
        ids = [i for i in ids if _in_range(docs[i].body, bounds[1], bounds[2])]
    page = ids[offset : offset + size]
    fields = query.get("fields")
    bodies = [docs[i].body.strip() if not fields else projected(docs[i].body, fields) for i in page]
    parts = [b'{"studies":[', b",".join(bodies), b"]"]
    if "pageToken" not in query and query.get("countTotal", "").lower() == "true":
        parts.append(b',"totalCount":' + str(len(ids)).encode())
    if offset + size < len(ids):
        token = _encode_token(offset + size, signature)
        parts.append(b',"nextPageToken":' + json.dumps(token).encode())
    parts.append(b"}")
    return Reply(200, b"".join(parts))


@functools.lru_cache(maxsize=200_000)
def projected(body: bytes, fields: str) -> bytes:
    """A study document cut down to `fields` (comma-separated dotted paths), as JSON."""
    doc = json.loads(body)
    out: dict[str, Any] = {}
    for path in (f.strip() for f in fields.split(",")):
        if path:
            _take(doc, out, path.split("."))
    return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()


def _take(source: Any, into: dict[str, Any], parts: list[str]) -> None:
    if not isinstance(source, dict) or parts[0] not in source:
        return
    key, value = parts[0], source[parts[0]]
    if len(parts) == 1:
        into[key] = value
    elif isinstance(value, list):
        items = into.setdefault(key, [{} for _ in value])
        for item, kept in zip(value, items, strict=False):
            _take(item, kept, parts[1:])
    elif isinstance(value, dict):
        _take(value, into.setdefault(key, {}), parts[1:])


def _ctgov_ids(store: Store, filter_ids: str | None) -> list[str]:
    docs = store.space(NCT_ID)
    if filter_ids is None:
        return sorted(docs)
    wanted = [part.strip().upper() for part in re.split(r"[,|]", filter_ids)]
    return [i for i in dict.fromkeys(wanted) if i in docs]


def _in_range(body: bytes, low: str, high: str) -> bool:
    """The study's `lastUpdatePostDateStruct.date` lies in [low, high] (`MIN`/`MAX` open)."""
    day = _last_update(body)
    if day is None:
        return False
    return (low == "MIN" or day >= low) and (high == "MAX" or day <= high)


@functools.lru_cache(maxsize=200_000)
def _last_update(body: bytes) -> str | None:
    doc = json.loads(body)
    status = doc.get("protocolSection", {}).get("statusModule", {})
    raw = status.get("lastUpdatePostDateStruct", {}).get("date")
    if not isinstance(raw, str) or not raw:
        return None
    return raw if len(raw) == 10 else f"{raw[:7]}-01"


def _signature(query: Mapping[str, str]) -> str:
    same = sorted((k, v) for k, v in query.items() if k not in {"pageToken", "countTotal"})
    return hashlib.sha256(json.dumps(same).encode()).hexdigest()[:16]


def _encode_token(offset: int, signature: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{signature}".encode()).decode().rstrip("=")


def _decode_token(token: str, signature: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except ValueError:
        return None
    offset, _, sig = text.partition(":")
    return int(offset) if offset.isdigit() and sig == signature else None


ROUTES = RegistryRoutes(
    key="ctgov",
    base_path="/ctgov/api/v2",
    index=index_ctgov,
    routes=(
        Route(re.compile(r"/studies"), _ctgov_studies),
        Route(re.compile(r"/studies/(?P<nct>(?:NCT|nct)\d{8})"), _ctgov_study),
        Route(re.compile(r"/version"), _ctgov_version),
    ),
    spaces=(NCT_ID,),
    normalize=str.upper,
)
