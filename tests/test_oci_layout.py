"""gantry.oci.layout: the conformance OCI layouts load and every blob checks out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gantry.errors import BlobNotFound, DigestMismatch, InvalidArchive, InvalidManifest
from gantry.oci import Descriptor, Index, Manifest, Platform, mediatypes, parse_config, read_layout
from gantry.oci.layout import layout_header


def _walk(layout_dir: Path) -> list[tuple[str, Manifest]]:
    """Every image manifest reachable from index.json, with its config verified."""
    layout = read_layout(layout_dir)
    found: list[tuple[str, Manifest]] = []
    todo = list(layout.index.manifests)
    while todo:
        d = todo.pop(0)
        data = layout.read_index_blob(d)
        if mediatypes.is_index(d.media_type):
            todo.extend(Index.parse(data, d.media_type).manifests)
            continue
        m = Manifest.parse(data, d.media_type)
        config = parse_config(layout.read_blob(m.config))
        assert len(config.rootfs.diff_ids) == len(m.layers)
        for layer in m.layers:
            assert layout.has_blob(layer.digest)
            assert layout.blob_path(layer.digest).stat().st_size == layer.size
            layout.read_blob(layer)  # small here; verifies size and digest
        found.append((str(config.platform.normalized()), m))
    return found


def test_ocilayout1_single_image(conformance: Path) -> None:
    root = conformance / "oci-layouts" / "ocilayout1"
    layout = read_layout(root)
    assert layout.version == "1.0.0"
    assert list(layout.refs()) == ["latest"]
    images = _walk(root)
    assert [p for p, _ in images] == ["linux/arm64"]


def test_ocilayout2_multi_arch_index(conformance: Path) -> None:
    root = conformance / "oci-layouts" / "ocilayout2"
    layout = read_layout(root)
    entry = layout.refs()["latest"]
    assert entry.media_type == mediatypes.OCI_INDEX
    idx = Index.parse(layout.read_index_blob(entry))
    assert [str(p) for p in idx.platforms()] == ["linux/amd64", "linux/arm64"]
    chosen = idx.select(Platform.parse("linux/arm64/v8"))
    assert chosen is not None
    assert sorted(p for p, _ in _walk(root)) == ["linux/amd64", "linux/arm64"]
    # index.json and the index blob re-serialize to the very same bytes
    assert idx.to_json() == layout.read_index_blob(entry)


@pytest.fixture
def layout_copy(conformance: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "layout"
    shutil.copytree(conformance / "oci-layouts" / "ocilayout1", dst)
    return dst


def test_missing_or_bad_header(layout_copy: Path) -> None:
    (layout_copy / "oci-layout").unlink()
    with pytest.raises(InvalidArchive, match="no oci-layout"):
        read_layout(layout_copy)
    (layout_copy / "oci-layout").write_text('{"imageLayoutVersion":"2.0.0"}')
    with pytest.raises(InvalidArchive, match="unsupported OCI image layout version"):
        read_layout(layout_copy)
    (layout_copy / "oci-layout").write_text('{"imageLayoutVersion":1.0}')
    with pytest.raises(InvalidArchive, match="expected a string"):
        read_layout(layout_copy)
    (layout_copy / "oci-layout").write_bytes(layout_header())
    read_layout(layout_copy)


def test_bad_index(layout_copy: Path, tmp_path: Path) -> None:
    index = layout_copy / "index.json"
    index.write_text('{"schemaVersion":2,"manifests":[{"mediaType":"x"}]}')
    with pytest.raises(InvalidArchive, match=r"index\.json"):
        read_layout(layout_copy)
    index.unlink()
    with pytest.raises(InvalidArchive, match=r"no index\.json"):
        read_layout(layout_copy)
    with pytest.raises(InvalidArchive, match="not a directory"):
        read_layout(tmp_path / "nowhere")


def test_blob_checks(layout_copy: Path) -> None:
    layout = read_layout(layout_copy)
    entry = layout.index.manifests[0]
    path = layout.blob_path(entry.digest)
    good = path.read_bytes()
    path.write_bytes(good.replace(b"schemaVersion", b"schemaVersiom"))
    with pytest.raises(DigestMismatch):
        layout.read_blob(entry)
    path.write_bytes(good + b" ")
    with pytest.raises(DigestMismatch, match="wrong size"):
        layout.read_blob(entry)
    path.unlink()
    with pytest.raises(BlobNotFound):
        layout.read_blob(entry)


def test_blob_symlink_out_of_layout_refused(layout_copy: Path, tmp_path: Path) -> None:
    layout = read_layout(layout_copy)
    entry = layout.index.manifests[0]
    path = layout.blob_path(entry.digest)
    outside = tmp_path / "outside"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)
    with pytest.raises(InvalidArchive, match="outside"):
        layout.read_blob(entry)


def test_oversized_manifest_descriptor_refused_before_reading(layout_copy: Path) -> None:
    layout = read_layout(layout_copy)
    entry = layout.index.manifests[0]
    big = json.loads(json.dumps(entry.to_dict()))
    big["size"] = 5 * 1024 * 1024
    with pytest.raises(InvalidManifest, match="too large"):
        layout.read_index_blob(Descriptor.from_dict(big))
