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

from gantry.dockerfile.goregexp import LinearMatcher, compile_linear, go_regexp_to_python
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
# Up to this many stars a pattern runs on Python's re (fast, at worst quadratic).
_MAX_BACKTRACKING_STARS = 2

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
# Patterns


class Pattern:
    """One cleaned pattern, compiled once (patternmatcher's Pattern)."""

    __slots__ = (
        "_linear",
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
        self._linear: LinearMatcher | None = None
        self._suffix = cleaned[2:]
        if self.match_type == REGEXP:
            try:
                source = go_regexp_to_python(self.go_regexp)
                # Go's regexp is linear; Python's backtracks (``*a*a*a*b`` on a long name
                # would take ages), so three or more stars get the linear simulation.
                linear = compile_linear(self.go_regexp)
                if linear is not None and linear.unbounded > _MAX_BACKTRACKING_STARS:
                    self._linear = linear
                else:
                    self._regexp = re.compile(source, re.ASCII)
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
        if self._linear is not None:
            return self._linear.search(path)
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
