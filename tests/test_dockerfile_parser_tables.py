"""The buildkit.* tables of go-tables.json, used as their `semantics` field says."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import go_tables
from gantry.dockerfile.heredoc import heredocs_from_line, parse_heredoc
from gantry.dockerfile.instructions import parse_dockerfile, parse_instruction
from gantry.dockerfile.parser import NOT_STRING_ARRAY, Node, parse, parse_json_array
from gantry.errors import DockerfileError


def cases(name: str) -> Any:
    return go_tables()[name]["cases"]


@pytest.mark.parametrize(("text", "want"), sorted(cases("buildkit.json_valid").items()))
def test_json_valid(text: str, want: list[str]) -> None:
    assert parse_json_array(text) == want
    node = parse(f"CMD {text}").nodes[0]
    assert node.json and node.args == want


@pytest.mark.parametrize("text", cases("buildkit.json_invalid"))
def test_json_invalid(text: str) -> None:
    # The table's semantics say "fall back to shell form"; BuildKit's own test
    # (and the shykes-nested-json negative file) require an error for arrays with
    # non-string elements. We follow BuildKit: CMD/RUN/... refuse them.
    with pytest.raises(DockerfileError) as info:
        parse(f"CMD {text}")
    assert str(info.value) == f"dockerfile parse error on line 1: {NOT_STRING_ARRAY}"


def test_json_that_is_not_json_falls_back_to_shell_form() -> None:
    for text in ["['a']", '["a"', '["a"] && b', "[NaN]", '{"a": 1}']:
        node = parse(f"CMD {text}").nodes[0]
        assert not node.json and node.args == [text], text


@pytest.mark.parametrize("word", cases("buildkit.heredoc.valid"))
def test_heredoc_valid(word: str) -> None:
    doc = parse_heredoc(word)
    assert doc is not None and doc.name == "EOF"


@pytest.mark.parametrize("word", cases("buildkit.heredoc.invalid"))
def test_heredoc_invalid(word: str) -> None:
    with pytest.raises(DockerfileError):
        parse_heredoc(word)


@pytest.mark.parametrize("word", cases("buildkit.heredoc.not_heredoc"))
def test_heredoc_not_heredoc(word: str) -> None:
    assert parse_heredoc(word) is None


@pytest.mark.parametrize("row", cases("buildkit.heredoc.from_line"), ids=lambda r: r["line"])
def test_heredoc_from_line(row: dict[str, Any]) -> None:
    names = [d.name for d in heredocs_from_line(row["line"])]
    assert names == (row["heredocNames"] or [])


def _go_heredoc(entry: dict[str, Any]) -> tuple[str, str, bool, bool, int]:
    return (
        entry["Name"],
        entry.get("Content", ""),
        entry.get("Expand", False),
        entry.get("Chomp", False),
        entry.get("FileDescriptor", 0),
    )


def test_heredoc_extract() -> None:
    (dockerfile,) = cases("buildkit.heredoc.extract_dockerfile")
    expected = cases("buildkit.heredoc.extract_expected")
    nodes = parse(dockerfile).nodes
    assert len(nodes) == len(expected) + 1
    for i, want in enumerate(expected):
        got = [
            (d.name, d.content, d.expand, d.chomp, d.file_descriptor) for d in nodes[i + 1].heredocs
        ]
        assert got == [_go_heredoc(e) for e in (want or [])], f"instruction {i + 1}"


# --- instruction tables (typed layer) --------------------------------------------------


def _node(keyword: str, args: list[str]) -> Node:
    return Node(
        keyword=keyword.lower(),
        args=args,
        original=f"{keyword} {' '.join(args)}",
        start_line=1,
        end_line=1,
    )


@pytest.mark.parametrize("keyword", cases("buildkit.instructions.exactly_one_arg"))
def test_exactly_one_arg(keyword: str) -> None:
    with pytest.raises(DockerfileError, match=f"{keyword} requires exactly one argument$"):
        parse_instruction(_node(keyword, []))


@pytest.mark.parametrize("keyword", cases("buildkit.instructions.at_least_one_arg"))
def test_at_least_one_arg(keyword: str) -> None:
    with pytest.raises(DockerfileError, match=f"{keyword} requires at least one argument$"):
        parse_instruction(_node(keyword, []))
    # and the same through the text parser
    with pytest.raises(DockerfileError, match=f"line 2: {keyword} requires at least one argument$"):
        parse_dockerfile(f"FROM x\n{keyword}\n")


@pytest.mark.parametrize("keyword", cases("buildkit.instructions.no_destination"))
def test_no_destination(keyword: str) -> None:
    message = (
        f"{keyword} requires at least two arguments, but only one was provided. "
        "Destination could not be determined"
    )
    with pytest.raises(DockerfileError) as info:
        parse_instruction(_node(keyword, ["arg1"]))
    assert str(info.value).endswith(message)


@pytest.mark.parametrize("keyword", cases("buildkit.instructions.too_many_args"))
def test_too_many_args(keyword: str) -> None:
    # our nodes hold key/value/separator triplets: anything else is malformed
    with pytest.raises(DockerfileError, match=f"Bad input to {keyword}, too many arguments"):
        parse_instruction(_node(keyword, ["arg1", "arg2"]))


@pytest.mark.parametrize("keyword", cases("buildkit.instructions.blank_names"))
def test_blank_names(keyword: str) -> None:
    with pytest.raises(DockerfileError, match=f"{keyword} names can not be blank"):
        parse_instruction(_node(keyword, ["", "arg2", "="]))
    with pytest.raises(DockerfileError, match=f"line 1: {keyword} names can not be blank"):
        parse_dockerfile(f"{keyword} =value")


@pytest.mark.parametrize(
    "row",
    cases("buildkit.instructions.error_cases"),
    ids=lambda r: f"{r['name']}:{r['dockerfile']}",
)
def test_error_cases(row: dict[str, Any]) -> None:
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile(row["dockerfile"])
    assert row["expectedError"] in str(info.value)
    assert str(info.value).startswith("dockerfile parse error on line 1: ")
