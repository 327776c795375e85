"""``store._layers.scan``: diff ID and Docker's size of a layer blob, read once, strictly."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest
import zstandard

from gantry.errors import InvalidArchive
from gantry.store import _layers


def tar_bytes(entries: list[tuple[str, bytes | None]], *, trailer: bytes = b"") -> bytes:
    """A PAX tar: (name, data) for files, (name/, None) for directories."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("etc/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "x" * 40
        t.addfile(link)
    return raw.getvalue() + trailer


ENTRIES: list[tuple[str, bytes | None]] = [
    ("etc/", None),
    ("etc/hosts", b"127.0.0.1 localhost\n"),
    ("bin/big", b"\x00" * 300_000),
    ("etc/.wh.passwd", b""),  # whiteout
    ("var/.wh..wh..opq", b""),  # opaque marker
    (".wh..wh.plnk/12.34", b"hardlink bookkeeping"),  # AUFS metadata
]
# regular files plus the symlink's 40-byte target, as overlay2 measures (Docker)
WANT_SIZE = len(b"127.0.0.1 localhost\n") + 300_000 + 40


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "compress",
    [
        lambda b: b,
        lambda b: gzip.compress(b, mtime=0),
        lambda b: zstandard.ZstdCompressor().compress(b),
        # two gzip members, as some tools write
        lambda b: gzip.compress(b[:7000], mtime=0) + gzip.compress(b[7000:], mtime=0),
    ],
    ids=["plain", "gzip", "zstd", "gzip-multimember"],
)
def test_diff_id_and_size(compress: object) -> None:
    raw = tar_bytes(ENTRIES)
    blob = compress(raw)  # type: ignore[operator]
    diff_id, size = _layers.scan(io.BytesIO(blob))
    assert diff_id == sha(raw)
    assert size == WANT_SIZE


def test_bytes_after_the_archive_are_in_the_diff_id() -> None:
    raw = tar_bytes(ENTRIES, trailer=b"\x00" * 10240)
    diff_id, size = _layers.scan(io.BytesIO(gzip.compress(raw)))
    assert diff_id == sha(raw)
    assert size == WANT_SIZE


def test_size_agrees_with_extraction(tmp_path: Path) -> None:
    blob = gzip.compress(tar_bytes(ENTRIES))
    scanned = _layers.scan(io.BytesIO(blob))
    assert _layers.unpack(io.BytesIO(blob), tmp_path) == scanned


def test_bad_checksum_is_refused() -> None:
    raw = bytearray(tar_bytes(ENTRIES))
    raw[10] ^= 0xFF  # inside the first header's name
    with pytest.raises(InvalidArchive, match="checksum"):
        _layers.scan(io.BytesIO(gzip.compress(bytes(raw))))


def test_truncated_entry_is_refused() -> None:
    raw = tar_bytes(ENTRIES)
    with pytest.raises(InvalidArchive, match="truncated"):
        _layers.scan(io.BytesIO(gzip.compress(raw[:4096])))


def test_corrupt_gzip_is_refused() -> None:
    blob = bytearray(gzip.compress(tar_bytes(ENTRIES), mtime=0))
    blob[len(blob) // 2] ^= 0x55
    blob[len(blob) // 2 + 1] ^= 0x55
    with pytest.raises(InvalidArchive):
        _layers.scan(io.BytesIO(bytes(blob)))
