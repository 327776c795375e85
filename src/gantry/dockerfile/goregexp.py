"""The Go regexps moby/patternmatcher builds from ``.dockerignore`` patterns.

patternmatcher turns ``*`` into ``[^/]*``, ``?`` into ``[^/]``, ``**/`` into ``(.*/)?``
and passes ``[...]`` classes and ``\\x`` escapes through to Go's ``regexp``, which
matches in time linear in the path. Two ways to run them here:

- :func:`go_regexp_to_python` translates the source into Python ``re`` syntax with Go's
  meaning (classes, POSIX ``[:name:]`` groups, Perl ``\\d\\s\\w``, ``\\x`` escapes,
  ``$`` as end of text); it also validates: it raises ValueError where Go's
  ``regexp.Compile`` fails;
- :func:`compile_linear` builds a matcher that simulates all match positions at once
  (Thompson's construction), so ``*a*a*a*a*a*b`` against a long name costs
  O(len(path) * len(pattern)) instead of the exponential backtracking of ``re``.
  It covers every construct patternmatcher produces except ``\\Q...\\E`` (None then).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable
from typing import NamedTuple

__all__ = ["LinearMatcher", "compile_linear", "go_regexp_to_python"]


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
    # A negated class stays negated: "[^/]" spelled as its complement up to U+10FFFF
    # costs Python's re compiler milliseconds per pattern.
    rs = _normalize(ranges)
    if negate and rs == [(0, _MAX_RUNE)]:
        return "(?!)"
    if not rs:
        return "[\\s\\S]" if negate else "(?!)"
    parts = []
    for lo, hi in rs:
        parts.append(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}")
    return ("[^" if negate else "[") + "".join(parts) + "]"


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
    ranges, negate, i = _class_ranges(rx, i)
    return _emit_class(ranges, negate), i


def _class_ranges(rx: str, i: int) -> tuple[list[_Range], bool, int]:
    """Go regexp's parseClass at ``rx[i] == '['``: (ranges, negated, next index)."""
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
    return ranges, negate, i + 1


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
# Linear-time matching

_CHAR, _STAR, _GROUP, _ASSERT = 0, 1, 2, 3
_WORD = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_Pred = Callable[[str], bool]


def _pred(ranges: Iterable[_Range], negate: bool) -> _Pred:
    rs = _normalize(ranges)
    if len(rs) == 1 and rs[0][0] == rs[0][1]:
        only = chr(rs[0][0])
        return (lambda c: c != only) if negate else (lambda c: c == only)
    los = [lo for lo, _ in rs]
    his = [hi for _, hi in rs]

    def inside(c: str) -> bool:
        k = bisect_right(los, ord(c)) - 1
        return (k >= 0 and ord(c) <= his[k]) != negate

    return inside


def _not_newline(c: str) -> bool:
    return c != "\n"


def _at_boundary(s: str, pos: int) -> bool:
    before = pos > 0 and s[pos - 1] in _WORD
    after = pos < len(s) and s[pos] in _WORD
    return before != after


_WORD_ASSERTS = frozenset({"word", "nonword"})


class _Piece(NamedTuple):
    kind: int
    pred: _Pred | None = None  # _CHAR, _STAR: which characters
    skip_to: int = 0  # _GROUP: the piece after the optional group
    assertion: str = ""  # _ASSERT: begin, end, word, nonword


class LinearMatcher:
    """A compiled Go regexp of patternmatcher's shape; :meth:`search` is ``re.search``.

    The sets of live positions are memoized per character (a lazily built DFA), so a
    walk over many paths pays for each distinct transition once.
    """

    __slots__ = ("_final", "_memo", "_pieces", "_start", "_word_asserts")

    _MEMO_LIMIT = 4096

    def __init__(self, pieces: list[_Piece]) -> None:
        self._pieces = pieces
        self._word_asserts = any(p.kind == _ASSERT and p.assertion in _WORD_ASSERTS for p in pieces)
        self._memo: dict[tuple[frozenset[int], str], frozenset[int]] = {}
        self._final: dict[frozenset[int], bool] = {}
        self._start = frozenset({0})

    @property
    def unbounded(self) -> int:
        """How many loops (``*``, and the ``.*`` in ``(.*/)?``) the regexp has: with at most
        two, Python's backtracking ``re`` is at worst quadratic in the path and faster."""
        return sum(1 for p in self._pieces if p.kind == _STAR)

    def _closure(
        self, states: Iterable[int], s: str, pos: int, at_start: bool, at_end: bool
    ) -> frozenset[int]:
        pieces, n = self._pieces, len(self._pieces)
        out: set[int] = set()
        todo = list(states)
        while todo:
            i = todo.pop()
            if i in out:
                continue
            out.add(i)
            if i == n:
                continue
            piece = pieces[i]
            if piece.kind == _STAR:
                todo.append(i + 1)
            elif piece.kind == _GROUP:
                todo.append(i + 1)
                todo.append(piece.skip_to)
            elif piece.kind == _ASSERT:
                name = piece.assertion
                if name == "begin":
                    ok = at_start
                elif name == "end":
                    ok = at_end
                else:
                    ok = _at_boundary(s, pos) == (name == "word")
                if ok:
                    todo.append(i + 1)
        return frozenset(out)

    def _step(self, current: frozenset[int], c: str, s: str, pos: int) -> frozenset[int]:
        pieces, n = self._pieces, len(self._pieces)
        step: set[int] = {0}  # a search may also start at the next position
        for i in current:
            if i == n:
                continue
            piece = pieces[i]
            if piece.pred is not None and piece.pred(c):
                step.add(i + 1 if piece.kind == _CHAR else i)
        return self._closure(step, s, pos, False, pos == len(s))

    def search(self, s: str) -> bool:
        """True when the regexp matches somewhere in ``s``, as ``re.search`` would say."""
        n = len(self._pieces)
        if self._word_asserts:
            current = self._closure(self._start, s, 0, True, not s)
            for pos, c in enumerate(s):
                if n in current:
                    return True
                current = self._step(current, c, s, pos + 1)
            return n in current
        memo = self._memo
        if len(memo) > self._MEMO_LIMIT:
            memo.clear()
            self._final.clear()
        current = self._closure(self._start, "", 0, True, False)
        for c in s:
            if n in current:
                return True
            key = (current, c)
            nxt = memo.get(key)
            if nxt is None:
                nxt = self._step(current, c, "", -1)  # pos -1: never the end here
                memo[key] = nxt
            current = nxt
        done = self._final.get(current)
        if done is None:
            done = n in self._closure(current, "", 0, not s, True)
            self._final[current] = done
        return done


def compile_linear(rx: str) -> LinearMatcher | None:
    """A linear-time matcher for ``rx``, or None when it uses what this does not cover.

    ``rx`` must already be valid (check with :func:`go_regexp_to_python` first).
    """
    pieces: list[_Piece] = []
    i, n = 0, len(rx)
    while i < n:
        c = rx[i]
        if c == "\\":
            d = rx[i + 1] if i + 1 < n else ""
            if d in ("A", "z", "b", "B"):
                name = {"A": "begin", "z": "end", "b": "word", "B": "nonword"}[d]
                pieces.append(_Piece(_ASSERT, assertion=name))
                i += 2
                continue
            if d == "Q" or d in ("p", "P"):
                return None
            if d and d.lower() in _PERL:
                pieces.append(_Piece(_CHAR, _pred(_PERL[d.lower()], d.isupper())))
                i += 2
                continue
            cp, i = _parse_escape(rx, i)
            pieces.append(_Piece(_CHAR, _pred([(cp, cp)], False)))
        elif c == "[":
            ranges, negate, i = _class_ranges(rx, i)
            pieces.append(_Piece(_CHAR, _pred(ranges, negate)))
        elif c == "(":
            if not rx.startswith("(.*/)?", i):
                return None
            after = len(pieces) + 3
            pieces.append(_Piece(_GROUP, skip_to=after))
            pieces.append(_Piece(_STAR, _not_newline))
            pieces.append(_Piece(_CHAR, _pred([(47, 47)], False)))
            i += 6
        elif c == "*":
            if not pieces or pieces[-1].kind != _CHAR:
                return None
            pieces[-1] = _Piece(_STAR, pieces[-1].pred)
            i += 1
        elif c in "?+{|)":
            return None  # patternmatcher never leaves these unescaped outside (.*/)?
        elif c == ".":
            pieces.append(_Piece(_CHAR, _not_newline))
            i += 1
        elif c == "^":
            pieces.append(_Piece(_ASSERT, assertion="begin"))
            i += 1
        elif c == "$":
            pieces.append(_Piece(_ASSERT, assertion="end"))
            i += 1
        else:
            pieces.append(_Piece(_CHAR, _pred([(ord(c), ord(c))], False)))
            i += 1
    return LinearMatcher(pieces)
