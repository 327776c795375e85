"""Shared helpers for the build tests: a busybox base image made through the store API.

``gantry import`` is not there yet, so the base image is assembled here the way an
import would: a busybox root filesystem (scripts/busybox-rootfs.sh), one gzip layer
from gantry.layers, an OCI config and manifest, ``Store.add_image``.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gantry.oci import (
    ContainerConfig,
    Descriptor,
    History,
    ImageConfig,
    Manifest,
    RootFS,
    mediatypes,
)
from gantry.store import Image, Store

PROJECT = Path(__file__).resolve().parent.parent
_LAYER: tuple[bytes, str] | None = None


def busybox_layer(tmp: Path) -> tuple[bytes, str]:
    """(gzip layer bytes, diff ID) of a busybox rootfs, built once per test session."""
    global _LAYER
    if _LAYER is None:
        from gantry.layers.create import create

        rootfs = tmp / "busybox-rootfs"
        subprocess.run(
            [str(PROJECT / "scripts" / "busybox-rootfs.sh"), str(rootfs)],
            check=True,
            capture_output=True,
        )
        buf = io.BytesIO()
        info = create(rootfs, buf, source_date_epoch=0)
        _LAYER = (buf.getvalue(), str(info.diff_id))
    return _LAYER


def add_busybox(store: Store, tmp: Path, tag: str = "busybox:latest") -> Image:
    data, diff_id = busybox_layer(tmp)
    layer_digest = store.content.write(data)
    config = ImageConfig(
        architecture="amd64",
        os="linux",
        rootfs=RootFS(diff_ids=(diff_id,)),
        config=ContainerConfig(
            env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
            cmd=("sh",),
        ),
        created="2024-01-01T00:00:00Z",
        history=(
            History(
                created="2024-01-01T00:00:00Z",
                created_by="/bin/sh -c #(nop) ADD file:busybox in / ",
            ),
            History(
                created="2024-01-01T00:00:00Z",
                created_by='/bin/sh -c #(nop)  CMD ["sh"]',
                empty_layer=True,
            ),
        ),
    )
    raw = config.to_json()
    cd = store.content.write(raw)
    manifest = Manifest(
        config=Descriptor(mediatypes.OCI_CONFIG, cd, len(raw)),
        layers=(Descriptor(mediatypes.OCI_LAYER_GZIP, layer_digest, len(data)),),
    )
    return store.add_image(manifest.to_json(), tags=[tag])


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the build tests need root (overlay mounts, runc)")


def gantry(root: Path, *args: str, cwd: Path | None = None, input: bytes | None = None):  # type: ignore[no-untyped-def]
    """Run the real CLI in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "gantry", "--root", str(root), *args],
        capture_output=True,
        cwd=cwd,
        input=input,
        timeout=300,
    )
