"""Lines: directives, comments, continuations, escape characters, flags, performance."""

from __future__ import annotations

import time

import pytest

from gantry.dockerfile.dump import dump
from gantry.dockerfile.parser import extract_flags, parse, parse_words, split_command
from gantry.errors import DockerfileError


def one(text: str) -> str:
    return dump(parse(text))


def test_keywords_are_case_insensitive() -> None:
    assert one("from a\nRuN echo\nCopY a b") == '(from "a")\n(run "echo")\n(copy "a" "b")'
    assert parse("rUn x").nodes[0].keyword == "rUn"


def test_escape_directive_backtick() -> None:
    r = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo\n")
    assert r.escape == "`" and r.directives.lines == {"escape": 1}
    assert r.nodes[1].args == ["dir c:\\   && echo"]


def test_directives_after_a_comment_or_instruction_are_comments() -> None:
    assert parse("# hello\n# escape=`\nFROM x").escape == "\\"
    assert parse("\n# escape=`\nFROM x").escape == "\\"
    assert parse("FROM x\n# escape=`\nRUN a").escape == "\\"
    # an unknown directive is a comment and ends the directive block
    r = parse("# foo=bar\n# escape=`\nFROM x")
    assert r.escape == "\\" and r.directives.as_dict() == {}


def test_directive_names_are_case_insensitive_and_values_trimmed() -> None:
    r = parse("#  SYNTAX = docker/dockerfile:1.7  \n# Check=skip=all\nFROM x")
    assert r.directives.as_dict() == {"syntax": "docker/dockerfile:1.7", "check": "skip=all"}
    assert r.directives.lines == {"syntax": 1, "check": 2}


def test_directive_only_once() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("# escape=`\n# escape=\\\nFROM x", file="df")
    assert (
        str(info.value)
        == "dockerfile parse error on line 2: only one escape parser directive can be used"
    )
    assert info.value.line == 2


def test_bad_escape_value() -> None:
    with pytest.raises(DockerfileError, match="invalid escape token '/' does not match ` or"):
        parse("# escape=/\nFROM x")


def test_continuation_keeps_indent_skips_comments_and_warns_on_empty_lines() -> None:
    r = parse("FROM x\nRUN a \\\n# c\n   # c2\n\n   b \\  \n\tc\n")
    assert r.nodes[1].args == ["a    b \tc"]
    assert (r.nodes[1].start_line, r.nodes[1].end_line) == (2, 7)
    assert len(r.warnings) == 1
    assert r.warnings[0].message == "Empty continuation line found in: RUN a    b \tc"


def test_escaped_escape_at_end_is_not_a_continuation() -> None:
    r = parse("FROM x\nENV A=b\\\\\nRUN c")
    assert [n.name for n in r.nodes] == ["from", "env", "run"]


def test_continuation_at_eof() -> None:
    assert one("FROM x\nRUN a \\") == '(from "x")\n(run "a")'


def test_bom_and_crlf() -> None:
    assert one("\ufeffFROM x\r\nRUN a \\\r\n b\r\n") == '(from "x")\n(run "a  b")'


def test_invalid_utf8_is_kept_and_quoted_like_go() -> None:
    assert (
        one(b"FROM x\nRUN echo \xff\xe9t\xc3\xa9") == '(from "x")\n(run "echo \\xff\\xe9t\u00e9")'
    )


def test_exec_and_shell_forms() -> None:
    r = parse('FROM x\nCMD ["a", "b c"]\nCMD a "b c"\nENTRYPOINT []\nSHELL ["/bin/sh", "-c"]')
    assert [(n.args, n.json) for n in r.nodes[1:]] == [
        (["a", "b c"], True),
        (['a "b c"'], False),
        ([], True),
        (["/bin/sh", "-c"], True),
    ]


def test_env_label_arg_shapes() -> None:
    assert one('ENV A=1 B="x y" C=\\ z') == '(env "A" "1" "=" "B" "\\"x y\\"" "=" "C" "\\\\ z" "=")'
    assert one("LABEL a b c") == '(label "a" "b c" "")'
    assert one('ARG a b=c d="e f"') == '(arg "a" "b=c" "d=\\"e f\\"")'
    with pytest.raises(DockerfileError, match='can\'t find = in "b"'):
        parse("ENV a=1 b")


def test_onbuild_nests() -> None:
    assert (
        one("FROM x\nONBUILD COPY --from=b a /")
        == '(from "x")\n(onbuild (copy ["--from=b"] "a" "/"))'
    )
    assert one("FROM x\nONBUILD") == '(from "x")\n(onbuild)'


def test_healthcheck_shapes() -> None:
    assert one("HEALTHCHECK NONE") == '(healthcheck "NONE")'
    assert one('HEALTHCHECK --retries=2 CMD ["a"]') == '(healthcheck ["--retries=2"] "CMD" "a")'


def test_flags() -> None:
    assert extract_flags('--from="a b" --link -- --not-a-flag x') == (
        " --not-a-flag x",
        ["--from=a b", "--link"],
    )
    assert extract_flags("--chmod=755 src dst") == ("src dst", ["--chmod=755"])
    assert extract_flags("-x --y") == ("-x --y", [])
    assert split_command("  run   --network=none  make  ") == ("run", ["--network=none"], "make")
    n = parse("RUN --mount=type=secret,id=a,target=/s \\\n    --network=host cat /s").nodes[0]
    assert n.flags == ["--mount=type=secret,id=a,target=/s", "--network=host"]
    assert n.args == ["cat /s"]


def test_parse_words() -> None:
    assert parse_words("foo bar 'abc xyz'", "\\") == ["foo", "bar", "'abc xyz'"]
    assert parse_words('föo bàr "âbc xÿz"', "\\") == ["föo", "bàr", '"âbc xÿz"']
    assert parse_words("foo\\ bar", "\\") == ["foo\\ bar"]
    assert parse_words("a=''", "\\") == ["a=''"]


def test_comments_are_attached() -> None:
    r = parse("# syntax=x\n# about a\n# more\nFROM a\n#\nRUN b")
    assert r.nodes[0].comments == ["about a", "more"]
    assert r.nodes[1].comments == []


def _elapsed(text: str) -> float:
    t0 = time.perf_counter()
    parse(text)
    return time.perf_counter() - t0


def test_thousand_lines_fast() -> None:
    lines = ["FROM alpine AS base"]
    for i in range(333):
        lines.append(f'RUN --mount=type=cache,target=/c{i} echo {i} && \\\n    ls -la "/x y"')
        lines.append(f'ENV K{i}="v {i}" L{i}=w')
    text = "\n".join(lines)
    assert text.count("\n") >= 999
    parse(text)  # warm up
    assert _elapsed(text) < 0.1


def test_no_quadratic_behaviour() -> None:
    chain = "RUN a" + " \\\n b" * 100_000
    long_line = "RUN " + "x \\\\ " * 200_000
    spaces = "RUN a" + " " * 300_000 + "\\" + " " * 300_000 + "\nb"
    words = "ENV " + " ".join(f"k{i}=v" for i in range(50_000))
    for text in (chain, long_line, spaces, words):
        assert _elapsed(text) < 2.0
    assert parse(chain).nodes[0].end_line == 100_001
