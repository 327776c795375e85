"""``system df`` and ``system check``."""

from __future__ import annotations

from typing import Any

import click

from gantry.cli import formatter
from gantry.cli.images import IMAGE_HEADER, image_rows, open_store
from gantry.cli.units import human_size

DF_HEADER = {
    "Type": "TYPE",
    "TotalCount": "TOTAL",
    "Active": "ACTIVE",
    "Size": "SIZE",
    "Reclaimable": "RECLAIMABLE",
}
DEFAULT_DF_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
DF_IMAGES_TABLE = (
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t"
    "{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}"
)
DF_CONTAINERS_TABLE = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t"
    "{{.RunningFor}}\t{{.Status}}\t{{.Names}}"
)
DF_VOLUMES_TABLE = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
DF_CACHE_TABLE = (
    "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t"
    "{{.UsageCount}}\t{{.Shared}}"
)
CONTAINER_HEADER = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "LocalVolumes": "LOCAL VOLUMES",
    "Size": "SIZE",
    "RunningFor": "CREATED",
    "Status": "STATUS",
    "Names": "NAMES",
}
VOLUME_HEADER = {"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}
CACHE_HEADER = {
    "ID": "CACHE ID",
    "CacheType": "CACHE TYPE",
    "Size": "SIZE",
    "CreatedSince": "CREATED",
    "LastUsedSince": "LAST USED",
    "UsageCount": "USAGE",
    "Shared": "SHARED",
}


class UsageRow(formatter.Row):
    """One ``system df`` row (docker/cli's ``diskUsage*Context``)."""

    json_fields = ("Active", "Reclaimable", "Size", "TotalCount", "Type")

    def __init__(self, kind: str, total: int, active: int, size: int, reclaimable: int) -> None:
        self.go_type = f"*formatter.diskUsage{kind.replace(' ', '')}Context"
        self.Type = kind
        self.TotalCount = str(total)
        self.Active = str(active)
        self.Size = human_size(size)
        if size > 0 and kind != "Build Cache":
            self.Reclaimable = f"{human_size(reclaimable)} ({reclaimable * 100 // size}%)"
        else:
            self.Reclaimable = human_size(reclaimable)


@click.command("df", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--format",
    "fmt",
    default="",
    metavar="FORMAT",
    help="Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template",
)
@click.option("-v", "--verbose", is_flag=True, help="Show detailed information on space usage")
@click.pass_context
def df(ctx: click.Context, fmt: str, verbose: bool) -> None:
    """Show disk usage."""
    import time

    with open_store(ctx) as store:
        usage = store.df()
        images = {img.id: img for img in store.images()}
    if verbose:
        click.echo(_verbose(usage, images, time.time()), nl=False)
        return
    rows = [
        UsageRow("Images", usage.total, usage.active, usage.size, usage.reclaimable),
        # containers, volumes and the build cache are not recorded by the store yet
        UsageRow("Containers", 0, 0, 0, 0),
        UsageRow("Local Volumes", 0, 0, 0, 0),
        UsageRow("Build Cache", 0, 0, 0, 0),
    ]
    source = fmt or formatter.TABLE_KEY
    if source == formatter.TABLE_KEY:
        source = DEFAULT_DF_TABLE
    click.echo(formatter.render(source, rows, DF_HEADER), nl=False)


def _verbose(usage: Any, images: dict[Any, Any], now: float) -> str:
    out = ["Images space usage:\n\n"]
    rows = []
    for u in usage.images:
        img = images.get(u.id)
        if img is None:
            continue
        tags = list(img.familiar_tags[:1])
        rows += image_rows(
            img,
            tags,
            [],
            show_digests=False,
            need_digest=False,
            trunc=True,
            now=now,
            shared_size=u.shared_size,
            containers=u.containers,
        )[:1]
    out.append(formatter.render(DF_IMAGES_TABLE, rows, IMAGE_HEADER))
    out.append("\nContainers space usage:\n\n")
    out.append(formatter.render(DF_CONTAINERS_TABLE, [], CONTAINER_HEADER))
    out.append("\nLocal Volumes space usage:\n\n")
    out.append(formatter.render(DF_VOLUMES_TABLE, [], VOLUME_HEADER))
    out.append(f"\nBuild cache usage: {human_size(0)}\n\n")
    out.append(formatter.render(DF_CACHE_TABLE, [], CACHE_HEADER))
    return "".join(out)


@click.command("check", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--quick", is_flag=True, help="Follow every reference but do not re-hash blobs")
@click.pass_context
def check(ctx: click.Context, quick: bool) -> None:
    """Verify every blob digest and every reference in the store."""
    with open_store(ctx) as store:
        problems = store.check(verify_blobs=not quick)
    for p in problems:
        click.echo(f"{p.kind}: {p.message}")
    if problems:
        n = len(problems)
        click.echo(f"Error: {n} problem{'s' if n != 1 else ''} found", err=True)
        raise click.exceptions.Exit(1)
    click.echo("No problems found")
