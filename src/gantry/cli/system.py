"""``system df`` and ``system check``."""

from __future__ import annotations

from typing import Any

import click

from gantry.cli import formatter
from gantry.cli.images import IMAGE_HEADER, image_rows, list_format_option, open_store
from gantry.cli.units import created_since, human_size, human_size_with_precision

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
@list_format_option
@click.option("-v", "--verbose", is_flag=True, help="Show detailed information on space usage")
@click.pass_context
def df(ctx: click.Context, fmt: str, verbose: bool) -> None:
    """Show disk usage."""
    import time

    from gantry.containers import Containers

    with open_store(ctx) as store:
        usage = store.df()
        images = {img.id: img for img in store.images()}
    with Containers(ctx.find_root().obj["root"]) as mgr:
        volumes = _volume_usage(mgr)
        if verbose:
            click.echo(_verbose(usage, images, volumes, mgr, time.time()), nl=False)
            return
    cont, cache = usage.containers, usage.build_cache
    vol_size = sum(size for _v, _links, size in volumes)
    rows = [
        UsageRow("Images", usage.total, usage.active, usage.size, usage.reclaimable),
        UsageRow("Containers", cont.total, cont.active, cont.size, cont.reclaimable),
        UsageRow(
            "Local Volumes",
            len(volumes),
            sum(1 for _v, links, _s in volumes if links),
            vol_size,
            sum(size for _v, links, size in volumes if not links),
        ),
        UsageRow("Build Cache", cache.total, cache.active, cache.size, cache.reclaimable),
    ]
    source = fmt or formatter.TABLE_KEY
    if source == formatter.TABLE_KEY:
        source = DEFAULT_DF_TABLE
    click.echo(formatter.render(source, rows, DF_HEADER), nl=False)


def _volume_usage(mgr: Any) -> list[tuple[Any, int, int]]:
    """(volume, containers using it, bytes) for every local volume."""
    return [
        (v, len(mgr.volume_users(v.name)), mgr.volumes.size(v.name)) for v in mgr.volumes.list()
    ]


class _VolumeRow(formatter.Row):
    go_type = "*formatter.volumeContext"
    json_fields = ("Links", "Name", "Size")

    def __init__(self, name: str, links: int, size: int) -> None:
        self.Name = name
        self.Links = str(links)
        self.Size = human_size(size)


class _CacheRow(formatter.Row):
    """docker/cli's ``buildCacheContext`` (``*`` marks a record in use)."""

    go_type = "*formatter.buildCacheContext"
    json_fields = (
        "CacheType",
        "CreatedSince",
        "ID",
        "LastUsedSince",
        "Shared",
        "Size",
        "UsageCount",
    )

    def __init__(self, rec: Any, now: float) -> None:
        self.ID = formatter.truncate_id(rec.id) + ("*" if rec.in_use else "")
        self.CacheType = rec.kind
        self.Size = human_size_with_precision(rec.size, 3)
        self.CreatedSince = created_since(rec.created, now)
        self.LastUsedSince = "" if rec.last_used is None else created_since(rec.last_used, now)
        self.UsageCount = str(rec.usage_count)
        self.Shared = "true" if rec.shared else "false"
        self.Description = rec.description


def _verbose(
    usage: Any, images: dict[Any, Any], volumes: list[tuple[Any, int, int]], mgr: Any, now: float
) -> str:
    from gantry.cli.container import ContainerRow

    class DfContainerRow(ContainerRow):
        @property
        def Size(self) -> str:  # df -v shows the writable layer alone
            return human_size_with_precision(sizes.get(self._c.id, 0), 3)

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
    sizes = {c.id: c.size_rw for c in usage.containers.containers}
    records = [c for c in mgr.list(all=True) if c.id in sizes]
    crows = [DfContainerRow(mgr, c, trunc=True, now=now, size=True) for c in records]
    out.append(formatter.render(DF_CONTAINERS_TABLE, crows, CONTAINER_HEADER))
    out.append("\nLocal Volumes space usage:\n\n")
    vrows = [_VolumeRow(v.name, links, size) for v, links, size in volumes]
    out.append(formatter.render(DF_VOLUMES_TABLE, vrows, VOLUME_HEADER))
    cache = usage.build_cache
    out.append(f"\nBuild cache usage: {human_size(cache.size)}\n\n")
    out.append(
        formatter.render(DF_CACHE_TABLE, [_CacheRow(r, now) for r in cache.records], CACHE_HEADER)
    )
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
