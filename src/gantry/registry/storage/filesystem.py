"""The filesystem driver: the registry's data under one local directory.

Small files are written atomically (temp file, fsync, rename); blobs are moved
into place with ``os.replace``, so a crash leaves at worst an orphaned temp
file, never a truncated blob. Appends (chunked uploads) go straight to the
upload's data file: whatever survives a crash is a prefix of what was sent.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .base import FileInfo, FileWriter, PathNotFound, StorageDriver

_TMP_PREFIX = ".tmp-"


class _Limited(io.RawIOBase):
    """A read-only view of ``length`` bytes of an open file."""

    def __init__(self, f: BinaryIO, length: int) -> None:
        self._f = f
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]  # RawIOBase's buffer type
        if self._left <= 0:
            return 0
        view = memoryview(buf)[: self._left]
        n = self._f.readinto(view)  # type: ignore[attr-defined]  # BinaryIO lacks readinto
        self._left -= n or 0
        return n or 0

    def close(self) -> None:
        self._f.close()
        super().close()


class _FsWriter(FileWriter):
    def __init__(self, final: Path, *, append: bool, fsync: bool) -> None:
        self._final = final
        self._fsync = fsync
        final.parent.mkdir(parents=True, exist_ok=True)
        if append:
            self._path = final
            self._f = open(final, "ab")  # noqa: SIM115 - closed by commit/cancel
            self._start = self._f.tell()
        else:
            self._path = final.with_name(f"{_TMP_PREFIX}{uuid.uuid4().hex}")
            self._f = open(self._path, "wb")  # noqa: SIM115
            self._start = 0
        self._append = append
        self._size = self._start

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        self._f.write(data)
        self._size += len(data)

    def commit(self) -> None:
        if self._f.closed:
            return
        self._f.flush()
        if self._fsync:
            os.fsync(self._f.fileno())
        self._f.close()
        if not self._append:
            os.replace(self._path, self._final)

    def cancel(self) -> None:
        if self._f.closed:
            return
        if self._append:
            self._f.flush()
            self._f.truncate(self._start)
            self._f.close()
        else:
            self._f.close()
            try:
                self._path.unlink()
            except FileNotFoundError:
                pass


class FilesystemDriver(StorageDriver):
    name = "filesystem"
    blocking = False

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync

    def _full(self, path: str) -> Path:
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") or "\x00" in p for p in parts):
            raise ValueError(f"unsafe storage path: {path!r}")
        return self.root.joinpath(*parts)

    def get_content(self, path: str) -> bytes:
        try:
            return self._full(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFound(path) from None

    def put_content(self, path: str, data: bytes) -> None:
        for attempt in range(3):
            w = _FsWriter(self._full(path), append=False, fsync=self.fsync)
            try:
                w.write(data)
                w.commit()
                return
            except FileNotFoundError:
                # a concurrent delete (GC) removed the directory under us: recreate it
                w.cancel()
                if attempt == 2:
                    raise
            except BaseException:
                w.cancel()
                raise

    def stat(self, path: str) -> FileInfo:
        try:
            st = self._full(path).stat()
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        is_dir = os.path.isdir(self._full(path))
        return FileInfo(path, 0 if is_dir else st.st_size, st.st_mtime, is_dir)

    def list(self, path: str) -> list[str]:
        try:
            return [n for n in os.listdir(self._full(path)) if not n.startswith(_TMP_PREFIX)]
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None

    def delete(self, path: str) -> None:
        full = self._full(path)
        if full == self.root:
            raise ValueError("refusing to delete the storage root")
        try:
            if full.is_dir() and not full.is_symlink():
                shutil.rmtree(full)
            else:
                full.unlink()
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None

    def move(self, src: str, dst: str) -> None:
        s, d = self._full(src), self._full(dst)
        d.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(s, d)
        except FileNotFoundError:
            raise PathNotFound(src) from None

    def writer(self, path: str, *, append: bool = False) -> FileWriter:
        return _FsWriter(self._full(path), append=append, fsync=self.fsync)

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        try:
            f = open(self._full(path), "rb")  # noqa: SIM115 - returned to the caller
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFound(path) from None
        if offset:
            f.seek(offset)
        if length is None:
            return f
        return io.BufferedReader(_Limited(f, length), 1 << 20)

    def walk(self, path: str) -> Iterator[FileInfo]:
        base = self._full(path)
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for fn in sorted(filenames):
                if fn.startswith(_TMP_PREFIX):
                    continue
                full = os.path.join(dirpath, fn)
                try:
                    st = os.stat(full)
                except FileNotFoundError:
                    continue
                rel = os.path.relpath(full, self.root).replace(os.sep, "/")
                yield FileInfo(rel, st.st_size, st.st_mtime)

    def local_path(self, path: str) -> Path | None:
        return self._full(path)

    def touch(self, path: str) -> None:
        try:
            os.utime(self._full(path))
        except FileNotFoundError:
            raise PathNotFound(path) from None
