"""The Go regexps patternmatcher builds: the linear-time matcher agrees with the ``re``
translation, and adversarial patterns cannot make matching hang."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gantry.dockerfile.goregexp import compile_linear, go_regexp_to_python
from gantry.dockerfile.ignore import REGEXP, Pattern, PatternMatcher, _compile

_PIECES = st.sampled_from(
    [*"*?ab/.", "**", "**/", "[ab]", "[^a]", "[a-c]", "[[:digit:]]", "\\d", "\\*", "\\b", "é"]
)
_PATHS = st.lists(st.sampled_from([*"ab/.c1_ -", "é", "\n"]), max_size=14).map("".join)


@settings(max_examples=500, deadline=2000)
@given(pattern=st.lists(_PIECES, min_size=1, max_size=8).map("".join), path=_PATHS)
def test_linear_matcher_agrees_with_re(pattern: str, path: str) -> None:
    kind, rx = _compile(pattern)
    if kind != REGEXP:
        return
    try:
        source = go_regexp_to_python(rx)
    except ValueError:
        return
    linear = compile_linear(rx)
    assert linear is not None, rx
    want = re.compile(source, re.ASCII).search(path) is not None
    assert linear.search(path) is want, (pattern, rx, path)


@pytest.mark.parametrize(
    ("rx", "path", "want"),
    [
        ("^a(.*/)?b$", "a/x/y/b", True),  # "a", then "/x/y/", then "b"
        ("^a(.*/)?b$", "a/x/yb", False),
        ("^a/(.*/)?b$", "a/x/y/b", True),
        ("^a/(.*/)?b$", "a/b", True),
        ("^[^/]*\\.log$", "x.log", True),
        ("^[^/]*\\.log$", "d/x.log", False),
        ("^a.*$", "a\nb", False),  # Go's . does not match a newline
        ("^a[^b]$", "a\n", True),  # a negated class does
        ("^\\bab\\b$", "ab", True),
        ("^a\\Bb$", "ab", True),
        ("^a\\z", "a", True),
    ],
)
def test_linear_matcher_rows(rx: str, path: str, want: bool) -> None:
    linear = compile_linear(rx)
    assert linear is not None and linear.search(path) is want
    assert (re.compile(go_regexp_to_python(rx), re.ASCII).search(path) is not None) is want


def test_quote_escapes_fall_back_to_re() -> None:
    assert compile_linear("^\\Qa*\\E$") is None
    # \Q makes the rest of the regexp literal, the closing $ included (Go's regexp)
    assert Pattern("\\Qa*").match("a[^/]*$")
    assert not Pattern("\\Qa*").match("abc")


def test_negated_classes_compile_fast() -> None:
    t0 = time.perf_counter()
    PatternMatcher([f"dir{i}/*.log" for i in range(1000)])
    assert time.perf_counter() - t0 < 2.0  # was ~6 ms per pattern with spelled-out ranges


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("*a" * 25 + "b", "a" * 3000),
        ("**/" + "*x" * 20 + "y", "x" * 3000),
        ("?*" * 30 + "z", "q" * 3000),
        ("[a-z]*" * 20 + "0", "k" * 3000),
    ],
)
def test_adversarial_ignore_patterns_stay_fast(pattern: str, path: str) -> None:
    pm = PatternMatcher([pattern])
    t0 = time.perf_counter()
    assert pm.matches(path) is False
    assert time.perf_counter() - t0 < 2.0  # backtracking re would not finish
