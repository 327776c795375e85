"""Go's ``strconv.Quote`` and ``%q`` of a ``[]string``, for output compared with BuildKit's.

Text read from a Dockerfile is decoded as UTF-8 with ``surrogateescape``, so a
byte that is not valid UTF-8 arrives as a lone surrogate U+DC80..U+DCFF; Go
prints such a byte as ``\\xNN`` and so do we.
"""

from __future__ import annotations

from collections.abc import Iterable

_SIMPLE = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def _quote_char(ch: str) -> str:
    simple = _SIMPLE.get(ch)
    if simple is not None:
        return simple
    cp = ord(ch)
    if 0xDC80 <= cp <= 0xDCFF:  # an undecodable byte (surrogateescape)
        return f"\\x{cp - 0xDC00:02x}"
    if cp < 0x80:
        return ch if 0x20 <= cp < 0x7F else f"\\x{cp:02x}"
    if ch.isprintable():
        return ch
    if 0xD800 <= cp <= 0xDFFF:  # other lone surrogates: Go sees invalid UTF-8
        return "\\ufffd"
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def go_quote(s: str) -> str:
    """``strconv.Quote(s)``: double-quoted, Go escapes, printable Unicode kept."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    return '"' + "".join(_quote_char(ch) for ch in s) + '"'


def go_quote_list(items: Iterable[str]) -> str:
    """``fmt.Sprintf("%q", []string{...})``: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(s) for s in items) + "]"
