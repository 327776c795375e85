"""``gantry cp``, ``gantry export`` and ``gantry commit`` (also under ``container``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path, PurePosixPath

import click

from gantry.cli.container import open_containers
from gantry.errors import NotFound, UsageError

CTX = {"help_option_names": ["-h", "--help"]}


def _split_arg(arg: str) -> tuple[str | None, str]:
    """``CONTAINER:PATH`` -> (container, path); a local path -> (None, path)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    return name, path


@click.command("cp", context_settings=CTX)
@click.option("-a", "--archive", is_flag=True, help="Archive mode (copy all uid/gid information)")
@click.option("-L", "--follow-link", is_flag=True, help="Always follow symbol link in SRC_PATH")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output during copy")
@click.argument("src")
@click.argument("dest")
@click.pass_context
def cp(
    ctx: click.Context, archive: bool, follow_link: bool, quiet: bool, src: str, dest: str
) -> None:
    """Copy files/folders between a container and the local filesystem.

    Use '-' as the source to read a tar archive from stdin and extract it to a directory
    destination in a container. Use '-' as the destination to stream a tar archive of a
    container source to stdout.
    """
    from gantry.containers import fs

    s_ctr, s_path = _split_arg(src)
    d_ctr, d_path = _split_arg(dest)
    if s_ctr and d_ctr:
        raise UsageError("copying between containers is not supported")
    if not s_ctr and not d_ctr:
        raise UsageError("must specify at least one container source")
    with open_containers(ctx) as mgr:
        if s_ctr:
            with fs.rootfs(mgr, s_ctr) as root:
                fs.stat_in(root, s_path, follow=follow_link)  # "Could not find the file"
                if d_path == "-":
                    fs.tar_from(root, s_path, sys.stdout.buffer, follow=follow_link)
                    return
                _copy_out(root, s_path, Path(d_path), follow_link)
        else:
            assert d_ctr is not None
            with fs.rootfs(mgr, d_ctr) as root:
                if s_path == "-":
                    fs.extract_into(root, d_path, sys.stdin.buffer)
                    return
                _copy_in(root, Path(s_path), d_path, follow_link)


def _target(
    dest_exists_dir: bool, dest: str, src_name: str, contents: bool
) -> tuple[str, str | None]:
    """(directory to extract into, name of the top entry or None for contents)."""
    if dest_exists_dir:
        return dest, None if contents else src_name
    parent = str(PurePosixPath(dest).parent)
    return parent, PurePosixPath(dest).name


def _copy_out(root: Path, src: str, dest: Path, follow: bool) -> None:
    import tempfile

    from gantry.containers import fs
    from gantry.layers.extract import extract

    fs.stat_in(root, src, follow=follow)
    contents = src.endswith("/.")
    is_dir = os.path.isdir(dest)
    if not dest.exists() and str(dest).endswith("/"):
        raise UsageError(f"destination directory {dest} does not exist")
    if is_dir:
        into, name = str(dest), (None if contents else PurePosixPath(src.rstrip("/.") or "/").name)
    else:
        if not dest.parent.is_dir():
            raise UsageError(f"destination directory {dest.parent} does not exist")
        into, name = str(dest.parent), dest.name
    with tempfile.TemporaryFile() as tmp:
        if name is None:
            fs.tar_from(root, src.rstrip("."), tmp, contents_only=True, follow=follow)
        else:
            fs.tar_from(root, src, tmp, name=name, follow=follow)
        tmp.seek(0)
        extract(tmp, Path(into), mode="apply", compression=None, same_owner=False)


def _copy_in(root: Path, src: Path, dest: str, follow: bool) -> None:
    import tarfile
    import tempfile

    from gantry.containers import fs

    if not src.exists() and not src.is_symlink():
        raise NotFound(f"lstat {src}: no such file or directory")
    try:
        dest_dir = os.path.isdir(fs.stat_in(root, dest, follow=True)[0])
    except NotFound:
        dest_dir = False
        if dest.endswith("/"):
            raise UsageError(f"destination directory {dest} does not exist") from None
    contents = str(src).endswith("/.")
    name = src.resolve().name if contents or src.name in ("", ".") else src.name
    into, top = _target(dest_dir, dest, name, contents)
    real = src.resolve() if follow else src
    with tempfile.TemporaryFile() as tmp:
        with tarfile.open(fileobj=tmp, mode="w", format=tarfile.PAX_FORMAT) as tf:
            if top is None:
                for entry in sorted(os.listdir(real)):
                    tf.add(real / entry, arcname=entry)
            else:
                tf.add(real, arcname=top)
        tmp.seek(0)
        fs.extract_into(root, into, tmp)


@click.command("export", context_settings=CTX)
@click.option("-o", "--output", metavar="string", help="Write to a file, instead of STDOUT")
@click.argument("container")
@click.pass_context
def export(ctx: click.Context, output: str | None, container: str) -> None:
    """Export a container's filesystem as a tar archive."""
    from gantry.containers import fs

    if output is None and sys.stdout.isatty():
        raise UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    with open_containers(ctx) as mgr:
        mgr.get(container)
        if output is None:
            fs.export(mgr, container, sys.stdout.buffer)
            return
        tmp = Path(output + ".tmp")
        try:
            with open(tmp, "wb") as f:
                fs.export(mgr, container, f)
            os.replace(tmp, output)
        finally:
            if tmp.exists():
                tmp.unlink()


@click.command("commit", context_settings=CTX)
@click.option(
    "-a",
    "--author",
    default="",
    metavar="string",
    help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")',
)
@click.option(
    "-c",
    "--change",
    multiple=True,
    metavar="list",
    help="Apply Dockerfile instruction to the created image",
)
@click.option("-m", "--message", default="", metavar="string", help="Commit message")
@click.option(
    "-p", "--pause/--no-pause", default=True, help="Pause container during commit (default true)"
)
@click.argument("container")
@click.argument("repository", required=False)
@click.pass_context
def commit(ctx: click.Context, author: str, change: tuple[str, ...], message: str, pause: bool,
           container: str, repository: str | None) -> None:  # fmt: skip
    """Create a new image from a container's changes."""
    from gantry.containers.commit import commit as do_commit

    with open_containers(ctx) as mgr:
        c = mgr.get(container)
        config = None
        if change:
            from gantry.archive.changes import apply_changes
            from gantry.oci.config import ContainerConfig

            cc = ContainerConfig.from_dict(c.config)
            merged = dict(c.config)
            merged.update(apply_changes(cc, list(change)).to_dict())
            config = merged
        image_id = do_commit(mgr, c.id, repository=repository, author=author,
                             message=message, config=config, pause=pause)  # fmt: skip
    click.echo(image_id)
