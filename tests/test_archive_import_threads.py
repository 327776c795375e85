"""``import`` compresses and writes on a second thread: same bytes, errors still surface."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from gantry.archive import import_image
from gantry.archive.layer import spare_core
from gantry.digest import CHUNK
from gantry.errors import UnsafeArchive
from gantry.layers.compression import CompressingWriter
from gantry.store import Store
from test_archive_support import entry, make_tar

pytestmark = pytest.mark.skipif(not spare_core(), reason="one CPU: the threaded path is not taken")


def _rootfs() -> bytes:
    """Several CHUNKs of mixed data, so the second thread gets many pieces to order."""
    text = b"".join(b"line %d of a text file\n" % i for i in range(200_000))
    return make_tar(
        [
            entry("etc/", type=tarfile.DIRTYPE, mode=0o755),
            entry("etc/text", text),
            entry("big", os.urandom(3 * CHUNK + 4321)),
            entry("small", b"x"),
        ]
    )


def test_threaded_import_stores_the_bytes_of_one_thread(tmp_path: Path) -> None:
    data = _rootfs()
    reference = io.BytesIO()
    gz = CompressingWriter(reference, "gzip")
    gz.write(data)
    gz.close()
    want = "sha256:" + hashlib.sha256(reference.getvalue()).hexdigest()
    with Store(tmp_path / "root") as s:
        img = import_image(s, io.BytesIO(data), "t:1")
        (layer,) = s.layers(img)
        assert layer.digest == want
        assert s.content.path(layer.digest).read_bytes() == reference.getvalue()
        assert s.check() == []


def test_an_unsafe_entry_after_big_data_is_still_the_error(tmp_path: Path) -> None:
    data = make_tar(
        [
            entry("big", os.urandom(2 * CHUNK)),
            entry("link", type=tarfile.SYMTYPE, linkname="/etc"),
            entry("link/passwd", b"root::0:0::/:/bin/sh\n"),
        ]
    )
    with Store(tmp_path / "root") as s:
        with pytest.raises(UnsafeArchive, match="is a symlink"):
            import_image(s, io.BytesIO(data), "t:1")
        assert s.images() == []
