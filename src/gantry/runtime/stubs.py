"""Remove the mount points the runtime had to create in a rootfs, so they stay out of diffs.

runc creates a missing mount destination (``/etc/hostname``, ``/proc`` in a scratch image, a
``-v`` target) in the rootfs before mounting over it. In a build, that empty stub would land
in the step's upper dir and so in the layer. :func:`cleaned_mount_stubs` notes which
destinations (and parents) were missing before the container ran and, afterwards, removes
those that are still empty and gives the existing directories they were created in their
old timestamps back — the way BuildKit keeps them out of its layers.

On an overlay, such a parent (say ``/etc``) stays copied up in the upper dir, with the
lower's mode, owner and times restored: a differ must treat an upper directory whose
metadata equals the lower's (ignoring ``trusted.overlay.*`` xattrs) as unchanged, as
containerd's does.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from gantry.runtime.rootfs import resolve_in_root


def mount_destinations(spec: Mapping[str, Any]) -> list[str]:
    """The ``destination`` of every mount in an OCI spec object."""
    return [str(m["destination"]) for m in spec.get("mounts", []) if "destination" in m]


def _parent_times(
    rootfs: str | os.PathLike[str], missing: Iterable[str]
) -> dict[str, tuple[int, int]]:
    """(atime_ns, mtime_ns) of the existing directories the missing paths hang from."""
    out: dict[str, tuple[int, int]] = {}
    gone = set(missing)
    for p in gone:
        parent = os.path.dirname(p) or "/"
        if parent in gone or parent in out:
            continue
        try:
            st = os.stat(resolve_in_root(rootfs, parent))
        except OSError:
            continue
        out[parent] = (st.st_atime_ns, st.st_mtime_ns)
    return out


def restore_times(rootfs: str | os.PathLike[str], times: Mapping[str, tuple[int, int]]) -> None:
    """Put back directory timestamps recorded by :func:`_parent_times`."""
    for path, ns in times.items():
        with contextlib.suppress(OSError):
            os.utime(resolve_in_root(rootfs, path), ns=ns)


def missing_paths(rootfs: str | os.PathLike[str], destinations: Iterable[str]) -> list[str]:
    """In-container paths among ``destinations`` and their parents that do not exist yet."""
    missing: set[str] = set()
    for dest in destinations:
        parts = [c for c in os.path.normpath("/" + dest).split("/") if c]
        for i in range(1, len(parts) + 1):
            p = "/" + "/".join(parts[:i])
            if p in missing:
                continue
            try:
                resolve_in_root(rootfs, p)
            except (FileNotFoundError, NotADirectoryError):
                missing.add(p)
            except OSError:
                continue
    return sorted(missing)


def remove_stubs(rootfs: str | os.PathLike[str], paths: Iterable[str]) -> list[str]:
    """Remove those ``paths`` that are now empty files or empty dirs; deepest first."""
    root = Path(rootfs)
    removed = []
    for p in sorted(paths, key=lambda x: x.count("/"), reverse=True):
        parent, name = os.path.split(p)
        try:
            host_parent = resolve_in_root(root, parent or "/")
        except OSError:
            continue
        target = host_parent / name
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            continue
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(st.st_mode):
                os.rmdir(target)  # only succeeds when empty
                removed.append(p)
            elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
                os.unlink(target)
                removed.append(p)
    return removed


@contextlib.contextmanager
def cleaned_mount_stubs(
    rootfs: str | os.PathLike[str], spec: Mapping[str, Any]
) -> Iterator[list[str]]:
    """Around a container run: yields the missing destinations, removes their stubs after."""
    missing = missing_paths(rootfs, mount_destinations(spec))
    times = _parent_times(rootfs, missing)
    try:
        yield missing
    finally:
        remove_stubs(rootfs, missing)
        restore_times(rootfs, times)
