"""``gantry dockerfile dump``: print a Dockerfile's parse tree in BuildKit's test-file format."""

from __future__ import annotations

import sys

import click

from gantry.errors import DockerfileError


@click.command()
@click.option(
    "-f",
    "--file",
    "path",
    default="Dockerfile",
    show_default=True,
    help="Dockerfile to read ('-' for standard input).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Also check each instruction's flags and arguments (unknown instructions, bad flags...).",
)
@click.option("--warnings", "show_warnings", is_flag=True, help="Print parser warnings on stderr.")
def dump(path: str, check: bool, show_warnings: bool) -> None:
    """Print the parse tree of a Dockerfile, one (instruction ...) per line."""
    from gantry.dockerfile.dump import dump as dump_tree
    from gantry.dockerfile.parser import parse

    name = "<stdin>" if path == "-" else path
    try:
        data = sys.stdin.buffer.read() if path == "-" else _read(path)
    except OSError as exc:
        raise DockerfileError(
            f"failed to read dockerfile: open {path}: {exc.strerror or exc}", file=name
        ) from None
    try:
        result = parse(data, file=name)
        if check:
            from gantry.dockerfile.instructions import parse_instructions

            parse_instructions(result)
    except DockerfileError as err:
        if err.line is not None and err.hint is None:
            err.hint = f"{name}:{err.line}: {_source_line(data, err.line)}"
        raise
    if show_warnings:
        for w in result.warnings:
            click.echo(f"[WARNING]: {w.message} ({name}:{w.line})", err=True)
    click.echo(dump_tree(result))


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _source_line(data: bytes, line: int) -> str:
    lines = data.decode("utf-8", "replace").split("\n")
    return lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""
