"""``gantry run`` and ``gantry create`` (also ``container run``/``container create``).

Flags, defaults and messages follow ``docker run``/``docker create``: options stop at the
image name (everything after it is the command), errors of gantry itself exit 125, a
command that cannot be found 127, one that cannot be executed 126, and otherwise the
container's own exit code is ``gantry run``'s.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gantry.errors import ContainerError, GantryError, ImageNotFound, UsageError

if TYPE_CHECKING:
    import click

# click is imported only when the commands are built (module ``__getattr__`` below): the
# common ``gantry run`` shapes are parsed by :func:`quick_run`, which needs none of it.

CONTEXT = {
    "help_option_names": ["--help"],
    "allow_interspersed_args": False,
    "max_content_width": 100,
}


def _root(ctx: click.Context) -> Path:
    return Path(ctx.find_root().obj["root"])


def parse_env_file(path: str) -> list[str]:
    """Docker's env-file: ``KEY=VALUE`` or ``KEY`` (from our environment), ``#`` comments."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise UsageError(f"open {path}: {err.strerror.lower() if err.strerror else err}") from None
    out: list[str] = []
    for n, raw in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not key:
            raise UsageError(f"no variable name on line '{line}'")
        if any(ch.isspace() for ch in key):
            raise UsageError(f"variable '{key}' contains whitespaces")
        if sep:
            out.append(f"{key}={value}")
        elif key in os.environ:
            out.append(f"{key}={os.environ[key]}")
        del n
    return out


def parse_env(values: Sequence[str]) -> list[str]:
    out = []
    for v in values:
        key, sep, _ = v.partition("=")
        if not key:
            raise UsageError(f"invalid environment variable: {v}")
        if sep:
            out.append(v)
        elif key in os.environ:
            out.append(f"{key}={os.environ[key]}")
    return out


def parse_mount(spec: str) -> dict[str, Any]:
    """``--mount type=bind,source=/x,target=/y,readonly`` (CSV fields, Docker's keys)."""
    out: dict[str, Any] = {}
    for field in (f for f in spec.split(",") if f):
        key, sep, value = field.partition("=")
        key = key.strip().lower()
        if key in ("readonly", "ro"):
            out["readonly"] = not sep or value.lower() in ("1", "true")
        elif key in ("volume-nocopy",):
            out["volume-nocopy"] = not sep or value.lower() in ("1", "true")
        elif not sep:
            raise UsageError(f"invalid field '{field}' must be a key=value pair")
        elif key in ("type", "source", "src", "target", "destination", "dst", "tmpfs-size",
                     "bind-propagation", "volume-driver", "tmpfs-mode", "consistency"):  # fmt: skip
            out[key] = value
        elif key.startswith("volume-opt") or key == "volume-label":
            continue
        else:
            raise UsageError(f"unexpected key '{key}' in '{field}'")
    if "type" not in out:
        out["type"] = "volume"
    return out


def parse_labels(values: Sequence[str], files: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in files:
        for line in Path(path).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                out[k] = v
    for v in values:
        k, _, val = v.partition("=")
        out[k] = val
    return out


def _size(value: str | None, flag: str) -> int:
    if not value:
        return 0
    if value == "-1":
        return -1
    from gantry.cli.units import ram_in_bytes

    try:
        return ram_in_bytes(value)
    except GantryError:
        raise UsageError(
            f'invalid argument "{value}" for "{flag}" flag: invalid size: \'{value}\''
        ) from None


def _duration(value: str | None) -> float:
    if not value:
        return 0.0
    from gantry.cli.units import parse_duration

    return parse_duration(value)


def create_options(ctx: click.Context | None, kw: dict[str, Any]) -> Any:
    from gantry.containers import CreateOptions

    env = []
    for f in kw["env_file"]:
        env += parse_env_file(f)
    env += parse_env(kw["env"])
    attach = list(kw.get("attach") or ())
    if not kw.get("detach", False) and not attach:
        attach = ["stdout", "stderr"] + (["stdin"] if kw["interactive"] else [])
    cpus = kw["cpus"]
    nano = 0
    if cpus:
        try:
            nano = round(float(cpus) * 1e9)
        except ValueError:
            raise UsageError(
                f'invalid argument "{cpus}" for "--cpus" flag: failed to parse {cpus} as a rational number'
            ) from None
    entrypoint = kw["entrypoint"]
    opts = CreateOptions(
        image=kw["image"],
        command=list(kw["command"]),
        entrypoint=entrypoint,
        name=kw["name"],
        env=env,
        workdir=kw["workdir"],
        user=kw["user"],
        hostname=kw["hostname"],
        domainname=kw["domainname"] or "",
        add_hosts=list(kw["add_host"]),
        dns=list(kw["dns"]),
        dns_search=list(kw["dns_search"]),
        dns_options=list(kw["dns_option"]),
        tty=kw["tty"],
        interactive=kw["interactive"],
        attach=attach,
        read_only=kw["read_only"],
        cap_add=list(kw["cap_add"]),
        cap_drop=list(kw["cap_drop"]),
        privileged=kw["privileged"],
        security_opt=list(kw["security_opt"]),
        init=kw["init"],
        binds=list(kw["volume"]),
        mounts=[parse_mount(m) for m in kw["mount"]],
        tmpfs=list(kw["tmpfs"]),
        publish=list(kw["publish"]),
        publish_all=kw["publish_all"],
        expose=list(kw["expose"]),
        network=kw["network"] or "bridge",
        memory=_size(kw["memory"], "--memory"),
        memory_swap=_size(kw["memory_swap"], "--memory-swap"),
        memory_reservation=_size(kw["memory_reservation"], "--memory-reservation"),
        nano_cpus=nano,
        cpu_shares=kw["cpu_shares"] or 0,
        cpuset_cpus=kw["cpuset_cpus"] or "",
        pids_limit=kw["pids_limit"],
        ulimits=list(kw["ulimit"]),
        restart=kw["restart"] or "no",
        auto_remove=kw["rm"],
        labels=parse_labels(kw["label"], kw["label_file"]),
        stop_signal=kw["stop_signal"],
        stop_timeout=kw["stop_timeout"],
        health_cmd=kw["health_cmd"],
        health_interval=_duration(kw["health_interval"]),
        health_timeout=_duration(kw["health_timeout"]),
        health_retries=kw["health_retries"] or 0,
        health_start_period=_duration(kw["health_start_period"]),
        no_healthcheck=kw["no_healthcheck"],
        shm_size=_size(kw["shm_size"], "--shm-size"),
        sysctls=dict(s.partition("=")[::2] for s in kw["sysctl"]),
    )
    if kw["memory"] and 0 < opts.memory < 6 * 1024 * 1024:
        raise UsageError("Minimum memory limit allowed is 6MB")
    return opts


def _create_flags(f: Any) -> Any:
    """The flags ``create`` and ``run`` share, in docker's order of importance."""
    import click

    opts = [
        click.option("--add-host", multiple=True, metavar="list", help="Add a custom host-to-IP mapping (host:ip)"),
        click.option("-a", "--attach", multiple=True, type=click.Choice(["stdin", "stdout", "stderr"], case_sensitive=False), help="Attach to STDIN, STDOUT or STDERR"),
        click.option("--cap-add", multiple=True, metavar="list", help="Add Linux capabilities"),
        click.option("--cap-drop", multiple=True, metavar="list", help="Drop Linux capabilities"),
        click.option("--cidfile", metavar="string", help="Write the container ID to the file"),
        click.option("-c", "--cpu-shares", type=int, metavar="int", help="CPU shares (relative weight)"),
        click.option("--cpus", metavar="decimal", help="Number of CPUs"),
        click.option("--cpuset-cpus", metavar="string", help="CPUs in which to allow execution (0-3, 0,1)"),
        click.option("--dns", multiple=True, metavar="list", help="Set custom DNS servers"),
        click.option("--dns-option", multiple=True, metavar="list", help="Set DNS options"),
        click.option("--dns-search", multiple=True, metavar="list", help="Set custom DNS search domains"),
        click.option("--domainname", metavar="string", help="Container NIS domain name"),
        click.option("--entrypoint", metavar="string", default=None, help="Overwrite the default ENTRYPOINT of the image"),
        click.option("-e", "--env", multiple=True, metavar="list", help="Set environment variables"),
        click.option("--env-file", multiple=True, metavar="list", help="Read in a file of environment variables"),
        click.option("--expose", multiple=True, metavar="list", help="Expose a port or a range of ports"),
        click.option("--health-cmd", metavar="string", help="Command to run to check health"),
        click.option("--health-interval", metavar="duration", help="Time between running the check (ms|s|m|h) (default 0s)"),
        click.option("--health-retries", type=int, metavar="int", help="Consecutive failures needed to report unhealthy"),
        click.option("--health-start-period", metavar="duration", help="Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)"),
        click.option("--health-timeout", metavar="duration", help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)"),
        click.option("-h", "--hostname", metavar="string", help="Container host name"),
        click.option("--init", is_flag=True, help="Run an init inside the container that forwards signals and reaps processes"),
        click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached"),
        click.option("-l", "--label", multiple=True, metavar="list", help="Set meta data on a container"),
        click.option("--label-file", multiple=True, metavar="list", help="Read in a line delimited file of labels"),
        click.option("-m", "--memory", metavar="bytes", help="Memory limit"),
        click.option("--memory-reservation", metavar="bytes", help="Memory soft limit"),
        click.option("--memory-swap", metavar="bytes", help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
        click.option("--mount", multiple=True, metavar="mount", help="Attach a filesystem mount to the container"),
        click.option("--name", metavar="string", help="Assign a name to the container"),
        click.option("--network", "--net", metavar="network", help="Connect a container to a network"),
        click.option("--no-healthcheck", is_flag=True, help="Disable any container-specified HEALTHCHECK"),
        click.option("--pids-limit", type=int, metavar="int", help="Tune container pids limit (set -1 for unlimited)"),
        click.option("--platform", metavar="string", help="Set platform if server is multi-platform capable"),
        click.option("--privileged", is_flag=True, help="Give extended privileges to this container"),
        click.option("-p", "--publish", multiple=True, metavar="list", help="Publish a container's port(s) to the host"),
        click.option("-P", "--publish-all", is_flag=True, help="Publish all exposed ports to random ports"),
        click.option("--pull", type=click.Choice(["always", "missing", "never"]), default="missing", help='Pull image before running ("always", "missing", "never")'),
        click.option("-q", "--quiet", is_flag=True, help="Suppress the pull output"),
        click.option("--read-only", is_flag=True, help="Mount the container's root filesystem as read only"),
        click.option("--restart", metavar="string", default="no", help="Restart policy to apply when a container exits (default \"no\")"),
        click.option("--rm", is_flag=True, help="Automatically remove the container and its associated anonymous volumes when it exits"),
        click.option("--security-opt", multiple=True, metavar="list", help="Security Options"),
        click.option("--shm-size", metavar="bytes", help="Size of /dev/shm"),
        click.option("--stop-signal", metavar="string", help="Signal to stop the container"),
        click.option("--stop-timeout", type=int, metavar="int", help="Timeout (in seconds) to stop a container"),
        click.option("--sysctl", multiple=True, metavar="map", help="Sysctl options"),
        click.option("--tmpfs", multiple=True, metavar="list", help="Mount a tmpfs directory"),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY"),
        click.option("--ulimit", multiple=True, metavar="ulimit", help="Ulimit options"),
        click.option("-u", "--user", metavar="string", help="Username or UID (format: <name|uid>[:<group|gid>])"),
        click.option("-v", "--volume", multiple=True, metavar="list", help="Bind mount a volume"),
        click.option("-w", "--workdir", metavar="string", help="Working directory inside the container"),
        click.argument("image"),
        click.argument("command", nargs=-1, type=click.UNPROCESSED),
    ]  # fmt: skip
    for o in reversed(opts):
        f = o(f)
    return f


class _NeedsClick(Exception):
    """The quick path met something only the click command does (pulling an image)."""


def _ensure_image(ctx: click.Context | None, mgr: Any, image: str, pull: str, quiet: bool) -> None:
    """Docker's ``--pull``: a missing image is pulled (``Unable to find image ... locally``)."""
    if pull != "always":
        try:
            mgr.store.resolve(image)
            return
        except ImageNotFound:
            if pull == "never":
                raise
    if ctx is None:
        raise _NeedsClick
    import click

    from gantry import reference

    try:
        familiar = reference.parse(image).familiar()
    except GantryError:
        familiar = image
    if pull != "always":
        click.echo(f"Unable to find image '{familiar}' locally", err=True)
    try:
        from gantry.cli.pull import pull as pull_cmd
    except ImportError:
        raise ImageNotFound(f"No such image: {familiar}") from None
    params = {p.name: p.get_default(ctx) for p in pull_cmd.params}
    params.update({"name": image, "quiet": quiet})
    # pull prints to stdout; docker run prints pull progress on stderr
    stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        ctx.invoke(
            pull_cmd, **{k: v for k, v in params.items() if k in {p.name for p in pull_cmd.params}}
        )
    finally:
        sys.stdout = stdout


def _as_run_error(err: GantryError) -> GantryError:
    """``run``/``create`` exit 125 for gantry's own errors (126/127 kept)."""
    if err.exit_code not in (126, 127):
        err.exit_code = 125
    return err


def _warn(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _create(ctx: click.Context | None, mgr: Any, kw: dict[str, Any]) -> Any:
    opts = create_options(ctx, kw)
    _ensure_image(ctx, mgr, opts.image, kw["pull"], kw["quiet"])
    if opts.network == "host" and opts.publish:
        _warn("WARNING: Published ports are discarded when using host network mode")
    if opts.init:
        from gantry.containers.bundle import find_init

        if find_init() is None:
            raise ContainerError(
                "--init: no init binary (docker-init, tini or catatonit) is installed on this host",
                hint="apt-get install tini",
            )
    c = mgr.create(opts)
    if kw["cidfile"]:
        p = Path(kw["cidfile"])
        if p.exists():
            raise UsageError(
                f"container ID file found, make sure the other container isn't running or delete {p}"
            )
        p.write_text(c.id)
    return c


def _run(root: Path, ctx: click.Context | None, kw: dict[str, Any]) -> int | None:
    """``gantry run`` once its flags are parsed: the exit code, or None after ``-d``."""
    from gantry.containers import Containers

    if kw["detach"] and kw["rm"] and kw["restart"] not in ("no", None):
        raise _as_run_error(UsageError("Conflicting options: --restart and --rm"))
    if kw["tty"] and not kw["detach"] and not sys.stdin.isatty():
        raise _as_run_error(UsageError("the input device is not a TTY"))
    try:
        with Containers(root) as mgr:
            c = _create(ctx, mgr, kw)
            if kw["detach"]:
                try:
                    mgr.start(c.id)
                except GantryError:
                    if kw["rm"]:
                        mgr.remove(c.id, force=True, volumes=True)
                    raise
                sys.stdout.write(c.id + "\n")
                sys.stdout.flush()
                return None
            return _run_foreground(mgr, c, kw)
    except GantryError as err:
        raise _as_run_error(err) from None


def _build_commands() -> dict[str, click.Command]:
    import click

    @click.command("create", context_settings=CONTEXT)
    @_create_flags
    @click.pass_context
    def create(ctx: click.Context, /, **kw: Any) -> None:
        """Create a new container."""
        from gantry.containers import Containers

        try:
            with Containers(_root(ctx)) as mgr:
                c = _create(ctx, mgr, kw)
        except GantryError as err:
            raise _as_run_error(err) from None
        click.echo(c.id)

    @click.command("run", context_settings=CONTEXT)
    @_create_flags
    @click.option(
        "-d", "--detach", is_flag=True, help="Run container in background and print container ID"
    )
    @click.option(
        "--sig-proxy/--no-sig-proxy",
        default=True,
        help="Proxy received signals to the process (default true)",
    )
    @click.option(
        "--detach-keys",
        metavar="string",
        help="Override the key sequence for detaching a container",
    )
    @click.pass_context
    def run(ctx: click.Context, /, **kw: Any) -> None:
        """Create and run a new container from an image."""
        code = _run(_root(ctx), ctx, kw)
        if code is not None:
            ctx.exit(code)

    return {"create": create, "run": run}


_commands: dict[str, click.Command] = {}


def __getattr__(name: str) -> Any:
    """``run`` and ``create`` (click commands), built on first use."""
    if name in ("run", "create"):
        if not _commands:
            _commands.update(_build_commands())
        return _commands[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: ``gantry run``'s parameters as click hands them over when no flag is given (a test
#: checks them against the click command, so that a new flag cannot be forgotten here).
RUN_DEFAULTS: dict[str, Any] = {
    "command": (), "add_host": (), "attach": (), "cap_add": (), "cap_drop": (),
    "cidfile": None, "cpu_shares": None, "cpus": None, "cpuset_cpus": None, "dns": (),
    "dns_option": (), "dns_search": (), "domainname": None, "entrypoint": None, "env": (),
    "env_file": (), "expose": (), "health_cmd": None, "health_interval": None,
    "health_retries": None, "health_start_period": None, "health_timeout": None,
    "hostname": None, "init": False, "interactive": False, "label": (), "label_file": (),
    "memory": None, "memory_reservation": None, "memory_swap": None, "mount": (),
    "name": None, "network": None, "no_healthcheck": False, "pids_limit": None,
    "platform": None, "privileged": False, "publish": (), "publish_all": False,
    "pull": "missing", "quiet": False, "read_only": False, "restart": "no", "rm": False,
    "security_opt": (), "shm_size": None, "stop_signal": None, "stop_timeout": None,
    "sysctl": (), "tmpfs": (), "tty": False, "ulimit": (), "user": None, "volume": (),
    "workdir": None, "detach": False, "sig_proxy": True, "detach_keys": None,
}  # fmt: skip

#: The flags :func:`quick_parse` understands: option -> (parameter, kind). Anything else
#: (and ``--help``) goes through click, which then also renders every usage error.
_QUICK_FLAGS: dict[str, tuple[str, str]] = {
    "--rm": ("rm", "flag"), "-d": ("detach", "flag"), "--detach": ("detach", "flag"),
    "-i": ("interactive", "flag"), "--interactive": ("interactive", "flag"),
    "-t": ("tty", "flag"), "--tty": ("tty", "flag"),
    "--network": ("network", "value"), "--net": ("network", "value"),
    "--name": ("name", "value"), "--entrypoint": ("entrypoint", "value"),
    "-w": ("workdir", "value"), "--workdir": ("workdir", "value"),
    "-u": ("user", "value"), "--user": ("user", "value"),
    "-e": ("env", "multi"), "--env": ("env", "multi"),
    "-l": ("label", "multi"), "--label": ("label", "multi"),
}  # fmt: skip


def quick_parse(args: Sequence[str]) -> dict[str, Any] | None:
    """``run``'s arguments (after the verb) as click would parse them, for the common
    shapes only (the flags in ``_QUICK_FLAGS``, ``-it``-style bundles of ``-d``/``-i``/
    ``-t``, then IMAGE [COMMAND...]); None when click must do it."""
    kw = dict(RUN_DEFAULTS)
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg == "-":
            if arg == "-":
                return None
            kw["image"] = arg
            kw["command"] = tuple(args[i + 1 :])
            return kw
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        spec = _QUICK_FLAGS.get(name)
        if spec is None:
            if len(arg) > 2 and arg[1] != "-" and all(ch in "dit" for ch in arg[1:]):
                for ch in arg[1:]:
                    kw[_QUICK_FLAGS["-" + ch][0]] = True
                i += 1
                continue
            return None
        param, kind = spec
        if kind == "flag":
            if eq:
                return None
            kw[param] = True
            i += 1
            continue
        if not eq:
            if i + 1 >= len(args):
                return None
            value = args[i + 1]
            i += 1
        i += 1
        kw[param] = (*kw[param], value) if kind == "multi" else value
    return None


def quick_run(argv: Sequence[str]) -> int | None:
    """``gantry [--root R] [--debug] run ...`` without click, when :func:`quick_parse`
    can read it: returns the exit code (errors rendered as ``gantry.cli.main`` does).
    None: not such a command line (nothing was done), let click handle it."""
    root: str | None = None
    debug = bool(os.environ.get("GANTRY_DEBUG"))
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] == "--root" and i + 1 < len(argv):
            root = argv[i + 1]
            i += 2
        elif argv[i].startswith("--root="):
            root = argv[i].partition("=")[2]
            i += 1
        elif argv[i] == "--debug":
            debug = True
            i += 1
        else:
            return None
    if i >= len(argv) or argv[i] != "run":
        return None
    kw = quick_parse(argv[i + 1 :])
    if kw is None:
        return None
    if root is None:
        root = os.environ.get("GANTRY_ROOT")
    if root and os.path.isfile(root):
        return None  # click's "Directory ... is a file." usage error
    if root:
        root_path = Path(root)
    else:
        from gantry.config import default_root

        root_path = default_root()
    try:
        code = _run(root_path, None, kw)
    except _NeedsClick:
        return None  # the image must be pulled: before anything was created
    except GantryError as err:
        if debug:
            raise
        _warn(f"Error: {err}")
        if err.hint:
            _warn(f"hint: {err.hint}")
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 0 if code is None else code


def _run_foreground(mgr: Any, c: Any, kw: dict[str, Any]) -> int:
    attach = set((c.config.get("AttachStdout") and ["stdout"]) or []) | set(
        (c.config.get("AttachStderr") and ["stderr"]) or []
    )
    out = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
    sys.stdout.flush()

    def tee(stream: str, chunk: bytes) -> None:
        if stream in attach:
            f = out[stream]
            try:
                f.write(chunk)
                f.flush()
            except (BrokenPipeError, ValueError):
                attach.discard(stream)

    stdin = sys.stdin.fileno() if c.config.get("AttachStdin") else None
    try:
        if c.config.get("Tty"):
            code = _run_with_tty(mgr, c.id, stdin, tee)
        else:
            code = mgr.run_attached(c.id, stdin=stdin, tee=tee, proxy_signals=kw["sig_proxy"])
    finally:
        if kw["rm"]:
            try:
                mgr.remove(c.id, force=True, volumes=True)
            except GantryError:
                pass
    return int(code)


def _run_with_tty(mgr: Any, cid: str, stdin: int | None, tee: Any) -> int:
    """``-t`` in the foreground: our terminal in raw mode, keys go to the container's pty."""
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd) if stdin is not None and os.isatty(fd) else None
    if saved is not None:
        tty.setraw(fd)
    try:
        return int(mgr.run_attached(cid, stdin=stdin, tee=tee, proxy_signals=True))
    finally:
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
