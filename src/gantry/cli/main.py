"""The ``gantry`` command: a lazy click group and the one place errors are rendered.

Subcommands live in their own modules and are imported only when invoked, so
``gantry --help`` and a cached ``gantry build`` do not pay for aiohttp, rich
progress or the registry client. Register a command by adding a line to
``COMMANDS`` (top level) or ``GROUPS`` (``gantry image ls`` and friends).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from gantry.config import default_root
from gantry.errors import GantryError

# name -> "module:attribute" of a click.Command, imported on first use.
COMMANDS: dict[str, str] = {
    "version": "gantry.cli.version:version",
    "run": "gantry.cli.run:run",
    "create": "gantry.cli.run:create",
    "start": "gantry.cli.container:start",
    "stop": "gantry.cli.container:stop",
    "kill": "gantry.cli.container:kill",
    "restart": "gantry.cli.container:restart",
    "rm": "gantry.cli.container:rm",
    "ps": "gantry.cli.container:ps",
    "logs": "gantry.cli.container:logs",
    "wait": "gantry.cli.container:wait",
    "inspect": "gantry.cli.container:inspect_any",
    "exec": "gantry.cli.container_exec:exec_",
    "export": "gantry.cli.container_fs:export",
    "commit": "gantry.cli.container_fs:commit",
    "cp": "gantry.cli.container_fs:cp",
    "lint": "gantry.cli.lint:lint",
    "build": "gantry.cli.build:build",
    "import": "gantry.cli.archive:import_",
    "save": "gantry.cli.archive:save",
    "load": "gantry.cli.archive:load",
    "pull": "gantry.cli.pull:pull",
    "push": "gantry.cli.push:push",
    "login": "gantry.cli.login:login",
    "logout": "gantry.cli.login:logout",
    "search": "gantry.cli.remote:search",
}

# Docker's management groups: name -> (help, {subcommand: "module:attr"}).
GROUPS: dict[str, tuple[str, dict[str, str]]] = {
    "container": (
        "Manage containers",
        {
            "run": "gantry.cli.run:run",
            "create": "gantry.cli.run:create",
            "start": "gantry.cli.container:start",
            "stop": "gantry.cli.container:stop",
            "kill": "gantry.cli.container:kill",
            "restart": "gantry.cli.container:restart",
            "rm": "gantry.cli.container:rm",
            "ls": "gantry.cli.container:ps",
            "list": "gantry.cli.container:ps",
            "ps": "gantry.cli.container:ps",
            "logs": "gantry.cli.container:logs",
            "wait": "gantry.cli.container:wait",
            "inspect": "gantry.cli.container:inspect",
            "prune": "gantry.cli.container:prune",
            "exec": "gantry.cli.container_exec:exec_",
            "export": "gantry.cli.container_fs:export",
            "commit": "gantry.cli.container_fs:commit",
            "cp": "gantry.cli.container_fs:cp",
        },
    ),
    "volume": (
        "Manage volumes",
        {
            "create": "gantry.cli.volume:create",
            "ls": "gantry.cli.volume:ls",
            "list": "gantry.cli.volume:ls",
            "inspect": "gantry.cli.volume:inspect",
            "rm": "gantry.cli.volume:rm",
            "prune": "gantry.cli.volume:prune",
        },
    ),
    "dockerfile": (
        "Inspect Dockerfiles the way the builder reads them",
        {"expand": "gantry.cli.dockerfile_expand:expand", "dump": "gantry.cli.dockerfile:dump"},
    ),
    "registry": (
        "Run and manage a registry",
        {"serve": "gantry.cli.registry:serve", "gc": "gantry.cli.registry:gc"},
    ),
    "image": (
        "Manage images",
        {
            "ls": "gantry.cli.images:ls",
            "list": "gantry.cli.images:ls",
            "rm": "gantry.cli.images:rm",
            "prune": "gantry.cli.images:prune",
            "inspect": "gantry.cli.images:inspect",
            "history": "gantry.cli.images:history",
            "tag": "gantry.cli.images:tag",
            "import": "gantry.cli.archive:import_",
            "save": "gantry.cli.archive:save",
            "load": "gantry.cli.archive:load",
            "pull": "gantry.cli.pull:pull",
            "push": "gantry.cli.push:push",
            "copy": "gantry.cli.remote:copy",
        },
    ),
    "manifest": (
        "Manage Docker image manifests and manifest lists",
        {"inspect": "gantry.cli.remote:inspect"},
    ),
    "system": (
        "Manage gantry",
        {
            "df": "gantry.cli.system:df",
            "prune": "gantry.cli.system:prune",
            "check": "gantry.cli.system:check",
        },
    ),
    "builder": (
        "Manage builds",
        {"prune": "gantry.cli.build:prune"},
    ),
}

# Top-level aliases Docker users type: alias -> (group, subcommand).
ALIASES: dict[str, tuple[str, str]] = {
    "images": ("image", "ls"),
    "rmi": ("image", "rm"),
    "tag": ("image", "tag"),
    "history": ("image", "history"),
}


def _load(spec: str) -> click.Command:
    module, _, attr = spec.partition(":")
    cmd = getattr(importlib.import_module(module), attr)
    assert isinstance(cmd, click.Command), spec
    return cmd


class LazyGroup(click.Group):
    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            cmd = _load(self.lazy[cmd_name])
            if cmd.name != cmd_name:
                # the same command object may serve several names (ls/list)
                cmd = _renamed(cmd, cmd_name)
            return cmd
        return super().get_command(ctx, cmd_name)


def _renamed(cmd: click.Command, name: str) -> click.Command:
    import copy

    clone = copy.copy(cmd)
    clone.name = name
    return clone


class RootGroup(LazyGroup):
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in GROUPS:
            help_text, subs = GROUPS[cmd_name]
            return LazyGroup(name=cmd_name, help=help_text, lazy=subs)
        if cmd_name in ALIASES:
            group, sub = ALIASES[cmd_name]
            return _renamed(_load(GROUPS[group][1][sub]), cmd_name)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(GROUPS) | set(ALIASES))


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=RootGroup, lazy=COMMANDS, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--root",
    type=click.Path(file_okay=False),
    envvar="GANTRY_ROOT",
    help="Store root (default /var/lib/gantry as root, $XDG_DATA_HOME/gantry otherwise).",
)
@click.option("--debug", is_flag=True, envvar="GANTRY_DEBUG", help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, root: str | None, debug: bool) -> None:
    """gantry: build, store, move and run container images, without a daemon."""
    from pathlib import Path

    ctx.obj = {"root": Path(root) if root else default_root(), "debug": debug}


def main(argv: list[str] | None = None) -> None:
    debug = bool(os.environ.get("GANTRY_DEBUG")) or "--debug" in (argv or sys.argv[1:])
    try:
        rv = cli.main(args=argv, prog_name="gantry", standalone_mode=False)
    except GantryError as err:
        if debug:
            raise
        click.echo(f"Error: {err}", err=True)
        if err.hint:
            click.echo(f"hint: {err.hint}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code if err.exit_code != 2 else 125 if _is_run(argv) else 1)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(rv if isinstance(rv, int) else 0)


def _is_run(argv: list[str] | None) -> bool:
    return command_word(argv if argv is not None else sys.argv[1:]) in ("run", "create")


def command_word(argv: list[str]) -> str:
    """The first word after gantry's own options (``--root R``, ``--debug``): the verb."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--root":
            i += 2
        elif arg.startswith("-"):
            i += 1
        else:
            return arg
    return ""
