"""Diff IDs measured while layers download (no second read by Store.add_image)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.digest import Digest
from gantry.distribution import RegistryClient, RetryPolicy, diffid, pull
from gantry.distribution.diffid import LayerScan
from gantry.distribution.push import upload_blob
from gantry.errors import DigestMismatch, ImageNotFound, InvalidArchive
from gantry.oci import Descriptor, Manifest
from gantry.oci import mediatypes as mt
from gantry.store import Store, _layers
from test_distribution_support import RegistryThread, image_blobs, random_layer, sha

FAST = RetryPolicy(attempts=6, base=0.01, cap=0.05)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryThread]:
    with RegistryThread(tmp_path / "registry") as r:
        yield r


def plain_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def feed(scan: LayerScan, data: bytes, step: int = 4099) -> tuple[str, int]:
    for i in range(0, len(data), step):
        scan.write(data[i : i + step])
    return scan.result()


def test_scan_of_gzip_matches_the_store_measure():
    blob = random_layer(2_000_000, seed=3)  # many chunks of the hand-over
    got = feed(LayerScan(), blob)
    assert got == _layers.scan(io.BytesIO(blob))


def test_scan_of_plain_tar_counts_files_not_whiteouts():
    raw = plain_tar({"a": b"x" * 1000, "d/.wh.gone": b"", "b": b"y" * 24})
    diff, size = feed(LayerScan(), raw, step=100)
    assert diff == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert size == 1024


def test_scan_resumes_from_a_prefix_file(tmp_path: Path):
    blob = random_layer(500_000, seed=4)
    part = tmp_path / "ingest"
    part.write_bytes(blob[:123_457] + b"junk after the offset is ignored")
    scan = LayerScan(part, 123_457)
    assert feed(scan, blob[123_457:]) == _layers.scan(io.BytesIO(blob))


def test_scan_of_garbage_fails_without_blocking_the_writer():
    scan = LayerScan()
    # many more chunks than the hand-over holds: a scanner that stopped taking them
    # after its error would leave the writer blocked (the thread would still be alive)
    writer = threading.Thread(
        target=lambda: [scan.write(b"not a tar at all " * 4_000) for _ in range(200)],
        daemon=True,
    )
    writer.start()
    writer.join(30)
    assert not writer.is_alive(), "the writer blocked after the scan failed"
    with pytest.raises(InvalidArchive):
        scan.result()


def test_scan_copies_a_buffer_the_caller_reuses():
    """Chunks are handed over by reference; a bytearray the caller refills must not be."""
    blob = random_layer(1_500_000, seed=5)
    scan = LayerScan()
    buf = bytearray(65_536)
    for i in range(0, len(blob), len(buf)):
        piece = blob[i : i + len(buf)]
        buf[: len(piece)] = piece
        scan.write(memoryview(buf)[: len(piece)])
    assert scan.result() == _layers.scan(io.BytesIO(blob))


def push_raw(
    tmp: Path, addr: str, repo: str, config: bytes, layers: list[bytes], m: Manifest
) -> None:
    """Blobs and manifest straight to the registry (no store checks on the way)."""
    c = RegistryClient(addr, retry=FAST)
    for blob in [config, *layers]:
        p = tmp / "upload"
        p.write_bytes(blob)
        upload_blob(c, repo, Digest(sha(blob)), len(blob), p)
    c.put_manifest(repo, "1", m.to_json(), m.media_type)


def test_pull_measures_layers_in_the_scan_thread_only(
    tmp_path: Path, registry: RegistryThread, monkeypatch: pytest.MonkeyPatch
):
    layers = [random_layer(300_000, seed=i) for i in range(3)]
    config, _, m = image_blobs(layers)
    push_raw(tmp_path, registry.addr, "t/app", config, layers, m)
    threads: list[str] = []
    real = _layers.scan

    def spy(f):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return real(f)

    monkeypatch.setattr(_layers, "scan", spy)  # the store's own reads
    monkeypatch.setattr(diffid, "scan_layer", spy)  # the pull's streaming scan
    with Store(tmp_path / "dst") as store:
        r = pull(store, f"{registry.addr}/t/app:1", client=RegistryClient(registry.addr))
        assert threads == ["layer-scan"] * 3  # add_image read no layer again
        expected = sum(_layers.scan(io.BytesIO(b))[1] for b in layers)
        assert store.image(r.image.id).size == expected
        assert store.check() == []


def test_wrong_diff_id_is_refused_while_streaming_and_nothing_stored(
    tmp_path: Path, registry: RegistryThread
):
    layers = [random_layer(200_000, seed=10), random_layer(200_000, seed=11)]
    config, _, m = image_blobs(layers)
    doc = json.loads(config)
    doc["rootfs"]["diff_ids"][1] = "sha256:" + "0" * 64
    config = json.dumps(doc).encode()
    m = Manifest(
        config=Descriptor.of(config, mt.OCI_CONFIG), layers=m.layers, media_type=m.media_type
    )
    push_raw(tmp_path, registry.addr, "t/bad", config, layers, m)
    with Store(tmp_path / "dst") as store:
        with pytest.raises(DigestMismatch, match="diff ID mismatch"):
            pull(store, f"{registry.addr}/t/bad:1", client=RegistryClient(registry.addr))
        assert not store.content.has(sha(layers[1]))
        with pytest.raises(ImageNotFound):
            store.resolve(f"{registry.addr}/t/bad:1")


def test_new_tag_of_a_known_image_is_downloaded_newer_as_docker_says(
    tmp_path: Path, registry: RegistryThread
):
    layers = [random_layer(20_000, seed=30)]
    config, _, m = image_blobs(layers)
    push_raw(tmp_path, registry.addr, "t/one", config, layers, m)
    push_raw(tmp_path, registry.addr, "t/two", config, layers, m)
    c = RegistryClient(registry.addr, retry=FAST)
    with Store(tmp_path / "dst") as store:
        assert pull(store, f"{registry.addr}/t/one:1", client=c).downloaded
        second = pull(store, f"{registry.addr}/t/two:1", client=c)
        assert second.downloaded  # no bytes moved, but the tag is new
        assert not pull(store, f"{registry.addr}/t/two:1", client=c).downloaded
        by_digest = f"{registry.addr}/t/two@{sha(m.to_json())}"
        assert not pull(store, by_digest, client=c).downloaded  # recorded by the tag pull
