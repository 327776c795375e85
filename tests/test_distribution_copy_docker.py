"""image copy with docker's own archives: `docker save` -> gantry -> registry, and
registry -> gantry docker-archive -> `docker load`, same image IDs."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockerd import Docker, docker_fixture, rootfs_tar_fixture  # noqa: F401 - fixtures
from gantry.distribution import RegistryClient, pull
from gantry.distribution.copy import copy
from gantry.store import Store
from test_distribution_support import RegistryThread

pytestmark = [pytest.mark.slow, pytest.mark.peers]


def test_docker_save_and_load_through_image_copy(
    docker: Docker, rootfs_tar: Path, tmp_path: Path
) -> None:
    ref = "gantry-copy-test/box:1"
    docker.run("import", "-c", "CMD /bin/sh", str(rootfs_tar), ref)
    want = docker.image_id(ref)
    saved = tmp_path / "saved.tar"
    docker.run("save", "-o", str(saved), ref)
    try:
        with RegistryThread(tmp_path / "registry") as reg:
            cs = {reg.addr: RegistryClient(reg.addr)}
            # docker's archive (layers as plain tars) -> a registry -> gantry pull
            copy(f"docker-archive:{saved}:{ref}", f"{reg.addr}/d/box:1", clients=cs)
            with Store(tmp_path / "store") as store:
                got = pull(store, f"{reg.addr}/d/box:1", client=cs[reg.addr])
                assert got.image.id == want
                assert store.check() == []
            # the registry -> gantry's archive (compressed layers, OCI index) -> docker load
            out = tmp_path / "out.tar"
            copy(f"{reg.addr}/d/box:1", f"docker-archive:{out}:again/box:2", clients=cs)
            docker.run("rmi", ref)
            loaded = docker.run("load", "-i", str(out)).stdout
            assert "again/box:2" in loaded
            assert docker.image_id("again/box:2") == want
            files = docker.run("run", "--rm", "again/box:2", "ls", "/bin/busybox").stdout
            assert files.strip() == "/bin/busybox"
    finally:
        docker.run("rmi", "-f", ref, "again/box:2", check=False)
