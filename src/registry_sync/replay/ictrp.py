"""WHO ICTRP replay routes (`/ictrp`), behaving as REGISTRIES.md §9 says the portal does:

- `GET /Trial2.aspx?TrialID=<ICTRP ID>`: the recorded record page whose
  `DataList3_ctl01_TrialIDLabel` is that TrialID, `text/html; charset=utf-8`; for any other
  TrialID (or none) **HTTP 200 with the empty shell**, which is how ICTRP says "no such trial".
  The parameter name is matched in any case (ASP.NET query strings are case-insensitive), the
  TrialID exactly. A set without a shell page answers 404 for an unknown TrialID, saying so.
  Other parameters are ignored, as ASP.NET does.

The set is every `Trial2*.html` under `ictrp/`: a page with a TrialID label is filed under it
(key space `trial_id`, the ICTRP TrialID: `NCT04280705`, `JPRN-jRCTs031190226`); a page without
one is the empty shell (space `shell`, one page). The recorded shell is ICTRP's answer for
ISRCTN11928588 (its form action names that ID); it is served as is for every unknown TrialID.
Exports (`*.csv`, `*.xml`) lie beside them and are not served: ICTRP serves exports only through
search postbacks, which this replay does not implement.
"""

from __future__ import annotations

import re
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from registry_sync.charset import decode_text
from registry_sync.replay.routes import (
    HTML,
    KeySpaces,
    RegistryRoutes,
    ReplayRequest,
    ReplaySetError,
    Reply,
    Route,
    Store,
    StoredDoc,
    add_doc,
    load_doc,
    text_reply,
)

TRIAL_ID = "trial_id"  # primary space: the ICTRP TrialID
SHELL = "shell"  # the empty shell, under the key ""
TRIAL_LABEL = "DataList3_ctl01_TrialIDLabel"


def index_ictrp(folder: Path) -> KeySpaces:
    """Record pages by the TrialID they show; the one page without a record as the shell."""
    trials: dict[str, StoredDoc] = {}
    shell: dict[str, StoredDoc] = {}
    for path in sorted(folder.rglob("Trial2*.html")) if folder.is_dir() else []:
        doc = load_doc(folder, path)
        trial_id = _shown_trial_id(doc.body)
        if trial_id:
            add_doc(trials, trial_id, doc)
        elif "shell" in path.name:
            add_doc(shell, "", doc)
        else:
            raise ReplaySetError(f"{path}: a Trial2 page with no TrialID that is not named a shell")
    return {TRIAL_ID: trials, SHELL: shell}


def _shown_trial_id(body: bytes) -> str:
    node = LexborHTMLParser(decode_text(body, "text/html")).css_first(f"#{TRIAL_LABEL}")
    return node.text(strip=True) if node is not None else ""


def _trial2(store: Store, match: re.Match[str], request: ReplayRequest) -> Reply:
    wanted = next((v for k, v in request.query.items() if k.lower() == "trialid"), "")
    doc = store.lookup(TRIAL_ID, wanted) or store.lookup(SHELL, "")
    if doc is None:
        return text_reply(404, f"this replay set has neither {wanted!r} nor an ICTRP empty shell")
    return Reply(200, doc.body, HTML)


ROUTES = RegistryRoutes(
    key="ictrp",
    base_path="/ictrp",
    index=index_ictrp,
    routes=(Route(re.compile(r"/Trial2\.aspx", re.I), _trial2),),
    spaces=(TRIAL_ID, SHELL),
)
