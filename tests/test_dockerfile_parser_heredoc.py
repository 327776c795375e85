"""Heredocs: detection, bodies, <<- chomping, quoting, several per instruction, line numbers."""

from __future__ import annotations

import pytest

from gantry.dockerfile.dump import dump
from gantry.dockerfile.heredoc import Heredoc, chomp, heredocs_from_line, parse_heredoc
from gantry.dockerfile.parser import parse
from gantry.errors import DockerfileError


def test_run_heredoc_body_and_lines() -> None:
    r = parse("FROM busybox\nRUN <<EOF\necho a\n# not a comment\n\necho b \\\nEOF\nRUN true\n")
    run = r.nodes[1]
    assert run.heredocs == [
        Heredoc(name="EOF", content="echo a\n# not a comment\n\necho b \\\n", expand=True)
    ]
    assert (run.start_line, run.end_line) == (2, 7)
    assert (r.nodes[2].start_line, r.nodes[2].end_line) == (8, 8)
    # the dump shows the instruction line only, as BuildKit's does
    assert dump(r).splitlines()[1] == '(run "<<EOF")'


def test_chomp_strips_tabs_from_terminator_and_data_but_not_content() -> None:
    r = parse("FROM x\nRUN <<-EOT\n\tone\n\t\ttwo\n\tEOT\n")
    doc = r.nodes[1].heredocs[0]
    assert doc.chomp and doc.content == "\tone\n\t\ttwo\n"
    assert doc.data() == "one\ntwo\n"
    assert chomp("\ta\n  \tb\n") == "a\n  \tb\n"


def test_without_chomp_an_indented_terminator_is_body() -> None:
    with pytest.raises(DockerfileError, match="line 2: unterminated heredoc"):
        parse("FROM x\nRUN <<EOT\n\tEOT\n")


@pytest.mark.parametrize(
    ("word", "name", "expand"),
    [
        ("<<EOF", "EOF", True),
        ("<<'EOF'", "EOF", False),
        ('<<"EOF"', "EOF", False),
        ('<<E"O"F', "EOF", False),
        ("<<eo\\'f", "eo'f", True),
        ("<<'e'o\\'f", "eo'f", False),
        ("<<'one two'", "one two", False),
        ("<<$EOF", "$EOF", True),
        ("<<  EOF", "EOF", True),
    ],
)
def test_quoted_names_turn_off_expansion(word: str, name: str, expand: bool) -> None:
    doc = parse_heredoc(word)
    assert doc is not None
    assert (doc.name, doc.expand) == (name, expand)


def test_file_descriptor_and_interpreter() -> None:
    r = parse("FROM x\nRUN 3<<A python3\nprint(1)\nA\n")
    doc = r.nodes[1].heredocs[0]
    assert (doc.name, doc.file_descriptor, doc.content) == ("A", 3, "print(1)\n")
    assert r.nodes[1].args == ["3<<A python3"]


def test_several_heredocs_are_read_in_order() -> None:
    r = parse("FROM x\nCOPY <<A <<B /dst/\nB\nA\nA\nB\n")
    assert [(d.name, d.content) for d in r.nodes[1].heredocs] == [("A", "B\n"), ("B", "A\n")]
    assert r.nodes[1].args == ["<<A", "<<B", "/dst/"]
    assert r.nodes[1].end_line == 6


def test_heredocs_only_for_run_copy_add_and_not_exec_form() -> None:
    # USER cannot hold a heredoc, so the next line is an (unknown) instruction
    r = parse("FROM x\nUSER <<X\nRUN ok\n")
    assert [n.name for n in r.nodes] == ["from", "user", "run"]
    r = parse('FROM x\nRUN ["<<EOF"]\nRUN ok\n')
    assert r.nodes[1].heredocs == [] and r.nodes[1].json
    r = parse("FROM x\nRUN '<<EOF' \"<<EOG\"\n")
    assert r.nodes[1].heredocs == []


def test_onbuild_heredoc_attaches_to_onbuild() -> None:
    r = parse("FROM x\nONBUILD RUN <<EOF\necho hi\nEOF\n")
    assert r.nodes[1].heredocs[0].content == "echo hi\n"
    assert dump(r).splitlines()[1] == '(onbuild (run "<<EOF"))'


def test_heredoc_at_eof_without_newline() -> None:
    r = parse("FROM x\nRUN <<EOF\nbody\nEOF")
    assert r.nodes[1].heredocs[0].content == "body\n"


def test_unterminated_heredoc_names_start_line() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("FROM x\n\nCOPY <<EOF /a\nno end\n", file="Dockerfile")
    assert str(info.value) == "dockerfile parse error on line 3: unterminated heredoc"
    assert (info.value.file, info.value.line) == ("Dockerfile", 3)


def test_unbalanced_quote_in_name_is_an_error() -> None:
    with pytest.raises(DockerfileError, match="unexpected end of statement"):
        parse_heredoc("<<'EOF")
    # on a whole line the quote swallows the rest: no heredoc at all, as in BuildKit
    r = parse("FROM x\nRUN <<EOF' echo\n")
    assert r.nodes[1].heredocs == []


def test_heredoc_with_continuation_on_instruction_line() -> None:
    r = parse("FROM x\nRUN --mount=type=cache,target=/c \\\n  <<EOF\nmake\nEOF\n")
    node = r.nodes[1]
    assert node.flags == ["--mount=type=cache,target=/c"]
    assert node.heredocs[0].content == "make\n"
    assert (node.start_line, node.end_line) == (2, 5)


def test_from_line_ignores_unbalanced_line() -> None:
    assert heredocs_from_line("RUN 'oops <<EOF") == []
    assert [d.name for d in heredocs_from_line("RUN <<EOF <<-'B' 2<<C")] == ["EOF", "B", "C"]


def test_file_descriptor_is_ascii_digits_only() -> None:
    # Go's \d is [0-9]: an Arabic-Indic three is no file descriptor, so no heredoc
    assert parse_heredoc("\u0663<<EOF") is None
    assert parse_heredoc("\uff13<<EOF") is None
    r = parse("FROM a\nRUN \u0663<<EOF\nEOF\n")
    assert r.nodes[1].heredocs == [] and [n.name for n in r.nodes] == ["from", "run", "eof"]


def test_huge_file_descriptor_saturates_instead_of_failing() -> None:
    max_fd = (1 << 64) - 1
    doc = parse_heredoc("9" * 5000 + "<<EOF")
    assert doc is not None and doc.file_descriptor == max_fd
    assert parse_heredoc("18446744073709551616<<EOF").file_descriptor == max_fd  # type: ignore[union-attr]  # a heredoc
    assert parse_heredoc("0000000000000000000000007<<EOF").file_descriptor == 7  # type: ignore[union-attr]  # a heredoc
    r = parse("FROM a\nRUN " + "1" * 5000 + "<<EOF cat\nx\nEOF\n")
    assert r.nodes[1].heredocs[0].content == "x\n"


def test_heredoc_word_must_match_whole() -> None:
    # Go's $ is the end of the text: the trailing newline is part of the name word
    doc = parse_heredoc("<<EOF\n")
    assert doc is not None and doc.name == "EOF"
    assert parse_heredoc("x<<EOF") is None
    assert parse_heredoc("<<EOF<") is None


def test_crlf_heredoc_terminator_and_body() -> None:
    r = parse(b"FROM a\r\nRUN <<EOF\r\necho hi\r\nEOF\r\nRUN true\r\n")
    doc = r.nodes[1].heredocs[0]
    assert doc.name == "EOF" and doc.content == "echo hi\r\n"  # body kept byte for byte
    assert [n.name for n in r.nodes] == ["from", "run", "run"]
