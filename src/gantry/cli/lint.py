"""``gantry lint``: run the build checks (``docker build --check``) without building."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from gantry.errors import DockerfileError, GantryError, UsageError


@click.command()
@click.option(
    "-f",
    "--file",
    "dockerfile",
    default=None,
    help="Name of the Dockerfile (default: PATH/Dockerfile; '-' reads standard input).",
)
@click.option(
    "--build-arg",
    "build_args",
    multiple=True,
    metavar="K=V",
    help="Set a build-time variable (repeatable; K alone takes K from the environment).",
)
@click.option("--target", default=None, help="Check only the stages this stage needs.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--no-best-practices",
    is_flag=True,
    help="Run only BuildKit's rules, not gantry's image best practices.",
)
@click.option("--list-rules", is_flag=True, help="List every rule and exit.")
@click.argument("path", required=False, default=".")
@click.pass_context
def lint(
    ctx: click.Context,
    dockerfile: str | None,
    build_args: tuple[str, ...],
    target: str | None,
    fmt: str,
    no_best_practices: bool,
    list_rules: bool,
    path: str,
) -> None:
    """Check a Dockerfile against BuildKit's build checks and image best practices.

    PATH is the build context (default: the current directory). Exits 1 when an
    error-level check fires (``# check=error=true``) or the Dockerfile does not parse.
    Skip rules with ``# check=skip=Rule1,Rule2`` at the top of the Dockerfile.
    """
    from gantry.dockerfile.checks import RULES, format_json, format_text, run_checks

    if list_rules:
        for rule in RULES.values():
            origin = "buildkit" if rule.buildkit else "gantry"
            extra = " (experimental)" if rule.experimental else ""
            click.echo(f"{rule.name}\t{origin}{extra}\t{rule.description}")
        return
    args = _build_args(build_args, os.environ)
    if dockerfile == "-":
        data = sys.stdin.buffer.read()
        name, df_path = "Dockerfile", None
    else:
        df_path = Path(dockerfile) if dockerfile else Path(path) / "Dockerfile"
        name = str(df_path) if dockerfile else "Dockerfile"
        try:
            data = df_path.read_bytes()
        except OSError as exc:
            raise DockerfileError(
                f"failed to read dockerfile: open {df_path}: {exc.strerror or exc}"
            ) from None
    if not os.path.isdir(path):
        raise UsageError(f'unable to prepare context: path "{path}" not found')
    root = (ctx.find_root().obj or {}).get("root")
    report = run_checks(
        data,
        file=name,
        build_args=args,
        target=target,
        context_dir=path,
        dockerfile_path=df_path,
        base_env=_store_env(root),
        best_practices=not no_best_practices,
    )
    if fmt == "json":
        click.echo(json.dumps(format_json(report), indent=2))
    else:
        click.echo(format_text(report))
        if report.error is not None:
            where = f"{name}:{report.error.line}: " if report.error.line else ""
            click.echo(f"ERROR: {where}{report.error.message}", err=True)
        violation = report.violation_message()
        if violation:
            click.echo(f"ERROR: {violation}", err=True)
    if report.failed:
        ctx.exit(1)


def _build_args(items: tuple[str, ...], environ: Mapping[str, str]) -> dict[str, str]:
    """``K=V`` pairs; ``K`` alone takes its value from the environment (dropped if unset)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f'invalid argument {item!r} for "--build-arg" flag')
        if sep:
            out[key] = value
        elif key in environ:
            out[key] = environ[key]
    return out


def _store_env(root: Any) -> Callable[[str], Mapping[str, str] | None] | None:
    """ENV of base images present in the local store (None for the others)."""
    if root is None or not (Path(root) / "meta.db").exists():
        return None
    from gantry.store.store import Store

    cache: dict[str, Mapping[str, str] | None] = {}

    def lookup(image: str) -> Mapping[str, str] | None:
        if image in cache:
            return cache[image]
        env: dict[str, str] | None = None
        try:
            with Store(root) as store:
                config = store.config(store.resolve(image)).config
            env = {}
            for item in config.env if config is not None else ():
                key, _, value = item.partition("=")
                env[key] = value
        except GantryError:
            env = None
        cache[image] = env
        return env

    return lookup
