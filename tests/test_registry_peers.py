"""Real clients against ``gantry registry serve`` over real sockets: skopeo and podman."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.oci import mediatypes as mt
from gantry.registry.htpasswd import hash_password
from test_registry_support import layer_tar, make_oci_layout, registry_process, sha, skopeo

pytestmark = [pytest.mark.slow, pytest.mark.peers]


@pytest.fixture(scope="module")
def need_peers() -> None:
    for tool in ("skopeo", "podman"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed; run `make setup`")


@pytest.fixture
def server(tmp_path: Path, need_peers: None) -> Iterator[str]:
    with registry_process(tmp_path, "--data", str(tmp_path / "data")) as (addr, _):
        yield addr


def raw_manifest(ref: str, *creds: str) -> bytes:
    p = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", *creds, f"docker://{ref}"],
        capture_output=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


def layout_blobs(root: Path) -> set[str]:
    return {f"sha256:{p.name}" for p in (root / "blobs" / "sha256").iterdir()}


def test_skopeo_oci_roundtrip_preserves_digests(tmp_path: Path, server: str) -> None:
    src = tmp_path / "src"
    mdigest, blobs = make_oci_layout(src)
    skopeo("copy", "--dest-tls-verify=false", f"oci:{src}:latest", f"docker://{server}/t/oci:v1")
    raw = raw_manifest(f"{server}/t/oci:v1")
    assert sha(raw) == mdigest
    assert json.loads(raw)["mediaType"] == mt.OCI_MANIFEST
    back = tmp_path / "back"
    skopeo("copy", "--src-tls-verify=false", f"docker://{server}/t/oci:v1", f"oci:{back}:v1")
    assert set(blobs) | {mdigest} <= layout_blobs(back)
    # by digest too
    back2 = tmp_path / "back2"
    skopeo("copy", "--src-tls-verify=false", f"docker://{server}/t/oci@{mdigest}", f"oci:{back2}:x")
    assert mdigest in layout_blobs(back2)
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{server}/t/oci").stdout)
    assert tags["Tags"] == ["v1"]


def test_skopeo_docker_schema2_and_multiarch_index(tmp_path: Path, server: str) -> None:
    src = tmp_path / "src"
    _, _blobs = make_oci_layout(src)
    skopeo(
        "copy",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        f"oci:{src}:latest",
        f"docker://{server}/t/docker:v1",
    )
    raw = raw_manifest(f"{server}/t/docker:v1")
    doc = json.loads(raw)
    assert doc["mediaType"] == mt.DOCKER_MANIFEST
    assert doc["config"]["mediaType"] == mt.DOCKER_CONFIG
    # what comes back is byte-identical to what was pushed
    back = tmp_path / "back"
    skopeo("copy", "--src-tls-verify=false", f"docker://{server}/t/docker:v1", f"dir:{back}")
    assert (back / "manifest.json").read_bytes() == raw
    for layer in doc["layers"]:
        data = (back / layer["digest"].split(":")[1]).read_bytes()
        assert sha(data) == layer["digest"]

    isrc = tmp_path / "isrc"
    idigest, _ = make_oci_layout(isrc, index=True)
    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        f"oci:{isrc}:latest",
        f"docker://{server}/t/multi:v1",
    )
    iraw = raw_manifest(f"{server}/t/multi:v1")
    assert sha(iraw) == idigest and json.loads(iraw)["mediaType"] == mt.OCI_INDEX
    iback = tmp_path / "iback"
    skopeo(
        "copy",
        "--all",
        "--src-tls-verify=false",
        f"docker://{server}/t/multi:v1",
        f"oci:{iback}:v1",
    )
    index = json.loads((iback / "index.json").read_text())
    assert index["manifests"][0]["digest"] == idigest


def test_skopeo_large_layers_and_mount_between_repos(tmp_path: Path, server: str) -> None:
    big = gzip.compress(layer_tar({"big": os.urandom(12 << 20)}), compresslevel=1, mtime=0)
    small = gzip.compress(layer_tar({"small": b"s"}), mtime=0)
    src = tmp_path / "src"
    mdigest, _ = make_oci_layout(src, layers=[big, small])
    skopeo("copy", "--dest-tls-verify=false", f"oci:{src}:latest", f"docker://{server}/m/one:v1")
    skopeo(
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{server}/m/one:v1",
        f"docker://{server}/m/two:v1",
    )
    assert sha(raw_manifest(f"{server}/m/two:v1")) == mdigest
    back = tmp_path / "back"
    skopeo("copy", "--src-tls-verify=false", f"docker://{server}/m/two:v1", f"oci:{back}:v1")
    assert (back / "blobs" / "sha256" / hashlib.sha256(big).hexdigest()).read_bytes() == big


@pytest.fixture
def storage() -> Iterator[Path]:
    """A private podman store; the runroot path must stay under 50 characters."""
    d = Path(tempfile.mkdtemp(prefix="gr-pod-", dir="/tmp"))
    try:
        yield d
    finally:
        podman(d, "system", "reset", "-f", check=False)
        shutil.rmtree(d, ignore_errors=True)


def podman(storage: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [
        "podman",
        "--root",
        str(storage / "root"),
        "--runroot",
        str(storage / "run"),
        "--storage-driver",
        "vfs",
        *args,
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{p.stderr}")
    return p


def test_podman_push_pull(tmp_path: Path, server: str, storage: Path) -> None:
    src = tmp_path / "src"
    mdigest, _ = make_oci_layout(src)
    skopeo("copy", "--dest-tls-verify=false", f"oci:{src}:latest", f"docker://{server}/p/img:v1")
    podman(storage, "pull", "--tls-verify=false", f"{server}/p/img:v1")
    out = podman(storage, "images", "--digests", "--format", "{{.Digest}}").stdout
    assert mdigest in out
    podman(storage, "tag", f"{server}/p/img:v1", f"{server}/p/copy:v2")
    podman(storage, "push", "--tls-verify=false", f"{server}/p/copy:v2")
    raw = raw_manifest(f"{server}/p/copy:v2")
    assert json.loads(raw)["layers"]
    podman(storage, "rmi", "-a", "-f")
    podman(storage, "pull", "--tls-verify=false", f"{server}/p/copy:v2")


def test_htpasswd_auth_with_skopeo_and_podman(
    tmp_path: Path, need_peers: None, storage: Path
) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{hash_password('s3cret', rounds=4)}\n")
    src = tmp_path / "src"
    mdigest, _ = make_oci_layout(src)
    with registry_process(
        tmp_path, "--data", str(tmp_path / "data"), "--htpasswd", str(htpasswd)
    ) as (addr, _):
        p = skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"oci:{src}:latest",
            f"docker://{addr}/a/img:v1",
            check=False,
        )
        assert p.returncode != 0 and "authentication required" in p.stderr
        p = skopeo(
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:wrong",
            f"oci:{src}:latest",
            f"docker://{addr}/a/img:v1",
            check=False,
        )
        assert p.returncode != 0
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:s3cret",
            f"oci:{src}:latest",
            f"docker://{addr}/a/img:v1",
        )
        assert sha(raw_manifest(f"{addr}/a/img:v1", "--creds", "alice:s3cret")) == mdigest
        p = podman(storage, "pull", "--tls-verify=false", f"{addr}/a/img:v1", check=False)
        assert p.returncode != 0
        podman(storage, "pull", "--tls-verify=false", "--creds", "alice:s3cret", f"{addr}/a/img:v1")
