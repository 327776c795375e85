"""Robustness: any input to the expander, the ignore matcher or the parser ends in a result
or a GantryError subclass -- never another exception, a hang or a blow-up in time."""

from __future__ import annotations

import importlib
import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gantry.dockerfile.ignore import PatternMatcher, go_clean, read_dockerignore
from gantry.dockerfile.shell import Lexer
from gantry.errors import ExpansionError, GantryError, IgnorePatternError

FUZZ = settings(max_examples=400, deadline=2000)

_SHELL_ALPHABET = st.sampled_from([*"${}:-+?#%/\\'\"` aZ_0*\n\t=.[]", "안", "\ufeff", "\x00"])
_words = st.lists(_SHELL_ALPHABET, max_size=60).map("".join)
_names = st.sampled_from(["a", "Z", "_", "0", "a_0", "#", "aZ"])
_envs = st.dictionaries(_names, st.lists(_SHELL_ALPHABET, max_size=8).map("".join), max_size=4)


@FUZZ
@given(word=_words, env=_envs, escape=st.sampled_from(["\\", "`"]))
def test_expansion_never_crashes(word: str, env: dict[str, str], escape: str) -> None:
    lexer = Lexer(escape)
    try:
        res = lexer.process_word_with_matches(word, env)
    except ExpansionError:
        return
    assert isinstance(res.result, str)
    assert all(isinstance(w, str) and w for w in res.words)
    assert res.used <= set(env)
    assert not (res.unmatched & set(env))
    assert lexer.process_words(word, env) == res.words


@FUZZ
@given(word=_words, env=_envs)
def test_expansion_options_never_crash(word: str, env: dict[str, str]) -> None:
    lexer = Lexer(raw_quotes=True, raw_escapes=True, skip_unset_env=True, skip_process_quotes=True)
    try:
        lexer.process_word(word, env)
    except ExpansionError:
        pass


@pytest.mark.parametrize(
    "word",
    [
        "${V#" + "*a" * 30 + "b}",
        "${V%%" + "*a" * 30 + "b}",
        "${V//" + "*a" * 30 + "b/x}",
        "${V/" + "?" * 200 + "/x}",
    ],
)
def test_adversarial_patterns_stay_fast(word: str) -> None:
    value = "a" * 4000
    t0 = time.perf_counter()
    Lexer().process_word(word, {"V": value})
    assert time.perf_counter() - t0 < 5.0


_PATTERN_ALPHABET = st.sampled_from([*"*?[]^!-\\/.ab{}$()|+: \t", "[:alpha:]", "é", "\n"])
_patterns = st.lists(_PATTERN_ALPHABET, min_size=0, max_size=16).map("".join)
_paths = st.lists(
    st.sampled_from(["a", "b", "ab", ".", "*", "[", "\n", "é"]), min_size=1, max_size=4
)


@FUZZ
@given(patterns=st.lists(_patterns, max_size=4), path=_paths, tail=_paths)
def test_ignore_matcher_never_crashes_and_pruning_is_sound(
    patterns: list[str], path: list[str], tail: list[str]
) -> None:
    try:
        pm = PatternMatcher(patterns)
    except IgnorePatternError:
        return
    rel = "/".join(path)
    excluded = pm.matches(rel)
    assert isinstance(excluded, bool)
    assert isinstance(pm.matches_exact(rel), bool)
    pm.matches_using_parent_results(rel)
    # pruning is only ever asked about the clean relative paths a walk produces
    if excluded and go_clean(rel) == rel and rel != "." and not pm.can_reinclude_below(rel):
        below = rel + "/" + "/".join(t for t in tail if t != ".")
        assume(go_clean(below) == below)
        assert pm.matches(below), (patterns, rel, below)


@FUZZ
@given(text=st.text(max_size=200))
def test_read_dockerignore_never_crashes(text: str) -> None:
    lines = read_dockerignore(text)
    assert all(isinstance(x, str) for x in lines)
    try:
        PatternMatcher(lines)
    except IgnorePatternError:
        pass
    read_dockerignore(text.encode("utf-8", "surrogatepass"))


_DOCKERFILE_TOKENS = st.sampled_from(
    [
        "FROM ",
        "RUN ",
        "COPY ",
        "ENV ",
        "ARG ",
        "LABEL ",
        "ONBUILD ",
        "HEALTHCHECK ",
        "CMD ",
        "# escape=`",
        "# syntax=x",
        "\n",
        "\\\n",
        "`\n",
        "<<EOF",
        "<<-'E'",
        "EOF",
        '["a", "b"]',
        "[",
        '"',
        "'",
        "a=b",
        " ",
        "--from=x ",
        "--",
        "$x",
        "\t",
        "\r\n",
        "\ufeff",
    ]
)


@FUZZ
@given(tokens=st.lists(_DOCKERFILE_TOKENS, max_size=40))
def test_parser_never_crashes(tokens: list[str]) -> None:
    try:
        parser = importlib.import_module("gantry.dockerfile.parser")
    except ImportError:
        pytest.skip("gantry.dockerfile.parser is not there yet")
    parse = parser.parse
    try:
        parse("".join(tokens))
    except GantryError:
        pass
