"""Robustness: any input to the expander, the ignore matcher or the parser ends in a result
or a GantryError subclass -- never another exception, a hang or a blow-up in time."""

from __future__ import annotations

import gc
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


# --- the whole frontend: text -> typed instructions -> stage graph -> resolved steps ------

_FRONTEND_TOKENS = st.sampled_from(
    [
        "FROM ",
        "FROM --platform=$TARGETPLATFORM ",
        " AS s",
        "RUN ",
        "RUN --mount=type=cache,target=/c ",
        "RUN --mount=from=s,target=/m ",
        "RUN --network=none ",
        "COPY ",
        "COPY --from=0 ",
        "COPY --from=s ",
        "COPY --exclude=",
        "COPY --chmod=",
        "COPY --chown=",
        "ADD --checksum=sha256:" + "a" * 64 + " ",
        "ADD ",
        "ENV ",
        "ARG ",
        "LABEL ",
        "ONBUILD ",
        "HEALTHCHECK --interval=",
        "EXPOSE ",
        "VOLUME ",
        "WORKDIR ",
        "USER ",
        "SHELL ",
        "STOPSIGNAL ",
        "CMD ",
        "\n",
        "\\\n",
        "<<EOF",
        "3<<-'E'",
        "\nEOF\n",
        "\nE\n",
        '["a", "b"]',
        "[",
        '"',
        "'",
        "a=b",
        "x=${x:-y}",
        " ",
        "$x",
        "${x:?no}",
        "${x/a/b}",
        "s",
        "0",
        "1s",
        "755",
        "https://x/a",
        "*.md",
        "!",
        "a b /d/",
        "\t",
    ]
)


@FUZZ
@given(tokens=st.lists(_FRONTEND_TOKENS, max_size=40), build_args=_envs)
def test_frontend_pipeline_never_crashes(tokens: list[str], build_args: dict[str, str]) -> None:
    from gantry.dockerfile.args import Platform, Resolver, global_scope, platform_args
    from gantry.dockerfile.instructions import parse_dockerfile
    from gantry.dockerfile.stages import build_stage_graph

    builtin = platform_args(Platform("linux", "amd64"), Platform("linux", "arm64"))
    text = "".join(tokens)
    try:
        df = parse_dockerfile(text, file="Dockerfile")
        graph = build_stage_graph(df, build_args=build_args, builtin_args=builtin)
        scope = global_scope(
            graph.meta_arg_instructions, build_args=build_args, builtin=builtin, escape=df.escape
        )
        resolver = Resolver(scope, build_args=build_args)
        for stage in graph.reachable():
            for step in resolver.steps(stage):
                assert step.instruction.start_line >= 1
        resolver.unconsumed()
    except GantryError:
        pass


# --- time: linear in the size of the input, never quadratic ------------------------------


def _best(fn: object, arg: object, runs: int = 5) -> float:
    """The best CPU time of a few runs (CPU time: other work on the machine does not
    count), with the cyclic GC paused: its full collections grow with the number of live
    objects and would blur the algorithm's own cost."""
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(runs):
            t0 = time.process_time()
            fn(arg)  # type: ignore[operator]  # a callable from the table below
            best = min(best, time.process_time() - t0)
    finally:
        gc.enable()
    return best


def _parse(text: str) -> None:
    from gantry.dockerfile.parser import parse

    parse(text)


def _typed(text: str) -> None:
    from gantry.dockerfile.instructions import parse_dockerfile

    parse_dockerfile(text)


def _graph(text: str) -> None:
    from gantry.dockerfile.instructions import parse_dockerfile
    from gantry.dockerfile.stages import build_stage_graph

    build_stage_graph(parse_dockerfile(text), builtin_args={})


_SCALING = {
    "instructions": (lambda n: "FROM a\n" + "RUN echo hi\n" * n, _parse, 1000),
    "continuation": (lambda n: "FROM a\nRUN echo \\\n" + " x \\\n" * n + "\n", _parse, 4000),
    "empty continuation": (lambda n: "FROM a\nRUN a \\\n" + "\n# c\n" * n + "b\n", _parse, 4000),
    "heredoc body": (lambda n: "FROM a\nRUN <<EOF\n" + "line\n" * n + "EOF\n", _parse, 10000),
    "many heredocs": (
        lambda n: (
            "FROM a\nRUN "
            + " ".join(f"<<E{i}" for i in range(n))
            + "\n"
            + "".join(f"x\nE{i}\n" for i in range(n))
        ),
        _parse,
        500,
    ),
    "env words": (
        lambda n: "FROM a\nENV " + " ".join(f'k{i}="v {i}"' for i in range(n)) + "\n",
        _typed,
        1000,
    ),
    "flags": (
        lambda n: "FROM a\nRUN " + "".join(f"--mount=type=tmpfs,target=/{i} " for i in range(n)),
        _typed,
        500,
    ),
    "stages": (
        lambda n: (
            "FROM scratch AS s0\n"
            + "".join(f"FROM s{i - 1} AS s{i}\nCOPY --from=s{i - 1} /a /a\n" for i in range(1, n))
        ),
        _graph,
        200,
    ),
    "expansion": (
        lambda n: "$a ${b:-x} '$c' \"$a\" " * n,
        lambda w: Lexer().process_words(w, {"a": "1 2"}),
        1000,
    ),
    "dockerignore": (lambda n: "*.log\n!keep.log\n# c\n/a/../b\n" * n, read_dockerignore, 2000),
    "ignore patterns": (
        lambda n: [f"dir{i}/**/*.log" for i in range(n)],
        lambda ps: PatternMatcher(ps).matches("dir1/x/y.log"),
        100,
    ),
    "ignore long name": (
        lambda n: "q" * n,
        PatternMatcher(["*a*b*c*d", "**/x*y*z", "[a-p]*[r-z]*"]).matches,
        2000,
    ),
}


@pytest.mark.parametrize("case", sorted(_SCALING))
def test_time_is_linear(case: str) -> None:
    make, fn, n = _SCALING[case]
    small, large = make(n), make(8 * n)  # type: ignore[operator]  # builders from the table
    t_small = max(_best(fn, small), 1e-3)
    t_large = _best(fn, large)
    # eight times the input: about eight times the time; quadratic would be 64 (the
    # margin absorbs a machine shared with other work)
    assert t_large / t_small < 24, (case, t_small, t_large)


def test_onbuild_chain_is_an_error_not_a_recursion_error() -> None:
    # each nested ONBUILD keeps its own text, as in BuildKit, so a chain costs O(n^2)
    # characters; thousands of them must still end in the typed error
    from gantry.dockerfile.dump import dump
    from gantry.dockerfile.instructions import parse_dockerfile
    from gantry.dockerfile.parser import parse

    text = "FROM a\n" + "ONBUILD " * 5000 + "RUN x\n"
    t0 = time.perf_counter()
    assert dump(parse(text)).endswith('(run "x")' + ")" * 5000)
    with pytest.raises(GantryError, match="Chaining ONBUILD"):
        parse_dockerfile(text)
    assert time.perf_counter() - t0 < 5.0
