"""Helpers shared by the archive tests (no tests here): run the CLI, build tars by hand."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterable
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def gantry(
    root: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, "GANTRY_ROOT": str(root), **(env or {})}
    full_env.pop("GANTRY_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "gantry", *args],
        input=input if input is not None else b"",
        capture_output=True,
        env=full_env,
        timeout=300,
    )


def entry(
    name: str,
    data: bytes = b"",
    *,
    type: bytes = tarfile.REGTYPE,
    linkname: str = "",
    mode: int = 0o644,
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = type
    info.linkname = linkname
    info.mode = mode
    info.mtime = 1_700_000_000
    if type == tarfile.REGTYPE:
        info.size = len(data)
    return info, data


def make_tar(entries: Iterable[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for info, data in entries:
            t.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def small_rootfs() -> bytes:
    """A tiny valid root filesystem tar."""
    return make_tar(
        [
            entry("bin/", type=tarfile.DIRTYPE, mode=0o755),
            entry("bin/hello", b"#!/bin/sh\necho hello\n", mode=0o755),
            entry("etc/", type=tarfile.DIRTYPE, mode=0o755),
            entry("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
            entry("bin/sh", type=tarfile.SYMTYPE, linkname="/bin/busybox"),
            entry("bin/hello2", type=tarfile.LNKTYPE, linkname="bin/hello"),
        ]
    )


def tree_snapshot(path: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``path`` with (mode, size, mtime_ns): to prove nothing changed."""
    out: dict[str, tuple[int, int, int]] = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, path)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out
