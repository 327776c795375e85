"""The tar reader on its own: hashing on or off, diff ID of the whole stream."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from gantry.layers import tar
from gantry.layers.compression import Writable
from gantry.layers.create import create
from gantry.oci import mediatypes


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue() + b"\0" * 700  # trailing padding is part of the diff ID


def test_diff_id_is_sha256_of_every_byte_read() -> None:
    data = _tar({"a": b"x" * 3000, "b/c": b"y"})
    reader = tar.TarReader(io.BytesIO(data))
    assert [e.name for e in reader] == [b"a", b"b/c"]
    assert reader.finish() == len(data)
    assert reader.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()


def test_hash_false_reads_the_same_entries_without_a_digest() -> None:
    data = _tar({"a": b"x" * 3000})
    reader = tar.TarReader(io.BytesIO(data), hash=False)
    entries = [(e.name, b"".join(bytes(c) for c in reader.data())) for e in reader]
    assert entries == [(b"a", b"x" * 3000)]
    assert reader.finish() == len(data)
    assert reader.hasher.hexdigest() == hashlib.sha256().hexdigest()  # never fed
    with pytest.raises(ValueError, match="hash=False"):
        _ = reader.diff_id


@pytest.mark.parametrize(
    ("compression", "media_type"),
    [
        (None, mediatypes.OCI_LAYER),
        ("gzip", mediatypes.OCI_LAYER_GZIP),
        ("zstd", mediatypes.OCI_LAYER_ZSTD),
    ],
)
def test_created_layers_carry_the_oci_media_types(
    tmp_path: Path, compression: Writable | None, media_type: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"hello")
    info = create(src, io.BytesIO(), compression=compression)
    assert info.media_type == media_type
