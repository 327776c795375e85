"""Interop with real peers: podman, skopeo and umoci read what gantry saves, and gantry
loads what they write, with the same image IDs. Private podman storage on /dev/shm."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import need
from gantry.archive import import_image
from gantry.store import Store
from test_archive_support import PROJECT, gantry

pytestmark = [pytest.mark.slow, pytest.mark.peers]


def run(*args: str, cwd: Path | None = None) -> str:
    r = subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=300)
    assert r.returncode == 0, f"{' '.join(args)}: {r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="gantry-interop-", dir="/dev/shm"))
    try:
        run(str(PROJECT / "scripts" / "busybox-rootfs.sh"), str(d / "rootfs"))
        yield d
    finally:
        podman_root = d / "podman"
        if podman_root.exists():
            subprocess.run([*_podman(d), "rm", "-af"], capture_output=True, timeout=120)
        shutil.rmtree(d, ignore_errors=True)


def _podman(work: Path) -> list[str]:
    return [
        need("podman"),
        "--root", str(work / "podman" / "root"),
        "--runroot", str(work / "podman" / "run"),
        "--storage-driver", "vfs",
        "--cgroup-manager", "cgroupfs",
        "--events-backend", "file",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def gantry_root(work: Path) -> Path:
    root = work / "gantry"
    with Store(root) as s:
        import_image(s, work / "rootfs", "busybox:latest", changes=['CMD ["sh"]'])
    return root


def test_podman_loads_gantry_archive_and_runs_it(work: Path, gantry_root: Path) -> None:
    archive = work / "g.tar"
    assert gantry(gantry_root, "save", "-o", str(archive), "busybox").returncode == 0
    podman = _podman(work)
    out = run(*podman, "load", "-i", str(archive))
    assert "Loaded image: docker.io/library/busybox:latest" in out
    with Store(gantry_root) as s:
        image_id = s.resolve("busybox").id
    assert (
        run(*podman, "image", "inspect", "--format", "{{.Id}}", "busybox:latest").strip()
        == image_id[7:]
    )
    assert (
        run(*podman, "run", "--rm", "--net=none", "busybox:latest", "echo", "hi from gantry")
        == "hi from gantry\n"
    )


def test_skopeo_reads_both_sides_of_the_archive(work: Path, gantry_root: Path) -> None:
    archive = work / "g2.tar"
    assert gantry(gantry_root, "save", "-o", str(archive), "busybox:latest").returncode == 0
    with Store(gantry_root) as s:
        img = s.resolve("busybox")
        (layer,) = s.layers(img)
    skopeo = need("skopeo")
    oci = json.loads(run(skopeo, "inspect", f"oci-archive:{archive}"))
    assert oci["Digest"] == img.manifest_digest
    docker = json.loads(run(skopeo, "inspect", f"docker-archive:{archive}"))
    assert docker["Layers"] == [layer.diff_id]
    raw = json.loads(run(skopeo, "inspect", "--config", "--raw", f"docker-archive:{archive}"))
    assert raw["config"]["Cmd"] == ["sh"]


def test_archives_written_by_podman_and_skopeo_load_with_the_same_id(work: Path) -> None:
    podman = _podman(work)
    tar_path = work / "rootfs.tar"
    with tarfile.open(tar_path, "w") as t:
        t.add(work / "rootfs", arcname=".")
    run(*podman, "import", "--change", 'CMD ["sh"]', str(tar_path), "podimg:1")
    podman_id = (
        "sha256:" + run(*podman, "image", "inspect", "--format", "{{.Id}}", "podimg:1").strip()
    )
    docker_archive = work / "p-docker.tar"
    oci_archive = work / "p-oci.tar"
    skopeo_archive = work / "s-docker.tar"
    run(*podman, "save", "-o", str(docker_archive), "podimg:1")
    run(*podman, "save", "--format", "oci-archive", "-o", str(oci_archive), "podimg:1")
    run(
        need("skopeo"), "copy", "-q", f"oci-archive:{oci_archive}",
        f"docker-archive:{skopeo_archive}:skopeo/img:2",
    )  # fmt: skip
    for archive, tag in [
        (docker_archive, "localhost/podimg:1"),
        (oci_archive, "localhost/podimg:1"),
        (skopeo_archive, "skopeo/img:2"),
    ]:
        root = work / f"load-{archive.stem}"
        r = gantry(root, "load", "-i", str(archive))
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode() == f"Loaded image: {tag}\n"
        with Store(root) as s:
            assert s.resolve(tag).id == podman_id
            assert s.check() == []


def _tree(root: Path) -> dict[str, tuple[str, int, str | bytes]]:
    out: dict[str, tuple[str, int, str | bytes]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath, name)
            st = p.lstat()
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", 0, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), "")
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), p.read_bytes())
    return out


def test_umoci_unpack_of_the_oci_layout_gives_the_same_rootfs(
    work: Path, gantry_root: Path
) -> None:
    archive = work / "g3.tar"
    assert gantry(gantry_root, "save", "-o", str(archive), "busybox:latest").returncode == 0
    layout = work / "layout"
    layout.mkdir()
    with tarfile.open(archive) as t:
        t.extractall(layout, filter="data")
    bundle = work / "bundle"
    run(need("umoci"), "unpack", "--image", f"{layout}:latest", str(bundle))
    assert _tree(bundle / "rootfs") == _tree(work / "rootfs")
