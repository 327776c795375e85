"""Safe extraction of a layer tar into a directory.

Safety rules (nothing is ever written outside ``dest``):

* entry and hardlink names are relative: an absolute name or a ``..`` component
  is refused (:class:`UnsafeArchive`);
* every parent is opened component by component from a descriptor of ``dest``
  with ``O_NOFOLLOW``: a write that would pass through a symlink is refused.
  Symlinks themselves are created as they are (absolute targets are normal);
* the final component is never followed: regular files are created with
  ``O_CREAT|O_EXCL|O_NOFOLLOW`` after removing what was there, metadata calls
  use ``*at(..., AT_SYMLINK_NOFOLLOW)`` or the file's own descriptor;
* hardlink targets are resolved the same way and must already exist in ``dest``;
* xattrs from ``SCHILY.xattr.*``: overlayfs' own (``trusted.overlay.*``,
  ``user.overlay.*``) are dropped so a layer cannot forge whiteouts, redirects
  or metacopy files; ``trusted.*`` only as root;
* device nodes are created only as root (otherwise skipped with a warning, as
  rootless tools do); ownership is applied only as root.

Decompression bombs: the tar stream is capped at ``max_size`` uncompressed bytes
(default 1 TiB -- far above any real layer), every entry's data must be exactly
as long as its header says (a stream that ends early is refused), extended
headers are capped at 1 MiB, and decoding never holds more than 1 MiB. Running
out of disk raises :class:`StoreError`.

On error ``dest`` is left partly written: callers extract into a fresh
directory and discard it on failure.

Modes:

* ``"overlay"``: a fresh snapshot per layer. ``.wh.x`` becomes a 0/0 character
  device ``x``; ``.wh..wh..opq`` sets ``trusted.overlay.opaque=y`` (as root;
  ``user.overlay.opaque`` rootless) on its directory.
* ``"apply"``: whiteouts are applied to what is already in ``dest`` by deleting
  (flattening a chain of layers into one tree).

Either way a whiteout never hides an entry of its own layer (image-spec).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from gantry.digest import Digest
from gantry.errors import InvalidArchive, StoreError, UnsafeArchive
from gantry.layers import tar, whiteouts
from gantry.layers.compression import decompressing_reader

Mode = Literal["overlay", "apply"]

#: Default cap on a layer's uncompressed tar stream (see the module docstring).
DEFAULT_MAX_SIZE = 1 << 40

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class ExtractResult:
    #: sha256 of the whole uncompressed tar stream
    diff_id: Digest
    #: Docker's layer size: regular files' and symlinks' sizes (``tar.disk_size``; whiteouts excluded)
    size: int
    #: bytes in the uncompressed tar stream
    tar_size: int
    #: number of tar entries handled (whiteouts included)
    entries: int
    #: things skipped on purpose (devices when not root, refused xattrs, ...)
    warnings: list[str] = field(default_factory=list)


def show(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace")


def split_name(name: bytes, what: str = "entry") -> list[bytes]:
    """The components of a tar name, refusing absolute names and ``..``."""
    if name.startswith(b"/"):
        raise UnsafeArchive(f"refusing layer {what} {show(name)!r}: absolute path")
    parts = [p for p in name.split(b"/") if p and p != b"."]
    if b".." in parts:
        raise UnsafeArchive(f"refusing layer {what} {show(name)!r}: path leaves the layer root")
    return parts


class _Extractor:
    def __init__(self, dest: Path, mode: Mode, same_owner: bool | None) -> None:
        if mode not in ("overlay", "apply"):
            raise ValueError(f"unknown extract mode {mode!r}")
        self.mode = mode
        self.privileged = os.geteuid() == 0
        self.same_owner = self.privileged if same_owner is None else same_owner
        self.opaque_xattr = whiteouts.opaque_xattr(self.privileged)
        dest.mkdir(parents=True, exist_ok=True)
        self.root = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.cache_key: bytes | None = None
        self.cache_fd = -1
        self.unpacked: set[bytes] = set()
        self.dirs: dict[bytes, tuple[int, int]] = {}  # path -> (mode, mtime_ns)
        self.warnings: list[str] = []
        self.size = 0

    def close(self) -> None:
        self._invalidate()
        os.close(self.root)

    # -- path resolution ----------------------------------------------------------
    def _invalidate(self) -> None:
        if self.cache_fd >= 0:
            os.close(self.cache_fd)
        self.cache_fd, self.cache_key = -1, None

    def _walk(self, parts: list[bytes], create: bool, name: bytes) -> int | None:
        """An owned O_PATH descriptor of the directory ``parts`` under dest, never
        following a symlink; None if missing and not ``create``."""
        fd = os.dup(self.root)
        try:
            for i, comp in enumerate(parts):
                try:
                    nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        os.close(fd)
                        return None
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    self.unpacked.add(b"/".join(parts[: i + 1]))
                    nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except OSError as err:
                    if err.errno not in (errno.ENOTDIR, errno.ELOOP):
                        raise
                    st = os.stat(comp, dir_fd=fd, follow_symlinks=False)
                    where = show(b"/".join(parts[: i + 1]))
                    if stat.S_ISLNK(st.st_mode):
                        raise UnsafeArchive(
                            f"refusing layer entry {show(name)!r}: "
                            f"its parent {where!r} is a symlink"
                        ) from None
                    raise InvalidArchive(
                        f"invalid layer entry {show(name)!r}: its parent {where!r} is not a directory"
                    ) from None
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _parent(self, parts: list[bytes], name: bytes, create: bool = True) -> int | None:
        key = b"/".join(parts[:-1])
        if key == self.cache_key:
            return self.cache_fd
        fd = self._walk(parts[:-1], create, name)
        if fd is None:
            return None
        self._invalidate()
        self.cache_key, self.cache_fd = key, fd
        return fd

    def _remove(self, pfd: int, name: bytes) -> None:
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            # fd-based: never follows symlinks. ``pfd`` (the cached parent) stays valid:
            # only its child goes.
            shutil.rmtree(name, dir_fd=pfd)
        else:
            os.unlink(name, dir_fd=pfd)

    # -- metadata -------------------------------------------------------------
    def _xattrs(self, target: int | str, xattrs: dict[str, bytes], name: bytes) -> None:
        for key, value in xattrs.items():
            if key.startswith(whiteouts.OVERLAY_XATTR_PREFIXES):
                self.warnings.append(f"{show(name)}: dropped overlay xattr {key}")
                continue
            if key.startswith("trusted.") and not self.privileged:
                self.warnings.append(f"{show(name)}: skipped {key} (needs root)")
                continue
            try:
                if isinstance(target, int):
                    os.setxattr(target, key, value)
                else:
                    os.setxattr(target, key, value, follow_symlinks=False)
            except OSError as err:
                if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EACCES, errno.EINVAL):
                    raise
                self.warnings.append(f"{show(name)}: could not set xattr {key}: {err.strerror}")

    def _times(self, e: tar.Entry) -> tuple[int, int]:
        return (e.mtime_ns, e.mtime_ns)

    # -- entries ------------------------------------------------------------------
    def entry(self, e: tar.Entry, reader: tar.TarReader) -> None:
        parts = split_name(e.name)
        if whiteouts.META_PREFIX in e.name and any(
            p.startswith(whiteouts.META_PREFIX) for p in parts[:-1]
        ):
            return  # inside an AUFS bookkeeping directory
        if not parts:
            if e.type in (tar.DIR, tar.GNU_DUMPDIR):
                self.dirs[b""] = (e.mode, e.mtime_ns)
                if self.same_owner:
                    os.chown(self.root, e.uid, e.gid)
                return
            raise InvalidArchive(f"invalid layer entry {show(e.name)!r}: empty name")
        base = parts[-1]
        if base.startswith(whiteouts.PREFIX):
            self._whiteout(parts, e)
            return
        path = b"/".join(parts)
        pfd = self._parent(parts, e.name)
        assert pfd is not None
        t = e.type
        if t in tar.REGULAR:
            self._file(pfd, base, e, reader)
            self.size += e.size
        elif t in (tar.DIR, tar.GNU_DUMPDIR):
            self._dir(pfd, base, path, e)
        elif t == tar.SYM:
            self._symlink(pfd, base, e)
            self.size += tar.disk_size(e)
        elif t == tar.LNK:
            self._hardlink(pfd, base, e)
        elif t in (tar.CHR, tar.BLK, tar.FIFO):
            if not self._special(pfd, base, e):
                return
        else:
            raise InvalidArchive(f"unsupported tar entry type {t!r} for {show(e.name)!r}")
        self.unpacked.add(path)

    def _create(self, pfd: int, base: bytes) -> int:
        try:
            return os.open(base, _FILE_FLAGS, 0o600, dir_fd=pfd)
        except FileExistsError:
            self._remove(pfd, base)
            return os.open(base, _FILE_FLAGS, 0o600, dir_fd=pfd)

    def _file(self, pfd: int, base: bytes, e: tar.Entry, reader: tar.TarReader) -> None:
        fd = self._create(pfd, base)
        try:
            write = os.write
            for chunk in reader.data():
                while chunk:
                    chunk = chunk[write(fd, chunk) :]
            if self.same_owner:
                os.fchown(fd, e.uid, e.gid)
            os.fchmod(fd, e.mode)  # after chown, which clears setuid/setgid
            if e.xattrs:
                self._xattrs(fd, e.xattrs, e.name)
            os.utime(fd, ns=self._times(e))
        finally:
            os.close(fd)

    def _dir(self, pfd: int, base: bytes, path: bytes, e: tar.Entry) -> None:
        try:
            os.mkdir(base, 0o700, dir_fd=pfd)
        except FileExistsError:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(base, dir_fd=pfd)
                os.mkdir(base, 0o700, dir_fd=pfd)
        if self.same_owner:
            os.chown(base, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
        if e.xattrs:
            fd = os.open(
                base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd
            )
            try:
                self._xattrs(fd, e.xattrs, e.name)
            finally:
                os.close(fd)
        self.dirs[path] = (e.mode, e.mtime_ns)

    def _symlink(self, pfd: int, base: bytes, e: tar.Entry) -> None:
        if not e.linkname:
            raise InvalidArchive(f"invalid layer entry {show(e.name)!r}: symlink without a target")
        try:
            os.symlink(e.linkname, base, dir_fd=pfd)
        except FileExistsError:
            self._remove(pfd, base)
            os.symlink(e.linkname, base, dir_fd=pfd)
        if self.same_owner:
            os.chown(base, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
        if e.xattrs:
            self._xattrs(f"/proc/self/fd/{pfd}/{os.fsdecode(base)}", e.xattrs, e.name)
        os.utime(base, ns=self._times(e), dir_fd=pfd, follow_symlinks=False)

    def _hardlink(self, pfd: int, base: bytes, e: tar.Entry) -> None:
        tparts = split_name(e.linkname, "hardlink target")
        if not tparts:
            raise UnsafeArchive(f"refusing layer hardlink {show(e.name)!r}: empty target")
        tfd = self._walk(tparts[:-1], False, e.name)
        if tfd is None:
            raise InvalidArchive(
                f"invalid layer hardlink {show(e.name)!r}: target {show(e.linkname)!r} not found"
            )
        try:
            try:
                tst = os.stat(tparts[-1], dir_fd=tfd, follow_symlinks=False)
            except FileNotFoundError:
                raise InvalidArchive(
                    f"invalid layer hardlink {show(e.name)!r}: target {show(e.linkname)!r} not found"
                ) from None
            if stat.S_ISDIR(tst.st_mode):
                raise InvalidArchive(
                    f"invalid layer hardlink {show(e.name)!r}: target {show(e.linkname)!r} is a directory"
                )
            try:
                cur = os.stat(base, dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                if (cur.st_dev, cur.st_ino) == (tst.st_dev, tst.st_ino):
                    return
                self._remove(pfd, base)
            # linkat without AT_SYMLINK_FOLLOW: a symlink target is linked itself.
            os.link(tparts[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(tfd)

    def _special(self, pfd: int, base: bytes, e: tar.Entry) -> bool:
        if e.type == tar.FIFO:
            kind, dev = stat.S_IFIFO, 0
        else:
            if not self.privileged:
                self.warnings.append(f"{show(e.name)}: skipped device node (needs root)")
                return False
            kind = stat.S_IFCHR if e.type == tar.CHR else stat.S_IFBLK
            dev = os.makedev(e.devmajor, e.devminor)
        try:
            os.mknod(base, kind | 0o600, dev, dir_fd=pfd)
        except FileExistsError:
            self._remove(pfd, base)
            os.mknod(base, kind | 0o600, dev, dir_fd=pfd)
        if self.same_owner:
            os.chown(base, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
        os.chmod(base, e.mode, dir_fd=pfd)  # just created by us: not a symlink
        os.utime(base, ns=self._times(e), dir_fd=pfd, follow_symlinks=False)
        return True

    # -- whiteouts ----------------------------------------------------------------
    def _whiteout(self, parts: list[bytes], e: tar.Entry) -> None:
        base = parts[-1]
        dirparts = parts[:-1]
        if base == whiteouts.OPAQUE:
            self._opaque(dirparts, e)
            return
        if base.startswith(whiteouts.META_PREFIX):
            return  # AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs): never extracted
        victim = base[len(whiteouts.PREFIX) :]
        if victim in (b"", b".", b".."):
            raise UnsafeArchive(f"refusing layer whiteout {show(e.name)!r}: bad name")
        vpath = b"/".join([*dirparts, victim])
        if vpath in self.unpacked:
            return  # a whiteout only hides lower layers' entries
        if self.mode == "apply":
            pfd = self._parent(parts, e.name, create=False)
            if pfd is not None:
                self._remove(pfd, victim)
            return
        pfd = self._parent(parts, e.name)
        assert pfd is not None
        self._remove(pfd, victim)
        try:
            os.mknod(victim, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)
        except PermissionError:
            raise StoreError(
                f"cannot create overlay whiteout for {show(vpath)!r}: operation not permitted "
                "(overlay snapshots need root)"
            ) from None
        if self.same_owner:
            os.chown(victim, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)

    def _opaque(self, dirparts: list[bytes], e: tar.Entry) -> None:
        if self.mode == "apply":
            self._invalidate()  # the cached directory may be below the one cleared
            fd = self._walk(dirparts, False, e.name)
            if fd is None:
                return
            try:
                self._clear_lower(fd, b"/".join(dirparts))
            finally:
                os.close(fd)
            return
        fd = self._walk(dirparts, True, e.name)
        assert fd is not None
        try:
            dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
        finally:
            os.close(fd)
        try:
            os.setxattr(dfd, self.opaque_xattr, b"y")
        finally:
            os.close(dfd)

    def _clear_lower(self, pathfd: int, path: bytes) -> None:
        """Apply mode: remove everything under the directory that this layer did not create."""
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pathfd)
        try:
            with os.scandir(fd) as it:
                names = [os.fsencode(d.name) for d in it]
            for child in names:
                cpath = path + b"/" + child if path else child
                if cpath not in self.unpacked:
                    self._remove(fd, child)
                    continue
                try:
                    cfd = os.open(child, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue  # not a directory: nothing below it
                try:
                    self._clear_lower(cfd, cpath)
                finally:
                    os.close(cfd)
        finally:
            os.close(fd)

    # -- end ----------------------------------------------------------------------
    def finish_dirs(self) -> None:
        """Directory modes and mtimes last, deepest first (their contents changed them)."""
        self._invalidate()
        for path in sorted(self.dirs, key=lambda p: p.count(b"/") + (1 if p else 0), reverse=True):
            mode, mtime_ns = self.dirs[path]
            parts = path.split(b"/") if path else []
            try:
                pfd = self._walk(parts, False, path)
            except (UnsafeArchive, InvalidArchive):
                continue  # replaced by a later entry
            if pfd is None:
                continue
            try:
                fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
            finally:
                os.close(pfd)
            try:
                os.fchmod(fd, mode)
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)


def extract(
    stream: BinaryIO,
    dest: Path,
    *,
    mode: Mode = "overlay",
    compression: str | None = "auto",
    max_size: int | None = DEFAULT_MAX_SIZE,
    same_owner: bool | None = None,
) -> ExtractResult:
    """Extract the layer read from ``stream`` (compressed or not) into ``dest``.

    ``same_owner`` (default: when running as root) applies the entries' uid/gid.
    Returns the diff ID computed while reading; see the module docstring for the
    safety rules and ``mode``.
    """
    reader = tar.TarReader(decompressing_reader(stream, compression), max_size=max_size)
    ex = _Extractor(Path(dest), mode, same_owner)
    entries = 0
    try:
        for e in reader:
            entries += 1
            ex.entry(e, reader)
        ex.finish_dirs()
        tar_size = reader.finish()
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StoreError(
                f"no space left on device while extracting a layer into {dest}"
            ) from err
        raise InvalidArchive(f"failed to extract layer: {err}") from err
    finally:
        ex.close()
    return ExtractResult(
        diff_id=reader.diff_id,
        size=ex.size,
        tar_size=tar_size,
        entries=entries,
        warnings=ex.warnings,
    )
