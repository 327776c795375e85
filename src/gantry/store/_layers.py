"""The one place where the store calls into :mod:`gantry.layers`.

Two things are needed from a layer blob: its unpacked size and diff ID (for
image records, without unpacking), and its extraction into a snapshot
directory with overlay whiteouts (for :meth:`Store.snapshot`).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path
from typing import BinaryIO

from gantry.digest import CHUNK, Digest
from gantry.errors import InvalidArchive, StoreError


class _HashingReader(io.RawIOBase):
    """Reads through ``inner`` and hashes every byte handed out (the diff ID)."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.hasher = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]  # RawIOBase's signature is WriteableBuffer
        data = self.inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.hasher.update(data)
        self.count += n
        return n

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def _decompressed(f: BinaryIO) -> BinaryIO:
    """The layer's tar stream, whatever its compression (detected by magic bytes)."""
    import gzip

    head = f.read(4)
    f.seek(0)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]  # a binary file object
    if head == b"\x28\xb5\x2f\xfd":
        import zstandard

        reader: BinaryIO = zstandard.ZstdDecompressor().stream_reader(f)
        return reader
    return f


def scan(f: BinaryIO) -> tuple[Digest, int]:
    """(diff ID, unpacked size) of a layer blob, reading it once as a stream.

    The size is Docker's: the sum of the tar entries' sizes, whiteouts excluded.
    """
    reader = _HashingReader(_decompressed(f))
    size = 0
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for member in tar:
                if not os_basename(member.name).startswith(".wh."):
                    size += max(member.size, 0)
        reader.drain()
    except (tarfile.TarError, EOFError, OSError) as err:
        raise InvalidArchive(f"invalid layer tar: {err}") from err
    return Digest("sha256:" + reader.hasher.hexdigest()), size


def os_basename(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


def unpack(f: BinaryIO, dest: Path) -> tuple[Digest, int]:
    """Extract a layer blob into ``dest`` (overlay whiteouts); return (diff ID, size)."""
    import importlib

    try:
        extract = importlib.import_module("gantry.layers.extract")
    except ImportError as err:  # until gantry.layers lands
        raise StoreError("layer extraction is not available in this build") from err
    result = extract.extract(f, dest, mode="overlay")
    return Digest(str(result.diff_id)), int(result.size)
