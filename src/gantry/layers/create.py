"""Create a layer tar from a directory (or an overlay upperdir) in one pass.

The tree is walked depth-first with each directory's entries sorted by their
byte names; each entry is one ustar header (PAX extended header only where a
field does not fit or the entry has xattrs) with numeric uid/gid as on disk,
empty uname/gname, whole-second mtimes (clamped to ``source_date_epoch`` when
given) and no atime/ctime, so the same tree always gives the same bytes, and
the pinned compressors (see :mod:`gantry.layers.compression`) extend that to the
compressed blob. The diff ID (sha256 of the tar) and the digest (sha256 of the
compressed bytes) are computed while writing.

Contents: directories, regular files (a file with several links inside the tree
becomes one file and hardlinks to its first path), symlinks, device nodes,
fifos; sockets are skipped (as Docker does). Xattrs kept: ``security.capability``,
``user.*`` and ``trusted.*`` except overlayfs' own; ``security.selinux`` and
ACLs are host state and are left out.

``overlay=True`` reads an overlayfs upperdir: a 0/0 character device becomes a
``.wh.<name>`` entry and a directory marked opaque (``trusted.overlay.opaque``
or ``user.overlay.opaque`` = ``y``) gets ``<dir>/.wh..wh..opq`` right after it.
An upperdir holding redirected directories or metacopy files (overlay features
gantry does not mount with) is refused: it does not describe the change alone.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gantry.digest import Digest
from gantry.errors import InvalidArchive
from gantry.layers import tar, whiteouts
from gantry.layers.compression import CompressingWriter, Writable
from gantry.oci import mediatypes

CHUNK = 1 << 20

_XATTR_KEEP_PREFIXES = ("user.", "trusted.")
_REFUSED_OVERLAY = (
    "trusted.overlay.redirect",
    "user.overlay.redirect",
    "trusted.overlay.metacopy",
    "user.overlay.metacopy",
)
_OPAQUE = ("trusted.overlay.opaque", "user.overlay.opaque")


class ByteSink(Protocol):
    """Where a layer's bytes go: a binary file, a content-store writer, a socket wrapper."""

    def write(self, data: bytes | bytearray | memoryview, /) -> object: ...


@dataclass(frozen=True)
class LayerInfo:
    #: sha256 of the uncompressed tar
    diff_id: Digest
    #: sha256 of the bytes written to ``out``
    digest: Digest
    #: bytes written to ``out``
    size: int
    #: bytes of the uncompressed tar
    uncompressed_size: int
    #: OCI layer media type for the compression used
    media_type: str
    compression: str | None
    #: Docker's size of the layer: regular files once per inode plus symlink targets
    #: (``tar.disk_size`` of every entry written; whiteouts count nothing)
    content_size: int = 0


class _HashingOut:
    __slots__ = ("hasher", "out", "size")

    def __init__(self, out: ByteSink) -> None:
        self.out = out
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.hasher.update(data)
        self.out.write(data)
        self.size += len(data)
        return len(data)


class _Sink:
    """Buffers tar bytes into ~1 MiB writes, hashing them (diff ID) on the way."""

    def __init__(self, out: ByteSink, compression: Writable | None, level: int | None) -> None:
        self.hashed = _HashingOut(out)
        self.writer = CompressingWriter(self.hashed, compression, level)
        self.hasher = hashlib.sha256()
        self.size = 0
        self.buf = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.buf and len(data) >= CHUNK:
            self._emit(data)
            return
        self.buf += data
        if len(self.buf) >= CHUNK:
            self.flush()

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        self.hasher.update(data)
        self.size += len(data)
        self.writer.write(data)

    def flush(self) -> None:
        if self.buf:
            self._emit(self.buf)
            self.buf = bytearray()

    def close(self) -> None:
        self.flush()
        self.writer.close()


def _xattrs(path: bytes, overlay: bool) -> tuple[dict[str, bytes], bool]:
    """(xattrs to record, opaque?) for a file or directory."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}, False
    if not names:
        return {}, False
    kept: dict[str, bytes] = {}
    opaque = False
    for key in names:
        if key.startswith(whiteouts.OVERLAY_XATTR_PREFIXES):
            if overlay:
                if key in _OPAQUE and os.getxattr(path, key, follow_symlinks=False) == b"y":
                    opaque = True
                elif key in _REFUSED_OVERLAY:
                    raise InvalidArchive(
                        f"cannot create a layer from {os.fsdecode(path)!r}: it carries {key} "
                        "(mount the overlay with redirect_dir=off,metacopy=off)"
                    )
            continue
        if key == "security.capability" or key.startswith(_XATTR_KEEP_PREFIXES):
            try:
                kept[key] = os.getxattr(path, key, follow_symlinks=False)
            except OSError:
                continue
    return kept, opaque


def _walk(root: bytes, rel: bytes) -> Iterator[tuple[bytes, bytes, os.stat_result]]:
    """(relative name, absolute path, lstat) depth-first, children sorted by name."""
    base = root + b"/" + rel if rel else root
    with os.scandir(base) as it:
        names = sorted(d.name for d in it)
    for name in names:
        relname = rel + b"/" + name if rel else name
        path = base + b"/" + name
        st = os.lstat(path)
        yield relname, path, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(root, relname)


def create(
    src: Path,
    out: ByteSink,
    *,
    compression: Writable | None = "gzip",
    overlay: bool = False,
    source_date_epoch: int | None = None,
    level: int | None = None,
    filter: Callable[[str], bool] | None = None,
) -> LayerInfo:
    """Write the layer tar of the tree at ``src`` to ``out``, compressed as asked.

    ``filter(relative_path)`` returning False leaves an entry out (and, for a
    directory, everything under it). ``out`` is written sequentially and not
    closed.
    """
    root = os.fsencode(os.path.abspath(src))
    if not os.path.isdir(root):
        raise InvalidArchive(f"cannot create a layer from {src}: not a directory")
    sink = _Sink(out, compression, level)
    header = tar.header
    links: dict[tuple[int, int], bytes] = {}
    skip_under: bytes | None = None
    content_size = 0
    for rel, path, st in _walk(root, b""):
        if skip_under is not None:
            if rel.startswith(skip_under):
                continue
            skip_under = None
        if filter is not None and not filter(os.fsdecode(rel)):
            if stat.S_ISDIR(st.st_mode):
                skip_under = rel + b"/"
            continue
        mode = st.st_mode
        mtime = st.st_mtime_ns // 1_000_000_000
        if source_date_epoch is not None and mtime > source_date_epoch:
            mtime = source_date_epoch
        perm = stat.S_IMODE(mode)
        uid, gid = st.st_uid, st.st_gid
        if stat.S_ISREG(mode):
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                first = links.get(key)
                if first is not None:
                    sink.write(
                        header(
                            rel, tar.LNK, mode=perm, uid=uid, gid=gid, mtime=mtime, linkname=first
                        )
                    )
                    continue
                links[key] = rel
            xattrs, _ = _xattrs(path, overlay)
            size = st.st_size
            sink.write(
                header(
                    rel, tar.REG, mode=perm, uid=uid, gid=gid, mtime=mtime, size=size, xattrs=xattrs
                )
            )
            _copy(path, size, sink)
            content_size += size
        elif stat.S_ISDIR(mode):
            xattrs, opaque = _xattrs(path, overlay)
            sink.write(
                header(rel + b"/", tar.DIR, mode=perm, uid=uid, gid=gid, mtime=mtime, xattrs=xattrs)
            )
            if opaque:
                sink.write(
                    header(
                        rel + b"/" + whiteouts.OPAQUE,
                        tar.REG,
                        mode=perm,
                        uid=uid,
                        gid=gid,
                        mtime=mtime,
                    )
                )
        elif stat.S_ISLNK(mode):
            target = os.readlink(path)
            sink.write(
                header(rel, tar.SYM, mode=perm, uid=uid, gid=gid, mtime=mtime, linkname=target)
            )
            content_size += len(target)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
            if overlay and stat.S_ISCHR(mode) and major == 0 and minor == 0:
                head, _, name = rel.rpartition(b"/")
                wh = (head + b"/" if head else b"") + whiteouts.PREFIX + name
                sink.write(header(wh, tar.REG, mode=0o600, uid=uid, gid=gid, mtime=mtime))
            else:
                kind = tar.CHR if stat.S_ISCHR(mode) else tar.BLK
                sink.write(
                    header(
                        rel,
                        kind,
                        mode=perm,
                        uid=uid,
                        gid=gid,
                        mtime=mtime,
                        devmajor=major,
                        devminor=minor,
                    )
                )
        elif stat.S_ISFIFO(mode):
            sink.write(header(rel, tar.FIFO, mode=perm, uid=uid, gid=gid, mtime=mtime))
        # sockets (and anything else) are not archived
    sink.write(tar.end_of_archive())
    sink.close()
    return LayerInfo(
        diff_id=Digest("sha256:" + sink.hasher.hexdigest()),
        digest=Digest("sha256:" + sink.hashed.hasher.hexdigest()),
        size=sink.hashed.size,
        uncompressed_size=sink.size,
        media_type=mediatypes.layer_type(compression),
        compression=compression,
        content_size=content_size,
    )


def _copy(path: bytes, size: int, sink: _Sink) -> None:
    """Exactly ``size`` bytes of the file, then tar padding; a file that shrank is an error."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        left = size
        while left:
            data = os.read(fd, min(left, CHUNK))
            if not data:
                raise InvalidArchive(f"{os.fsdecode(path)}: file shrank while being archived")
            sink.write(data)
            left -= len(data)
    finally:
        os.close(fd)
    pad = -size % tar.BLOCK
    if pad:
        sink.write(bytes(pad))
