""".dockerignore patterns with the semantics of moby/patternmatcher and ignorefile.

A pattern is cleaned like Go's ``filepath.Clean``, checked for ``filepath.Match`` syntax
errors, and compiled once into one of four matchers, exactly as patternmatcher does:
an exact string, a prefix (``dir/**``), a suffix (``**/name``, ``**name``) or a regular
expression (``*`` is ``[^/]*``, ``?`` is ``[^/]``, ``**/`` is ``(.*/)?``, ``[...]`` and
``\\x`` pass through to the regexp). The Go regexp is then translated to Python's ``re``
(character classes, POSIX ``[:name:]`` groups, Perl ``\\d\\s\\w`` and ``\\x`` escapes are
rewritten, so ``$`` and ``.`` keep Go's meaning).

A path is excluded when the last pattern that matches it or one of its parent directories
is not a ``!`` exception (``PatternMatcher.matches``). :meth:`PatternMatcher.can_reinclude_below`
tells a walker whether an excluded directory can be skipped whole.

Differences from Docker, on purpose: a pattern whose regexp Go would reject is reported
when the matcher is built (Docker reports it only when a path reaches it), and Unicode
classes (``\\p{...}``) in patterns are refused instead of supported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import IO

from gantry.dockerfile.shell import go_trim_space
from gantry.errors import IgnorePatternError

__all__ = [
    "MatchInfo",
    "Pattern",
    "PatternMatcher",
    "go_clean",
    "go_dir",
    "matches_or_parent_matches",
    "read_dockerignore",
    "validate_pattern_syntax",
]

EXACT, PREFIX, SUFFIX, REGEXP = "exactMatch", "prefixMatch", "suffixMatch", "regexpMatch"

_BOM = "\ufeff"
_SHOULD_ESCAPE = frozenset(".+()|{}$")
BAD_PATTERN = "syntax error in pattern"  # Go's filepath.ErrBadPattern

MatchInfo = tuple[bool, ...]
"""Per-pattern "matched" flags of a directory, handed to its children while walking."""


# ---------------------------------------------------------------------------------------
# Go path helpers


def go_clean(path: str) -> str:
    """Go's ``filepath.Clean`` on a slash-separated path."""
    if not path:
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part == "" or part == ".":
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    cleaned = "/".join(out)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def go_dir(path: str) -> str:
    """Go's ``filepath.Dir``: everything before the last ``/``, cleaned."""
    return go_clean(path[: path.rfind("/") + 1])


# ---------------------------------------------------------------------------------------
# filepath.Match syntax check


def _get_esc(chunk: str, i: int) -> int:
    """Validate one class character at ``chunk[i]``; return the index after it."""
    n = len(chunk)
    if i >= n or chunk[i] in "-]":
        raise ValueError
    if chunk[i] == "\\":
        i += 1
        if i >= n:
            raise ValueError
    i += 1
    if i >= n:
        raise ValueError  # a class must be closed
    return i


def _check_chunk(chunk: str) -> None:
    i, n = 0, len(chunk)
    while i < n:
        ch = chunk[i]
        if ch == "[":
            i += 1
            if i < n and chunk[i] == "^":
                i += 1
            nrange = 0
            while True:
                if i < n and chunk[i] == "]" and nrange > 0:
                    i += 1
                    break
                i = _get_esc(chunk, i)
                if chunk[i] == "-":
                    i = _get_esc(chunk, i + 1)
                nrange += 1
        elif ch == "\\":
            i += 1
            if i >= n:
                raise ValueError
            i += 1
        else:
            i += 1


def _scan_chunk(pattern: str, i: int) -> tuple[int, int]:
    """(start, end) of the next chunk after any leading stars, as Go's scanChunk."""
    n = len(pattern)
    while i < n and pattern[i] == "*":
        i += 1
    start = i
    in_range = False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 < n:
                i += 1
        elif ch == "[":
            in_range = True
        elif ch == "]":
            in_range = False
        elif ch == "*" and not in_range:
            break
        i += 1
    return start, i


def validate_pattern_syntax(pattern: str, *, kind: str = ".dockerignore") -> None:
    """Raise :class:`IgnorePatternError` where Go's ``filepath.Match`` returns ErrBadPattern.

    ``kind`` names where the pattern comes from in the message (``--exclude``...).
    """
    i = 0
    try:
        while i < len(pattern):
            start, end = _scan_chunk(pattern, i)
            _check_chunk(pattern[start:end])
            i = end
    except ValueError:
        raise IgnorePatternError(f"invalid {kind} pattern {pattern!r}: {BAD_PATTERN}") from None


# ---------------------------------------------------------------------------------------
# Go regexp (the subset patternmatcher produces) -> Python re


class _BadRegexp(Exception):
    pass


_MAX_RUNE = 0x10FFFF
_Range = tuple[int, int]


def _r(a: str, b: str | None = None) -> _Range:
    return (ord(a), ord(b if b is not None else a))


_POSIX: dict[str, list[_Range]] = {
    "alnum": [_r("0", "9"), _r("A", "Z"), _r("a", "z")],
    "alpha": [_r("A", "Z"), _r("a", "z")],
    "ascii": [(0, 0x7F)],
    "blank": [_r("\t"), _r(" ")],
    "cntrl": [(0, 0x1F), (0x7F, 0x7F)],
    "digit": [_r("0", "9")],
    "graph": [_r("!", "~")],
    "lower": [_r("a", "z")],
    "print": [_r(" ", "~")],
    "punct": [_r("!", "/"), _r(":", "@"), _r("[", "`"), _r("{", "~")],
    "space": [_r("\t", "\r"), _r(" ")],
    "upper": [_r("A", "Z")],
    "word": [_r("0", "9"), _r("A", "Z"), _r("a", "z"), _r("_")],
    "xdigit": [_r("0", "9"), _r("A", "F"), _r("a", "f")],
}
_PERL: dict[str, list[_Range]] = {
    "d": [_r("0", "9")],
    "s": [_r("\t"), _r("\n"), _r("\f"), _r("\r"), _r(" ")],
    "w": [_r("0", "9"), _r("A", "Z"), _r("a", "z"), _r("_")],
}
_SIMPLE_ESCAPES = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}


def _normalize(ranges: Iterable[_Range]) -> list[_Range]:
    merged: list[_Range] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _complement(ranges: Iterable[_Range]) -> list[_Range]:
    out: list[_Range] = []
    nxt = 0
    for lo, hi in _normalize(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= _MAX_RUNE:
        out.append((nxt, _MAX_RUNE))
    return out


def _emit_class(ranges: Iterable[_Range], negate: bool) -> str:
    rs = _complement(ranges) if negate else _normalize(ranges)
    if not rs:
        return "(?!)"
    parts = []
    for lo, hi in rs:
        parts.append(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}")
    return "[" + "".join(parts) + "]"


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _unhex(ch: str) -> int:
    if "0" <= ch <= "9":
        return ord(ch) - 48
    if "a" <= ch <= "f":
        return ord(ch) - 87
    if "A" <= ch <= "F":
        return ord(ch) - 55
    return -1


def _parse_escape(rx: str, i: int) -> tuple[int, int]:
    """Go regexp's parseEscape at ``rx[i] == '\\\\'``: (code point, next index)."""
    n = len(rx)
    if i + 1 >= n:
        raise _BadRegexp("trailing backslash")
    c = rx[i + 1]
    j = i + 2
    if c.isascii() and not c.isalnum():
        return ord(c), j
    if c in "1234567" and (j >= n or rx[j] not in "01234567"):
        raise _BadRegexp("invalid escape")
    if c in "01234567":
        r = ord(c) - 48
        for _ in range(2):
            if j < n and rx[j] in "01234567":
                r = r * 8 + ord(rx[j]) - 48
                j += 1
            else:
                break
        return r, j
    if c == "x":
        if j >= n:
            raise _BadRegexp("invalid escape")
        d = rx[j]
        j += 1
        if d == "{":
            nhex = r = 0
            while True:
                if j >= n:
                    raise _BadRegexp("invalid escape")
                d = rx[j]
                j += 1
                if d == "}":
                    break
                v = _unhex(d)
                if v < 0:
                    raise _BadRegexp("invalid escape")
                r = r * 16 + v
                if r > _MAX_RUNE:
                    raise _BadRegexp("invalid escape")
                nhex += 1
            if nhex == 0:
                raise _BadRegexp("invalid escape")
            return r, j
        x = _unhex(d)
        y = _unhex(rx[j]) if j < n else -1
        j += 1
        if x < 0 or y < 0:
            raise _BadRegexp("invalid escape")
        return x * 16 + y, j
    if c in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[c], j
    raise _BadRegexp("invalid escape")


def _parse_class(rx: str, i: int) -> tuple[str, int]:
    """Go regexp's parseClass at ``rx[i] == '['``: (Python class text, next index)."""
    n = len(rx)
    i += 1
    negate = False
    if i < n and rx[i] == "^":
        negate = True
        i += 1
    ranges: list[_Range] = []
    first = True
    while i >= n or rx[i] != "]" or first:
        if i >= n:
            raise _BadRegexp("missing closing ]")
        first = False
        if n - i > 2 and rx[i] == "[" and rx[i + 1] == ":":
            end = rx.find(":]", i + 2)
            if end >= 0:
                name = rx[i + 2 : end]
                neg = name.startswith("^")
                group = _POSIX.get(name[1:] if neg else name)
                if group is None:
                    raise _BadRegexp("invalid character class range")
                ranges.extend(_complement(group) if neg else group)
                i = end + 2
                continue
        if rx[i] == "\\" and i + 1 < n:
            e = rx[i + 1]
            if e in "pP":
                raise _BadRegexp("Unicode classes are not supported")
            if e.lower() in _PERL:
                group = _PERL[e.lower()]
                ranges.extend(_complement(group) if e.isupper() else group)
                i += 2
                continue
        lo, i = _class_char(rx, i)
        hi = lo
        if n - i >= 2 and rx[i] == "-" and rx[i + 1] != "]":
            hi, i = _class_char(rx, i + 1)
            if hi < lo:
                raise _BadRegexp("invalid character class range")
        ranges.append((lo, hi))
    return _emit_class(ranges, negate), i + 1


def _class_char(rx: str, i: int) -> tuple[int, int]:
    if i >= len(rx):
        raise _BadRegexp("missing closing ]")
    if rx[i] == "\\":
        return _parse_escape(rx, i)
    return ord(rx[i]), i + 1


def go_regexp_to_python(rx: str) -> str:
    """Translate the Go regexp patternmatcher builds into an equivalent Python ``re`` source.

    Compile the result with ``re.ASCII`` (Go's ``\\b`` is ASCII-based). Raises ValueError
    where Go's regexp.Compile would fail (or for Unicode classes, which are not supported).
    """
    out: list[str] = []
    i, n = 0, len(rx)
    try:
        while i < n:
            c = rx[i]
            if c == "\\":
                d = rx[i + 1] if i + 1 < n else ""
                if d in ("A", "b", "B"):
                    out.append("\\" + d)
                    i += 2
                elif d == "z":
                    out.append("\\Z")
                    i += 2
                elif d == "C":
                    raise _BadRegexp("invalid escape")
                elif d == "Q":
                    end = rx.find("\\E", i + 2)
                    lit = rx[i + 2 :] if end < 0 else rx[i + 2 : end]
                    out.append(re.escape(lit))
                    i = n if end < 0 else end + 2
                elif d in ("p", "P"):
                    raise _BadRegexp("Unicode classes are not supported")
                elif d and d.lower() in _PERL:
                    group = _PERL[d.lower()]
                    out.append(_emit_class(group, d.isupper()))
                    i += 2
                else:
                    cp, i = _parse_escape(rx, i)
                    out.append(re.escape(chr(cp)))
            elif c == "[":
                text, i = _parse_class(rx, i)
                out.append(text)
            elif c == "$":
                out.append("\\Z")  # Go's $ is the end of the text, never before a newline
                i += 1
            elif c in "^.()*?":
                out.append(c)
                i += 1
            else:
                out.append(re.escape(c))
                i += 1
    except _BadRegexp as err:
        raise ValueError(str(err)) from None
    return "".join(out)


# ---------------------------------------------------------------------------------------
# Patterns


class Pattern:
    """One cleaned pattern, compiled once (patternmatcher's Pattern)."""

    __slots__ = (
        "_regexp",
        "_suffix",
        "cleaned",
        "dirs",
        "exclusion",
        "go_regexp",
        "match_type",
    )

    def __init__(
        self, cleaned: str, exclusion: bool = False, *, kind: str = ".dockerignore"
    ) -> None:
        self.cleaned = cleaned
        self.exclusion = exclusion
        self.dirs = cleaned.split("/")
        self.match_type, self.go_regexp = _compile(cleaned)
        self._regexp: re.Pattern[str] | None = None
        self._suffix = cleaned[2:]
        if self.match_type == REGEXP:
            try:
                self._regexp = re.compile(go_regexp_to_python(self.go_regexp), re.ASCII)
            except (ValueError, re.error) as err:
                shown = ("!" if exclusion else "") + cleaned
                raise IgnorePatternError(
                    f"invalid {kind} pattern {shown!r}: {BAD_PATTERN} ({err})"
                ) from None

    def __repr__(self) -> str:
        return f"Pattern({('!' if self.exclusion else '') + self.cleaned!r}, {self.match_type})"

    def __str__(self) -> str:
        return self.cleaned

    def match(self, path: str) -> bool:
        """Does this pattern (ignoring ``!``) match ``path`` itself?"""
        mt = self.match_type
        if mt == EXACT:
            return path == self.cleaned
        if mt == PREFIX:
            return path.startswith(self.cleaned[:-2])
        if mt == SUFFIX:
            suffix = self._suffix
            if path.endswith(suffix):
                return True
            return suffix[:1] == "/" and path == suffix[1:]
        assert self._regexp is not None
        return self._regexp.search(path) is not None

    def match_or_parent(self, path: str) -> bool:
        """Does this pattern match ``path`` or one of its parent directories?"""
        if self.match(path):
            return True
        parent = go_dir(path)
        if parent == ".":
            return False
        parts = parent.split("/")
        return any(self.match("/".join(parts[: i + 1])) for i in range(len(parts)))

    def can_match_below(self, directory: str) -> bool:
        """Could this pattern match some path strictly below ``directory``?

        Exact for exact, prefix and simple glob patterns; True (cannot tell) for patterns
        with ``**`` after the start, brackets or escapes.
        """
        d = directory + "/"
        mt = self.match_type
        if mt == EXACT:
            return self.cleaned.startswith(d)
        if mt == PREFIX:
            p = self.cleaned[:-2]
            return p.startswith(d) or d.startswith(p)
        if mt == SUFFIX:
            return True
        literal = _literal_prefix(self.cleaned)
        if not (literal.startswith(d) or d.startswith(literal)):
            return False
        if any(c in self.cleaned for c in "[\\") or "**" in self.cleaned:
            return True
        # Without ** or brackets, each '/'-separated segment matches exactly one name.
        segs = self.dirs
        names = directory.split("/")
        if len(segs) <= len(names):
            return False
        try:
            return all(Pattern(seg).match(name) for seg, name in zip(segs, names, strict=False))
        except IgnorePatternError:
            return True


def _literal_prefix(pattern: str) -> str:
    for i, ch in enumerate(pattern):
        if ch in "*?[\\":
            return pattern[:i]
    return pattern


def _compile(pattern: str) -> tuple[str, str]:
    """patternmatcher's compile: (match type, Go regexp source or "")."""
    reg = ["^"]
    detected = EXACT
    src = pattern[1:] if pattern.startswith(_BOM) else pattern  # text/scanner skips a BOM
    i = step = 0
    n = len(src)
    while i < n:
        ch = src[i]
        i += 1
        if ch == "*":
            if i < n and src[i] == "*":
                i += 1
                if i < n and src[i] == "/":
                    i += 1
                if i >= n:
                    if detected == EXACT:
                        detected = PREFIX
                    else:
                        reg.append(".*")
                        detected = REGEXP
                else:
                    reg.append("(.*/)?")
                    detected = REGEXP
                if step == 0:
                    detected = SUFFIX
            else:
                reg.append("[^/]*")
                detected = REGEXP
        elif ch == "?":
            reg.append("[^/]")
            detected = REGEXP
        elif ch in _SHOULD_ESCAPE:
            reg.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                reg.append("\\" + src[i])
                i += 1
                detected = REGEXP
            else:
                reg.append("\\")
        elif ch in "[]":
            reg.append(ch)
            detected = REGEXP
        else:
            reg.append(ch)
        step += 1
    if detected == REGEXP:
        reg.append("$")
        return detected, "".join(reg)
    return detected, ""


class PatternMatcher:
    """A compiled list of ``.dockerignore`` patterns (patternmatcher's PatternMatcher).

    ``PatternMatcher(["*.log", "!important.log"])``. Patterns are trimmed, cleaned and
    syntax-checked here; empty ones are dropped. Raises :class:`IgnorePatternError`, whose
    message names ``kind`` (``.dockerignore``, or ``--exclude`` for COPY/ADD patterns).
    """

    def __init__(self, patterns: Iterable[str], *, kind: str = ".dockerignore") -> None:
        self.patterns: list[Pattern] = []
        self.exclusions = False
        for raw in patterns:
            p = go_trim_space(raw)
            if not p:
                continue
            p = go_clean(p)
            exclusion = False
            if p[0] == "!":
                if len(p) == 1:
                    raise IgnorePatternError('illegal exclusion pattern: "!"')
                exclusion = True
                p = p[1:]
                self.exclusions = True
            validate_pattern_syntax(p, kind=kind)
            self.patterns.append(Pattern(p, exclusion, kind=kind))
        self._excl = [p for p in self.patterns if p.exclusion]

    def __repr__(self) -> str:
        return f"PatternMatcher({[repr(p) for p in self.patterns]})"

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches_exact(self, path: str) -> bool:
        """True if ``path`` itself (no parent check) is excluded (MatchesExact)."""
        return self.matches_using_parent_result(path, False)

    def matches_or_parent_matches(self, path: str) -> bool:
        """True if ``path`` is excluded: the last pattern matching it or a parent is not ``!``.

        ``path`` is '/'-separated and relative to the context (not cleaned here).
        """
        matched = False
        parent = go_dir(path)
        parts = parent.split("/") if parent != "." else []
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue
            hit = pat.match(path) or any(pat.match(p) for p in prefixes)
            if hit:
                matched = not pat.exclusion
        return matched

    matches = matches_or_parent_matches

    def matches_single_parent(self, path: str) -> bool:
        """patternmatcher's deprecated ``Matches``: only the parent prefix as deep as each
        pattern is checked. Kept for conformance; prefer :meth:`matches`."""
        matched = False
        parent = go_dir(path)
        parts = parent.split("/")
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue
            hit = pat.match(path)
            if not hit and parent != "." and len(pat.dirs) <= len(parts):
                hit = pat.match("/".join(parts[: len(pat.dirs)]))
            if hit:
                matched = not pat.exclusion
        return matched

    def matches_using_parent_result(self, path: str, parent_matched: bool) -> bool:
        """patternmatcher's deprecated ``MatchesUsingParentResult``."""
        matched = parent_matched
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue
            if pat.match(path):
                matched = not pat.exclusion
        return matched

    def matches_using_parent_results(
        self, path: str, parent: MatchInfo = ()
    ) -> tuple[bool, MatchInfo]:
        """patternmatcher's ``MatchesUsingParentResults``: (excluded, info for children).

        Pass ``()`` for a path whose parents were not matched through this method.
        """
        if parent and len(parent) != len(self.patterns):
            raise ValueError("wrong number of values in parent match info")
        matched = False
        info: list[bool] = []
        for idx, pat in enumerate(self.patterns):
            hit = parent[idx] if parent else False
            if not hit:
                if pat.exclusion != matched:
                    info.append(False)
                    continue
                hit = pat.match_or_parent(path) if not parent else pat.match(path)
            info.append(hit)
            if hit:
                matched = not pat.exclusion
        return matched, tuple(info)

    def can_reinclude_below(self, directory: str) -> bool:
        """Could a ``!`` exception re-include anything strictly below ``directory``?

        When ``directory`` is excluded and this is False, every path under it is excluded
        too, so a walker can skip the whole subtree.
        """
        return any(p.can_match_below(directory) for p in self._excl)


def matches_or_parent_matches(path: str, patterns: Sequence[str]) -> bool:
    """patternmatcher's package-level ``MatchesOrParentMatches``: cleans ``path`` first;
    the context root itself is never excluded."""
    pm = PatternMatcher(patterns)
    path = go_clean(path)
    if path == ".":
        return False
    return pm.matches_or_parent_matches(path)


def legacy_matches(path: str, patterns: Sequence[str]) -> bool:
    """patternmatcher's package-level (deprecated) ``Matches``."""
    pm = PatternMatcher(patterns)
    path = go_clean(path)
    if path == ".":
        return False
    return pm.matches_single_parent(path)


# ---------------------------------------------------------------------------------------
# .dockerignore files


def read_dockerignore(source: str | bytes | os.PathLike[str] | IO[str] | IO[bytes]) -> list[str]:
    """The patterns of a ``.dockerignore`` file, as ignorefile.ReadAll gives them.

    ``source`` is the file's text (str), its bytes, a path, or an open file. A UTF-8 BOM
    is dropped, lines starting with ``#`` are comments, lines are trimmed and blank ones
    dropped, and each pattern (after an optional ``!``) is cleaned with a leading ``/``
    removed: ``! /a/../b/`` becomes ``!b``.
    """
    if isinstance(source, os.PathLike):
        with open(source, "rb") as fh:
            data: str | bytes = fh.read()
    elif isinstance(source, str | bytes):
        data = source
    else:
        data = source.read()
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    if text.startswith(_BOM):
        text = text[1:]
    out: list[str] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        if line.endswith("\r"):
            line = line[:-1]
        if line.startswith("#"):
            continue
        pattern = go_trim_space(line)
        if not pattern:
            continue
        invert = pattern[0] == "!"
        if invert:
            pattern = go_trim_space(pattern[1:])
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern[0] == "/":
                pattern = pattern[1:]
        out.append("!" + pattern if invert else pattern)
    return out
