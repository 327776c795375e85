"""Docker (dockerd 20.10, CLI 28) against ``gantry registry serve`` over real sockets.

The daemon is private (see tests/dockerd.py); images are made in it with
``docker import`` of a busybox root filesystem and ``docker build`` (legacy builder,
COPY only: nothing runs) on top.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockerd import (  # noqa: F401 - the *_fixture names are fixtures
    Docker,
    build_on,
    docker_fixture,
    pushed_digest,
    rootfs_tar_fixture,
)
from gantry.oci import mediatypes as mt
from gantry.registry.htpasswd import hash_password
from test_registry_support import registry_process

pytestmark = [pytest.mark.slow, pytest.mark.peers]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with registry_process(tmp_path, "--data", str(tmp_path / "data"), "--quiet") as (addr, _):
        yield addr


def get_manifest(addr: str, name: str, ref: str, auth: str | None = None) -> tuple[str, bytes]:
    req = urllib.request.Request(
        f"http://{addr}/v2/{name}/manifests/{ref}",
        headers={"Accept": f"{mt.DOCKER_MANIFEST}, {mt.OCI_MANIFEST}"},
    )
    if auth:
        req.add_header("Authorization", auth)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.headers["Content-Type"], r.read()


def test_docker_push_pull_preserves_digests(
    docker: Docker, server: str, rootfs_tar: Path, tmp_path: Path
) -> None:
    base = f"{server}/bb/box:1"
    docker.run("import", str(rootfs_tar), base)
    app = f"{server}/bb/app:2"
    build_on(docker, base, app, tmp_path, 6 << 20)  # a layer bigger than one chunk
    image_id = docker.image_id(app)

    out = docker.run("push", app).stdout
    digest, size = pushed_digest(out)
    # what the registry serves is byte for byte what docker pushed
    ctype, body = get_manifest(server, "bb/app", "2")
    assert ctype == mt.DOCKER_MANIFEST
    assert "sha256:" + hashlib.sha256(body).hexdigest() == digest and len(body) == size
    doc = json.loads(body)
    assert doc["config"]["digest"] == image_id and len(doc["layers"]) == 2

    # the base goes to another repository: docker mounts the shared layer from bb/app
    out = docker.run("push", base).stdout
    assert "Mounted from bb/app" in out, out
    base_digest, _ = pushed_digest(out)
    assert get_manifest(server, "bb/box", base_digest)[1]

    docker.run("rmi", app, base)
    assert docker.run("images", "-q").stdout.strip() == ""
    out = docker.run("pull", app).stdout
    assert f"Digest: {digest}" in out and "Downloaded newer image" in out
    assert docker.image_id(app) == image_id
    repo_digests = docker.run("image", "inspect", "-f", "{{json .RepoDigests}}", app).stdout
    assert json.loads(repo_digests) == [f"{server}/bb/app@{digest}"]

    # by digest, after the layers are gone again
    docker.run("rmi", app)
    docker.run("pull", f"{server}/bb/app@{digest}")
    assert docker.image_id(f"{server}/bb/app@{digest}") == image_id
    # pulling again downloads nothing
    out = docker.run("pull", app).stdout
    assert "Image is up to date" in out or "Downloaded newer image" in out
    docker.run("rmi", "-f", image_id)


def test_docker_login_htpasswd(docker: Docker, rootfs_tar: Path, tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{hash_password('s3cret', rounds=4)}\n")
    with registry_process(
        tmp_path, "--data", str(tmp_path / "data"), "--htpasswd", str(htpasswd), "--quiet"
    ) as (addr, _):
        ref = f"{addr}/priv/box:1"
        docker.run("import", str(rootfs_tar), ref)
        image_id = docker.image_id(ref)
        # anonymous: refused
        p = docker.run("push", ref, check=False)
        assert p.returncode != 0 and "no basic auth credentials" in p.stderr, p.stderr
        # a wrong password does not log in, nor is it stored
        p = docker.run(
            "login", "-u", "alice", "--password-stdin", addr, input="nope\n", check=False
        )
        assert p.returncode != 0 and "unauthorized" in p.stderr.lower(), p.stderr
        config = Path(docker.env["DOCKER_CONFIG"]) / "config.json"
        assert not config.exists() or addr not in config.read_text()
        p = docker.run("login", "-u", "alice", "--password-stdin", addr, input="s3cret\n")
        assert "Login Succeeded" in p.stdout
        try:
            digest, _ = pushed_digest(docker.run("push", ref).stdout)
            docker.run("rmi", ref)
            docker.run("pull", ref)
            assert docker.image_id(ref) == image_id
            basic = "Basic " + base64.b64encode(b"alice:s3cret").decode()
            _, body = get_manifest(addr, "priv/box", "1", basic)
            assert "sha256:" + hashlib.sha256(body).hexdigest() == digest
        finally:
            docker.run("logout", addr)
        assert addr not in config.read_text()
        docker.run("rmi", ref)
        p = docker.run("pull", ref, check=False)
        assert p.returncode != 0 and "no basic auth credentials" in p.stderr, p.stderr
