"""Errors: BuildKit's wording, the file and the line; and the `gantry dockerfile dump` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CONFORMANCE
from gantry.dockerfile.instructions import OnbuildInstr, RunInstr, parse_dockerfile
from gantry.errors import DockerfileError


def fails(text: str, file: str | None = None) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile(text, file=file)
    return info.value


def test_unknown_instruction_with_suggestion_names_file_and_line() -> None:
    err = fails("FROM alpine\n\nRUNN echo hi\n", file="ctx/Dockerfile")
    assert (
        str(err)
        == "dockerfile parse error on line 3: unknown instruction: RUNN (did you mean RUN?)"
    )
    assert (err.file, err.line) == ("ctx/Dockerfile", 3)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("COPPY a b", "unknown instruction: COPPY (did you mean COPY?)"),
        ("workdri /x", "unknown instruction: workdri (did you mean workdir?)"),
        ("Expoze 80", "unknown instruction: Expoze (did you mean EXPOSE?)"),
        ("XYZZY 1", "unknown instruction: XYZZY"),
    ],
)
def test_unknown_instructions(line: str, message: str) -> None:
    assert str(fails(f"FROM x\n{line}")) == f"dockerfile parse error on line 2: {message}"


def test_error_in_a_continued_instruction_names_its_first_line() -> None:
    err = fails("FROM x\nCOPY \\\n  --chmod=9 \\\n  a b\n")
    assert err.line == 2
    assert "invalid chmod parameter 9" in str(err)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SHELL /bin/sh -c", "SHELL requires the arguments to be in JSON form"),
        ("SHELL []", "SHELL requires at least one argument"),
        ('VOLUME [""]', "VOLUME specified can not be an empty string"),
        ("ARG =x", "ARG names can not be blank"),
        ("ARG", "ARG requires at least one argument"),
        ("ENV a=1 b", 'Syntax error - can\'t find = in "b". Must be of the form: name=value'),
        ("LABEL onlykey", "LABEL must have two arguments"),
        ("ONBUILD MAINTAINER me", "MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("ONBUILD RUNN x", "unknown instruction: RUNN (did you mean RUN?)"),
        ("ONBUILD COPY --bad a b", "unknown flag: --bad"),
        ("WORKDIR", "WORKDIR requires exactly one argument"),
        ("STOPSIGNAL --x SIGTERM", "unknown flag: --x"),
        ('CMD ["a", 1]', "when using JSON array syntax, arrays must be comprised of strings only"),
    ],
)
def test_argument_errors(text: str, message: str) -> None:
    assert str(fails(f"FROM x\n{text}\n")) == f"dockerfile parse error on line 2: {message}"


def test_onbuild_expression_keeps_heredocs() -> None:
    df = parse_dockerfile("FROM x\nonbuild  RUN <<EOF\necho hi\nEOF\n")
    instr = df.instructions[1]
    assert isinstance(instr, OnbuildInstr)
    assert instr.expression == "RUN <<EOF\necho hi\nEOF"
    assert isinstance(instr.trigger, RunInstr) and instr.trigger.heredocs[0].content == "echo hi\n"


def test_line_ranges_on_typed_instructions() -> None:
    df = parse_dockerfile("# c\nFROM x\n\nRUN a \\\n  b\nCMD c\n")
    assert [(i.keyword, i.start_line, i.end_line) for i in df.instructions] == [
        ("FROM", 2, 2),
        ("RUN", 4, 5),
        ("CMD", 6, 6),
    ]


def gantry(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "gantry", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        check=False,
    )


def test_cli_dump_matches_golden() -> None:
    case = CONFORMANCE / "buildkit" / "parser" / "testfiles" / "lk4d4-the-edge-case-generator"
    proc = gantry("dockerfile", "dump", "-f", str(case / "Dockerfile"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (case / "result").read_bytes()


def test_cli_dump_default_file_stdin_and_errors(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM a\nRUN \\\n\n b\n")
    proc = gantry("dockerfile", "dump", "--warnings", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout == b'(from "a")\n(run "b")\n'
    assert b"Empty continuation line found in: RUN  b" in proc.stderr

    proc = gantry("dockerfile", "dump", "-f", "-", stdin=b"FROM a\nRUNN x\n")
    assert proc.returncode == 0 and proc.stdout == b'(from "a")\n(runn "")\n'

    proc = gantry("dockerfile", "dump", "--check", "-f", "-", stdin=b"FROM a\nRUNN x\n")
    assert proc.returncode == 1
    assert proc.stderr.decode().splitlines() == [
        "Error: dockerfile parse error on line 2: unknown instruction: RUNN (did you mean RUN?)",
        "hint: <stdin>:2: RUNN x",
    ]

    proc = gantry("dockerfile", "dump", "-f", str(tmp_path / "missing"))
    assert proc.returncode == 1
    assert b"Error: failed to read dockerfile: open " in proc.stderr
