""".dockerignore matching: every patternmatcher.* row of go-tables.json, plus ignorefile rules."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from conftest import go_tables
from gantry.dockerfile.ignore import (
    EXACT,
    PREFIX,
    REGEXP,
    SUFFIX,
    PatternMatcher,
    _compile,
    go_clean,
    go_dir,
    go_regexp_to_python,
    legacy_matches,
    matches_or_parent_matches,
    read_dockerignore,
)
from gantry.errors import IgnorePatternError


def _table(name: str) -> list[Any]:
    cases = go_tables()[name]["cases"]
    assert cases, name
    return list(cases)


def _parents(path: str) -> list[str]:
    parent = go_dir(path)
    if parent == ".":
        return []
    parts = parent.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _check_all_ways(pm: PatternMatcher, path: str, want: bool, *, deprecated: bool) -> None:
    """TestMatches: MatchesOrParentMatches, then the parent-result walks.

    The deprecated single-bool MatchesUsingParentResult is wrong with '!' exceptions
    (buildx#850), so it is only checked for single patterns.
    """
    assert pm.matches_or_parent_matches(path) is want
    assert pm.matches(path) is want
    if deprecated:
        parent_matched = False
        for p in _parents(path):
            parent_matched = pm.matches_using_parent_result(p, parent_matched)
        assert pm.matches_using_parent_result(path, parent_matched) is want
    info: tuple[bool, ...] = ()
    for p in _parents(path):
        _, info = pm.matches_using_parent_results(p, info)
    got, _ = pm.matches_using_parent_results(path, info)
    assert got is want


MATCHES = [*_table("patternmatcher.matches"), ["a\\*b", "a*b", True]]  # + the Unix-only row


@pytest.mark.parametrize(("pattern", "path", "want"), MATCHES)
def test_patternmatcher_matches_table(pattern: str, path: str, want: bool) -> None:
    _check_all_ways(PatternMatcher([pattern]), path, want, deprecated=True)


@pytest.mark.parametrize(("patterns", "path", "want"), _table("patternmatcher.multi"))
def test_patternmatcher_multi_table(patterns: list[str], path: str, want: bool) -> None:
    _check_all_ways(PatternMatcher(patterns), path, want, deprecated=False)


@pytest.mark.parametrize(("pattern", "path", "want", "err"), _table("patternmatcher.match"))
def test_patternmatcher_match_table(
    pattern: str, path: str, want: bool, err: dict[str, str] | None
) -> None:
    if err is not None:
        assert err == {"$ident": "filepath.ErrBadPattern"}
        with pytest.raises(IgnorePatternError, match="syntax error in pattern"):
            legacy_matches(path, [pattern])
    else:
        assert legacy_matches(path, [pattern]) is want


_TYPES = {"exactMatch": EXACT, "prefixMatch": PREFIX, "suffixMatch": SUFFIX, "regexpMatch": REGEXP}


@pytest.mark.parametrize(("pattern", "mtype", "rx", "_winrx"), _table("patternmatcher.compile"))
def test_patternmatcher_compile_table(
    pattern: str, mtype: dict[str, str], rx: str, _winrx: str
) -> None:
    assert _compile(pattern) == (_TYPES[mtype["$ident"]], rx)
    if rx:
        go_regexp_to_python(rx)  # every regexp patternmatcher builds must translate


def test_read_all_like_ignorefile() -> None:
    content = (
        "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! "
    )
    assert read_dockerignore(content) == [
        "test1",
        "test2",
        "a/file/here",
        "lastfile",
        "!inverted/abs/path",
        "!",
        "!",
    ]


def test_read_bom_crlf_comments_and_cleaning(tmp_path: Path) -> None:
    raw = "\ufeff# comment\r\n  # not a comment\r\n./a//b/../c/\r\n\t*.log \r\n!/x/./y\r\n/\r\n"
    expected = ["# not a comment", "a/c", "*.log", "!x/y", "/"]
    assert read_dockerignore(raw) == expected
    assert read_dockerignore(raw.encode()) == expected
    f = tmp_path / ".dockerignore"
    f.write_bytes(raw.encode())
    assert read_dockerignore(f) == expected
    assert read_dockerignore(io.BytesIO(raw.encode())) == expected
    assert read_dockerignore(io.StringIO(raw)) == expected
    # the BOM is only dropped at the very start
    assert read_dockerignore("a\n\ufeffb") == ["a", "\ufeffb"]


def test_bare_exclamation_is_illegal() -> None:
    with pytest.raises(IgnorePatternError, match='illegal exclusion pattern: "!"'):
        PatternMatcher(read_dockerignore("a\n!\n"))


def test_blank_and_whitespace_patterns_are_dropped() -> None:
    assert PatternMatcher(["", "   ", "\t"]).patterns == []
    assert not PatternMatcher([])


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [
        ("", "."),
        (".", "."),
        ("a//b", "a/b"),
        ("a/./b/", "a/b"),
        ("/../a", "/a"),
        ("//a", "/a"),
        ("a/../..", ".."),
        ("../../a/..", "../.."),
        ("a/b/../../c", "c"),
        ("/", "/"),
        ("!./x", "!./x"),
    ],
)
def test_go_clean(path: str, cleaned: str) -> None:
    assert go_clean(path) == cleaned


def test_last_match_wins_and_reinclusion() -> None:
    pm = PatternMatcher(["*.log", "!important.log", "logs", "!logs/keep", "logs/keep/x"])
    assert pm.matches("debug.log")
    assert not pm.matches("important.log")
    assert not pm.matches("src/debug.log")  # * does not cross '/'
    assert pm.matches("logs/a")
    assert not pm.matches("logs/keep")
    assert not pm.matches("logs/keep/y")
    assert pm.matches("logs/keep/x")
    assert pm.matches("logs/keep/x/deeper")


@pytest.mark.parametrize(
    ("pattern", "path", "want"),
    [
        # Go's $ never matches before a trailing newline (Python's does)
        ("a[b]", "ab\n", False),
        ("a[b]", "ab", True),
        # [^/] and * match newlines, . in ** does not
        ("a?c", "a\nc", True),
        ("a*", "a\nb", True),
        ("x/**/y", "x/a\nb/y", False),
        # POSIX classes and Perl escapes are Go regexp features reachable from patterns
        ("[[:digit:]]x", "5x", True),
        ("[[:digit:]]x", "ax", False),
        ("[[:^digit:]]x", "ax", True),
        ("file\\d", "file7", True),
        ("file\\d", "filed", False),
        ("[\\d]", "3", True),
        ("a\\.b", "a.b", True),
        ("a\\.b*", "aXb", False),
        ("[*]", "[]", True),  # * becomes [^/]* inside the class, as patternmatcher does
        ("\ufeffab*", "abc", True),  # text/scanner drops a leading BOM while compiling
    ],
)
def test_go_regexp_semantics(pattern: str, path: str, want: bool) -> None:
    assert PatternMatcher([pattern]).matches(path) is want


@pytest.mark.parametrize(
    "pattern", ["a\\é*", "[\\p{Greek}]", "x\\C", "[[:nope:]]", "[z-a]", "a\\1"]
)
def test_patterns_go_regexp_rejects(pattern: str) -> None:
    with pytest.raises(IgnorePatternError):
        PatternMatcher([pattern])


def test_package_level_matches_clean_the_path() -> None:
    assert matches_or_parent_matches("./a/../b/c", ["b"])
    assert not matches_or_parent_matches(".", ["*"])  # never the context root


@pytest.mark.parametrize(
    ("patterns", "directory", "can"),
    [
        (["node_modules", "!important.log"], "node_modules", False),
        (["node_modules", "!node_modules/keep"], "node_modules", True),
        (["node_modules", "!node_modules"], "node_modules", False),
        (["node_modules", "!**/keep"], "node_modules", True),
        (["a", "!a/*/keep"], "a", True),
        (["a", "!a/*/keep"], "a/b", True),
        (["a", "!a/*/keep"], "a/b/keep", False),
        (["a", "!b/*/keep"], "a", False),
        (["a", "!a?/x"], "a", False),
        (["a", "!*/x"], "a", True),
        (["a", "!*/x"], "a/b", False),
        (["a", "!a/**"], "a", True),
        (["a", "!a**"], "a", True),
        (["a", "!ab**"], "a", False),
        (["a", "![ab]/x"], "a", True),
        (["a"], "a", False),
    ],
)
def test_can_reinclude_below(patterns: list[str], directory: str, can: bool) -> None:
    assert PatternMatcher(patterns).can_reinclude_below(directory) is can


def test_can_reinclude_below_is_never_wrong_when_false() -> None:
    """Where pruning is allowed, no path below the directory may be re-included."""
    dirs = ["a", "a/b", "node_modules", "x/y"]
    probes = ["k", "keep", "b/keep", "b/c/keep", "x", "y/x", "important.log"]
    pattern_sets = [
        ["a", "!a/*/keep"],
        ["*", "!*/x"],
        ["**", "!a?/x", "!x/y/*"],
        ["node_modules", "!important.log", "!node_modules/*.log"],
    ]
    for patterns in pattern_sets:
        pm = PatternMatcher(patterns)
        for d in dirs:
            if pm.can_reinclude_below(d):
                continue
            for probe in probes:
                path = f"{d}/{probe}"
                if pm.matches(d):
                    assert pm.matches(path), (patterns, path)
