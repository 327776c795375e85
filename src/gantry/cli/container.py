"""Container verbs: ``ps``, ``start``, ``stop``, ``kill``, ``restart``, ``rm``, ``logs``,
``wait``, ``container inspect``/``inspect``, ``container prune``.

Thin commands over :class:`gantry.containers.Containers`. Output follows docker/cli:
each verb that takes several containers prints the name or ID it was given per success
and one ``Error:`` line per failure (exit 1); ``ps`` has docker's columns, fields and
``Status`` strings.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from gantry.cli import formatter
from gantry.errors import GantryError, NotFound, TemplateError, UsageError

CTX = {"help_option_names": ["-h", "--help"]}


def _root(ctx: click.Context) -> Path:
    return Path(ctx.find_root().obj["root"])


def open_containers(ctx: click.Context) -> Any:
    from gantry.containers import Containers

    return Containers(_root(ctx))


def for_each(
    ctx: click.Context, refs: Sequence[str], action: Callable[[Any, str], None], what: str
) -> None:
    """Run ``action`` per container; print the ref on success, errors at the end (exit 1)."""
    failed: list[str] = []
    with open_containers(ctx) as mgr:
        for ref in refs:
            try:
                action(mgr, ref)
            except GantryError as err:
                click.echo(f"Error response from daemon: {err}", err=True)
                failed.append(ref)
                continue
            click.echo(ref)
    if failed and what:
        click.echo(f"Error: failed to {what} containers: {', '.join(failed)}", err=True)
    if failed:
        raise click.exceptions.Exit(1)


def list_options(filter_help: str) -> Callable[[Any], Any]:
    """``-f/--filter`` and ``--format`` of the listing verbs (``ps``, ``volume ls``)."""

    def apply(f: Any) -> Any:
        f = click.option(
            "--format",
            "fmt",
            default="",
            metavar="string",
            help="Format output using a custom template",
        )(f)
        return click.option(
            "-f", "--filter", "filters", multiple=True, metavar="filter", help=filter_help
        )(f)

    return apply


def format_option(f: Any) -> Any:
    """``-f/--format`` of the ``inspect`` verbs (containers, volumes, any object)."""
    return click.option(
        "-f",
        "--format",
        "fmt",
        default="",
        metavar="string",
        help="Format output using a custom template",
    )(f)


def _stop_options(f: Any) -> Any:
    """``-s/--signal`` and ``-t/--time`` of ``stop`` and ``restart``."""
    f = click.argument("containers", nargs=-1, required=True)(f)
    f = click.option(
        "-t",
        "--time",
        "--timeout",
        "timeout",
        type=int,
        default=None,
        metavar="int",
        help="Seconds to wait before killing the container",
    )(f)
    return click.option(
        "-s", "--signal", "sig", metavar="string", help="Signal to send to the container"
    )(f)


def print_pruned(what: str, removed: Sequence[str], reclaimed: int) -> None:
    """The report of ``container prune``/``volume prune``: ``Deleted WHAT:``, one per line."""
    from gantry.cli.units import human_size

    if removed:
        click.echo(f"Deleted {what}:")
        for name in removed:
            click.echo(name)
        click.echo("")
    click.echo(f"Total reclaimed space: {human_size(reclaimed)}")


# ------------------------------------------------------------------------------- ps

PS_HEADER = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "State": "STATE",
    "Status": "STATUS",
    "Size": "SIZE",
    "Names": "NAMES",
    "Labels": "LABELS",
    "Label": "LABEL",
    "Mounts": "MOUNTS",
    "Networks": "NETWORKS",
    "LocalVolumes": "LOCAL VOLUMES",
    "Platform": "PLATFORM",
}
DEFAULT_PS_TABLE = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
)


def command_string(path: str, args: Sequence[str]) -> str:
    """The daemon's ``Command`` of a container: args with spaces in single quotes."""
    if not args:
        return path
    shown = [f"'{a}'" if " " in a else a for a in args]
    return f"{path} {' '.join(shown)}"


def ports_string(c: Any) -> str:
    """docker/cli's ``DisplayablePorts``: ``0.0.0.0:8080->80/tcp, 443/tcp``."""
    from gantry.containers.state import RUNNING

    items: list[tuple[int, str]] = []
    published = c.settings.get("NetworkPorts") or {} if c.state == RUNNING else {}
    for port in sorted(set(c.config.get("ExposedPorts") or {}) | set(published)):
        num, _, proto = port.partition("/")
        bindings = published.get(port) or []
        if not bindings:
            items.append((int(num) if num.isdigit() else 0, f"{num}/{proto}"))
            continue
        for b in bindings:
            ip = b.get("HostIp") or "0.0.0.0"
            shown_ip = f"[{ip}]" if ":" in ip and ip != "::" else (":::" if ip == "::" else ip)
            sep = "" if ip == "::" else ":"
            items.append(
                (
                    int(num) if num.isdigit() else 0,
                    f"{shown_ip}{sep}{b.get('HostPort')}->{num}/{proto}",
                )
            )
    items.sort(key=lambda x: x[0])
    return ", ".join(s for _, s in items)


class ContainerRow(formatter.Row):
    """One ``docker ps`` row (docker/cli's ``ContainerContext``)."""

    go_type = "*formatter.ContainerContext"
    json_fields = (
        "Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names",
        "Networks", "Ports", "RunningFor", "Size", "State", "Status",
    )  # fmt: skip

    def __init__(self, mgr: Any, c: Any, *, trunc: bool, now: float, size: bool) -> None:
        self._mgr = mgr
        self._c = c
        self._trunc = trunc
        self._now = now
        self._size = size

    @property
    def ID(self) -> str:
        cid = str(self._c.id)
        return cid[:12] if self._trunc else cid

    @property
    def Names(self) -> str:
        return str(self._c.name)

    @property
    def Image(self) -> str:
        c = self._c
        ref = c.image_ref or c.image_id
        try:
            current = self._mgr.store.resolve(ref).id
        except GantryError:
            current = None
        if current is not None and str(current) == c.image_id:
            return str(ref)
        return str(formatter.truncate_id(c.image_id)) if self._trunc else c.image_id

    @property
    def Command(self) -> str:
        cmd = command_string(self._c.path, self._c.args)
        if self._trunc:
            from gantry.cli.images import ellipsis

            cmd = ellipsis(cmd, 20)
        return json.dumps(cmd, ensure_ascii=False)

    @property
    def CreatedAt(self) -> str:
        from gantry.cli.units import go_time_string

        return go_time_string(self._c.created)

    @property
    def RunningFor(self) -> str:
        from gantry.cli.units import created_since

        return created_since(self._c.created, self._now)

    @property
    def Ports(self) -> str:
        return ports_string(self._c)

    @property
    def State(self) -> str:
        return str(self._c.state)

    @property
    def Status(self) -> str:
        from gantry.containers.state import status_text

        return status_text(self._c, self._now)

    @property
    def Size(self) -> str:
        from gantry.cli.units import human_size_with_precision

        if not self._size:
            return ""
        rw = self._mgr.size_rw(self._c.id)
        try:
            virtual = rw + int(self._mgr.store.image(self._c.image_id).size)
        except GantryError:
            virtual = rw
        return (
            f"{human_size_with_precision(rw, 3)} (virtual {human_size_with_precision(virtual, 3)})"
        )

    @property
    def Labels(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self._c.labels.items())

    def Label(self, name: str) -> str:  # a template method, as docker names it
        return str(self._c.labels.get(name, ""))

    @property
    def Mounts(self) -> str:
        out = []
        for m in self._c.settings.get("Mounts") or []:
            name = str(m.get("Name") or m.get("Source") or "")
            if self._trunc and m.get("Type") == "volume":
                from gantry.cli.images import ellipsis

                name = ellipsis(name, 15)
            out.append(name)
        return ",".join(out)

    @property
    def LocalVolumes(self) -> str:
        mounts = self._c.settings.get("Mounts") or []
        return str(sum(1 for m in mounts if m.get("Type") == "volume"))

    @property
    def Networks(self) -> str:
        return str(self._c.host_config.get("NetworkMode") or "")


@click.command("ps", context_settings=CTX)
@click.option(
    "-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running)"
)
@list_options("Filter output based on conditions provided")
@click.option(
    "-n",
    "--last",
    type=int,
    default=-1,
    metavar="int",
    help="Show n last created containers (includes all states)",
)
@click.option(
    "-l", "--latest", is_flag=True, help="Show the latest created container (includes all states)"
)
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes")
@click.pass_context
def ps(ctx: click.Context, all_: bool, filters: tuple[str, ...], fmt: str, last: int,
       latest: bool, no_trunc: bool, quiet: bool, size: bool) -> None:  # fmt: skip
    """List containers."""
    from gantry.cli.images import parse_filters
    from gantry.containers.filters import match_ps

    flt = parse_filters(filters)
    from gantry.containers.filters import PS_FILTERS

    for key in flt:
        if key not in PS_FILTERS:
            raise UsageError(f"invalid filter '{key}'")
    if latest:
        last = 1
    show_all = all_ or last > 0 or bool(flt.get("status")) or bool(flt.get("exited"))
    now = time.time()
    with open_containers(ctx) as mgr:
        containers = mgr.list(all=True)

        def lookup(ref: str) -> Any:
            try:
                return mgr.get(ref)
            except NotFound:
                return None

        def image_ids(ref: str) -> set[str]:
            try:
                return {str(mgr.store.resolve(ref).id)}
            except GantryError:
                return set()

        selected = [
            c
            for c in containers
            if (show_all or c.running) and match_ps(c, flt, lookup=lookup, image_ids=image_ids)
        ]
        if last > 0:
            selected = selected[:last]
        if quiet and not fmt:
            fmt = "{{.ID}}"
        if not fmt or fmt == "table":
            fmt = DEFAULT_PS_TABLE + ("\t{{.Size}}" if size else "")
        want_size = size or "{{.Size}}" in fmt.replace(" ", "") or formatter.is_json(fmt)
        rows = [ContainerRow(mgr, c, trunc=not no_trunc, now=now, size=want_size) for c in selected]
        click.echo(formatter.render(fmt, rows, PS_HEADER), nl=False)


# ------------------------------------------------------------------------ lifecycle


@click.command("start", context_settings=CTX)
@click.option("-a", "--attach", is_flag=True, help="Attach STDOUT/STDERR and forward signals")
@click.option("-i", "--interactive", is_flag=True, help="Attach container's STDIN")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def start(ctx: click.Context, attach: bool, interactive: bool, containers: tuple[str, ...]) -> None:
    """Start one or more stopped containers."""
    if attach or interactive:
        if len(containers) > 1:
            raise UsageError("you cannot start and attach multiple containers at once")
        with open_containers(ctx) as mgr:
            c = mgr.get(containers[0])

            def tee(stream: str, chunk: bytes) -> None:
                f = sys.stdout.buffer if stream == "stdout" else sys.stderr.buffer
                f.write(chunk)
                f.flush()

            code = mgr.run_attached(
                c.id, stdin=sys.stdin.fileno() if interactive else None, tee=tee
            )
        ctx.exit(code)
    for_each(ctx, containers, lambda mgr, ref: mgr.start(ref), "start")


@click.command("stop", context_settings=CTX)
@_stop_options
@click.pass_context
def stop(
    ctx: click.Context, sig: str | None, timeout: int | None, containers: tuple[str, ...]
) -> None:
    """Stop one or more running containers."""
    for_each(ctx, containers, lambda mgr, ref: mgr.stop(ref, timeout=timeout, signal=sig), "")


@click.command("restart", context_settings=CTX)
@_stop_options
@click.pass_context
def restart(
    ctx: click.Context, sig: str | None, timeout: int | None, containers: tuple[str, ...]
) -> None:
    """Restart one or more containers."""
    for_each(ctx, containers, lambda mgr, ref: mgr.restart(ref, timeout=timeout, signal=sig), "")


@click.command("kill", context_settings=CTX)
@click.option(
    "-s",
    "--signal",
    "sig",
    default="KILL",
    metavar="string",
    help="Signal to send to the container",
)
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def kill(ctx: click.Context, sig: str, containers: tuple[str, ...]) -> None:
    """Kill one or more running containers."""
    for_each(ctx, containers, lambda mgr, ref: mgr.kill(ref, sig), "")


@click.command("rm", context_settings=CTX)
@click.option(
    "-f", "--force", is_flag=True, help="Force the removal of a running container (uses SIGKILL)"
)
@click.option(
    "-v", "--volumes", is_flag=True, help="Remove anonymous volumes associated with the container"
)
@click.option("-l", "--link", is_flag=True, hidden=True)
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def rm(
    ctx: click.Context, force: bool, volumes: bool, link: bool, containers: tuple[str, ...]
) -> None:
    """Remove one or more containers."""

    def action(mgr: Any, ref: str) -> None:
        try:
            mgr.remove(ref, force=force, volumes=volumes)
        except NotFound:
            if not force:
                raise

    for_each(ctx, containers, action, "")


@click.command("wait", context_settings=CTX)
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def wait(ctx: click.Context, containers: tuple[str, ...]) -> None:
    """Block until one or more containers stop, then print their exit codes."""
    failed = False
    with open_containers(ctx) as mgr:
        for ref in containers:
            try:
                click.echo(str(mgr.wait(ref)))
            except GantryError as err:
                click.echo(f"Error response from daemon: {err}", err=True)
                failed = True
    if failed:
        raise click.exceptions.Exit(1)


# ------------------------------------------------------------------------------ logs


@click.command("logs", context_settings=CTX)
@click.option("--details", is_flag=True, help="Show extra details provided to logs")
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option(
    "--since",
    metavar="string",
    help='Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
)
@click.option(
    "-n",
    "--tail",
    default="all",
    metavar="string",
    help="Number of lines to show from the end of the logs",
)
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.option(
    "--until",
    metavar="string",
    help='Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
)
@click.argument("container")
@click.pass_context
def logs(ctx: click.Context, details: bool, follow: bool, since: str | None, tail: str,
         timestamps: bool, until: str | None, container: str) -> None:  # fmt: skip
    """Fetch the logs of a container."""
    from gantry.containers.logs import format_time, read_logs
    from gantry.timeutil import parse_timestamp

    n: int | None = None
    if tail != "all":
        try:
            n = int(tail)
        except ValueError:
            raise UsageError(f'invalid value for "tail": "{tail}"') from None
        if n < 0:
            n = None
    now = time.time()
    since_ns = int(parse_timestamp(since, now) * 1e9) if since else None
    until_ns = int(parse_timestamp(until, now) * 1e9) if until else None
    with open_containers(ctx) as mgr:
        c = mgr.get(container)
        if str(c.host_config.get("LogConfig", {}).get("Type", "json-file")) == "none":
            raise UsageError("configured logging driver does not support reading")

        def running() -> bool:
            cur = mgr.record(c.id)
            return cur is not None and mgr.reconcile(cur).running

        out, err = sys.stdout.buffer, sys.stderr.buffer
        for entry in read_logs(
            mgr.log_path(c.id),
            tail=n,
            since_ns=since_ns,
            until_ns=until_ns,
            follow=follow,
            still_running=running,
        ):
            text = entry.text.encode("utf-8", errors="replace")
            if timestamps:
                text = format_time(entry.time_ns, fixed=True).encode() + b" " + text
            f = err if entry.stream == "stderr" else out
            try:
                f.write(text)
                f.flush()
            except BrokenPipeError:
                return


# --------------------------------------------------------------------------- inspect


def render_docs(docs: list[Any], fmt: str) -> None:
    from gantry.cli.images import render_inspect
    from gantry.cli.template import Struct

    if fmt and fmt != "json":
        text = fmt.replace("\\t", "\t").replace("\\n", "\n")
        for doc in docs:
            if not isinstance(doc, Struct):
                doc = _struct(doc)
            click.echo(render_inspect(text, doc))
    else:
        body = json.dumps(docs, indent=4, ensure_ascii=False)
        click.echo(body.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _struct(v: Any, name: str = "container.InspectResponse") -> Any:
    from gantry.cli.template import Struct

    if isinstance(v, dict):
        return Struct({k: _struct(x, "struct") for k, x in v.items()}, go_type=name)
    if isinstance(v, list):
        return [_struct(x, "struct") for x in v]
    return v


@click.command("inspect", context_settings=CTX)
@format_option
@click.option("-s", "--size", is_flag=True, help="Display total file sizes")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def inspect(ctx: click.Context, fmt: str, size: bool, containers: tuple[str, ...]) -> None:
    """Display detailed information on one or more containers."""
    docs: list[Any] = []
    errors: list[str] = []
    with open_containers(ctx) as mgr:
        for ref in containers:
            try:
                docs.append(mgr.inspect(ref, size=size))
            except NotFound as err:
                errors.append(str(err))
    render_docs(docs, fmt)
    for msg in errors:
        click.echo(f"Error: {msg}", err=True)
    if errors:
        raise click.exceptions.Exit(1)


@click.command("inspect", context_settings=CTX)
@format_option
@click.option(
    "-s", "--size", is_flag=True, help="Display total file sizes if the type is container"
)
@click.option(
    "--type",
    "type_",
    type=click.Choice(["container", "image", "volume"]),
    default=None,
    help="Return JSON for specified type",
)
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect_any(
    ctx: click.Context, fmt: str, size: bool, type_: str | None, names: tuple[str, ...]
) -> None:
    """Return low-level information on Docker objects (containers first, then images)."""
    from gantry.cli.images import inspect_document
    from gantry.errors import ImageNotFound

    docs: list[Any] = []
    errors: list[str] = []
    with open_containers(ctx) as mgr:
        for ref in names:
            if type_ in (None, "container"):
                try:
                    docs.append(mgr.inspect(ref, size=size))
                    continue
                except NotFound:
                    pass
            if type_ in (None, "image"):
                try:
                    docs.append(inspect_document(mgr.store, mgr.store.resolve(ref)))
                    continue
                except ImageNotFound:
                    pass
            if type_ in (None, "volume"):
                vol = mgr.volumes.find(ref)
                if vol is not None:
                    docs.append(vol.inspect())
                    continue
            errors.append(f"No such object: {ref}")
    try:
        render_docs(docs, fmt)
    except TemplateError:
        raise
    for msg in errors:
        click.echo(f"Error: {msg}", err=True)
    if errors:
        raise click.exceptions.Exit(1)


# ----------------------------------------------------------------------------- prune


@click.command("prune", context_settings=CTX)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="filter",
    help='Provide filter values (e.g. "until=<timestamp>")',
)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.pass_context
def prune(ctx: click.Context, filters: tuple[str, ...], force: bool) -> None:
    """Remove all stopped containers."""
    from gantry.cli.images import confirm, parse_filters

    flt = parse_filters(filters)
    if not force and not confirm("WARNING! This will remove all stopped containers."):
        return
    with open_containers(ctx) as mgr:
        removed, reclaimed = mgr.prune(flt)
    print_pruned("Containers", removed, reclaimed)
