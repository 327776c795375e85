"""Look paths up inside an untrusted root filesystem as if it were ``/``.

An image's rootfs may hold symlinks such as ``/etc/passwd -> /../../host/etc/shadow``. Every
lookup here walks the path one component at a time with ``O_NOFOLLOW``, resolving each symlink
itself *relative to the rootfs* (``..`` stops at the root, absolute targets restart at the
root), the way the path would resolve inside the container. Nothing outside the rootfs is
ever opened.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from gantry.errors import ContainerError

MAX_SYMLINKS = 40


def _components(path: str) -> list[str]:
    return [c for c in path.split("/") if c not in ("", ".")]


def _walk(root: Path, path: str, *, follow_final: bool = True) -> int:
    """Resolve ``path`` in ``root``; return an ``O_PATH`` file descriptor on what it names.

    A missing component raises ``FileNotFoundError``; a non-directory in the middle raises
    ``NotADirectoryError``; too many symlinks raise ``OSError(ELOOP)``.
    """
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    stack = [root_fd]  # directory fds from the root down
    todo = _components(path)
    todo.reverse()
    links = 0
    try:
        while todo:
            name = todo.pop()
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            parent = stack[-1]
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode) and (todo or follow_final):
                os.close(fd)
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink(name, dir_fd=parent)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                more = _components(target)
                more.reverse()
                todo.extend(more)
                continue
            if todo and not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            stack.append(fd)
        return os.dup(stack[-1])
    finally:
        for f in stack:
            os.close(f)


def resolve_in_root(root: str | os.PathLike[str], path: str) -> Path:
    """Host path of ``path`` as the container sees it, symlinks resolved inside ``root``.

    The answer is a snapshot: use :func:`open_in_root` when a race would matter. Missing
    paths raise ``FileNotFoundError``.
    """
    r = Path(root)
    fd = _walk(r, path)
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    rr = os.path.realpath(r)
    if real != rr and not real.startswith(rr.rstrip("/") + "/"):
        raise ContainerError(f"{path} resolves outside the root filesystem")
    return Path(real)


def open_in_root(root: str | os.PathLike[str], path: str, flags: int = os.O_RDONLY) -> int:
    """Open ``path`` inside ``root`` without leaving it; returns a file descriptor.

    ``O_NONBLOCK`` is added so that a FIFO planted in the image cannot hang the caller.
    """
    fd = _walk(Path(root), path)
    try:
        return os.open(f"/proc/self/fd/{fd}", flags | os.O_CLOEXEC | os.O_NONBLOCK)
    finally:
        os.close(fd)


def read_file_in_root(
    root: str | os.PathLike[str], path: str, *, limit: int = 16 << 20
) -> bytes | None:
    """Contents of the regular file ``path`` in ``root``; None if it does not exist.

    Anything but a regular file, or a file over ``limit`` bytes, raises ``ContainerError``.
    """
    try:
        fd = open_in_root(root, path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ContainerError(f"{path} in the image is not a regular file")
        if st.st_size > limit:
            raise ContainerError(f"{path} in the image is too large ({st.st_size} bytes)")
        chunks: list[bytes] = []
        size = 0
        while True:
            b = os.read(fd, 1 << 16)
            if not b:
                break
            size += len(b)
            if size > limit:
                raise ContainerError(f"{path} in the image is too large")
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)
