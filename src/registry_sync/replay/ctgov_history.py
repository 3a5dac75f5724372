"""ClinicalTrials.gov version-history replay routes (`/ctgov/api/int`), as `history.py` calls
the internal API:

- `GET /studies/{nctId}?history=true`: the version list, `<folder>/**/{nctId}.history.json`;
- `GET /studies/{nctId}/history/{n}`: one version, `<folder>/**/{nctId}.v{n}.json`;
- anything else, or a file the set lacks: 404 `text/plain`.

**Not in the default route table** (`server.REGISTRY_ROUTES`): no real recorded history payload
exists in our samples (`/work/shared/registry-samples/SOURCES.md` lists none), so the bundled
replay set serves no history and a `--replay --history` run records the history as
unavailable. Tests add these routes (`ReplayServer(root, routes=(*REGISTRY_ROUTES, ROUTES))`)
over **synthetic** payloads derived from a real study document, labelled so in their folder.
The folder is `ctgov_history/` of the replay directory.
"""

from __future__ import annotations

import re
from pathlib import Path

from registry_sync.replay.routes import (
    KeySpaces,
    RegistryRoutes,
    ReplayRequest,
    Reply,
    Route,
    Store,
    StoredDoc,
    add_doc,
    load_doc,
    text_reply,
)

LISTS = "history_list"  # NCT ID -> version list
VERSIONS = "history_version"  # "NCT…/n" -> version document
_FILE = re.compile(r"(?P<nct>NCT\d{8})\.(?:(?P<list>history)|v(?P<n>\d+))\.json", re.I)


def index_history(folder: Path) -> KeySpaces:
    lists: dict[str, StoredDoc] = {}
    versions: dict[str, StoredDoc] = {}
    for path in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
        match = _FILE.fullmatch(path.name)
        if match is None:
            continue
        nct = match["nct"].upper()
        if match["list"]:
            add_doc(lists, nct, load_doc(folder, path))
        else:
            add_doc(versions, f"{nct}/{int(match['n'])}", load_doc(folder, path))
    return {LISTS: lists, VERSIONS: versions}


def _version_list(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
    if request.query.get("history") != "true":
        return text_reply(404, "this replay set serves only history=true under /api/int")
    doc = store.lookup(LISTS, match["nct"].upper())
    if doc is None:
        return text_reply(404, f"no version history for {match['nct']} in this replay set")
    return Reply(200, doc.body)


def _version(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
    key = f"{match['nct'].upper()}/{int(match['n'])}"
    doc = store.lookup(VERSIONS, key)
    if doc is None:
        return text_reply(404, f"no version {match['n']} of {match['nct']} in this replay set")
    return Reply(200, doc.body)


ROUTES = RegistryRoutes(
    key="ctgov_history",
    base_path="/ctgov/api/int",
    index=index_history,
    routes=(
        Route(re.compile(r"/studies/(?P<nct>(?:NCT|nct)\d{8})"), _version_list),
        Route(re.compile(r"/studies/(?P<nct>(?:NCT|nct)\d{8})/history/(?P<n>\d+)"), _version),
    ),
    spaces=(LISTS, VERSIONS),
    normalize=str.upper,
)
