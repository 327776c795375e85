"""``load`` writes big blobs on a second thread: same result, errors still surface."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
from pathlib import Path

import pytest

from gantry.archive import import_image, load, save
from gantry.archive.layer import THREADED_MIN, BackgroundSink, scan
from gantry.errors import DigestMismatch
from gantry.store import Store
from test_archive_support import entry, make_tar


def _big_rootfs() -> bytes:
    return make_tar([entry("big", os.urandom(THREADED_MIN + 12345)), entry("small", b"x")])


def a_blob(root: Path, digest: str) -> bytes:
    return (root / "content" / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()


def test_big_gzip_layers_round_trip(tmp_path: Path) -> None:
    with Store(tmp_path / "a") as a:
        img = import_image(a, io.BytesIO(_big_rootfs()), "big:1")
        buf = io.BytesIO()
        save(a, ["big:1"], buf)
        (layer,) = a.layers(img)
        assert layer.size >= THREADED_MIN  # the threaded path is the one taken
    with Store(tmp_path / "b") as b:
        (loaded,) = load(b, io.BytesIO(buf.getvalue()))
        assert (loaded.image.id, loaded.tags) == (img.id, ("big:1",))
        assert b.content.open(layer.digest).read() == a_blob(tmp_path / "a", layer.digest)
        assert b.check() == []


def test_big_uncompressed_layer_uses_the_written_digest_as_diff_id(tmp_path: Path) -> None:
    layer = _big_rootfs()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": ["plain:1"], "Layers": ["l/layer.tar"]}]
    archive = make_tar(
        [
            entry(config_name, config),
            entry("l/layer.tar", layer),
            entry("manifest.json", json.dumps(manifest).encode()),
        ]
    )
    with Store(tmp_path / "s") as s:
        (loaded,) = load(s, io.BytesIO(archive))
        assert s.config(loaded.image).diff_ids == (diff_id,)
        assert loaded.tags == ("plain:1",)
        # a wrong diff ID in the config is still caught on this path
    bad = json.loads(config)
    bad["rootfs"]["diff_ids"] = ["sha256:" + "1" * 64]
    bad_raw = json.dumps(bad).encode()
    bad_name = hashlib.sha256(bad_raw).hexdigest() + ".json"
    manifest[0]["Config"] = bad_name
    archive = make_tar(
        [
            entry(bad_name, bad_raw),
            entry("l/layer.tar", layer),
            entry("manifest.json", json.dumps(manifest).encode()),
        ]
    )
    with Store(tmp_path / "t") as t, pytest.raises(DigestMismatch, match="invalid diffID"):
        load(t, io.BytesIO(archive))


def test_big_blob_whose_name_lies_is_refused(tmp_path: Path) -> None:
    layer = _big_rootfs()
    wrong = "blobs/sha256/" + "2" * 64
    archive = make_tar(
        [entry(wrong, layer), entry("index.json", b'{"schemaVersion":2,"manifests":[]}')]
    )
    with Store(tmp_path / "s") as s, pytest.raises(DigestMismatch, match="digest mismatch"):
        load(s, io.BytesIO(archive))


def test_background_sink_reports_the_writers_error_and_stops() -> None:
    written: list[bytes] = []

    def write(data: bytes) -> None:
        if len(written) == 2:
            raise DigestMismatch("size mismatch for blob: more than the expected 2 bytes")
        written.append(data)

    sink = BackgroundSink(write)
    with pytest.raises(DigestMismatch, match="size mismatch"):
        for i in range(100):  # more than the queue holds: the producer must not hang
            sink(b"%d" % i)
        sink.close()
    with pytest.raises(DigestMismatch):
        sink.close()
    assert written == [b"0", b"1"]
    assert not any(t.name == "gantry-layer-worker" for t in threading.enumerate())


def test_background_sink_keeps_order() -> None:
    got: list[bytes] = []
    sink = BackgroundSink(got.append)
    chunks = [os.urandom(1000) for _ in range(50)]
    for c in chunks:
        sink(c)
    sink.close()
    sink(b"late")  # after close: written at once, in order
    assert got == [*chunks, b"late"]


def test_tarfile_reads_what_load_wrote(tmp_path: Path) -> None:
    """The big blob is complete and valid after a threaded load (tarfile agrees)."""
    with Store(tmp_path / "a") as a:
        img = import_image(a, io.BytesIO(_big_rootfs()), "big:1")
        buf = io.BytesIO()
        save(a, ["big:1"], buf)
    with Store(tmp_path / "b") as b:
        (loaded,) = load(b, io.BytesIO(buf.getvalue()))
        (layer,) = b.layers(loaded.image)
        with b.content.open(layer.digest) as f, tarfile.open(fileobj=f, mode="r:gz") as t:
            assert sorted(t.getnames()) == ["big", "small"]
    assert loaded.image.id == img.id


@pytest.mark.parametrize("codec", ["gzip", "zstd", None])
def test_threaded_scan_gives_the_same_diff_id(codec: str | None) -> None:
    import gzip as gz

    import zstandard

    plain = _big_rootfs()
    data = {
        "gzip": lambda b: gz.compress(b, 1),
        "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
        None: lambda b: b,
    }[codec](plain)
    one = scan(io.BytesIO(data))
    two = scan(io.BytesIO(data), threaded=True)
    assert one == two
    assert two.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()


def test_threaded_scan_refusal_leaves_no_thread() -> None:
    from gantry.errors import UnsafeArchive

    evil = make_tar([entry("big", os.urandom(THREADED_MIN)), entry("../escape", b"x")])
    import gzip as gz

    with pytest.raises(UnsafeArchive):
        scan(io.BytesIO(gz.compress(evil, 1)), threaded=True)
    assert not any(t.name == "gantry-layer-worker" for t in threading.enumerate())
