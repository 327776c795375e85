"""Named network namespaces, kept alive by a bind mount the way ``ip netns add`` does it.

gantry puts them in ``/run/netns`` (``NETNS_DIR``) so that ``ip netns list`` and
``ip netns exec`` see them too; the directory is made a shared mount point first, as iproute2
does, so that removing a namespace also drops copies of its mount that other mount namespaces
took in the meantime. A namespace is created by a short-lived thread that ``unshare``\\ s its
own network namespace and bind-mounts it onto the file: no fork, no external tool, and the
calling thread never changes namespace.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from pathlib import Path

NETNS_DIR = Path("/run/netns")

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.mount.restype = ctypes.c_int
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int
_libc.unshare.argtypes = [ctypes.c_int]
_libc.unshare.restype = ctypes.c_int


def _oserror(what: str, path: str | os.PathLike[str] | None = None) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}", None if path is None else str(path))


def _mount(source: str, target: str, flags: int) -> None:
    src = source.encode() if source else b"none"
    if _libc.mount(src, os.fsencode(target), b"none", flags, None) != 0:
        raise _oserror("mount", target)


def ensure_dir(directory: Path = NETNS_DIR) -> None:
    """Create ``directory`` and make it a shared mount point (bind it onto itself if needed)."""
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    try:
        _mount("", str(directory), MS_SHARED | MS_REC)
    except OSError as e:
        if e.errno != errno.EINVAL:  # EINVAL: not a mount point yet
            raise
        _mount(str(directory), str(directory), MS_BIND | MS_REC)
        _mount("", str(directory), MS_SHARED | MS_REC)


def _nsfs_dev() -> int:
    return os.stat("/proc/self/ns/net").st_dev


def is_netns(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a bind-mounted network namespace (an nsfs file)."""
    try:
        return os.stat(path).st_dev == _nsfs_dev()
    except OSError:
        return False


def create(path: str | os.PathLike[str]) -> Path:
    """Create a new, empty network namespace pinned at ``path`` (which must not exist).

    Only ``lo`` exists in it, down; :func:`gantry.runtime.net.links.loopback_up` raises it.
    """
    p = Path(path)
    ensure_dir(p.parent)
    fd = os.open(p, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    failure: list[OSError] = []

    def pin() -> None:
        # unshare(CLONE_NEWNET) is allowed per thread; the thread's namespace outlives it
        # through the bind mount, and the rest of the process is never moved.
        if _libc.unshare(CLONE_NEWNET) != 0:
            failure.append(_oserror("unshare(CLONE_NEWNET)"))
            return
        try:
            _mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", str(p), MS_BIND)
        except OSError as e:
            failure.append(e)

    t = threading.Thread(target=pin, name="gantry-netns", daemon=True)
    t.start()
    t.join()
    if failure:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        raise failure[0]
    return p


def remove(path: str | os.PathLike[str]) -> bool:
    """Unmount and delete a pinned namespace; False when there was nothing to remove.

    The namespace itself goes away with its last user (a process still inside keeps it).
    """
    p = Path(path)
    removed = False
    while is_netns(p):
        if _libc.umount2(os.fsencode(p), MNT_DETACH) != 0:
            err = ctypes.get_errno()
            if err in (errno.EINVAL, errno.ENOENT):
                break
            raise _oserror("umount2", p)
        removed = True
    try:
        p.unlink()
        removed = True
    except FileNotFoundError:
        pass
    return removed
