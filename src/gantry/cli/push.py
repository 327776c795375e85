"""``gantry push`` (also ``gantry image push``)."""

from __future__ import annotations

import click

from gantry.cli.pull import Display, root_of


@click.command()
@click.argument("name", metavar="NAME[:TAG]")
@click.option("-a", "--all-tags", is_flag=True, help="Push all tags of an image to the repository")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output")
@click.option(
    "--max-concurrent-uploads",
    type=click.IntRange(1, 64),
    default=5,
    show_default=True,
    help="Layers uploaded at once",
)
@click.pass_context
def push(
    ctx: click.Context, name: str, all_tags: bool, quiet: bool, max_concurrent_uploads: int
) -> None:
    """Upload an image to a registry."""
    from gantry import reference
    from gantry.distribution import push as do_push
    from gantry.distribution import push_all_tags
    from gantry.store import Store

    ref = reference.parse(name)
    display = Display(quiet=quiet)
    try:
        with Store(root_of(ctx)) as store:
            if all_tags:
                results = push_all_tags(
                    store, name, progress=display, concurrency=max_concurrent_uploads
                )
            else:
                if ref.is_name_only and not quiet:
                    display.line(f"Using default tag: {reference.DEFAULT_TAG}")
                results = [
                    do_push(store, name, progress=display, concurrency=max_concurrent_uploads)
                ]
    finally:
        display.close()
    if quiet:
        # docker/cli prints the reference it was given, once (the repository for -a)
        click.echo(str(ref) if all_tags else str(results[0].reference))
