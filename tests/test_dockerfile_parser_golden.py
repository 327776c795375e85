"""BuildKit's parser golden files: every testfiles/<case> must dump byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CONFORMANCE
from gantry.dockerfile.dump import dump
from gantry.dockerfile.parser import parse
from gantry.errors import DockerfileError

PARSER = CONFORMANCE / "buildkit" / "parser"
GOLDEN = sorted(p.name for p in (PARSER / "testfiles").iterdir()) if PARSER.is_dir() else []
NEGATIVE = (
    sorted(p.name for p in (PARSER / "testfiles-negative").iterdir()) if PARSER.is_dir() else []
)


def test_all_cases_are_present() -> None:
    assert len(GOLDEN) == 33
    assert len(NEGATIVE) == 4


@pytest.mark.parametrize("case", GOLDEN)
def test_golden(case: str) -> None:
    d = PARSER / "testfiles" / case
    result = parse((d / "Dockerfile").read_bytes(), file=str(d / "Dockerfile"))
    assert dump(result) + "\n" == (d / "result").read_text(encoding="utf-8")


@pytest.mark.parametrize("case", NEGATIVE)
def test_negative(case: str) -> None:
    path = PARSER / "testfiles-negative" / case / "Dockerfile"
    with pytest.raises(DockerfileError) as info:
        parse(path.read_bytes(), file=str(path))
    assert info.value.file == str(path)
    assert str(info.value)


def test_negative_messages() -> None:
    base = PARSER / "testfiles-negative"
    cases = {
        "env_no_value": ("dockerfile parse error on line 3: ENV must have two arguments", 3),
        "shykes-nested-json": (
            "dockerfile parse error on line 1: when using JSON array syntax, "
            "arrays must be comprised of strings only",
            1,
        ),
        "only_comments": ("dockerfile parse error on line 3: file with no instructions", 3),
        "empty_dockerfile": ("the Dockerfile cannot be empty", None),
    }
    for case, (message, line) in cases.items():
        with pytest.raises(DockerfileError) as info:
            parse((base / case / "Dockerfile").read_bytes())
        assert str(info.value) == message
        assert info.value.line == line


def test_line_information() -> None:
    result = parse((PARSER / "testfile-line" / "Dockerfile").read_bytes())
    assert (result.start_line, result.end_line) == (5, 31)
    assert [(n.start_line, n.end_line) for n in result.nodes] == [(5, 5), (11, 12), (17, 31)]


def test_golden_files_parse_identically_from_text_and_bytes() -> None:
    for case in GOLDEN:
        data = (PARSER / "testfiles" / case / "Dockerfile").read_bytes()
        assert dump(parse(data)) == dump(parse(data.decode("utf-8", "surrogateescape")))


def test_dump_windows_line_endings_match_unix(tmp_path: Path) -> None:
    d = PARSER / "testfiles" / "lk4d4-the-edge-case-generator"
    data = (d / "Dockerfile").read_bytes().replace(b"\n", b"\r\n")
    assert dump(parse(data)) + "\n" == (d / "result").read_text()
