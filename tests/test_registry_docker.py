"""Docker (dockerd 20.10, CLI 28) against ``gantry registry serve`` over real sockets.

The daemon is private (see tests/dockerd.py); images are made in it with
``docker import`` of a busybox root filesystem and ``docker build`` (legacy builder,
COPY only: nothing runs) on top.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dockerd import (  # noqa: F401 - the *_fixture names are fixtures
    Docker,
    build_on,
    docker_fixture,
    dockerd,
    pushed_digest,
    rootfs_tar_fixture,
    strays,
)
from gantry.oci import mediatypes as mt
from gantry.registry.htpasswd import hash_password
from test_distribution_support import distribution
from test_registry_support import free_port, make_oci_layout, registry_process, skopeo

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


def write_token_config(tmp: Path, port: int) -> Path:
    """gantry registry config: bearer tokens from its own /token (ES256), users from
    htpasswd, alice owns alice/*, everyone signed in pulls anything, anonymous pulls public/*."""
    key = ec.generate_private_key(ec.SECP256R1())
    priv, pub = tmp / "token-key.pem", tmp / "token-pub.pem"
    priv.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    htpasswd = tmp / "htpasswd"
    htpasswd.write_text(
        f"alice:{hash_password('alicepw', rounds=4)}\nbob:{hash_password('bobpw', rounds=4)}\n"
    )
    policy = tmp / "policy.yml"
    policy.write_text(
        '- {account: alice, name: "alice/*", actions: [pull, push]}\n'
        '- {account: alice, name: "public/*", actions: [pull, push]}\n'
        '- {account: "*", name: "*", actions: [pull]}\n'
        '- {account: anonymous, name: "public/*", actions: [pull]}\n'
    )
    conf = tmp / "registry.yml"
    conf.write_text(
        json.dumps(
            {
                "version": 0.1,
                "http": {"addr": f"127.0.0.1:{port}"},
                "log": {"accesslog": {"disabled": True}},
                "storage": {"filesystem": {"rootdirectory": str(tmp / "data")}},
                "auth": {
                    "token": {
                        "realm": f"http://127.0.0.1:{port}/token",
                        "service": "gantry-docker-test",
                        "issuer": "gantry-docker-test",
                        "rootcertbundle": str(pub),
                    }
                },
                "token": {
                    "key": str(priv),
                    "issuer": "gantry-docker-test",
                    "service": "gantry-docker-test",
                    "htpasswd": str(htpasswd),
                    "policy": str(policy),
                },
            }
        )
    )
    return conf


DENIED = "denied: requested access to the resource is denied"


def login(docker: Docker, addr: str, user: str, password: str) -> None:
    p = docker.run("login", "-u", user, "--password-stdin", addr, input=password + "\n")
    assert "Login Succeeded" in p.stdout


def test_docker_with_token_auth(docker: Docker, rootfs_tar: Path, tmp_path: Path) -> None:
    port = free_port()
    conf = write_token_config(tmp_path, port)
    with registry_process(tmp_path, "--config", str(conf), port=port) as (addr, _):
        mine, public = f"{addr}/alice/app:1", f"{addr}/public/app:1"
        docker.run("import", str(rootfs_tar), mine)
        docker.run("tag", mine, public)
        image_id = docker.image_id(mine)
        p = docker.run("push", mine, check=False)
        assert p.returncode != 0 and DENIED in p.stderr, p.stderr
        login(docker, addr, "alice", "alicepw")
        try:
            docker.run("push", mine)
            out = docker.run("push", public).stdout
            assert "Mounted from alice/app" in out, out  # a token for two repositories
        finally:
            docker.run("logout", addr)
        # bob may pull alice's image, not push into her namespace
        docker.run("rmi", mine, public)
        login(docker, addr, "bob", "bobpw")
        try:
            docker.run("pull", mine)
            assert docker.image_id(mine) == image_id
            docker.run("tag", mine, f"{addr}/alice/bobs:1")
            p = docker.run("push", f"{addr}/alice/bobs:1", check=False)
            assert p.returncode != 0 and DENIED in p.stderr, p.stderr
        finally:
            docker.run("logout", addr)
        docker.run("rmi", mine, f"{addr}/alice/bobs:1")
        # anonymous: public/* only
        docker.run("pull", public)
        assert docker.image_id(public) == image_id
        p = docker.run("pull", mine, check=False)
        assert p.returncode != 0
        assert f"pull access denied for {addr}/alice/app, repository does not exist" in p.stderr
        assert DENIED in p.stderr
        docker.run("rmi", public)


def test_docker_pulls_index_pushed_by_skopeo(docker: Docker, server: str, tmp_path: Path) -> None:
    """An OCI image index (linux/amd64 inside): docker resolves it to the image."""
    src = tmp_path / "src"
    idigest, blobs = make_oci_layout(src, index=True)
    ref = f"{server}/multi/oci:1"
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{src}:latest", f"docker://{ref}")
    out = docker.run("pull", ref).stdout
    assert f"Digest: {idigest}" in out
    assert docker.image_id(ref) == blobs[0]  # the config's digest
    repo_digests = docker.run("image", "inspect", "-f", "{{json .RepoDigests}}", ref).stdout
    assert json.loads(repo_digests) == [f"{server}/multi/oci@{idigest}"]
    docker.run("rmi", ref)


def pull_errors(docker: Docker, addr: str, digest: str) -> list[str]:
    """What docker says when a pull fails, for a few ways of missing; port made neutral."""
    refs = [
        f"{addr}/err/box:nope",  # unknown tag, known repository
        f"{addr}/nobody/here:1",  # unknown repository
        f"{addr}/err/box@sha256:{'0' * 64}",  # unknown digest
        f"{addr}/err/box@{digest}".replace("err/box", "err/other"),  # digest of another repo
    ]
    said = []
    for ref in refs:
        p = docker.run("pull", ref, check=False)
        assert p.returncode != 0
        said.append(p.stderr.strip().replace(addr, "REGISTRY"))
    return said


def test_docker_pull_errors_read_as_with_distribution(
    docker: Docker, server: str, rootfs_tar: Path, tmp_path: Path
) -> None:
    """Docker shows the registry's error codes and messages: they must be distribution's."""
    said = {}
    with distribution(tmp_path) as dist:
        for kind, addr in (("gantry", server), ("distribution", dist)):
            ref = f"{addr}/err/box:1"
            docker.run("import", str(rootfs_tar), ref)
            digest, _ = pushed_digest(docker.run("push", ref).stdout)
            docker.run("rmi", ref)
            # each import has its own digest: neutral like the port
            said[kind] = [s.replace(digest, "DIGEST") for s in pull_errors(docker, addr, digest)]
    assert said["gantry"] == said["distribution"]
    assert "manifest unknown" in said["gantry"][0]


def interfaces() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_private_dockerd_leaves_the_host_alone_and_nothing_behind(rootfs_tar: Path) -> None:
    """The helper itself: no bridge, no socket or state outside its directory, and
    after an error inside with a container still running, no process (daemons, shim,
    container), mount or directory left."""
    state = [Path("/var/run/docker.sock"), Path("/var/lib/docker"), Path("/run/containerd")]
    before = {p: p.exists() for p in state}
    with pytest.raises(RuntimeError, match="boom"), dockerd() as d:
        env, cli = d
        assert env["DOCKER_HOST"] == f"unix://{d.base}/docker.sock" and cli == d.cli
        base, pids = d.base, d.pids
        assert len(pids) == 2 and all(Path(f"/proc/{pid}").exists() for pid in pids)
        assert int((base / "dockerd.pid").read_text()) == pids[1]
        names = d.run("network", "ls", "--format", "{{.Name}}").stdout.split()
        assert sorted(names) == ["host", "none"]  # --bridge=none: no docker0
        assert "docker0" not in interfaces()
        assert {p: p.exists() for p in state} == before
        info = json.loads(d.run("info", "--format", "{{json .}}").stdout)
        assert info["DockerRootDir"] == str(base / "data")
        assert info["Driver"] == "overlay2"
        d.run("import", str(rootfs_tar), "bb:1")
        cid = d.run(
            "run", "-d", "--network", "none", "--stop-timeout", "1", "bb:1", "sleep", "600"
        ).stdout.strip()
        top = d.run("inspect", "-f", "{{.State.Pid}}", cid).stdout.strip()
        pids = (*pids, int(top))
        raise RuntimeError("boom")
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} left behind"
    assert strays(base) == []
    with open("/proc/self/mountinfo") as f:
        assert str(base) not in f.read()
    assert not base.exists()
