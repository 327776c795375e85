"""Storage drivers: where the registry keeps its bytes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import FileInfo, FileWriter, PathNotFound, StorageDriver
from .filesystem import FilesystemDriver

if TYPE_CHECKING:
    from ..config import RegistryConfig


def open_driver(config: RegistryConfig) -> StorageDriver:
    """The driver a configuration asks for."""
    from gantry.errors import UsageError

    if config.storage == "s3":
        if config.s3 is None:
            raise UsageError("storage.s3 is not configured")
        from .s3 import S3Driver

        return S3Driver(config.s3)
    if config.data is None:
        raise UsageError(
            "no data directory configured (--data or storage.filesystem.rootdirectory)"
        )
    return FilesystemDriver(config.data, fsync=config.fsync)


__all__ = [
    "FileInfo",
    "FileWriter",
    "FilesystemDriver",
    "PathNotFound",
    "StorageDriver",
    "open_driver",
]
