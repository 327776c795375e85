"""``gantry import``, ``gantry save``, ``gantry load`` (also under ``gantry image``)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import click

from gantry.errors import UsageError


def _store(ctx: click.Context) -> Any:
    from gantry.store import Store

    return Store(ctx.find_root().obj["root"])


@click.command(name="import")
@click.argument("source", metavar="file|URL|-")
@click.argument("repository", metavar="[REPOSITORY[:TAG]]", required=False)
@click.option(
    "-c",
    "--change",
    "changes",
    multiple=True,
    help="Apply Dockerfile instruction to the created image",
)
@click.option("-m", "--message", help="Set commit message for imported image")
@click.option("--platform", help="Set platform if server is multi-platform capable")
@click.pass_context
def import_(
    ctx: click.Context,
    source: str,
    repository: str | None,
    changes: tuple[str, ...],
    message: str | None,
    platform: str | None,
) -> None:
    """Import the contents from a tarball to create a filesystem image."""
    from gantry.archive import Limits, import_image

    limits = Limits.from_env()
    with _store(ctx) as store, contextlib.ExitStack() as stack:
        src: Any
        name = "-"
        if source == "-":
            src = sys.stdin.buffer
        elif source.startswith(("http://", "https://")):
            import urllib.request

            src = stack.enter_context(urllib.request.urlopen(source))
            name = source
        else:
            if not Path(source).exists():
                raise UsageError(f"open {source}: no such file or directory")
            src = source
        img = import_image(
            store,
            src,
            repository,
            changes=changes,
            message=message,
            platform=platform,
            limits=limits,
            source_name=name,
        )
    click.echo(img.id)


@click.command()
@click.argument("images", nargs=-1, metavar="IMAGE [IMAGE...]")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write to a file, instead of STDOUT"
)
@click.pass_context
def save(ctx: click.Context, images: tuple[str, ...], output: str | None) -> None:
    """Save one or more images to a tar archive (streamed to STDOUT by default)."""
    from gantry.archive import save as save_archive
    from gantry.archive import save_to_path

    if not images:
        raise UsageError('"gantry save" requires at least 1 argument.')
    with _store(ctx) as store:
        if output:
            save_to_path(store, images, output)
            return
        if sys.stdout.isatty():
            raise UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        sys.stdout.flush()
        save_archive(store, images, sys.stdout.buffer)


@click.command()
@click.option(
    "-i",
    "--input",
    "input_",
    type=click.Path(),
    help="Read from tar archive file, instead of STDIN",
)
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output")
@click.option("--platform", help="Load only the given platform from a multi-platform archive")
@click.pass_context
def load(ctx: click.Context, input_: str | None, quiet: bool, platform: str | None) -> None:
    """Load an image from a tar archive or STDIN (docker-archive or OCI layout, compressed or not)."""
    from gantry.archive import Limits
    from gantry.archive import load as load_archive

    limits = Limits.from_env()
    src: Any
    if input_:
        if not Path(input_).exists():
            raise UsageError(f"open {input_}: no such file or directory")
        src = input_
    else:
        if sys.stdin.isatty():
            raise UsageError("requested load from stdin, but stdin is empty")
        src = sys.stdin.buffer
    with _store(ctx) as store:
        loaded = load_archive(store, src, platform=platform, limits=limits)
    if quiet:
        return
    for item in loaded:
        if item.tags:
            for tag in item.tags:
                click.echo(f"Loaded image: {tag}")
        else:
            click.echo(f"Loaded image ID: {item.image.id}")
