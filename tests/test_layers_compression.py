"""gantry.layers.compression: magic detection, safe streaming decode, pinned encoders."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import subprocess
from pathlib import Path

import pytest
import zstandard

from conftest import need
from gantry.errors import InvalidArchive
from gantry.layers.compression import compressing_writer, decompressing_reader, detect

DATA = b"".join(b"line %d of some layer data\n" % i for i in range(50_000)) + os.urandom(300_000)


def _read_all(blob: bytes, chunk: int = 65536) -> bytes:
    r = decompressing_reader(io.BytesIO(blob))
    parts = []
    while part := r.read(chunk):
        assert len(part) <= chunk
        parts.append(part)
    return b"".join(parts)


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


@pytest.mark.parametrize(
    ("blob", "want"),
    [
        (_gzip(b"x"), "gzip"),
        (_zstd(b"x"), "zstd"),
        (lzma.compress(b"x"), "xz"),
        (bz2.compress(b"x"), "bzip2"),
        (b"BZh", None),  # too short to be bzip2
        (b"hello world", None),
        (b"", None),
    ],
)
def test_detect_by_magic(blob: bytes, want: str | None) -> None:
    assert detect(blob[:6]) == want


@pytest.mark.parametrize(
    "compress",
    [_gzip, _zstd, lzma.compress, bz2.compress, lambda d: d],
    ids=["gzip", "zstd", "xz", "bzip2", "plain"],
)
def test_round_trip_every_codec(compress: object) -> None:
    assert callable(compress)
    assert _read_all(compress(DATA)) == DATA


def test_multi_member_gzip_and_multi_frame_zstd() -> None:
    assert _read_all(_gzip(DATA[:1000]) + _gzip(DATA[1000:])) == DATA
    assert _read_all(_zstd(DATA[:1000]) + _zstd(DATA[1000:])) == DATA
    # a zstd skippable frame in between is fine too
    skippable = (0x184D2A50).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"12345"
    assert _read_all(_zstd(DATA[:10]) + skippable + _zstd(DATA[10:])) == DATA
    assert _read_all(lzma.compress(DATA[:10]) + lzma.compress(DATA[10:])) == DATA


def test_gzip_trailing_zeros_accepted_garbage_refused() -> None:
    assert _read_all(_gzip(DATA) + bytes(4096)) == DATA
    with pytest.raises(InvalidArchive, match="trailing garbage"):
        _read_all(_gzip(DATA) + b"not gzip")


@pytest.mark.parametrize(
    ("compress", "what"),
    [(_gzip, "gzip"), (_zstd, "zstd"), (lzma.compress, "xz"), (bz2.compress, "bzip2")],
)
@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_streams_are_refused(compress: object, what: str, keep: float) -> None:
    assert callable(compress)
    blob = compress(DATA)
    cut = blob[: int(len(blob) * keep)]
    with pytest.raises(InvalidArchive, match=r"truncated|invalid"):
        _read_all(cut)


def test_zstd_cut_inside_the_last_block_header_is_refused() -> None:
    blob = _zstd(DATA)
    for cut in (len(blob) - 1, len(blob) - 2, 5):
        with pytest.raises(InvalidArchive):
            _read_all(blob[:cut])


@pytest.mark.parametrize(
    "head", [b"\x1f\x8b\x08\x00garbage-garbage", b"\x28\xb5\x2f\xfd\xffgarbage-garbage"]
)
def test_garbage_after_magic_is_refused(head: bytes) -> None:
    with pytest.raises(InvalidArchive):
        _read_all(head * 10)


def test_gzip_crc_mismatch_is_refused() -> None:
    blob = bytearray(_gzip(DATA))
    blob[-6] ^= 0xFF  # inside the CRC32 trailer
    with pytest.raises(InvalidArchive):
        _read_all(bytes(blob))


def _isal_gzip(data: bytes) -> bytes:
    from isal import isal_zlib

    c = isal_zlib.compressobj(2, isal_zlib.DEFLATED, 31)
    return bytes(c.compress(data) + c.flush())


@pytest.mark.parametrize("compress", [_isal_gzip, _zstd], ids=["gzip", "zstd"])
def test_bomb_is_decoded_in_bounded_pieces(compress: object) -> None:
    """256 MiB of zeros packs into a few hundred KiB; reads never return more than asked."""
    assert callable(compress)
    blob = compress(bytes(256 << 20))
    assert len(blob) < 2 << 20
    r = decompressing_reader(io.BytesIO(blob))
    total = 0
    biggest = 0
    while part := r.read(1 << 20):
        biggest = max(biggest, len(part))
        total += len(part)
    assert total == 256 << 20
    assert biggest <= 1 << 20


@pytest.mark.parametrize("codec", ["gzip", "zstd", None])
def test_writer_is_deterministic_and_decodable(codec: str | None, tmp_path: Path) -> None:
    outs = []
    for piece in (1 << 20, 4096):  # write pattern must not change the bytes
        buf = io.BytesIO()
        with compressing_writer(buf, codec) as w:  # type: ignore[arg-type]  # parametrized literal
            for i in range(0, len(DATA), piece):
                w.write(DATA[i : i + piece])
        outs.append(buf.getvalue())
    assert outs[0] == outs[1]
    assert _read_all(outs[0]) == DATA
    if codec == "gzip":
        assert outs[0][4:8] == bytes(4)  # header mtime 0
        assert gzip.decompress(outs[0]) == DATA
        f = tmp_path / "x.gz"
        f.write_bytes(outs[0])
        subprocess.run([need("gzip"), "-t", str(f)], check=True)
    if codec == "zstd":
        f = tmp_path / "x.zst"
        f.write_bytes(outs[0])
        got = subprocess.run([need("zstd"), "-dc", str(f)], check=True, capture_output=True).stdout
        assert got == DATA


def test_writer_refuses_isal_level_zero() -> None:
    with pytest.raises(ValueError):
        compressing_writer(io.BytesIO(), "gzip", level=0)
