"""Overlay mounts: stack read-only lower layers under a writable upper dir.

``mount_overlay(target, lowers, upper, work)`` mounts an overlayfs whose lowers are given
top first (the order of ``lowerdir=``). Long stacks do not hit the 4096-byte limit of the
legacy mount data page: where the kernel has the new mount API, every layer is handed over
on its own (``fsconfig("lowerdir+")``, by file descriptor on 6.13+, by path before that);
on older kernels long or awkward paths are passed as short ``/proc/self/fd/N`` links.

The upper dir of an overlay *is* the diff of the step that ran on it, so the mount turns off
features that would store changes as metadata instead of files (``index``, ``redirect_dir``,
``metacopy``): with them off, a renamed directory is copied up in full and a whiteout is a
0/0 character device, exactly what the layer differ expects.

The whiteout/opaque helpers here are the overlay side of the OCI ``.wh.`` convention.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from gantry.errors import ContainerError
from gantry.runtime import _syscalls as sc

#: Options that keep the upper dir a plain-file diff (see the module docstring).
DIFF_SAFE_OPTIONS: tuple[tuple[str, str], ...] = (
    ("index", "off"),
    ("redirect_dir", "off"),
    ("metacopy", "off"),
)

#: The kernel copies legacy mount data into one page, NUL included.
LEGACY_DATA_LIMIT = 4095
#: overlayfs refuses deeper stacks than this (OVL_MAX_STACK).
MAX_LOWERS = 500

OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
_LEGACY_SPECIAL = frozenset(",:\\=")


@dataclass(frozen=True)
class OverlayMount:
    """A mounted overlay (or, for a single read-only layer, a read-only bind mount)."""

    target: Path
    lowers: tuple[Path, ...]
    upper: Path | None = None
    work: Path | None = None
    readonly: bool = False
    #: How it was mounted: ``fsopen-fd``, ``fsopen-path``, ``mount`` or ``bind``.
    method: str = field(default="mount", compare=False)


# --------------------------------------------------------------------------- probing


@cache
def new_api_support() -> str | None:
    """Which per-layer new-mount-API form this kernel takes: ``"fd"``, ``"path"`` or None."""
    if not sc.NEW_MOUNT_API:
        return None
    try:
        ctx = sc.fsopen("overlay")
    except OSError:
        return None
    try:
        probe = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            sc.fsconfig(ctx, sc.FSCONFIG_SET_FD, "lowerdir+", None, probe)
            return "fd"
        except OSError:
            pass
        finally:
            os.close(probe)
        try:
            sc.fsconfig(ctx, sc.FSCONFIG_SET_STRING, "lowerdir+", "/", 0)
            return "path"
        except OSError:
            return None
    finally:
        os.close(ctx)


# --------------------------------------------------------------------------- mounting


def mount_overlay(
    target: str | os.PathLike[str],
    lowers: Sequence[str | os.PathLike[str]],
    upper: str | os.PathLike[str] | None = None,
    work: str | os.PathLike[str] | None = None,
    *,
    readonly: bool = False,
    options: Sequence[tuple[str, str]] = DIFF_SAFE_OPTIONS,
    method: str = "auto",
) -> OverlayMount:
    """Mount an overlay at ``target``; ``lowers`` top first. Returns what was mounted.

    ``upper`` and ``work`` go together (same filesystem, ``work`` empty); without them the
    overlay is read-only. ``method`` forces ``"fsopen-fd"``, ``"fsopen-path"`` or ``"mount"``
    (for tests); ``"auto"`` picks the best the kernel offers.
    """
    tgt = Path(target)
    low = tuple(Path(p) for p in lowers)
    up = Path(upper) if upper is not None else None
    wk = Path(work) if work is not None else None
    if not low:
        raise ContainerError("overlay mount needs at least one lower directory")
    if len(low) > MAX_LOWERS:
        raise ContainerError(
            f"overlay mount: {len(low)} lower directories exceed the kernel's limit of {MAX_LOWERS}",
            hint="squash the image or rebuild it with fewer layers",
        )
    if (up is None) != (wk is None):
        raise ContainerError("overlay mount: upperdir and workdir must be given together")
    if up is None:
        readonly = True
    for p in (*low, *(d for d in (up, wk) if d is not None), tgt):
        if not p.is_dir():
            raise ContainerError(f"overlay mount: {p}: not a directory")

    if up is None and len(low) == 1:
        _bind_readonly(low[0], tgt)
        return OverlayMount(tgt, low, None, None, True, "bind")

    if method == "auto":
        support = new_api_support()
        method = {"fd": "fsopen-fd", "path": "fsopen-path"}.get(support or "", "mount")
    try:
        if method in ("fsopen-fd", "fsopen-path"):
            _mount_fsopen(tgt, low, up, wk, readonly, options, by_fd=method == "fsopen-fd")
        elif method == "mount":
            _mount_legacy(tgt, low, up, wk, readonly, options)
        else:
            raise ContainerError(f"overlay mount: unknown method {method!r}")
    except OSError as e:
        raise ContainerError(f"overlay mount on {tgt} failed: {e.strerror or e}") from e
    return OverlayMount(tgt, low, up, wk, readonly, method)


def _mount_fsopen(
    target: Path,
    lowers: tuple[Path, ...],
    upper: Path | None,
    work: Path | None,
    readonly: bool,
    options: Sequence[tuple[str, str]],
    *,
    by_fd: bool,
) -> None:
    ctx = sc.fsopen("overlay")
    fds: list[int] = []
    try:
        try:

            def layer(key: str, path: Path) -> None:
                if by_fd:
                    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                    fds.append(fd)
                    sc.fsconfig(ctx, sc.FSCONFIG_SET_FD, key, None, fd)
                else:
                    sc.fsconfig(ctx, sc.FSCONFIG_SET_STRING, key, _short_path(path, fds), 0)

            for lower in lowers:
                layer("lowerdir+", lower)
            if upper is not None and work is not None:
                layer("upperdir", upper)
                layer("workdir", work)
            for key, value in options:
                sc.fsconfig(ctx, sc.FSCONFIG_SET_STRING, key, value, 0)
            sc.fsconfig(ctx, sc.FSCONFIG_CMD_CREATE, None, None, 0)
            mnt = sc.fsmount(ctx, sc.FSMOUNT_CLOEXEC, sc.MOUNT_ATTR_RDONLY if readonly else 0)
        except OSError as e:
            log = sc.drain_fs_log(ctx)
            if log:
                raise OSError(e.errno, f"{e.strerror} ({'; '.join(log)})") from e
            raise
        try:
            sc.move_mount(mnt, str(target))
        finally:
            os.close(mnt)
    finally:
        for fd in fds:
            os.close(fd)
        os.close(ctx)


def _short_path(path: Path, fds: list[int]) -> str:
    """``path`` itself when it is short and plain, else a ``/proc/self/fd/N`` link to it."""
    s = str(path.absolute())
    if len(s) < 200 and not (_LEGACY_SPECIAL & set(s)):
        return s
    fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    fds.append(fd)
    return f"/proc/self/fd/{fd}"


def _mount_legacy(
    target: Path,
    lowers: tuple[Path, ...],
    upper: Path | None,
    work: Path | None,
    readonly: bool,
    options: Sequence[tuple[str, str]],
) -> None:
    fds: list[int] = []
    try:

        def data(shorten: bool) -> str:
            def p(x: Path) -> str:
                s = str(x.absolute())
                if shorten or (_LEGACY_SPECIAL & set(s)):
                    fd = os.open(x, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                    fds.append(fd)
                    return f"/proc/self/fd/{fd}"
                return s

            parts = ["lowerdir=" + ":".join(p(x) for x in lowers)]
            if upper is not None and work is not None:
                parts += [f"upperdir={p(upper)}", f"workdir={p(work)}"]
            parts += [f"{k}={v}" for k, v in options]
            return ",".join(parts)

        opts = data(shorten=False)
        if len(opts.encode()) > LEGACY_DATA_LIMIT:
            for fd in fds:
                os.close(fd)
            fds.clear()
            opts = data(shorten=True)
            if len(opts.encode()) > LEGACY_DATA_LIMIT:
                raise ContainerError(
                    f"overlay mount: {len(lowers)} lower directories do not fit in one mount "
                    "data page on this kernel"
                )
        sc.mount("overlay", str(target), "overlay", sc.MS_RDONLY if readonly else 0, opts)
    finally:
        for fd in fds:
            os.close(fd)


def _bind_readonly(source: Path, target: Path) -> None:
    try:
        sc.mount(str(source), str(target), None, sc.MS_BIND, None)
    except OSError as e:
        raise ContainerError(f"bind mount of {source} on {target} failed: {e.strerror}") from e
    try:
        sc.mount("none", str(target), None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY, None)
    except OSError as e:
        sc.umount2(str(target), sc.MNT_DETACH)
        raise ContainerError(f"read-only remount of {target} failed: {e.strerror}") from e


def unmount(target: str | os.PathLike[str], *, lazy: bool = False) -> None:
    """Unmount ``target``; a busy mount is detached lazily. Not mounted: no error."""
    t = os.fspath(target)
    try:
        sc.umount2(t, sc.MNT_DETACH if lazy else 0)
    except OSError as e:
        if e.errno == errno.EINVAL and not is_mountpoint(t):
            return
        if e.errno == errno.EBUSY and not lazy:
            try:
                sc.umount2(t, sc.MNT_DETACH)
                return
            except OSError as e2:
                e = e2
        if e.errno == errno.ENOENT:
            return
        raise ContainerError(f"unmount of {t} failed: {e.strerror}") from e


@contextlib.contextmanager
def overlay(
    target: str | os.PathLike[str],
    lowers: Sequence[str | os.PathLike[str]],
    upper: str | os.PathLike[str] | None = None,
    work: str | os.PathLike[str] | None = None,
    *,
    readonly: bool = False,
    options: Sequence[tuple[str, str]] = DIFF_SAFE_OPTIONS,
    method: str = "auto",
) -> Iterator[OverlayMount]:
    """Mount for the ``with`` block, always unmount after (lazily if the block failed)."""
    m = mount_overlay(
        target, lowers, upper, work, readonly=readonly, options=options, method=method
    )
    ok = False
    try:
        yield m
        ok = True
    finally:
        if ok:
            unmount(m.target)
        else:
            with contextlib.suppress(ContainerError):
                unmount(m.target, lazy=True)


# --------------------------------------------------------------------------- mount table


def _unescape_mountinfo(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) and s[i + 1 : i + 4].isdigit():
            out.append(chr(int(s[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mountpoints() -> list[str]:
    """Mount points of this mount namespace, in mount order (from /proc/self/mountinfo)."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return [_unescape_mountinfo(line.split(" ", 5)[4]) for line in f if line.strip()]


def is_mountpoint(path: str | os.PathLike[str]) -> bool:
    """True when something is mounted exactly at ``path``."""
    p = os.path.realpath(path)
    return p in mountpoints()


# --------------------------------------------------------------------------- whiteouts


def is_whiteout(st: os.stat_result) -> bool:
    """An overlay whiteout: a character device with device number 0/0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_whiteout_path(path: str | os.PathLike[str]) -> bool:
    try:
        return is_whiteout(os.lstat(path))
    except FileNotFoundError:
        return False


def is_opaque(path: str | os.PathLike[str]) -> bool:
    """A directory whose lower-layer contents the overlay hides (``*.overlay.opaque=y``).

    The value ``x`` (kernel 6.7+) only flags a directory holding xattr whiteouts; it is not
    opaque.
    """
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError as e:
            if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
                raise
    return False


def make_whiteout(path: str | os.PathLike[str]) -> None:
    """Create an overlay whiteout (0/0 character device) at ``path``."""
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def make_opaque(path: str | os.PathLike[str]) -> None:
    """Mark directory ``path`` opaque for overlayfs (``trusted.overlay.opaque=y``)."""
    os.setxattr(path, OPAQUE_XATTRS[0], b"y", follow_symlinks=False)
