"""A container's files from the outside: ``cp`` both ways and ``export``.

Paths inside the container are resolved as the container would resolve them (symlinks
followed inside its root filesystem, never out of it: :mod:`gantry.runtime.rootfs`).
What comes out is a tar stream made without following symlinks; what goes in is a tar
stream extracted by :func:`gantry.layers.extract.extract`, which refuses any write that
would pass through a symlink. A stopped container's overlay is mounted for the time of
the copy; a running one is used as it is mounted.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, BinaryIO

from gantry.containers.state import PAUSED, RUNNING
from gantry.errors import NotFound
from gantry.runtime.rootfs import resolve_in_root

if TYPE_CHECKING:
    from gantry.containers.lifecycle import Containers


@contextlib.contextmanager
def rootfs(mgr: Containers, ref: str) -> Iterator[Path]:
    """The container's root filesystem, mounted for the ``with`` block if it is not."""
    c = mgr.get(ref)
    if c.state in (RUNNING, PAUSED):
        yield mgr.container_dir(c.id) / "merged"
        return
    merged = mgr.mount_rootfs(c)
    try:
        yield merged
    finally:
        c2 = mgr.record(c.id)
        if c2 is None or c2.state not in (RUNNING, PAUSED):
            mgr.unmount_rootfs(c.id)


def _split(path: str) -> tuple[str, str]:
    p = PurePosixPath("/" + path.lstrip("/"))
    return str(p.parent), p.name


def stat_in(root: Path, path: str, *, follow: bool = False) -> tuple[Path, os.stat_result]:
    """Host path and lstat of container path ``path`` (final symlink kept unless ``follow``)."""
    parent, name = _split(path)
    try:
        host_parent = resolve_in_root(root, parent)
        host = host_parent / name if name else host_parent
        if follow or not name:
            host = resolve_in_root(root, path)
        return host, os.lstat(host)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"Could not find the file {path} in container") from None


def tar_from(root: Path, path: str, out: IO[bytes], *, name: str | None = None,
             contents_only: bool = False, follow: bool = False) -> None:  # fmt: skip
    """Write a tar of container ``path`` to ``out`` (top entry ``name``, or its contents)."""
    host, st = stat_in(root, path, follow=follow)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        if contents_only and stat.S_ISDIR(st.st_mode):
            for entry in sorted(os.listdir(host)):
                tf.add(host / entry, arcname=entry, recursive=True)
        else:
            tf.add(host, arcname=name or PurePosixPath(path).name or ".", recursive=True)


def extract_into(root: Path, directory: str, stream: BinaryIO) -> None:
    """Extract tar ``stream`` into container directory ``directory`` (which must exist)."""
    from gantry.layers.extract import extract

    host_dir = resolve_in_root(root, directory)
    if not host_dir.is_dir():
        raise NotFound(f"destination directory {directory} does not exist in the container")
    extract(stream, host_dir, mode="apply", compression="auto")


def export(mgr: Containers, ref: str, out: IO[bytes]) -> None:
    """``docker export``: the container's whole filesystem as one tar stream."""
    with (
        rootfs(mgr, ref) as root,
        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf,
    ):
        for entry in sorted(os.listdir(root)):
            tf.add(root / entry, arcname=entry, recursive=True)


def spool() -> IO[bytes]:
    """A temporary file for a tar that is read back (on the store's filesystem if large)."""
    return tempfile.TemporaryFile()
