"""``system df``, ``system prune`` and ``system check``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click

from gantry.cli import formatter
from gantry.cli.images import IMAGE_HEADER, image_rows, list_format_option, open_store
from gantry.cli.units import created_since, human_size, human_size_with_precision
from gantry.errors import GantryError, UsageError

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

    with Containers(ctx.find_root().obj["root"]) as mgr:
        # records of containers whose supervisor died say "running" until looked at
        mgr.list(all=True)
        with open_store(ctx) as store:
            usage = store.df()
            images = {img.id: img for img in store.images()}
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


# ----------------------------------------------------------------------------- prune

#: the filters ``system prune`` passes to every pruner (as docker's daemon accepts them)
PRUNE_FILTERS = ("until", "label", "label!")


@dataclass
class SystemPruneReport:
    """What ``system prune`` removed, stage by stage, and the bytes each freed."""

    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    images: list[Any] = field(default_factory=list)  #: store Untagged / Deleted events
    build_cache: list[str] = field(default_factory=list)
    reclaimed: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.reclaimed.values())


def prune_warning(*, all_: bool, volumes: bool, filters: dict[str, list[str]]) -> str:
    """docker/cli's confirmation text for ``system prune`` (without the `` [y/N] ``).

    gantry has no user-defined networks, so Docker's "all networks not used by at least
    one container" line is left out: nothing of the kind would be removed.
    """
    warnings = ["all stopped containers"]
    if volumes:
        warnings.append("all anonymous volumes not used by at least one container")
    if all_:
        warnings.append("all images without at least one container associated to them")
    else:
        warnings.append("all dangling images")
    warnings.append("all build cache" if all_ else "unused build cache")
    text = "WARNING! This will remove:" + "".join(f"\n  - {w}" for w in warnings) + "\n"
    shown = [f"{k}={v}" for k in PRUNE_FILTERS for v in filters.get(k, [])]
    if shown:
        shown.sort(key=_natural_key)
        text += "\n  Items to be pruned will be filtered with:"
        text += "".join(f"\n  - {f}" for f in shown) + "\n"
    return text + "\nAre you sure you want to continue?"


def _natural_key(text: str) -> list[tuple[int, int | str]]:
    """sortorder.NaturalLess: runs of digits compare as numbers."""
    import re

    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", text) if p]


def _check_prune_filters(filters: dict[str, list[str]], *, volumes: bool) -> dict[str, list[str]]:
    """Refuse what a stage would refuse before anything is removed; ``until`` becomes one
    instant (Unix seconds) so that every stage cuts at the same moment."""
    from gantry.store.filters import parse_timestamp

    for key in filters:
        if key not in PRUNE_FILTERS:
            raise UsageError(f"invalid filter '{key}'")
    out = {k: list(v) for k, v in filters.items()}
    until = out.get("until", [])
    if until:
        if volumes:
            raise UsageError('The "until" filter is not supported with "--volumes"')
        if len(until) > 1:
            raise UsageError("more than one until filter specified")
        try:
            out["until"] = [f"{parse_timestamp(until[0]):.9f}"]
        except UsageError as err:
            raise UsageError(f"invalid value for 'until' filter: {err}") from None
    return out


def system_prune(
    root: Any, *, all_: bool = False, volumes: bool = False, filters: dict[str, list[str]] | None
) -> SystemPruneReport:
    """docker's ``system prune`` over one root, in docker/cli's order: stopped containers,
    then (``volumes``) anonymous volumes no container uses, then images (dangling, or with
    ``all_`` every image no container uses), then build cache (not shared with an image,
    or with ``all_`` all of it; records in use never).

    ``filters``: ``until`` (containers created, images created and cache records last
    used before it), ``label`` / ``label!`` (containers, volumes and images by their
    labels; build-cache records carry none, so ``label=`` keeps every one of them).
    """
    from gantry.containers import Containers
    from gantry.store.filters import match_labels

    flt = _check_prune_filters(filters or {}, volumes=volumes)
    include, exclude = flt.get("label", []), flt.get("label!", [])
    report = SystemPruneReport()
    with Containers(root) as mgr:
        report.containers, report.reclaimed["containers"] = mgr.prune(flt)
        if volumes:
            freed = 0
            for vol in mgr.volumes.list():
                # as docker's system prune: anonymous volumes only, with or without -a
                if not vol.anonymous or not match_labels(vol.labels, include, exclude):
                    continue
                users = mgr.volume_users(vol.name)
                if users:
                    continue
                size = mgr.volumes.size(vol.name)
                try:
                    mgr.volumes.remove(vol.name, in_use_by=users)
                except GantryError:
                    continue
                report.volumes.append(vol.name)
                freed += size
            report.reclaimed["volumes"] = freed
        store = mgr.store
        images = store.prune(all=all_, filters=flt)
        report.images = list(images.deleted)
        report.reclaimed["images"] = images.reclaimed
        if not include:  # no record has a label: label=... matches none
            until = float(flt["until"][0]) if flt.get("until") else None
            cache = store.prune_cache(all=all_, until=until)
            report.build_cache = list(cache.deleted)
            report.reclaimed["build cache"] = cache.reclaimed
    return report


def render_prune(report: SystemPruneReport) -> str:
    """docker/cli's output: a section per pruner that removed something, then the total."""
    out: list[str] = []

    def section(title: str, lines: list[str]) -> None:
        if lines:
            out.append(f"{title}:\n" + "".join(f"{line}\n" for line in lines) + "\n")

    section("Deleted Containers", report.containers)
    section("Deleted Volumes", report.volumes)
    section(
        "Deleted Images",
        [
            f"untagged: {ev.ref}" if hasattr(ev, "ref") else f"deleted: {ev.id}"
            for ev in report.images
        ],
    )
    section("Deleted build cache objects", [k.split(":", 1)[-1][:25] for k in report.build_cache])
    out.append(f"Total reclaimed space: {human_size(report.total)}\n")
    return "".join(out)


def _prompt(message: str) -> bool:
    """docker/cli's ``prompt.Confirm``: ``MESSAGE [y/N] `` and one line from stdin."""
    import sys

    click.echo(f"{message} [y/N] ", nl=False)
    answer = sys.stdin.readline() if sys.stdin is not None else ""
    return answer.strip().lower() == "y"


@click.command("prune", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-a", "--all", "all_", is_flag=True, help="Remove all unused images not just dangling ones"
)
@click.option("--volumes", is_flag=True, help="Prune anonymous volumes")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="filter",
    help='Provide filter values (e.g. "label=<key>=<value>")',
)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.pass_context
def prune(
    ctx: click.Context, all_: bool, volumes: bool, filters: tuple[str, ...], force: bool
) -> None:
    """Remove unused data."""
    from gantry.cli.images import parse_filters

    flt = parse_filters(filters)
    _check_prune_filters(flt, volumes=volumes)  # refuse bad filters before asking
    if not force and not _prompt(prune_warning(all_=all_, volumes=volumes, filters=flt)):
        return
    report = system_prune(ctx.find_root().obj["root"], all_=all_, volumes=volumes, filters=flt)
    click.echo(render_prune(report), nl=False)
