"""Thin ctypes bindings for the mount syscalls Python's ``os`` module lacks.

Only what the runtime needs: legacy ``mount(2)``/``umount2(2)`` and the new mount API
(``fsopen``/``fsconfig``/``fsmount``/``move_mount``). Every wrapper raises ``OSError`` with
the errno, like ``os`` functions do; callers turn that into gantry errors.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
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

# The new mount API got the same numbers on every architecture (the unified table from 5.1 on).
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_FSOPEN = 430
SYS_FSCONFIG = 431
SYS_FSMOUNT = 432

FSOPEN_CLOEXEC = 0x1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_SET_FD = 5
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 0x1
MOUNT_ATTR_RDONLY = 0x1
MOVE_MOUNT_F_EMPTY_PATH = 0x4

MS_RDONLY = 0x1
MS_BIND = 0x1000
MS_REMOUNT = 0x20
MS_REC = 0x4000
MNT_DETACH = 0x2

NEW_MOUNT_API = os.uname().machine in {"x86_64", "aarch64", "riscv64", "ppc64le", "s390x"}


def _check(ret: int, what: str, path: str | None = None) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(
        _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
        "mount",
        target,
    )


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), "umount2", target)


def fsopen(fstype: str, flags: int = FSOPEN_CLOEXEC) -> int:
    return _check(
        _libc.syscall(SYS_FSOPEN, ctypes.c_char_p(_b(fstype)), ctypes.c_uint(flags)), "fsopen"
    )


def fsconfig(fd: int, cmd: int, key: str | None, value: str | None, aux: int) -> None:
    _check(
        _libc.syscall(
            SYS_FSCONFIG,
            ctypes.c_int(fd),
            ctypes.c_uint(cmd),
            ctypes.c_char_p(_b(key)),
            ctypes.c_char_p(_b(value)),
            ctypes.c_int(aux),
        ),
        f"fsconfig({key or 'create'})",
    )


def fsmount(fd: int, flags: int, attr_flags: int) -> int:
    return _check(
        _libc.syscall(
            SYS_FSMOUNT, ctypes.c_int(fd), ctypes.c_uint(flags), ctypes.c_uint(attr_flags)
        ),
        "fsmount",
    )


def move_mount(from_fd: int, to_path: str, flags: int = MOVE_MOUNT_F_EMPTY_PATH) -> None:
    _check(
        _libc.syscall(
            SYS_MOVE_MOUNT,
            ctypes.c_int(from_fd),
            ctypes.c_char_p(b""),
            ctypes.c_int(-100),  # AT_FDCWD
            ctypes.c_char_p(_b(to_path)),
            ctypes.c_uint(flags),
        ),
        "move_mount",
        to_path,
    )


def drain_fs_log(fd: int) -> list[str]:
    """Messages the kernel queued on an fs context fd (``e overlayfs: ...``), oldest first."""
    out: list[str] = []
    for _ in range(32):
        try:
            msg = os.read(fd, 4096)
        except OSError:
            break
        if not msg:
            break
        out.append(msg.decode(errors="replace").strip())
    return out
