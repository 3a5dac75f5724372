"""Bytes of a served page -> text, with the charset the page declares (pure).

Registries serve HTML in several encodings and declare them in different places: UMIN's 2020
pages carry a bogus `<meta charset="ja">` before a correct `http-equiv` declaring UTF-8; older
Japanese and Chinese pages say `Shift_JIS` or `gb2312` and mean their Windows supersets.

Order of evidence: a byte-order mark (the HTML standard lets it win over any label, since it is
in the bytes themselves), the Content-Type header's charset, the first `<meta>` declaration in
the first 4 KB that names an encoding Python knows, then UTF-8. A label Python does not know is
skipped, so a page whose labels are all unknown decodes as UTF-8. Decoding never raises.
"""

from __future__ import annotations

import codecs
import re

SNIFF_BYTES = 4096  # the HTML standard's prescan window (1,024) widened for long <head>s

# Labels whose real-world meaning is a superset encoding (WHATWG Encoding Standard).
SUPERSETS: dict[str, str] = {
    "shift_jis": "cp932",  # Shift_JIS pages use Windows-31J characters (①, ～)
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
}

BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([^\s"';,]+)""", re.IGNORECASE)
# `<meta charset=x>` and `<meta http-equiv="Content-Type" content="text/html; charset=x">`
_META_CHARSET = re.compile(rb"""<meta\b[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.I)


def decode_text(body: bytes, content_type: str = "") -> str:
    """The page as text, decoded with the best charset evidence; never raises."""
    encoding = _bom(body) or header_charset(content_type) or meta_charset(body) or "utf-8"
    return body.decode(encoding, errors="replace")


def header_charset(content_type: str) -> str | None:
    """The Python codec for a Content-Type header's charset, or None when absent or unknown."""
    match = _HEADER_CHARSET.search(content_type or "")
    return codec_for(match.group(1)) if match else None


def meta_charset(body: bytes) -> str | None:
    """The codec of the first known charset a `<meta>` in the first 4 KB declares, else None."""
    for match in _META_CHARSET.finditer(body[:SNIFF_BYTES]):
        label = match.group(1).decode("ascii", errors="replace")
        codec = codec_for(label)
        if codec is not None:
            # a <meta> readable as ASCII cannot be UTF-16: the HTML standard reads it as UTF-8
            return "utf-8" if codec.startswith(("utf-16", "utf-32")) else codec
    return None


def codec_for(label: str) -> str | None:
    """A charset label -> the Python codec name to decode with, or None when not a text codec."""
    name = label.strip().strip("\"'").lower()
    if not name:
        return None
    name = SUPERSETS.get(name, name)
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True):  # base64, zlib, rot13 ...
        return None
    return info.name


def _bom(body: bytes) -> str | None:
    return next((codec for bom, codec in BOMS if body.startswith(bom)), None)
