"""The storage-driver interface every registry backend implements.

Paths are "/"-separated keys relative to the driver's root, built only by
:mod:`gantry.registry.layout` from validated names, so drivers never see user
input. The registry keeps no state outside its driver: two servers over one
driver's data behave as one registry.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gantry.errors import NotFound


class PathNotFound(NotFound):
    """A storage path does not exist."""


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str
    size: int
    mtime: float  # seconds since the epoch
    is_dir: bool = False


class FileWriter(abc.ABC):
    """A streaming writer; ``commit`` makes the bytes durable at the path."""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Bytes in the file so far, including those before an append."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def commit(self) -> None:
        """Flush and make the data durable; the writer is closed afterwards."""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Drop what this writer wrote (an append writer drops only its own part)."""


class StorageDriver(abc.ABC):
    """Blob-ish key/value storage with listing, moves and appendable files."""

    #: True when calls can block for long (network): the server runs them in threads.
    blocking: bool = False
    name: str = "abstract"

    @abc.abstractmethod
    def get_content(self, path: str) -> bytes: ...

    @abc.abstractmethod
    def put_content(self, path: str, data: bytes) -> None:
        """Write ``data`` atomically: readers see the old or the new content, never a mix."""

    @abc.abstractmethod
    def stat(self, path: str) -> FileInfo: ...

    @abc.abstractmethod
    def list(self, path: str) -> list[str]:
        """Names of the direct children of the directory ``path`` (unsorted)."""

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Delete a file or a whole directory tree; PathNotFound when missing."""

    @abc.abstractmethod
    def move(self, src: str, dst: str) -> None:
        """Move a file, replacing ``dst`` atomically."""

    @abc.abstractmethod
    def writer(self, path: str, *, append: bool = False) -> FileWriter: ...

    @abc.abstractmethod
    def reader(self, path: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        """A file object over ``length`` bytes (all by default) from ``offset``."""

    @abc.abstractmethod
    def walk(self, path: str) -> Iterator[FileInfo]:
        """Every file (not directory) under ``path``, recursively; nothing if missing."""

    def local_path(self, path: str) -> Path | None:
        """A local file for ``path`` the server can sendfile() from, if there is one."""
        return None

    def redirect_url(self, path: str, method: str = "GET") -> str | None:
        """A URL clients may fetch ``path`` from directly (pre-signed), if enabled."""
        return None

    def touch(self, path: str) -> None:
        """Mark ``path`` as recently used (rewrite it if the backend has no utime)."""
        self.put_content(path, self.get_content(path))

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except PathNotFound:
            return False
        return True

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
