"""``gantry build``: Docker's ``build`` flags over :mod:`gantry.build`."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gantry.errors import BuildError, UsageError

if TYPE_CHECKING:
    from gantry.build.memo import Lookup
    from gantry.build.options import BuildOptions, BuildResult
    from gantry.build.progress import Progress
    from gantry.store import Store


def _kv(items: tuple[str, ...], what: str, *, from_env: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f'invalid argument {item!r} for "--{what}" flag: empty key')
        if not sep:
            if not from_env:
                value = ""
            elif key in os.environ:
                value = os.environ[key]
            else:
                continue  # docker: a --build-arg K with K unset in the environment is dropped
        out[key] = value
    return out


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-t",
    "--tag",
    "tags",
    multiple=True,
    metavar="NAME[:TAG]",
    help="Name and optionally a tag (repeatable).",
)
@click.option(
    "-f",
    "--file",
    "file",
    metavar="PATH",
    help="Name of the Dockerfile (default: PATH/Dockerfile; '-' reads stdin).",
)
@click.option(
    "--build-arg",
    "build_args",
    multiple=True,
    metavar="K[=V]",
    help="Set a build-time variable (repeatable).",
)
@click.option("--target", metavar="STAGE", help="Set the target build stage to build.")
@click.option("--no-cache", is_flag=True, help="Do not use cache when building the image.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="K=V",
    help="Set metadata for an image (repeatable).",
)
@click.option("--iidfile", metavar="FILE", help="Write the image ID to the file.")
@click.option(
    "-q", "--quiet", is_flag=True, help="Suppress the build output and print image ID on success."
)
@click.option(
    "--progress",
    type=click.Choice(["auto", "plain", "tty", "quiet"]),
    default="auto",
    show_default=True,
    help="Type of progress output.",
)
@click.option(
    "--network",
    type=click.Choice(["default", "host", "none"]),
    default="default",
    show_default=True,
    help="Networking mode for the RUN instructions during build.",
)
@click.option(
    "--platform", metavar="PLATFORM", help="Set the target platform (only the host's for now)."
)
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="id=ID,src=PATH|env=VAR",
    help="Secret to expose to RUN --mount=type=secret (repeatable).",
)
@click.option(
    "--ssh",
    "ssh",
    multiple=True,
    metavar="default|ID[=SOCKET]",
    help="SSH agent socket to expose to RUN --mount=type=ssh (repeatable).",
)
@click.option(
    "--build-context",
    "build_contexts",
    multiple=True,
    metavar="NAME=PATH|docker-image://REF",
    help="Additional build context for FROM/COPY --from/RUN --mount from= (repeatable).",
)
@click.option(
    "-o",
    "--output",
    "outputs",
    multiple=True,
    metavar="type=image|docker|oci|local|tar[,dest=PATH]",
    help="Output destination (default type=image; PATH alone means type=local,dest=PATH).",
)
@click.option("--pull", is_flag=True, help="Always pull the base images, even those in the store.")
@click.option(
    "--squash",
    is_flag=True,
    help="Squash the layers of the final stage above its base image into one.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Run the build checks and report findings instead of building (--call=check).",
)
@click.option(
    "--call",
    metavar="check[,format=json]",
    default="build",
    help="What to do: build (default) or check (only the build checks).",
)
@click.argument("path", metavar="PATH")
@click.pass_context
def build(
    ctx: click.Context,
    tags: tuple[str, ...],
    file: str | None,
    build_args: tuple[str, ...],
    target: str | None,
    no_cache: bool,
    labels: tuple[str, ...],
    iidfile: str | None,
    quiet: bool,
    progress: str,
    network: str,
    platform: str | None,
    secrets: tuple[str, ...],
    ssh: tuple[str, ...],
    build_contexts: tuple[str, ...],
    outputs: tuple[str, ...],
    pull: bool,
    squash: bool,
    check: bool,
    call: str,
    path: str,
) -> None:
    """Build an image from a Dockerfile.

    \b
    gantry build -t app:1 .
    gantry build -f build/Dockerfile --build-arg VERSION=2 --target runtime .
    gantry build - < context.tar.gz
    gantry build -o type=local,dest=out .
    """
    # Only what a build answered by the memo needs is imported up front: the solver and
    # the Dockerfile frontend load when a build has to be solved.
    from gantry.build import memo
    from gantry.build.options import BuildOptions
    from gantry.build.outputs import Output, export, parse_output
    from gantry.build.progress import PlainProgress, QuietProgress, TtyProgress
    from gantry.reference import parse_docker_ref
    from gantry.store import Store

    if path == "-" and file == "-":
        raise UsageError("invalid argument: can't use stdin for both build context and dockerfile")
    context = Path(path)
    if path != "-" and not context.is_dir():
        raise UsageError(f'unable to prepare context: path "{path}" not found')
    if platform:
        from gantry.build.plan import host_arch

        arch, variant = host_arch()
        host = f"linux/{arch}" + (f"/{variant}" if variant else "")
        from gantry.oci import Platform

        if not Platform.parse(platform).normalized().matches(Platform.parse(host).normalized()):
            raise UsageError(
                f"building for platform {platform} is not supported yet (this host is {host})"
            )
    for t in tags:
        parse_docker_ref(t)
    if len(outputs) > 1:
        raise UsageError("only one --output is supported")
    output = parse_output(outputs[0]) if outputs else Output("image")
    contexts = _build_contexts(build_contexts)
    args = _kv(build_args, "build-arg", from_env=True)
    call_name, call_format = _parse_call("check" if check else call)
    label_map = _kv(labels, "label", from_env=False)
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch and "SOURCE_DATE_EPOCH" not in args:
        # buildx sends the variable as the build arg (docker/buildx#1482): the frontend
        # reads it there, a Dockerfile's ARG SOURCE_DATE_EPOCH sees it, and a bad value
        # fails the build; --build-arg SOURCE_DATE_EPOCH=... wins
        args["SOURCE_DATE_EPOCH"] = epoch
    secret_values: dict[str, bytes] = {}
    ssh_sockets: dict[str, str] = {}
    if secrets or ssh:
        from gantry.build.secrets import parse_secret_flag, parse_ssh_flag

        secret_values = dict(parse_secret_flag(s, os.environ) for s in secrets)
        ssh_sockets = dict(parse_ssh_flag(s, os.environ) for s in ssh)
    silent = quiet or progress == "quiet"
    if silent:
        prog: Progress = QuietProgress()
    elif progress == "tty" or (progress == "auto" and sys.stderr.isatty()):
        prog = TtyProgress(sys.stderr)
    else:
        prog = PlainProgress(sys.stderr)
    with Store(ctx.obj["root"]) as store, contextlib.ExitStack() as cleanup:
        dockerfile: Path | None = None
        text: bytes | None = None
        if path == "-":
            from gantry.build.stdin import read_stdin_context

            got = read_stdin_context(store, sys.stdin.buffer)
            cleanup.callback(got.cleanup)
            context, text = got.context, got.dockerfile_text
            if file and text is None:
                dockerfile = context / file
        elif file == "-":
            text = sys.stdin.buffer.read()
        elif file:
            dockerfile = Path(file)
            if not dockerfile.is_absolute() and not dockerfile.exists():
                dockerfile = context / file
        if call_name == "check":
            _check(ctx, context, dockerfile, text, args, target, call_format)
            return
        opts = BuildOptions(
            context=context,
            dockerfile=dockerfile,
            dockerfile_text=text,
            # image archives carry the names (save reads them from the store)
            tags=tags if output.type in ("image", "docker", "oci") else (),
            build_args=args,
            target=target,
            no_cache=no_cache,
            labels=label_map,
            network=network,
            secrets=secret_values,
            ssh=ssh_sockets,
            squash=squash,
            pull=pull,
            build_contexts=contexts,
        )
        known = memo.answer(store, opts, prog)
        result = known.result if known.result is not None else _solve(store, opts, prog, known)
        if output.type != "image":
            n = prog.vertex(
                f"exporting to {output.type}" + (f" {output.dest}" if output.dest else "")
            )
            export(store, result.image, output, names=tags, stdout=sys.stdout.buffer)
            prog.done(n)
    if isinstance(prog, TtyProgress):
        prog.summary(True)
    if not silent:
        from gantry.build.report import format_warnings, unconsumed_warning

        for text_out in (
            unconsumed_warning(result.unconsumed_args),
            format_warnings(result.warnings),
        ):
            if text_out:
                click.echo(text_out, err=True)
    if iidfile:
        Path(iidfile).write_text(str(result.image.id))
    if silent and not output.to_stdout:
        click.echo(str(result.image.id))


def _solve(store: Store, opts: BuildOptions, prog: Progress, known: Lookup) -> BuildResult:
    """Run the solver (the memo could not answer); failures worded as BuildKit's."""
    from gantry.build.builder import Builder, StepFailed
    from gantry.build.progress import TtyProgress

    try:
        builder = Builder(store, opts, prog)
        builder.known = known
        return builder.build()
    except StepFailed as err:
        if isinstance(prog, TtyProgress):
            prog.summary(False)
        click.echo(err.details(), err=True)
        raise BuildError(f"failed to solve: {err}") from None
    except BuildError as err:
        if isinstance(prog, TtyProgress):
            prog.summary(False)
        if str(err).startswith("failed to solve"):
            raise
        raise BuildError(f"failed to solve: {err}", hint=err.hint) from None
    except BaseException:
        if isinstance(prog, TtyProgress):
            prog.summary(False)
        raise


def _build_contexts(items: tuple[str, ...]) -> dict[str, str]:
    """``--build-context NAME=PATH|docker-image://REF``; a local path must be a directory."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise UsageError(f"invalid context value: {item}, expected key=value")
        if "://" not in value and not value.startswith("git@"):
            if not os.path.isdir(value):
                raise UsageError(f'unable to prepare context: path "{value}" not found')
            value = os.path.abspath(value)
        out[name] = value
    return out


def _parse_call(value: str) -> tuple[str, str]:
    """``--call check,format=json`` -> ("check", "json")."""
    name, _, rest = value.partition(",")
    fmt = "text"
    for item in filter(None, rest.split(",")):
        key, _, val = item.partition("=")
        if key != "format" or val not in ("text", "json"):
            raise UsageError(f"invalid value {item!r} for --call (want format=text|json)")
        fmt = val
    if name not in ("build", "check"):
        raise UsageError(f'unsupported --call "{name}": build and check are supported')
    return name, fmt


def _check(
    ctx: click.Context,
    context: Path,
    dockerfile: Path | None,
    text: bytes | None,
    args: dict[str, str],
    target: str | None,
    fmt: str,
) -> None:
    """``docker build --check``: BuildKit's checks, findings on stdout, exit 1 if any."""
    import json

    from gantry.build.report import excerpt, format_check
    from gantry.dockerfile.checks import format_json, run_checks
    from gantry.errors import DockerfileError, GantryError
    from gantry.store import Store

    path = dockerfile or context / "Dockerfile"
    name = "Dockerfile" if dockerfile is None or text is not None else path.name
    if text is None:
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            raise BuildError(
                f"failed to read dockerfile: open {path.name}: no such file or directory"
            ) from None
    root = Path(ctx.obj["root"])
    store = Store(root) if (root / "meta.db").exists() else None

    def image_env(image: str) -> dict[str, str] | None:
        if store is None:
            return None
        try:
            cfg = store.config(store.resolve(image))
        except GantryError:
            return None
        return dict(e.partition("=")[::2] for e in cfg.container_config.env)

    try:
        report = run_checks(
            text,
            file=name,
            build_args=args,
            target=target,
            context_dir=context,
            dockerfile_path=None if text is not None and dockerfile is None else path,
            base_env=image_env,
            best_practices=False,
        )
    finally:
        if store is not None:
            store.close()
    source = text.decode("utf-8", "replace").splitlines()
    if fmt == "json":
        click.echo(json.dumps(format_json(report), indent=2))
    else:
        click.echo(format_check(report, source))
    if report.error is not None:
        err = report.error
        if err.line:
            click.echo("\n".join(excerpt(name, source, err.line)), err=True)
        raise DockerfileError(err.message, file=name, line=err.line)
    violation = report.violation_message()
    if violation:
        raise BuildError(violation)
    if report.findings:
        ctx.exit(1)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-a",
    "--all",
    "all_",
    is_flag=True,
    help="Remove all unused build cache, not just dangling ones.",
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="until=DURATION",
    help="Provide filter values (until=24h).",
)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.pass_context
def prune(ctx: click.Context, all_: bool, filters: tuple[str, ...], force: bool) -> None:
    """Remove build cache."""
    from gantry.build.cache import prune as run_prune
    from gantry.cli.units import human_size, parse_duration
    from gantry.store import Store

    until: float | None = None
    for f in filters:
        key, _, value = f.partition("=")
        if key != "until" or not value:
            raise UsageError(f'invalid filter "{key}"')
        until = parse_duration(value)
    if not force:
        warning = (
            "WARNING! This will remove all build cache. Are you sure you want to continue?"
            if all_
            else "WARNING! This will remove all dangling build cache. "
            "Are you sure you want to continue?"
        )
        if not click.confirm(warning, default=False):
            return
    with Store(ctx.obj["root"]) as store:
        result = run_prune(store, all=all_, until=until)
    if result.deleted:
        click.echo("Deleted build cache objects:")
        for key in result.deleted:
            click.echo(key.split(":", 1)[-1][:25])
        click.echo("")
    click.echo(f"Total reclaimed space: {human_size(result.reclaimed)}")
