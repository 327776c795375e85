"""The one place where the store calls into :mod:`gantry.layers`.

Two things are needed from a layer blob: its unpacked size and diff ID (for
image records, without unpacking), and its extraction into a snapshot
directory with overlay whiteouts (for :meth:`Store.snapshot`).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from gantry.digest import Digest
from gantry.errors import InvalidArchive
from gantry.layers.whiteouts import PREFIX as _WHITEOUT

# gantry.layers' reader, extractor and codecs are imported where a layer is read: listing,
# tagging and a cached build open the store without ever reading one.


def _counted(name: bytes) -> bool:
    """Not a whiteout, and not inside an AUFS bookkeeping directory (``.wh..wh.plnk``)."""
    return not any(part.startswith(_WHITEOUT) for part in name.split(b"/"))


def scan(f: BinaryIO) -> tuple[Digest, int]:
    """(diff ID, unpacked size) of a layer blob, reading it once as a stream.

    The blob may be plain, gzip or zstd (detected by magic). The tar is read with
    gantry's strict reader (bad checksums, truncation and the like are refused) and
    everything after the end-of-archive blocks is hashed too. The size is what
    extraction counts (Docker's): regular files' and symlinks' sizes, whiteouts excluded.
    """
    from gantry.layers import extract, tar
    from gantry.layers.compression import decompressing_reader

    try:
        reader = tar.TarReader(decompressing_reader(f), max_size=extract.DEFAULT_MAX_SIZE)
        size = 0
        for entry in reader:
            if entry.type in tar.SIZED and _counted(entry.name):
                size += tar.disk_size(entry)
        reader.finish()
    except OSError as err:
        raise InvalidArchive(f"invalid layer tar: {err}") from err
    return Digest("sha256:" + reader.hasher.hexdigest()), size


def os_basename(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


def unpack(f: BinaryIO, dest: Path) -> tuple[Digest, int]:
    """Extract a layer blob into ``dest`` (overlay whiteouts); return (diff ID, size)."""
    from gantry.layers import extract

    result = extract.extract(f, dest, mode="overlay")
    return Digest(str(result.diff_id)), int(result.size)
