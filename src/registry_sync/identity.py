"""Is this ID the product the review names? Pure: no I/O.

A review row names a product (`HS-001`), its cell type, indication, sponsor and nation; the
registry record behind the row's ID has titles, interventions, a lead sponsor, collaborators,
conditions and site countries. Each pair is scored 0-100 with rapidfuzz; the row's product is
*named* when one of its aliases (`RG6501(OpRegen)` -> `RG6501`, `OpRegen`) equals a word run of
the titles or interventions (ratio >= PRODUCT_NAMED, so `HS 001` = `HS-001` = `HS‑001`).

A record that does not name the product may still be it (HICM-188's record says only
"hiPSC-CM therapy"): it is taken as the product when the indication agrees AND one more piece
(sponsor, cell type or nation) agrees. Otherwise the row gets `product_mismatch`, a warning, not
an error: the evidence is circumstantial (a registry may name a product only in its description,
which we do not fetch), and an author must read the record before changing the review.

Thresholds were read off the review's own rows against their replayed records (README,
"Product identity"): a named product scores 100, the nearest wrong code (`NCR-101` against
`NCR201`) 83; sponsor and indication matches score 90-100, non-matches under 60.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from registry_sync.model import CuratedRow, Finding, RegistryRecord, Severity
from registry_sync.sponsors import sponsor_matches

PRODUCT_NAMED = 90  # alias vs a word run of the titles/interventions (fuzz.ratio)
AGREES = 80  # sponsor, indication, cell type, nation (fuzz.token_set_ratio / partial_ratio)

# Dashes a review or registry may print inside a code: hyphen-minus aside, all mean "-".
DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"

# The review's nations (as printed) -> the names registries print for them (ClinicalTrials.gov
# and ICTRP in English, ChiCTR/CTR in Chinese, jRCT/UMIN in Japanese).
NATIONS: dict[str, tuple[str, ...]] = {
    "US": ("United States", "USA", "美国", "米国"),
    "JP": ("Japan", "日本"),
    "KOR": ("Korea, Republic of", "South Korea", "Republic of Korea", "韩国", "韓国"),
    "KR": ("Korea, Republic of", "South Korea", "Republic of Korea", "韩国", "韓国"),
    "CN": ("China", "中国", "People's Republic of China"),
    "IRAN": ("Iran, Islamic Republic of", "Iran"),
    "AU": ("Australia", "澳大利亚"),
    "UK": ("United Kingdom",),
    "FR": ("France",),
    "DE": ("Germany",),
    "IL": ("Israel",),
    "BR": ("Brazil",),
    "IN": ("India",),
}

# The review's indication abbreviations (every one it prints) -> the words registries use.
INDICATIONS: dict[str, str] = {
    "HF": "heart failure",
    "PD": "parkinson disease",
    "AMD": "macular degeneration",
    "SMD": "stargardt macular dystrophy",
    "STGD1": "stargardt",
    "GA": "geographic atrophy",
    "RP": "retinitis pigmentosa",
    "LSCD": "limbal stem cell deficiency",
    "ALS": "amyotrophic lateral sclerosis",
    "SCI": "spinal cord injury",
    "MTLE": "temporal lobe epilepsy",
    "MM": "multiple myeloma",
    "AML": "acute myeloid leukemia",
    "MDS": "myelodysplastic syndromes",
    "CLL": "chronic lymphocytic leukemia",
    "NHL": "non hodgkin lymphoma",
    "BCL": "b cell lymphoma",
    "NSCLC": "non small cell lung cancer",
    "SLE": "systemic lupus erythematosus",
    "T1DM": "type 1 diabetes",
    "T2DM": "type 2 diabetes",
    "DFU": "diabetic foot ulcer",
    "MS": "multiple sclerosis",
    "IC": "interstitial cystitis",
    "POI": "premature ovarian insufficiency",
    "ILD": "interstitial lung disease",
    "KOA": "knee osteoarthritis",
    "GVHD": "graft versus host disease",
    "AGVHD": "acute graft versus host disease",
    "DMD": "duchenne muscular dystrophy",
    "AIS": "acute ischemic stroke",
    "ART": "assisted reproduction",
}

# Cell-type abbreviations -> words; the hPSC prefix (hESC-, hiPSC-, iCAR-) carries no identity.
CELL_WORDS: dict[str, str] = {
    "NK": "natural killer",
    "NKT": "natural killer t",
    "CM": "cardiomyocyte",
    "CMS": "cardiomyocytes",
    "RPE": "retinal pigment epithelium",
    "DA": "dopaminergic",
    "MSC": "mesenchymal",
    "NSC": "neural stem cells",
    "NPC": "neural progenitor cells",
    "OPCS": "oligodendrocyte progenitor cells",
    "EPC": "endothelial progenitor cells",
    "DC": "dendritic cells",
}
# The tables `_best` spells abbreviations out with, by the evidence they serve.
SPELLED: dict[str, dict[str, str]] = {"indication": INDICATIONS, "cell type": CELL_WORDS}
# Words that say nothing about which disease or cell: left out of those comparisons, so
# `interstitial lung disease` does not half-match `Parkinson Disease`.
# fmt: off
GENERIC_WORDS = frozenset({
    "a", "an", "and", "of", "the", "in", "for", "to", "with", "by", "on", "s", "r",
    "disease", "diseases", "disorder", "disorders", "patients", "subjects", "cell", "cells",
    "therapy", "treatment", "injection", "study", "derived", "human",
})
# fmt: on
CJK = "\u3040-\u30ff\u4e00-\u9fff"
SCRIPT_BOUNDARY = re.compile(f"(?<=[0-9A-Za-z])(?=[{CJK}])|(?<=[{CJK}])(?=[0-9A-Za-z])")
CELL_PREFIX = re.compile(
    r"^(?:h?i?psc|hesc|cipsc|icar|i)(?=[-\s])|^(?:hi?psc|hesc|i)(?=[a-z])", re.I
)
NOT_CODE = re.compile(r"[^0-9a-z\u3040-\u30ff\u4e00-\u9fff]+")
WORD_BREAK = re.compile(r"[\s()\[\],;:/]+")
WORDS = re.compile(r"[^\W_]+")
PRODUCT_PARTS = re.compile(r"[()/]")
PRODUCT_WORDS = re.compile(r"[-\s]+")
INDICATION_PARTS = re.compile(r"[,;/]")
DIGIT = re.compile(r"\d")
LETTER = re.compile(r"[^\W\d_]")
DASH_TABLE = {ord(d): "-" for d in DASHES}
# Memo sizes: a run meets the same words, titles and sponsors over and over (a review repeats
# its products; a registry its conditions and sponsors), but memory stays bounded at 100k rows.
WORD_MEMO = 1 << 16
TEXT_MEMO = 1 << 12
RUNS_MEMO = 1 << 10  # a text's word runs take ~10 KB: 65,536 of them took 550 MB at 100k titles


@dataclass(frozen=True)
class Evidence:
    """One comparison: `score` 0-100, `matched` the record's value that scored it, `known`
    False when the record has nothing to compare with (no countries, no conditions)."""

    what: str  # "product" | "sponsor" | "indication" | "cell type" | "nation"
    score: int
    matched: str = ""
    known: bool = True

    @property
    def agrees(self) -> bool:
        return self.known and self.score >= (PRODUCT_NAMED if self.what == "product" else AGREES)

    def describe(self) -> str:
        if not self.known:
            return f"{self.what}: registry gives none"
        if not self.agrees:
            return f"{self.what} does not match ({self.score})"
        cut = self.matched if len(self.matched) <= 60 else self.matched[:57] + "..."
        return f"{self.what} matches {cut!r} ({self.score})"


@dataclass(frozen=True)
class Identity:
    """How well one registry record fits one review row's product."""

    product: str
    evidence: tuple[Evidence, ...]

    def get(self, what: str) -> Evidence:
        return next(e for e in self.evidence if e.what == what)

    @property
    def named(self) -> bool:
        return self.get("product").agrees

    @property
    def consistent(self) -> bool:
        """Named, or the indication and one more piece agree; or the record has no titles or
        interventions to judge by (nothing to say, so no finding)."""
        if not self.get("product").known:
            return True
        others = [e for e in self.evidence if e.what not in ("product", "indication")]
        return self.named or (self.get("indication").agrees and any(e.agrees for e in others))

    @property
    def rank(self) -> tuple[int, int, int]:
        """Orders candidate products for one record: named, then agreeing pieces, then score."""
        agreeing = sum(e.agrees for e in self.evidence)
        return int(self.named), agreeing, sum(e.score for e in self.evidence if e.known)

    def summary(self) -> str:
        how = "named in its titles or interventions" if self.named else "not named"
        rest = [e.describe() for e in self.evidence if e.what != "product" and e.known]
        return f"{self.product} ({'; '.join([how, *rest])})"


@functools.lru_cache(maxsize=WORD_MEMO)
def normalize_code(text: str) -> str:
    """`HS-001`, `HS 001`, `hs‑001` (U+2011) -> `hs001`: case, width, dashes and spaces gone.

    Character by character (NFKC does not compose across a space), so the code of `HS 001` is
    the code of `HS` followed by the code of `001`: `_word_runs` builds runs that way."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return NOT_CODE.sub("", text)


@functools.lru_cache(maxsize=WORD_MEMO)
def product_aliases(product: str) -> tuple[str, ...]:
    """Normalised names a record may use: the whole; each part in or around parentheses or
    across `/`; a hyphenated part that is a code (letters and digits, `ASP7317` of
    `ASP7317-RPE`)."""
    text = _dashes(product)
    parts = [p.strip() for p in PRODUCT_PARTS.split(text) if p.strip()]
    codes = [w for p in parts for w in PRODUCT_WORDS.split(p) if _is_code(w)]
    keys = [normalize_code(x) for x in (text, *parts, *codes)]
    return tuple(dict.fromkeys(k for k in keys if len(k) >= 2))


def nation_names(nation: str) -> tuple[str, ...]:
    """`KOR` -> `Korea, Republic of`, ...; a nation not in the table stands for itself."""
    return NATIONS.get(nation.strip().upper(), (nation.strip(),))


def score_identity(row: CuratedRow, rec: RegistryRecord) -> Identity:
    """Every piece of the row against the record."""
    texts = _texts(rec)
    return _identity(row, rec, texts, _product(row.product, texts))


def _identity(
    row: CuratedRow, rec: RegistryRecord, texts: Sequence[str], product: Evidence
) -> Identity:
    """The row's product evidence with the rest scored; each piece memoised on its inputs (a
    review repeats sponsors, indications and cell types; a registry its conditions)."""
    sponsors = tuple(c for c in (rec.lead_sponsor, *rec.collaborators) if c)
    return Identity(
        row.product,
        (
            product,
            _sponsor(row.sponsor, sponsors),
            _indication(row.indication, (*rec.conditions, *texts)),
            _cell_type(row.cell_type, tuple(texts)),
            _nation(row.nation, tuple(rec.countries)),
        ),
    )


def _texts(rec: RegistryRecord) -> list[str]:
    """The record's titles and interventions: where a product is named."""
    return [t for t in (rec.brief_title, rec.official_title, *rec.interventions) if t]


def _product(product: str, texts: Sequence[str]) -> Evidence:
    keys, printed = _word_runs(tuple(texts))
    best = Evidence("product", 0, known=bool(texts))
    for alias in product_aliases(product):
        if alias in printed:  # a run is the alias itself: ratio 100, the search would find it
            hit: tuple[str, float] | None = (alias, 100.0)
        else:
            found = process.extractOne(alias, keys, scorer=fuzz.ratio)
            hit = (found[0], found[1]) if found is not None else None
        if hit is not None and round(hit[1]) > best.score:
            best = Evidence("product", round(hit[1]), printed[hit[0]])
    return best


@functools.lru_cache(maxsize=RUNS_MEMO)
def _word_runs(texts: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """Normalised runs of 1-3 consecutive words (`HS 001` -> `hs001`) -> the words as printed
    (the first text and run to give a key wins); also each hyphen part of a word (`ASP7317` of
    `ASP7317-RPE`). Returned as the keys in order (for rapidfuzz) and the mapping."""
    if len(texts) == 1:
        runs = _text_runs(texts[0])
    else:
        runs = {}
        for text in texts:
            for key, printed in _text_runs(text).items():
                runs.setdefault(key, printed)
    return [k for k in runs if k], runs


@functools.lru_cache(maxsize=RUNS_MEMO)
def _text_runs(text: str) -> dict[str, str]:
    """`_word_runs` of one text (records share interventions and official titles). A run's key
    is its words' keys joined (see `normalize_code`), so each word is normalised once. The
    empty key is left in (callers skip it), so the dict can be shared read-only."""
    runs: dict[str, str] = {}
    spaced = SCRIPT_BOUNDARY.sub(" ", _dashes(text))  # `HSK45030分散片` -> `HSK45030 分散片`
    words = [w for w in WORD_BREAK.split(spaced) if w]
    codes = [normalize_code(w) for w in words]
    count = len(words)
    for i, word in enumerate(words):
        runs.setdefault(codes[i], word)
        if i + 1 < count:
            runs.setdefault(codes[i] + codes[i + 1], f"{word} {words[i + 1]}")
        if i + 2 < count:
            key = codes[i] + codes[i + 1] + codes[i + 2]
            runs.setdefault(key, f"{word} {words[i + 1]} {words[i + 2]}")
        if "-" in word:
            for part in word.split("-"):
                runs.setdefault(normalize_code(part), part)
    return runs


@functools.lru_cache(maxsize=TEXT_MEMO)
def _sponsor(sponsor: str, names: tuple[str, ...]) -> Evidence:
    """A bilingual name counts by its Latin part; a name only in Chinese or Japanese cannot be
    compared with the review's English one (not known, rather than a mismatch)."""
    latins = [latin for n in names if (latin := _latin(n))]
    if not latins:
        return Evidence("sponsor", 0, known=False)
    if sponsor.strip() and sponsor_matches(sponsor, latins):
        return Evidence("sponsor", 100, next(n for n in latins if sponsor_matches(sponsor, [n])))
    return _best("sponsor", sponsor, latins)


@functools.lru_cache(maxsize=TEXT_MEMO)
def _indication(indication: str, texts: tuple[str, ...]) -> Evidence:
    """Each comma/semicolon/slash part of the indication, abbreviations spelled out, against
    the conditions and titles; the best part counts."""
    if not texts:
        return Evidence("indication", 0, known=False)
    best = Evidence("indication", 0)
    for words in _indication_parts(indication):
        found = _best("indication", words, texts, spell=True)
        best = found if found.score > best.score else best
    return best


@functools.lru_cache(maxsize=WORD_MEMO)
def _indication_parts(indication: str) -> tuple[str, ...]:
    """The indication's comma/semicolon/slash parts, spelled out; empty ones left out."""
    spelled = (_spelled(part, INDICATIONS) for part in INDICATION_PARTS.split(indication))
    return tuple(words for words in spelled if words)


@functools.lru_cache(maxsize=TEXT_MEMO)
def _cell_type(cell_type: str, texts: tuple[str, ...]) -> Evidence:
    words = _cell_words(cell_type)
    if not texts or not words:
        return Evidence("cell type", 0, known=False)
    return _best("cell type", words, texts, spell=True)


@functools.lru_cache(maxsize=WORD_MEMO)
def _cell_words(cell_type: str) -> str:
    return _spelled(CELL_PREFIX.sub("", _dashes(cell_type)), CELL_WORDS)


@functools.lru_cache(maxsize=TEXT_MEMO)
def _nation(nation: str, countries: tuple[str, ...]) -> Evidence:
    if not countries:
        return Evidence("nation", 0, known=False)
    wanted = {n.casefold() for n in nation_names(nation)}
    hit = next((c for c in countries if c.strip().casefold() in wanted), None)
    return Evidence("nation", 100, hit) if hit else Evidence("nation", 0, ", ".join(countries))


def _best(what: str, query: str, choices: Sequence[str], spell: bool = False) -> Evidence:
    """The choice whose words best contain the query's (fuzz.token_set_ratio: 100 when every
    query word is in it); with `spell`, abbreviations spelled out on both sides (`SPELLED`)."""
    table = what if spell else ""
    spelled = [_comparable(c, table) for c in choices]
    query = _plain(query, GENERIC_WORDS if spell else frozenset())
    hit = process.extractOne(query, spelled, scorer=fuzz.token_set_ratio)
    if hit is None:
        return Evidence(what, 0)
    return Evidence(what, round(hit[1]), choices[hit[2]])


@functools.lru_cache(maxsize=WORD_MEMO)
def _comparable(text: str, table: str) -> str:
    """`text` as `_best` compares it: with the abbreviations of `SPELLED[table]` spelled out and
    generic words dropped when `table` is given, else plain words only."""
    if not table:
        return _plain(text)
    return _plain(_spelled(text, SPELLED[table]), GENERIC_WORDS)


def _spelled(text: str, table: dict[str, str]) -> str:
    """Words of `text` with the table's abbreviations spelled out (`r/r AML` -> `... acute
    myeloid leukemia`); `aGvHD` is looked up in upper case."""
    words = WORDS.findall(_dashes(text))
    return " ".join(table.get(w.upper(), w) for w in words)


@functools.lru_cache(maxsize=WORD_MEMO)
def _plain(text: str, drop: frozenset[str] = frozenset()) -> str:
    """Lower case words only, less `drop`: `Parkinson's Disease` -> `parkinson s disease`."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(w for w in WORDS.findall(text) if w not in drop)


def _latin(name: str) -> str:
    """The Latin-script words of a name (`北京大学 Peking University` -> `Peking University`)."""
    return " ".join(re.findall(r"[A-Za-z0-9][\w&.,'()-]*", unicodedata.normalize("NFKC", name)))


def _dashes(text: str) -> str:
    if text.isascii():  # NFKC and the dash table leave ASCII as it is
        return text
    return unicodedata.normalize("NFKC", text).translate(DASH_TABLE)


def _is_code(word: str) -> bool:
    return len(word) >= 3 and bool(DIGIT.search(word)) and bool(LETTER.search(word))


def product_mismatch(row: CuratedRow, rec: RegistryRecord) -> Finding | None:
    """`product_mismatch` when the record does not look like the row's product."""
    texts = _texts(rec)
    product = _product(row.product, texts)
    if product.agrees or not product.known:  # named, or nothing to judge by: consistent
        return None
    ident = _identity(row, rec, texts, product)
    if ident.consistent:
        return None
    title = rec.brief_title or rec.official_title or "(no title)"
    shown = title if len(title) <= 120 else title[:117] + "..."
    about = [f"sponsor {rec.lead_sponsor}"] if rec.lead_sponsor else []
    about += [f"conditions {', '.join(rec.conditions)}"] if rec.conditions else []
    about_text = f" ({'; '.join(about)})" if about else ""
    pieces = "; ".join(e.describe() for e in ident.evidence if e.what != "product" and e.known)
    message = (
        f"record names {shown!r}{about_text}; the review's product {row.product!r} is not in "
        f"its titles or interventions; {pieces}. Check the ID"
    )
    return Finding(
        table=row.table,
        line=row.line,
        trial_id=row.trial_id,
        field="product",
        kind="product_mismatch",
        severity=Severity.WARNING,
        review_value=row.product,
        registry_value=shown,
        message=message,
        extra=_extra(ident),
    )


def _extra(ident: Identity) -> dict[str, str]:
    """The evidence as `Finding.extra`: `matched` and `unmatched` lists, and each score."""
    matched = [e.describe() for e in ident.evidence if e.agrees]
    unmatched = [e.describe() for e in ident.evidence if e.known and not e.agrees]
    out = {"matched": "; ".join(matched), "unmatched": "; ".join(unmatched)}
    out |= {f"score_{e.what.replace(' ', '_')}": str(e.score) for e in ident.evidence if e.known}
    return out


def which_product(rows: Sequence[CuratedRow], rec: RegistryRecord) -> tuple[str, str] | None:
    """Of rows printing one ID for different products, the product the record is, and how
    sure (its evidence): None when no row's product fits the record."""
    scored = sorted((score_identity(r, rec) for r in rows), key=lambda i: i.rank, reverse=True)
    fitting = [i for i in scored if i.consistent]
    if not fitting or (len(fitting) > 1 and fitting[0].rank[:2] == fitting[1].rank[:2]):
        return None
    best = fitting[0]
    others = "; ".join(i.summary() for i in scored if i is not best)
    return best.product, f"{best.summary()}; not {others}"
