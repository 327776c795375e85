"""gantry's registry client and Docker (dockerd 20.10, CLI 28) exchange images.

Through both Debian's distribution and gantry's own registry: what ``gantry push``
uploads, ``docker pull`` stores under the same image ID (and the same files); what
``docker push`` uploads, ``gantry pull`` stores under the same image ID. Both sides
are driven as their users drive them, through their command lines.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
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
from test_distribution_support import RegistryThread, distribution

pytestmark = [pytest.mark.slow, pytest.mark.peers]


@pytest.fixture(params=["distribution", "gantry"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """host:port of a fresh registry: Debian's docker-registry or gantry's."""
    if request.param == "distribution":
        with distribution(tmp_path) as addr:
            yield addr
    else:
        with RegistryThread(tmp_path / "reg") as reg:
            yield reg.addr


def gantry(root: Path, *args: str) -> str:
    p = subprocess.run(
        [sys.executable, "-m", "gantry", "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, f"gantry {' '.join(args)} exited {p.returncode}:\n{p.stderr}"
    return p.stdout


def status_line(out: str) -> str:
    m = re.search(r"(?m)^Status: (.*?) for ", out)
    assert m, out
    return m.group(1)


def test_docker_pulls_what_gantry_pushed(
    docker: Docker, registry: str, rootfs_tar: Path, tmp_path: Path
) -> None:
    root = tmp_path / "gantry"
    ref = f"{registry}/g/box:1"
    gantry(root, "import", "-c", "CMD /bin/sh", str(rootfs_tar), ref)
    image_id = gantry(root, "inspect", "-f", "{{.Id}}", ref).strip()
    digest, _ = pushed_digest(gantry(root, "push", ref))

    out = docker.run("pull", ref).stdout
    assert f"Digest: {digest}" in out
    assert docker.image_id(ref) == image_id
    assert json.loads(docker.run("inspect", "-f", "{{json .RepoDigests}}", ref).stdout) == [
        f"{registry}/g/box@{digest}"
    ]
    layers = "{{json .RootFS.Layers}}"
    assert json.loads(docker.run("inspect", "-f", layers, ref).stdout) == json.loads(
        gantry(root, "inspect", "-f", layers, ref)
    )
    assert docker.run("inspect", "-f", "{{json .Config.Cmd}}", ref).stdout.strip() == (
        '["/bin/sh","-c","/bin/sh"]'
    )
    # docker sees the very files that went in
    with tarfile.open(rootfs_tar) as tf:
        busybox = tf.extractfile("./bin/busybox")
        assert busybox is not None
        want = busybox.read()
    files = exported_tree(docker, ref)
    assert files["bin/busybox"] == (tarfile.REGTYPE, 0o755, 0, 0, want)
    assert files["bin/sh"] == (tarfile.SYMTYPE, 0o777, 0, 0, "/bin/busybox")
    docker.run("rmi", ref)


def test_gantry_pulls_what_docker_pushed(
    docker: Docker, registry: str, rootfs_tar: Path, tmp_path: Path
) -> None:
    base = f"{registry}/d/base:1"
    ref = f"{registry}/d/app:1"
    docker.run("import", str(rootfs_tar), base)
    build_on(docker, base, ref, tmp_path, 3 << 20)
    image_id = docker.image_id(ref)
    digest, _ = pushed_digest(docker.run("push", ref).stdout)

    root = tmp_path / "gantry"
    out = gantry(root, "pull", ref)
    assert f"Digest: {digest}" in out and status_line(out) == "Downloaded newer image"
    assert gantry(root, "inspect", "-f", "{{.Id}}", ref).strip() == image_id
    assert json.loads(gantry(root, "inspect", "-f", "{{json .RepoDigests}}", ref)) == [
        f"{registry}/d/app@{digest}"
    ]
    layers = "{{json .RootFS.Layers}}"
    assert json.loads(gantry(root, "inspect", "-f", layers, ref)) == json.loads(
        docker.run("inspect", "-f", layers, ref).stdout
    )
    # the same pull again: both say it is up to date
    assert status_line(gantry(root, "pull", ref)) == "Image is up to date"
    assert status_line(docker.run("pull", ref).stdout) == "Image is up to date"
    docker.run("rmi", ref, base)


def test_pull_of_new_tag_for_known_image_says_what_docker_says(
    docker: Docker, registry: str, rootfs_tar: Path, tmp_path: Path
) -> None:
    one, two = f"{registry}/t/one:1", f"{registry}/t/two:1"
    docker.run("import", str(rootfs_tar), one)
    docker.run("tag", one, two)
    docker.run("push", one)
    docker.run("push", two)
    docker.run("rmi", two)
    want = status_line(docker.run("pull", two).stdout)
    assert want == "Downloaded newer image"
    root = tmp_path / "gantry"
    gantry(root, "pull", one)
    got = status_line(gantry(root, "pull", two))
    docker.run("rmi", one, two)
    assert got == want


DOCKERFILE = """\
FROM bb:1
COPY a.txt /data/a.txt
RUN rm /etc/group && rm -rf /home /var/tmp && mkdir -p /var/tmp /x/y \\
 && echo hi > /x/y/z && ln /x/y/z /x/y/hard && ln -s /data/a.txt /link \\
 && chmod 0640 /data/a.txt && chown 1:1 /x/y/z && touch /var/tmp/new \\
 && mkdir -p /deep/$(printf 'd%.0s' $(seq 1 60))/$(printf 'e%.0s' $(seq 1 60)) \\
 && echo long > /deep/$(printf 'd%.0s' $(seq 1 60))/$(printf 'e%.0s' $(seq 1 60))/f
COPY a.txt /x/a2.txt
"""


def exported_tree(docker: Docker, ref: str) -> dict[str, tuple[object, ...]]:
    """Every entry of ``ref``'s root filesystem as docker exports it: type, mode, owner,
    and content or link target (times left out)."""
    cid = docker.run("create", ref, "/bin/sh").stdout.strip()
    try:
        p = subprocess.run(
            [docker.cli, "export", cid], env=docker.env, capture_output=True, timeout=120
        )
        assert p.returncode == 0, p.stderr.decode()
    finally:
        docker.run("rm", cid)
    tree: dict[str, tuple[object, ...]] = {}
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tf:
        for m in tf:
            f = tf.extractfile(m) if m.isreg() else None
            body = f.read() if f is not None else m.linkname
            tree[m.name.rstrip("/")] = (m.type, m.mode & 0o7777, m.uid, m.gid, body)
    return tree


def test_docker_sees_gantry_build_as_its_own_build(
    docker: Docker, rootfs_tar: Path, tmp_path: Path
) -> None:
    """The same Dockerfile (deletions, a replaced directory, hard and symbolic links,
    modes, owners, a path over 100 bytes) built by gantry and pushed, and built by
    docker: docker pulls gantry's image and finds the same filesystem as its own."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("hello\n")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    docker.run("import", str(rootfs_tar), "bb:1")
    p = subprocess.run(
        [docker.cli, "build", "--network", "none", "-q", "-t", "docker-built:1", str(ctx)],
        env={**docker.env, "DOCKER_BUILDKIT": "0"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    want = exported_tree(docker, "docker-built:1")
    assert "etc/group" not in want and "home" not in want and "var/tmp/new" in want
    # a hard link pair: the first in the walk carries the data, the other links to it
    assert want["x/y/hard"] == (tarfile.REGTYPE, 0o644, 1, 1, b"hi\n")
    assert want["x/y/z"] == (tarfile.LNKTYPE, 0o644, 1, 1, "x/y/hard")
    assert want["link"][0] == tarfile.SYMTYPE and want["data/a.txt"][1] == 0o640
    assert any(len(k) > 120 for k in want)

    root = tmp_path / "gantry"
    with RegistryThread(tmp_path / "reg") as reg:
        ref = f"{reg.addr}/g/built:1"
        gantry(root, "import", str(rootfs_tar), "bb:1")
        gantry(root, "build", "-q", "-t", ref, str(ctx))
        gantry(root, "push", ref)
        docker.run("pull", ref)
    got = exported_tree(docker, ref)
    docker.run("rmi", ref, "docker-built:1", "bb:1")
    assert sorted(got) == sorted(want)
    assert {k: v for k, v in got.items() if v != want[k]} == {}
