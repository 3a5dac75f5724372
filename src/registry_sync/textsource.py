"""Read a review's text: plain text, Markdown, HTML or PDF -> pages of lines (I/O only).

PDF: the text layer as `pypdf` extracts it, one page a page (no OCR: a scanned PDF has no text
and says so). HTML: the visible text through `selectolax` (scripts and styles dropped, block
elements ending a line). Text and Markdown: the file as it is, one "page" without a number.
The parsing that follows (`textextract`) is pure and sees only `ReviewText`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from registry_sync.errors import RegistrySyncError
from registry_sync.model import CuratedRow, Finding
from registry_sync.textclaims import text_findings
from registry_sync.textextract import Extraction, extract

MAX_BYTES = 50_000_000  # a review's PDF is a few MB; its text a few hundred KB
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".text")
HTML_SUFFIXES = (".html", ".htm", ".xhtml")
_BLOCK_TAGS = (
    "p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "caption",
    "section", "article", "blockquote", "pre", "dd", "dt", "figcaption",
)  # fmt: skip


@dataclass(frozen=True)
class ReviewText:
    """A review's text: `pages[i]` is page i + 1 of a PDF; one unnumbered page otherwise."""

    path: Path
    pages: tuple[str, ...]
    paged: bool  # True when the pages are a PDF's pages (locations then name the page)


class ReviewTextError(RegistrySyncError):
    """The review's text could not be read."""


def load_review_text(path: Path) -> ReviewText:
    """Read `path` by its suffix; raise ReviewTextError naming the file on any problem."""
    if not path.is_file():
        raise ReviewTextError(f"{path}: no such file (the review's text to read)")
    if path.stat().st_size > MAX_BYTES:
        raise ReviewTextError(f"{path}: larger than {MAX_BYTES // 1_000_000} MB; not a review")
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return ReviewText(path, _pdf_pages(path), paged=True)
    text = _decode(path)
    if suffix in HTML_SUFFIXES or text.lstrip()[:15].lower().startswith(("<!doctype", "<html")):
        return ReviewText(path, (html_to_text(text),), paged=False)
    return ReviewText(path, (text,), paged=False)


def html_to_text(html: str) -> str:
    """The visible text of an HTML page, a line break after each block element."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    for node in tree.css("script, style, noscript, template"):
        node.decompose()
    for tag in _BLOCK_TAGS:
        for node in tree.css(tag):
            node.insert_after("\n")
    for node in tree.css("td, th"):
        node.insert_after(" ")
    root = tree.body or tree.root
    return root.text(separator="") if root is not None else ""


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise ReviewTextError(
            f"{path}: not UTF-8 (byte {exc.start}); save the text as UTF-8"
        ) from exc


def _pdf_pages(path: Path) -> tuple[str, ...]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        pages = tuple(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, KeyError) as exc:
        raise ReviewTextError(f"{path}: not a readable PDF ({exc})") from exc
    if not any(page.strip() for page in pages):
        raise ReviewTextError(
            f"{path}: the PDF has no text layer (a scan?); OCR it first, this tool does not"
        )
    return pages


def extract_file(path: Path) -> Extraction:
    """Read a review's text and extract its ID mentions and claims."""
    review = load_review_text(path)
    return extract(review.pages, paged=review.paged)


def text_conflicts(rows: Sequence[CuratedRow], path: Path | None) -> list[Finding]:
    """`text_table_conflict` findings of the review's text at `path` (none when None)."""
    return [] if path is None else text_findings(rows, extract_file(path))
