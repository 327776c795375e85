"""``gantry dockerfile expand``: show how BuildKit's shell lexer expands a word."""

from __future__ import annotations

import json

import click

from gantry.errors import UsageError


@click.command()
@click.option(
    "--env",
    "-e",
    "env_items",
    multiple=True,
    metavar="K=V",
    help="A variable in scope (repeatable; `K` alone sets K to the empty string).",
)
@click.option("--words", is_flag=True, help="Print the list of words (as ProcessWords splits).")
@click.option(
    "--escape",
    default="\\",
    show_default=True,
    type=click.Choice(["\\", "`"]),
    help="The escape character (as set by `# escape=`).",
)
@click.option("--used", is_flag=True, help="Also report the variables used and the unset ones.")
@click.argument("word")
def expand(env_items: tuple[str, ...], words: bool, escape: str, used: bool, word: str) -> None:
    """Print the expansion of WORD as JSON, or exit 1 with BuildKit's error.

    \b
    gantry dockerfile expand --env V=1.2 'app-${V:-dev}.tar.gz'     ->  "app-1.2.tar.gz"
    gantry dockerfile expand --words 'a "b c" $X'                   ->  ["a", "b c"]
    """
    from gantry.dockerfile.shell import Lexer, build_env

    for item in env_items:
        if not item or item.startswith("="):
            raise UsageError(f"invalid --env value {item!r}: expected K=V")
    env = build_env(env_items)
    result = Lexer(escape).process_word_with_matches(word, env)
    value: object = result.words if words else result.result
    if used:
        value = {
            "result": value,
            "used": sorted(result.used),
            "unmatched": sorted(result.unmatched),
        }
    click.echo(json.dumps(value, ensure_ascii=False))
