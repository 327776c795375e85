"""``gantry volume create/ls/rm/inspect/prune`` (Docker's local driver, same output)."""

from __future__ import annotations

from typing import Any

import click

from gantry.cli import formatter
from gantry.cli.container import (
    for_each,
    format_option,
    list_options,
    open_containers,
    print_pruned,
    render_docs,
)
from gantry.errors import UsageError

CTX = {"help_option_names": ["-h", "--help"]}


@click.command("create", context_settings=CTX)
@click.option(
    "-d",
    "--driver",
    default="local",
    metavar="string",
    help='Specify volume driver name (default "local")',
)
@click.option("--label", multiple=True, metavar="list", help="Set metadata for a volume")
@click.option("-o", "--opt", multiple=True, metavar="map", help="Set driver specific options")
@click.argument("name", required=False)
@click.pass_context
def create(ctx: click.Context, driver: str, label: tuple[str, ...], opt: tuple[str, ...], name: str | None) -> None:  # fmt: skip
    """Create a volume."""
    if driver != "local":
        raise UsageError(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
    labels = dict(v.partition("=")[::2] for v in label)
    options = dict(v.partition("=")[::2] for v in opt)
    with open_containers(ctx) as mgr:
        vol = mgr.volumes.create(name, labels=labels, options=options)
    click.echo(vol.name)


class VolumeRow(formatter.Row):
    go_type = "*formatter.volumeContext"
    json_fields = ("Availability", "Driver", "Group", "Labels", "Links", "Mountpoint", "Name",
                   "Scope", "Size", "Status")  # fmt: skip

    def __init__(self, vol: Any, links: int) -> None:
        self._v = vol
        self.Name = vol.name
        self.Driver = "local"
        self.Scope = "local"
        self.Mountpoint = str(vol.mountpoint)
        self.Labels = ",".join(f"{k}={v}" for k, v in vol.labels.items())
        self.Links = str(links)
        self.Size = "N/A"
        self.Group = "N/A"
        self.Availability = "N/A"
        self.Status = "N/A"

    def Label(self, name: str) -> str:
        return str(self._v.labels.get(name, ""))


@click.command("ls", context_settings=CTX)
@list_options('Provide filter values (e.g. "dangling=true")')
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names")
@click.pass_context
def ls(ctx: click.Context, filters: tuple[str, ...], fmt: str, quiet: bool) -> None:
    """List volumes."""
    from gantry.cli.images import parse_filters
    from gantry.store.filters import label_matches

    flt = parse_filters(filters)
    for key in flt:
        if key not in ("dangling", "name", "label", "driver"):
            raise UsageError(f"invalid filter '{key}'")
    rows = []
    with open_containers(ctx) as mgr:
        for vol in mgr.volumes.list():
            users = mgr.volume_users(vol.name)
            if "name" in flt and not any(n in vol.name for n in flt["name"]):
                continue
            if "label" in flt and not all(label_matches(vol.labels, x) for x in flt["label"]):
                continue
            if "driver" in flt and "local" not in flt["driver"]:
                continue
            for d in flt.get("dangling", []):
                want = d.lower() in ("1", "true")
                if want == bool(users):
                    break
            else:
                rows.append(VolumeRow(vol, len(users)))
    if quiet and not fmt:
        fmt = "{{.Name}}"
    if not fmt:
        fmt = "table {{.Driver}}\t{{.Name}}"
    header = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
              "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE"}  # fmt: skip
    click.echo(formatter.render(fmt, rows, header), nl=False)


@click.command("inspect", context_settings=CTX)
@format_option
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx: click.Context, fmt: str, names: tuple[str, ...]) -> None:
    """Display detailed information on one or more volumes."""
    docs, errors = [], []
    with open_containers(ctx) as mgr:
        for n in names:
            vol = mgr.volumes.find(n)
            if vol is None:
                errors.append(f"get {n}: no such volume")
            else:
                docs.append(vol.inspect())
    render_docs(docs, fmt)
    for e in errors:
        click.echo(f"Error response from daemon: {e}", err=True)
    if errors:
        raise click.exceptions.Exit(1)


@click.command("rm", context_settings=CTX)
@click.option("-f", "--force", is_flag=True, help="Force the removal of one or more volumes")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx: click.Context, force: bool, names: tuple[str, ...]) -> None:
    """Remove one or more volumes."""
    for_each(
        ctx,
        names,
        lambda mgr, n: mgr.volumes.remove(n, in_use_by=mgr.volume_users(n), force=force),
        "",
    )


@click.command("prune", context_settings=CTX)
@click.option(
    "-a", "--all", "all_", is_flag=True, help="Remove all unused volumes, not just anonymous ones"
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="filter",
    help='Provide filter values (e.g. "label=<label>")',
)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.pass_context
def prune(ctx: click.Context, all_: bool, filters: tuple[str, ...], force: bool) -> None:
    """Remove unused local volumes."""
    from gantry.cli.images import confirm, parse_filters
    from gantry.store.filters import match_labels

    flt = parse_filters(filters)
    for key in flt:
        if key not in ("label", "label!", "all"):
            raise UsageError(f"invalid filter '{key}'")
    warning = "anonymous local volumes"
    if all_:  # docker/cli: -a is sent as the filter all=true, so the two cannot be combined
        if "all" in flt:
            raise UsageError("conflicting options: cannot specify both --all and --filter all=1")
        warning = "all local volumes"
    elif any(v.lower() in ("1", "true") for v in flt.get("all", [])):
        all_ = True
    if not force and not confirm(
        f"WARNING! This will remove {warning} not used by at least one container."
    ):
        return
    removed, reclaimed = [], 0
    with open_containers(ctx) as mgr:
        for vol in mgr.volumes.list():
            if not all_ and not vol.anonymous:
                continue
            if mgr.volume_users(vol.name):
                continue
            if not match_labels(vol.labels, flt.get("label", []), flt.get("label!", [])):
                continue
            size = mgr.volumes.size(vol.name)
            mgr.volumes.remove(vol.name)
            removed.append(vol.name)
            reclaimed += size
    print_pruned("Volumes", removed, reclaimed)
