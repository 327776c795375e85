"""Multi-platform indexes pushed by skopeo and by `podman manifest`, resolved by platform."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.distribution import RegistryClient, RetryPolicy, pull
from gantry.distribution.copy import copy
from gantry.oci import mediatypes as mt
from gantry.oci.descriptor import Descriptor
from gantry.oci.manifest import Index
from gantry.oci.platform import Platform
from gantry.store import Store
from test_distribution_support import RegistryThread, distribution, image_blobs, random_layer, sha

pytestmark = [pytest.mark.slow, pytest.mark.peers]

FAST = RetryPolicy(attempts=6, base=0.01, cap=0.05)
ARCHES = [("amd64", None), ("arm64", "v8"), ("arm", "v7")]


def tool(*args: str) -> str:
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{args[:3]}: {p.stderr}"
    return p.stdout


@pytest.fixture
def images(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """Three single-platform images on gantry's registry, plus an OCI index of them in
    an OCI layout; yields (registry address, {arch: image ID})."""
    with RegistryThread(tmp_path / "registry") as reg:
        c = RegistryClient(reg.addr, retry=FAST)
        ids: dict[str, str] = {}
        descs = []
        for i, (arch, variant) in enumerate(ARCHES):
            layers = [random_layer(30_000, seed=60 + i)]
            config, body, m = image_blobs(layers, arch=arch)
            for blob in [config, *layers]:
                loc, _ = c.start_upload(f"one/{arch}")
                assert loc is not None
                c.finish_upload(f"one/{arch}", loc, sha(blob), blob, len(blob))
            c.put_manifest(f"one/{arch}", "1", body, m.media_type)
            ids[arch] = sha(config)
            for blob in [config, *layers]:  # the index's repository holds them too
                loc, _ = c.start_upload("multi/app")
                assert loc is not None
                c.finish_upload("multi/app", loc, sha(blob), blob, len(blob))
            c.put_manifest("multi/app", sha(body), body, m.media_type)
            descs.append(
                Descriptor(
                    m.media_type, sha(body), len(body), platform=Platform("linux", arch, variant)
                )
            )
        index = Index(manifests=tuple(descs), media_type=mt.OCI_INDEX).to_json()
        c.put_manifest("multi/app", "1", index, mt.OCI_INDEX)
        copy(
            f"{reg.addr}/multi/app:1",
            f"oci:{tmp_path / 'layout'}:1",
            all_platforms=True,
            clients={reg.addr: c},
        )
        yield reg.addr, ids


def check_pulls(root: Path, name: str, ids: dict[str, str]) -> None:
    with Store(root) as store:
        for arch, variant in ARCHES:
            plat = f"linux/{arch}" + (f"/{variant}" if variant else "")
            r = pull(store, name, platform=plat, client=RegistryClient(name.split("/")[0]))
            assert r.image.id == ids[arch], plat
        assert store.check() == []


def test_index_pushed_by_skopeo(tmp_path: Path, images: tuple[str, dict[str, str]]):
    _, ids = images
    with distribution(tmp_path) as addr:
        for fmt in ("oci", "v2s2"):  # an OCI index, and converted to a Docker manifest list
            tool(
                "skopeo",
                "copy",
                "--all",
                "--format",
                fmt,
                "--dest-tls-verify=false",
                f"oci:{tmp_path / 'layout'}:1",
                f"docker://{addr}/sk/{fmt}:1",
            )
            _raw, media = RegistryClient(addr).get_manifest(f"sk/{fmt}", "1")
            assert media == (mt.OCI_INDEX if fmt == "oci" else mt.DOCKER_MANIFEST_LIST)
            check_pulls(tmp_path / f"store-{fmt}", f"{addr}/sk/{fmt}:1", ids)


def test_index_pushed_by_podman_manifest(tmp_path: Path, images: tuple[str, dict[str, str]]):
    reg, ids = images
    root = Path(tempfile.mkdtemp(prefix="pm-", dir="/dev/shm"))
    pod = [
        "podman",
        "--root",
        str(root / "r"),
        "--runroot",
        str(root / "rr"),
        "--storage-driver",
        "vfs",
    ]
    try:
        with distribution(tmp_path) as addr:
            tool(*pod, "manifest", "create", "localhost/multi:1")
            for arch, _ in ARCHES:
                tool(
                    *pod,
                    "manifest",
                    "add",
                    "--tls-verify=false",
                    "localhost/multi:1",
                    f"docker://{reg}/one/{arch}:1",
                )
            tool(
                *pod,
                "manifest",
                "push",
                "--all",
                "--tls-verify=false",
                "localhost/multi:1",
                f"docker://{addr}/pm/multi:1",
            )
            check_pulls(tmp_path / "store", f"{addr}/pm/multi:1", ids)
    finally:
        subprocess.run([*pod, "rmi", "-a", "-f"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
