"""Helpers for the store tests: real layer tars, configs and manifests (no tests here)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gantry import digest
from gantry.content import ContentStore
from gantry.oci import mediatypes as mt
from gantry.store import Image, Store


@dataclass(frozen=True)
class BuiltLayer:
    blob: bytes
    digest: str
    diff_id: str
    size: int  # sum of entry sizes


def layer(files: Mapping[str, bytes], *, whiteouts: Sequence[str] = ()) -> BuiltLayer:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for name in whiteouts:
            info = tarfile.TarInfo(name)
            tar.addfile(info, io.BytesIO(b""))
    tar_bytes = raw.getvalue()
    blob = gzip.compress(tar_bytes, mtime=0)
    return BuiltLayer(
        blob,
        digest.of_bytes(blob),
        digest.of_bytes(tar_bytes),
        sum(len(v) for v in files.values()),
    )


def image_docs(
    layers: Sequence[BuiltLayer],
    *,
    created: str | None = "2024-01-02T03:04:05.123456789Z",
    labels: Mapping[str, str] | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    docker: bool = False,
    salt: str = "",
) -> tuple[bytes, bytes]:
    """(config bytes, manifest bytes)."""
    config: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin", f"SALT={salt}"], "Labels": dict(labels or {})},
        "rootfs": {"type": "layers", "diff_ids": [lay.diff_id for lay in layers]},
        "history": list(history)
        if history is not None
        else [{"created_by": f"layer {i}", "created": created} for i in range(len(layers))],
    }
    if created is not None:
        config["created"] = created
    config_bytes = json.dumps(config, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
        "config": {
            "mediaType": mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG,
            "digest": digest.of_bytes(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": mt.DOCKER_LAYER if docker else mt.OCI_LAYER_GZIP,
                "digest": lay.digest,
                "size": len(lay.blob),
            }
            for lay in layers
        ],
    }
    return config_bytes, json.dumps(manifest).encode()


def put(content: ContentStore, layers: Sequence[BuiltLayer], config: bytes) -> None:
    for lay in layers:
        content.write(lay.blob)
    content.write(config)


def make_image(
    store: Store,
    layers: Sequence[BuiltLayer],
    *,
    tags: Sequence[str] = (),
    parent: Image | str | None = None,
    tag_time: bool = True,
    **kw: Any,
) -> Image:
    config, manifest = image_docs(layers, **kw)
    put(store.content, layers, config)
    return store.add_image(manifest, tags=tags, parent=parent, tag_time=tag_time)
