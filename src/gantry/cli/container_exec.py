"""``gantry exec`` (also ``container exec``): docker exec's flags and exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from gantry.errors import UsageError

CTX = {"help_option_names": ["--help"], "allow_interspersed_args": False}


@click.command("exec", context_settings=CTX)
@click.option("-d", "--detach", is_flag=True, help="Detached mode: run command in the background")
@click.option(
    "--detach-keys", metavar="string", help="Override the key sequence for detaching a container"
)
@click.option("-e", "--env", multiple=True, metavar="list", help="Set environment variables")
@click.option(
    "--env-file", multiple=True, metavar="list", help="Read in a file of environment variables"
)
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached")
@click.option("--privileged", is_flag=True, help="Give extended privileges to the command")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY")
@click.option(
    "-u", "--user", metavar="string", help='Username or UID (format: "<name|uid>[:<group|gid>]")'
)
@click.option("-w", "--workdir", metavar="string", help="Working directory inside the container")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec_(ctx: click.Context, detach: bool, detach_keys: str | None, env: tuple[str, ...],
          env_file: tuple[str, ...], interactive: bool, privileged: bool, tty: bool,
          user: str | None, workdir: str | None, container: str,
          command: tuple[str, ...]) -> None:  # fmt: skip
    """Execute a command in a running container."""
    from gantry.cli.run import parse_env, parse_env_file
    from gantry.containers import Containers
    from gantry.containers.exec import exec_process

    if tty and interactive and not sys.stdin.isatty():
        raise UsageError("the input device is not a TTY")
    envs: list[str] = []
    for f in env_file:
        envs += parse_env_file(f)
    envs += parse_env(env)
    root: Any = Path(ctx.find_root().obj["root"])
    with Containers(root) as mgr:
        code = exec_process(
            mgr,
            container,
            list(command),
            user=user,
            workdir=workdir,
            env=envs,
            tty=tty,
            interactive=interactive,
            detach=detach,
            privileged=privileged,
        )
    ctx.exit(code)
