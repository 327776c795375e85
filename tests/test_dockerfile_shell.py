"""Shell word expansion: vectors from BuildKit's lexer tests and the Dockerfile reference."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from gantry.dockerfile.shell import (
    MAX_NESTING,
    Lexer,
    _reverse_pattern,
    _ShellPattern,
    build_env,
    expand_key_values,
    go_quote,
)
from gantry.errors import ExpansionError

ERROR = object()

# (word, expected) with env PWD=/home SHELL=bash KOREAN=한국어 NULL= (BuildKit's envVarTest set)
ENV_VAR_CASES: list[tuple[str, object]] = [
    ("hello", "hello"),
    ("he'll'o", "hello"),
    ("he'llo", ERROR),
    ("he\\'llo", "he'llo"),
    ("he\\\\'llo", ERROR),
    ("abc\\tdef", "abctdef"),
    ('"abc\\tdef"', "abc\\tdef"),
    ('"abc\\\\tdef"', "abc\\tdef"),
    ("'abc\\tdef'", "abc\\tdef"),
    ("hello\\", "hello"),
    ("hello\\\\", "hello\\"),
    ('"hello', ERROR),
    ('"hello\\"', ERROR),
    ('"hel\'lo"', "hel'lo"),
    ("'hello", ERROR),
    ("'hello\\'", "hello\\"),
    ("'hello\\there'", "hello\\there"),
    ("'hello\\\\there'", "hello\\\\there"),
    ("\"''\"", "''"),
    ("$.", "$."),
    ("he$1x", "hex"),
    ("he$.x", "he$.x"),
    ("he$pwd.", "he."),
    ("he$PWD", "he/home"),
    ("he\\$PWD", "he$PWD"),
    ("he\\\\$PWD", "he\\/home"),
    ('"he\\$PWD"', "he$PWD"),
    ('"he\\\\$PWD"', "he\\/home"),
    ("\\${}", "${}"),
    ("\\${}aaa", "${}aaa"),
    ("he\\${}", "he${}"),
    ("he\\${}xx", "he${}xx"),
    ("${}", ERROR),
    ("${}aaa", ERROR),
    ("he${}", ERROR),
    ("he${}xx", ERROR),
    ("he${hi}", "he"),
    ("he${hi}xx", "hexx"),
    ("he${PWD}", "he/home"),
    ("he${.}", ERROR),
    ("he${XXX:-000}xx", "he000xx"),
    ("he${PWD:-000}xx", "he/homexx"),
    ("he${XXX:-$PWD}xx", "he/homexx"),
    ("he${XXX:-${PWD:-yyy}}xx", "he/homexx"),
    ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"),
    ("he${XXX:YYY}", ERROR),
    ("he${XXX?}", ERROR),
    ("he${XXX:?}", ERROR),
    ("he${PWD?}", "he/home"),
    ("he${PWD:?}", "he/home"),
    ("he${NULL?}", "he"),
    ("he${NULL:?}", ERROR),
    ("he${XXX:+${PWD}}xx", "hexx"),
    ("he${PWD:+${XXX}}xx", "hexx"),
    ("he${PWD:+${SHELL}}xx", "hebashxx"),
    ("he${XXX:+000}xx", "hexx"),
    ("he${PWD:+000}xx", "he000xx"),
    ("'he${XX}'", "he${XX}"),
    ('"he${PWD}"', "he/home"),
    ("\"he'$PWD'\"", "he'/home'"),
    ('"$PWD"', "/home"),
    ("'$PWD'", "$PWD"),
    ("'\\$PWD'", "\\$PWD"),
    ("'\"hello\"'", '"hello"'),
    ("'he\\$PWD'", "he\\$PWD"),
    ("he${PWD", ERROR),
    ("he${PWD:=000}xx", ERROR),
    ("he${PWD:+${PWD}:}xx", "he/home:xx"),
    ("he${XXX:-\\$PWD:}xx", "he$PWD:xx"),
    ("he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"),
    ("안녕하세요", "안녕하세요"),
    ("안'녕'하세요", "안녕하세요"),
    ("안'녕하세요", ERROR),
    ("안녕\\'하세요", "안녕'하세요"),
    ("안녕$KOREAN", "안녕한국어"),
    ("$KOREAN", "한국어"),
    ("${{aaa}", ERROR),
    ("${aaa}}", "}"),
    ("${aaa", ERROR),
    ("${{aaa", ERROR),
    ("${{aaa}}", ERROR),
    ("${aaa}}}", "}}"),
    ("${aaa:-bbb}}", "bbb}"),
    ("${aaa:-bbb}}}", "bbb}}"),
    ("${aaa:-bbb", ERROR),
    ("${aaa:-${bbb:-ccc}}}", "ccc}"),
    ("${aaa:-${bbb:-ccc}}}}", "ccc}}"),
    ("${a_b}", ""),
    ("${PWD#/}", "home"),
    ("${PWD%e}", "/hom"),
    ("${SHELL##*a}", "sh"),
    ("${SHELL#*a}", "sh"),
    ("${SHELL%%a*}", "b"),
    ("${PWD/o/0}", "/h0me"),
    ("${PWD//[o]/0}", "/home"),
    ("$", "$"),
    ("${", ERROR),
    ("${:}", ERROR),
    ("$@x", "x"),
    ("${#}", ""),
]


@pytest.fixture(scope="module")
def lexer() -> Lexer:
    return Lexer("\\")


ENV = build_env(["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="])


@pytest.mark.parametrize(("word", "expected"), ENV_VAR_CASES)
def test_env_var_table(lexer: Lexer, word: str, expected: object) -> None:
    if expected is ERROR:
        with pytest.raises(ExpansionError):
            lexer.process_word(word, ENV)
    else:
        assert lexer.process_word(word, ENV) == expected


# BuildKit's wordsTest: (env so far, word, expected words)
WORDS_CASES: list[tuple[dict[str, str], str, object]] = [
    ({}, "hello", ["hello"]),
    ({}, "hello${hi}bye", ["hellobye"]),
    ({"hi": "hi"}, "hello${hi}bye", ["hellohibye"]),
    ({"space": "abc  def"}, "hello${space}bye", ["helloabc", "defbye"]),
    ({"space": "abc  def"}, 'hello"${space}"bye', ["helloabc  defbye"]),
    ({"space": "abc  def"}, 'hello "${space}"bye', ["hello", "abc  defbye"]),
    ({"leading": "  ab c"}, "hello${leading}def", ["hello", "ab", "cdef"]),
    ({"leading": "  ab c"}, 'hello"${leading}" def', ["hello  ab c", "def"]),
    ({"leading": "  ab c"}, 'hello"${leading}"', ["hello  ab c"]),
    ({"leading": "  ab c"}, "hello${leading}", ["hello", "ab", "c"]),
    ({"trailing": "ab c   "}, "hello${trailing}", ["helloab", "c"]),
    ({"trailing": "ab c   "}, "hello${trailing}d", ["helloab", "c", "d"]),
    ({"trailing": "ab c   "}, 'hello"${trailing}"d', ["helloab c   d"]),
    ({"trailing": "ab c   "}, 'hel"lo${trailing}"', ["helloab c   "]),
    ({}, 'hello" there  "', ["hello there  "]),
    ({}, "hello there     ", ["hello", "there"]),
    ({}, "hello\\ there", ["hello there"]),
    ({}, 'hello" there', ERROR),
    ({}, 'hello\\" there', ['hello"', "there"]),
    ({}, 'hello"\\\\there"', ["hello\\there"]),
    ({}, 'hello"\\there"', ["hello\\there"]),
    ({}, "hello'\\\\there'", ["hello\\\\there"]),
    ({}, "hello'\\there'", ["hello\\there"]),
    ({}, "hello'$there'", ["hello$there"]),
    ({}, '""', []),
    ({}, "'' ", []),
    ({}, "'' a", ["a"]),
    ({}, "a '' b", ["a", "b"]),
    ({}, "  a\tb\n c ", ["a", "b", "c"]),
]


@pytest.mark.parametrize(("env", "word", "expected"), WORDS_CASES)
def test_words_table(lexer: Lexer, env: dict[str, str], word: str, expected: object) -> None:
    if expected is ERROR:
        with pytest.raises(ExpansionError):
            lexer.process_words(word, env)
    else:
        assert lexer.process_words(word, env) == expected


# BuildKit's TestProcessWithMatches: (word, env, expected or ERROR, used, unmatched)
MATCH_CASES: list[tuple[str, dict[str, str], object, set[str], set[str]]] = [
    ("x", {"DUMMY": "dummy"}, "x", set(), set()),
    ("x ${UNUSED}", {"DUMMY": "dummy"}, "x ", set(), {"UNUSED"}),
    ("x ${FOO}", {"FOO": "y"}, "x y", {"FOO"}, set()),
    (
        "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
        {"FOO": "xxx", "BAR": ""},
        "xxx  ccc",
        {"FOO", "BAR"},
        {"BAZ"},
    ),
    (
        "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}",
        {"FOO": "xxx", "BAR": ""},
        "xxx bbb ccc",
        {"FOO", "BAR"},
        {"BAZ"},
    ),
    ("${FOO:-}", {"FOO": "xxx", "BAR": ""}, "xxx", {"FOO"}, set()),
    ("${FOO:-}", {}, "", set(), {"FOO"}),
    (
        "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}",
        {"FOO": "xxx", "BAR": ""},
        "aaa bbb ",
        {"FOO", "BAR"},
        {"BAZ"},
    ),
    (
        "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}",
        {"FOO": "xxx", "BAR": ""},
        "aaa  ",
        {"FOO", "BAR"},
        {"BAZ"},
    ),
    ("${FOO?aaa}", {"FOO": "xxx", "BAR": ""}, "xxx", {"FOO"}, set()),
    ("${BAR?bbb}", {"FOO": "xxx", "BAR": ""}, "", {"BAR"}, set()),
    ("${BAZ?ccc}", {"FOO": "xxx", "BAR": ""}, ERROR, set(), set()),
    ("${FOO:?aaa}", {"FOO": "xxx", "BAR": ""}, "xxx", {"FOO"}, set()),
    ("${BAR:?bbb}", {"FOO": "xxx", "BAR": ""}, ERROR, set(), set()),
    ("${BAZ:?ccc}", {"FOO": "xxx", "BAR": ""}, ERROR, set(), set()),
    ("${BAZ:?}", {"FOO": "xxx", "BAR": ""}, ERROR, set(), set()),
    ("${FOO=aaa}", {"FOO": "xxx", "BAR": ""}, ERROR, set(), set()),
    ("${FOO=:aaa}", {"FOO": "xxx", "BAR": ""}, ERROR, set(), set()),
    ("${FOO=}", {}, ERROR, set(), set()),
    ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", {"FOO": "()[]{}^$.*?|\\x"}, "x", {"FOO"}, set()),
    ("${FOO%%\\**}", {"FOO": "xx**"}, "xx", {"FOO"}, set()),
    ("${FOO#*x*y}", {"FOO": "xxyy"}, "y", {"FOO"}, set()),
    ("${FOO#*}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy", {"FOO", "BAR"}, set()),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy", {"FOO", "BAR"}, set()),
    ("${FOO#}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO##*x}", {"FOO": "xxyy"}, "yy", {"FOO"}, set()),
    ("${FOO##}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO#?\\?}", {"FOO": "???y"}, "?y", {"FOO"}, set()),
    ("${ABC:-.}${FOO%x}${ABC:-.}", {"FOO": "xxyy"}, ".xxyy.", {"FOO"}, {"ABC"}),
    ("${FOO%%\\**\\*}", {"FOO": "a***yy*"}, "a", {"FOO"}, set()),
    ("${FOO%}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO%%$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy", {"FOO", "BAR"}, set()),
    (
        "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
        {"FOO": "/foo*/*/*.txt", "NEEDLE": "\\*/"},
        "/foo.*/*.txt - /foo..*.txt",
        {"FOO", "NEEDLE"},
        set(),
    ),
    (
        "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
        {"FOO": "/tmp/tmp/bar.txt", "NEEDLE": "/tmp"},
        "/tmp/bar.txt - /bar.txt",
        {"FOO", "NEEDLE"},
        set(),
    ),
    (
        "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
        {"FOO": "/a/foo/b/c.txt", "NEEDLE": "/?/", "REPLACEMENT": "/"},
        "/foo/b/c.txt - /foo/c.txt",
        {"FOO", "NEEDLE", "REPLACEMENT"},
        set(),
    ),
    (
        "${FOO/$NEEDLE/$REPLACEMENT}",
        {"FOO": "http://google.de", "NEEDLE": "http://", "REPLACEMENT": "https://"},
        "https://google.de",
        {"FOO", "NEEDLE", "REPLACEMENT"},
        set(),
    ),
    ("${FOO//\\//\\/}", {"FOO": "/tmp/foo.txt"}, "\\/tmp\\/foo.txt", {"FOO"}, set()),
    ("${FOO/$BAR/ww}", {"FOO": "xxyy", "BAR": ""}, "wwxxyy", {"FOO", "BAR"}, set()),
    ("${FOO//ww}", {"FOO": "xxyy"}, ERROR, set(), set()),
    ("${FOO//}", {"FOO": "xxyy"}, ERROR, set(), set()),
    ("${FOO///}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO///}", {}, "", set(), {"FOO"}),
]


@pytest.mark.parametrize(("word", "env", "expected", "used", "unmatched"), MATCH_CASES)
def test_process_with_matches(
    lexer: Lexer,
    word: str,
    env: dict[str, str],
    expected: object,
    used: set[str],
    unmatched: set[str],
) -> None:
    if expected is ERROR:
        with pytest.raises(ExpansionError):
            lexer.process_word_with_matches(word, env)
        return
    res = lexer.process_word_with_matches(word, env)
    assert res.result == expected
    assert res.used == used
    assert res.unmatched == unmatched


def test_platform_release_name(lexer: Lexer) -> None:
    word = (
        "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz"
    )
    base = {"VERSION": "v1.2.3", "TARGETOS": "linux"}
    assert (
        lexer.process_word(word, {**base, "TARGETARCH": "arm", "TARGETVARIANT": "v7"})
        == "something-v1.2.3.linux-arm-v7.tar.gz"
    )
    assert (
        lexer.process_word(word, {**base, "TARGETARCH": "arm64", "TARGETVARIANT": ""})
        == "something-v1.2.3.linux-arm64.tar.gz"
    )
    assert (
        lexer.process_word(word, {**base, "TARGETARCH": "arm64"})
        == "something-v1.2.3.linux-arm64.tar.gz"
    )


def test_mandatory_vars_messages(lexer: Lexer) -> None:
    set_env = {"VAR": "plain", "ARG": "x"}
    empty_env = {"VAR": "", "ARG": "x"}
    unset_env = {"ARG": "x"}
    no_empty = "${VAR:?message here$ARG}"
    no_unset = "${VAR?message here$ARG}"
    assert lexer.process_word(no_empty, set_env) == "plain"
    for env in (empty_env, unset_env):
        with pytest.raises(ExpansionError, match="VAR: message herex"):
            lexer.process_word(no_empty, env)
    assert lexer.process_word(no_unset, set_env) == "plain"
    assert lexer.process_word(no_unset, empty_env) == ""
    with pytest.raises(ExpansionError, match="message herex"):
        lexer.process_word(no_unset, unset_env)


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${a", "failed to process \"${a\": syntax error: missing '}'"),
        ("${}", 'failed to process "${}": syntax error: bad substitution'),
        ("${a:?}", 'failed to process "${a:?}": a: is not allowed to be unset'),
        ("${a:=x}", 'failed to process "${a:=x}": unsupported modifier (:=) in substitution'),
        ("${a=x}", 'failed to process "${a=x}": unsupported modifier (=) in substitution'),
        ("${a/x", "failed to process \"${a/x\": syntax error: missing '/' in ${}"),
        ("'x", "unexpected end of statement while looking for matching single-quote"),
        ('"x', "unexpected end of statement while looking for matching double-quote"),
        ("${a#\\x}", "invalid pattern (\\x) in substitution: invalid escape '\\x'"),
        ("\t${", 'failed to process "\\t${"'),
    ],
)
def test_error_messages(lexer: Lexer, word: str, message: str) -> None:
    with pytest.raises(ExpansionError) as exc:
        lexer.process_word(word, {})
    assert message in str(exc.value)


def test_empty_var_is_set_for_dash_but_not_colon_dash(lexer: Lexer) -> None:
    env = {"E": ""}
    assert lexer.process_word("${E-d}", env) == ""
    assert lexer.process_word("${E:-d}", env) == "d"
    assert lexer.process_word("${E+p}", env) == "p"
    assert lexer.process_word("${E:+p}", env) == ""


def test_backtick_escape() -> None:
    lx = Lexer("`")
    env = {"A": "1"}
    assert lx.process_word("`$A", env) == "$A"
    assert lx.process_word("c:\\dir\\$A", env) == "c:\\dir\\1"
    assert lx.process_word('"a`"b"', env) == 'a"b'


def test_raw_modes() -> None:
    lx = Lexer(raw_quotes=True, skip_unset_env=True)
    assert lx.process_word("'a' \"$X\" $Y ${Z:-d}", {"Y": "y"}) == "'a' \"$X\" y ${Z:-d}"
    assert Lexer(raw_escapes=True).process_word("a\\$b", {"b": "B"}) == "a\\$b"
    assert Lexer(skip_process_quotes=True).process_word("'$A'", {"A": "1"}) == "'1'"


def test_env_before_instruction_is_used() -> None:
    """ENV a=1 b=$a: b gets the value a had before the instruction."""
    pairs = [("a", "1"), ("b", "$a"), ("c", "${b:-none}")]
    assert expand_key_values(Lexer(), pairs, {"a": "0"}) == [
        ("a", "1"),
        ("b", "0"),
        ("c", "none"),
    ]


def test_build_env_later_key_wins() -> None:
    assert build_env(["a=1", "b", "a=2", "c=x=y"]) == {"a": "2", "b": "", "c": "x=y"}


def test_invalid_shell_patterns() -> None:
    for pat in ("\\", "\\x", "\\\\\\"):
        with pytest.raises(ValueError):
            _ShellPattern(pat, greedy=True)
    # ${} syntax escapes are dropped from the pattern
    assert _ShellPattern("\\}\\/", greedy=True).search("a}/", 0, anchored=False) == (1, 3)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("a\\*c", "c\\*a"),
        ("\\\\\\ab", "b\\a\\\\"),
        ("ab\\", "\\ba"),
        ("👽\\🚀🖖", "🖖\\🚀👽"),
        ("\\\\b", "b\\\\"),
    ],
)
def test_reverse_pattern(pattern: str, expected: str) -> None:
    assert _reverse_pattern(pattern) == expected


@pytest.mark.parametrize(
    ("word", "value", "expected"),
    [
        # Go's ReplaceAllString: no empty match right after a match
        ("${V//*/-}", "abc", "-"),
        ("${V//?/-}", "abc", "---"),
        ("${V//b*/-}", "abcb", "a-"),
        # newlines are not matched by * or ?
        ("${V//*/-}", "ab\ncd", "-\n-"),
        ("${V#*}", "a\nb", "a\nb"),
        ("${V##*}", "ab\ncd", "\ncd"),
        # non-greedy / greedy trims
        ("${V%.*}", "a.b.c", "a.b"),
        ("${V%%.*}", "a.b.c", "a"),
        ("${V#*.}", "a.b.c", "b.c"),
        ("${V##*.}", "a.b.c", "c"),
        # the replacement of // is a Go template: $0 is the match, $$ a dollar
        ("${V//b/<\\$0>}", "abc", "a<\\b>c"),
        ("${V//b/'$0$$'}", "abc", "ab$c"),
        ("${V/b/'$0'}", "abc", "a$0c"),
    ],
)
def test_pattern_semantics(word: str, value: str, expected: str) -> None:
    assert Lexer().process_word(word, {"V": value}) == expected


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    depth = MAX_NESTING * 5
    word = "${a:-" * depth + "x" + "}" * depth
    with pytest.raises(ExpansionError, match="nested too deeply"):
        Lexer().process_word(word, {})
    ok = "${a:-" * 50 + "x" + "}" * 50
    assert Lexer().process_word(ok, {}) == "x"


def _timed(fn: Callable[[int], None], n: int) -> float:
    t0 = time.perf_counter()
    fn(n)
    return time.perf_counter() - t0


def test_pattern_ops_are_not_superlinear() -> None:
    """A pattern that makes a backtracking engine explode stays linear here."""
    lx = Lexer()
    word = "${V#*a*a*a*a*a*b}"

    def run(n: int) -> None:
        assert lx.process_word(word, {"V": "a" * n}) == "a" * n

    run(200)  # warm up
    small = min(_timed(run, 1500) for _ in range(2))
    large = min(_timed(run, 6000) for _ in range(2))
    # linear: ~4x; quadratic would be ~16x
    assert large < small * 9 + 0.05, (small, large)


def test_long_words_are_linear() -> None:
    lx = Lexer()
    word = "$A " * 20000 + "'" + "x" * 100000 + "'"
    t0 = time.perf_counter()
    words = lx.process_words(word, {"A": "v"})
    assert len(words) == 20001
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize(
    ("s", "quoted"),
    [
        ("abc", '"abc"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("\t\n\x00\x7f", '"\\t\\n\\x00\\x7f"'),
        ("안녕", '"안녕"'),
        ("\u200b", '"\\u200b"'),
        ("\U000e0001", '"\\U000e0001"'),
        ("\udcff", '"\\xff"'),
    ],
)
def test_go_quote(s: str, quoted: str) -> None:
    assert go_quote(s) == quoted


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gantry", "dockerfile", "expand", *args],
        capture_output=True,
        text=True,
    )


def test_cli_expand_string_and_words() -> None:
    p = _cli("--env", "V=1.2", "--env", "E", "app-${V:-dev}${E:+x}.tar.gz")
    assert p.returncode == 0, p.stderr
    assert p.stdout == '"app-1.2.tar.gz"\n'
    p = _cli("--words", "-e", "X=c d", 'a "b c" $X')
    assert p.returncode == 0, p.stderr
    assert p.stdout == '["a", "b c", "c", "d"]\n'


def test_cli_expand_error_exits_1() -> None:
    p = _cli("${X:?need X}")
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr.strip() == 'Error: failed to process "${X:?need X}": X: need X'


def test_cli_expand_used_and_escape() -> None:
    p = _cli("--used", "--escape", "`", "-e", "A=1", "`$A $A $B")
    assert p.returncode == 0, p.stderr
    assert p.stdout == '{"result": "$A 1 ", "used": ["A"], "unmatched": ["B"]}\n'


def test_one_go_quote_and_one_go_space_for_the_frontend() -> None:
    # shell, parser and ignore share goquote.go_quote and shell's Go white-space set
    from gantry.dockerfile import goquote, ignore, parser, shell

    assert shell.go_quote is goquote.go_quote
    assert parser.go_trim_space is shell.go_trim_space is ignore.go_trim_space
    assert shell.go_trim_space("\x85\u3000 a b\t\u2029") == "a b"
    assert shell.go_trim_space("\x1ca\x1f") == "\x1ca\x1f"  # not Go spaces
