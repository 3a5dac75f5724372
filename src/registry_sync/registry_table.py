"""Every fact about every registry, in one table (pure data; the model layer).

`ids`, `settings`, the HTTP client's policy, the report's names, the replay routes, the CLI's
choices and the curated suite's value set all read this table; nothing else lists registries.
Facts come from the shared registry notes (REGISTRIES.md): hosts, politeness, blocking, terms.

`ictrp` is a *source*, not a home registry: no review ID is an ICTRP ID, so it has no pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class RegistryInfo:
    key: str  # "ctgov": module name, replay folder, snapshot column, CLI word
    name: str  # what a reader calls it
    id_pattern: re.Pattern[str] | None  # full match of the canonical ID; None for a source only
    id_prefix: str  # the ID's prefix in upper case ("" for a source only), for claimed IDs
    default_base_url: str  # what a live run talks to unless told otherwise
    hosts: tuple[str, ...]  # hosts it serves from, current first (old ones still linked)
    min_interval: float  # seconds between two requests to one of its hosts
    attempts: int  # tries per request: 1 + retries on transient errors (429, 5xx, timeouts)
    task_retries: int  # whole-registry retries at task level (Prefect) when it did not answer
    keep_cookies: bool  # keep cookies between requests of a run (never across runs)
    stop_after_block: bool  # a block stops every further request to that host this run
    honour_robots: bool  # read robots.txt once per run and obey it (and its Crawl-delay)
    max_page_bytes: int  # a bigger answer is cut off and ends as a typed outcome
    ictrp_id_prefix: str | None  # WHO ICTRP carries it under prefix + ID; None = not carried
    terms: str  # one line: what the terms of use ask of us
    # a page a reader searches the registry on; `{query}` is replaced by the (URL-quoted) ID
    # where the search takes it in the URL; "" when there is none to link (REGISTRIES.md)
    search_url: str = ""
    # the longest request URL we send it (a batch API packs IDs up to it); None = no batching
    max_url_bytes: int | None = None


REGISTRY_TABLE: dict[str, RegistryInfo] = {
    r.key: r
    for r in (
        RegistryInfo(
            key="ctgov",
            name="ClinicalTrials.gov",
            id_pattern=re.compile(r"NCT\d{8}"),
            id_prefix="NCT",
            default_base_url="https://clinicaltrials.gov/api/v2",
            hosts=("clinicaltrials.gov",),
            min_interval=1.2,  # ~50 requests a minute, the limit third parties report
            attempts=4,
            task_retries=2,
            keep_cookies=False,
            stop_after_block=False,
            honour_robots=False,  # an official API for programs; robots' `Disallow: /api/`
            # is aimed at crawlers of the website (REGISTRIES.md §1)
            max_page_bytes=32 * MB,  # a batch page of up to 1,000 studies, restricted fields
            ictrp_id_prefix="",
            terms="US government data, public domain in practice; no documented rate limit.",
            search_url="https://clinicaltrials.gov/search?term={query}",
            # 8 KB: the request-line cap of common front ends (nginx, CloudFront, Apache
            # 8,190); the live API's own limit is undocumented and was not measurable here.
            # At ~14 bytes an encoded ID, a batch holds ~540 IDs; a 414 halves it (ctgov.py)
            max_url_bytes=8_000,
        ),
        RegistryInfo(
            key="jrct",
            name="jRCT",
            id_pattern=re.compile(r"jRCT[0-9a-z]\d{9}"),
            id_prefix="jRCT",
            default_base_url="https://jrct.mhlw.go.jp",
            hosts=("jrct.mhlw.go.jp", "jrct.niph.go.jp"),
            min_interval=5.0,
            attempts=1,  # it answers 500 for an unknown ID: asking twice would double those
            task_retries=1,
            keep_cookies=True,
            stop_after_block=True,
            honour_robots=True,
            max_page_bytes=4 * MB,
            ictrp_id_prefix="JPRN-",
            terms="PDL1.0; no crawlers or bulk collection without permission: the review's IDs "
            "only, serially.",
            search_url="https://jrct.mhlw.go.jp/search",
        ),
        RegistryInfo(
            key="chictr",
            name="ChiCTR",
            id_pattern=re.compile(r"ChiCTR(?:\d{10}|-[A-Z]{3,5}-\d{8})"),
            id_prefix="ChiCTR",
            default_base_url="https://www.chictr.org.cn",
            hosts=("www.chictr.org.cn", "chictr.org.cn"),
            min_interval=10.0,
            attempts=1,  # tried once: a WAF answers retries with longer blocks
            task_retries=0,
            keep_cookies=False,  # never carry a challenge cookie
            stop_after_block=True,
            honour_robots=True,
            max_page_bytes=4 * MB,
            ictrp_id_prefix="",
            terms="Attribution; no bulk redistribution; a WAF blocks bots: try once, never "
            "circumvent.",
            search_url="https://www.chictr.org.cn/searchproj.html?regno={query}&btngo=btn",
        ),
        RegistryInfo(
            key="ctr",
            name="China Drug Trials (CTR)",
            id_pattern=re.compile(r"CTR\d{8}"),
            id_prefix="CTR",
            default_base_url="https://www.chinadrugtrials.org.cn",
            hosts=("www.chinadrugtrials.org.cn",),
            min_interval=10.0,
            attempts=1,
            task_retries=0,
            keep_cookies=True,  # the site sets session cookies on its first answer
            stop_after_block=True,
            honour_robots=True,
            max_page_bytes=4 * MB,
            ictrp_id_prefix=None,  # ICTRP does not carry CTR
            terms="A JS challenge blocks bots: try once, report blocked, never circumvent.",
            search_url="https://www.chinadrugtrials.org.cn/clinicaltrials.searchlist.dhtml",
        ),
        RegistryInfo(
            key="umin",
            name="UMIN-CTR",
            id_pattern=re.compile(r"UMIN\d{9}"),
            id_prefix="UMIN",
            default_base_url="https://center6.umin.ac.jp",
            hosts=("center6.umin.ac.jp", "upload.umin.ac.jp"),
            min_interval=1.0,
            attempts=3,
            task_retries=1,
            keep_cookies=False,
            stop_after_block=True,
            honour_robots=True,
            max_page_bytes=4 * MB,
            ictrp_id_prefix="JPRN-",
            terms="No terms on automated access found; about one request a second.",
            search_url=(
                "https://center6.umin.ac.jp/cgi-open-bin/ctr/index.cgi?sort=03&function=04&ctrno={query}"
            ),
        ),
        RegistryInfo(
            key="anzctr",
            name="ANZCTR",
            id_pattern=re.compile(r"ACTRN\d{14}"),
            id_prefix="ACTRN",
            default_base_url="https://www.anzctr.org.au",
            hosts=("www.anzctr.org.au", "anzctr.org.au"),
            min_interval=1.0,
            attempts=3,
            task_retries=1,
            keep_cookies=False,
            stop_after_block=True,
            honour_robots=True,
            max_page_bytes=4 * MB,
            ictrp_id_prefix="",
            terms="No terms on automated access found; about one request a second.",
            search_url="https://www.anzctr.org.au/TrialSearch.aspx?searchTxt={query}&isBasic=True",
        ),
        RegistryInfo(
            key="irct",
            name="IRCT",
            id_pattern=re.compile(r"IRCT\d+N\d+"),
            id_prefix="IRCT",
            default_base_url="https://en.irct.ir",
            hosts=("en.irct.ir", "www.irct.ir", "irct.behdasht.gov.ir"),
            min_interval=1.0,
            attempts=3,
            task_retries=1,
            keep_cookies=False,
            stop_after_block=True,
            honour_robots=True,
            max_page_bytes=4 * MB,
            ictrp_id_prefix="",
            terms="Research and non-commercial use.",
            search_url="https://en.irct.ir/search/result?query={query}",
        ),
        RegistryInfo(
            key="jma",
            name="JMACCT (JMA-IIA)",
            id_pattern=re.compile(r"JMA-IIA\d{5}"),
            id_prefix="JMA",
            default_base_url="https://dbcentre3.jmacct.med.or.jp",
            hosts=("dbcentre3.jmacct.med.or.jp",),
            min_interval=5.0,  # merged into jRCT in 2023-03; treat its old host gently
            attempts=1,
            task_retries=0,
            keep_cookies=False,
            stop_after_block=True,
            honour_robots=True,
            max_page_bytes=4 * MB,
            ictrp_id_prefix="JPRN-",
            terms="Retired: merged into jRCT in March 2023.",
        ),
        RegistryInfo(
            key="ictrp",
            name="WHO ICTRP",
            id_pattern=None,
            id_prefix="",
            default_base_url="https://trialsearch.who.int",
            hosts=("trialsearch.who.int",),
            min_interval=1.0,
            attempts=2,
            task_retries=1,
            keep_cookies=True,  # ASP.NET session for search postbacks
            stop_after_block=True,
            honour_robots=True,
            max_page_bytes=8 * MB,
            ictrp_id_prefix=None,
            terms="Free portal data: attribute WHO ICTRP with its processing date; "
            "non-commercial; the XML web service forbids storage (not used).",
        ),
    )
}

# Registries a review's trial ID can belong to (every key with an ID pattern), table order.
TRIAL_REGISTRIES: tuple[str, ...] = tuple(
    k for k, r in REGISTRY_TABLE.items() if r.id_pattern is not None
)
# Every key: home registries and sources (ictrp).
ALL_KEYS: tuple[str, ...] = tuple(REGISTRY_TABLE)


def registry_name(key: str | None) -> str:
    """A reader's name for a key; an unknown key is shown as itself."""
    if key is None:
        return "?"
    info = REGISTRY_TABLE.get(key)
    return info.name if info is not None else key


def ictrp_id(key: str, trial_id: str) -> str | None:
    """The ID WHO ICTRP files a trial under (`JPRN-jRCTs031190226`), or None if not carried."""
    info = REGISTRY_TABLE.get(key)
    if info is None or info.ictrp_id_prefix is None:
        return None
    return info.ictrp_id_prefix + trial_id
