"""``image inspect --remote`` and ``tag --remote`` from the command line, against gantry's
registry on 127.0.0.1: nothing is pulled, the registry is the only state."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gantry.cli.main import cli
from gantry.distribution import RegistryClient, RetryPolicy, push
from gantry.oci import mediatypes as mt
from gantry.oci.descriptor import Descriptor
from gantry.oci.manifest import Index
from gantry.oci.platform import Platform
from gantry.store import Store
from test_distribution_support import RegistryThread, image_blobs, make_image, random_layer, sha

FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryThread]:
    with RegistryThread(tmp_path / "registry") as r:
        yield r


def seed(tmp_path: Path, addr: str, name: str) -> tuple[bytes, bytes]:
    """Push a two-layer image as ``addr/name``; (manifest bytes, config bytes)."""
    with Store(tmp_path / "src") as src:
        img = make_image(src, [random_layer(5_000, seed=i) for i in range(2)], f"{addr}/{name}")
        push(src, f"{addr}/{name}", client=RegistryClient(addr, retry=FAST))
        return src.manifest_bytes(img), src.config_bytes(img)


def seed_index(addr: str) -> tuple[bytes, list[str]]:
    """An OCI index ``t/multi:v1`` of linux/amd64 and linux/arm64; (index bytes, child digests)."""
    c = RegistryClient(addr, retry=FAST)
    descs = []
    for i, arch in enumerate(["amd64", "arm64"]):
        layers = [random_layer(4_000, seed=50 + i)]
        config, body, m = image_blobs(layers, arch=arch)
        for blob in [config, *layers]:
            loc, _ = c.start_upload("t/multi")
            assert loc is not None
            c.finish_upload("t/multi", loc, sha(blob), blob, len(blob))
        c.put_manifest("t/multi", sha(body), body, m.media_type)
        descs.append(
            Descriptor(m.media_type, sha(body), len(body), platform=Platform("linux", arch))
        )
    ibody = Index(manifests=tuple(descs), media_type=mt.OCI_INDEX).to_json()
    c.put_manifest("t/multi", "v1", ibody, mt.OCI_INDEX)
    return ibody, [str(d.digest) for d in descs]


def gantry(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--root", str(root), *args])


def test_image_inspect_remote_record_format_raw_config(tmp_path: Path, registry: RegistryThread):
    addr = registry.addr
    body, config = seed(tmp_path, addr, "web/app:1")
    root = tmp_path / "root"
    r = gantry(root, "image", "inspect", "--remote", f"{addr}/web/app:1")
    assert r.exit_code == 0, r.output
    docs = json.loads(r.output)
    assert isinstance(docs, list) and len(docs) == 1  # an array, as local image inspect
    doc = docs[0]
    m = json.loads(body)
    assert doc["Name"] == f"{addr}/web/app"
    assert doc["Digest"] == sha(body)
    assert doc["RepoTags"] == ["1"]
    assert (doc["Os"], doc["Architecture"]) == ("linux", "amd64")
    assert doc["Layers"] == [d["digest"] for d in m["layers"]]
    assert [d["Size"] for d in doc["LayersData"]] == [d["size"] for d in m["layers"]]
    assert "Platforms" not in doc

    r = gantry(
        root,
        "image",
        "inspect",
        "--remote",
        "-f",
        "{{.Digest}} {{len .Layers}}",
        f"{addr}/web/app:1",
    )
    assert r.output == f"{sha(body)} 2\n", r.output
    r = gantry(root, "image", "inspect", "--remote", "--raw", f"{addr}/web/app:1")
    assert r.output.encode() == body + b"\n"
    r = gantry(root, "image", "inspect", "--remote", "--config", f"{addr}/web/app@{sha(body)}")
    assert json.loads(r.output) == [json.loads(config)]
    r = gantry(
        root,
        "image",
        "inspect",
        "--remote",
        "--no-tags",
        "-f",
        "{{json .RepoTags}}",
        f"{addr}/web/app:1",
    )
    assert r.output == "[]\n"
    # nothing was pulled
    with Store(root) as store:
        assert list(store.images()) == []


def test_image_inspect_remote_index_and_platform(tmp_path: Path, registry: RegistryThread):
    ibody, children = seed_index(registry.addr)
    r = gantry(
        tmp_path / "root",
        "image",
        "inspect",
        "--remote",
        "--platform",
        "linux/arm64",
        f"{registry.addr}/t/multi:v1",
    )
    assert r.exit_code == 0, r.output
    (doc,) = json.loads(r.output)
    assert doc["Digest"] == sha(ibody)
    assert doc["ManifestDigest"] == children[1]
    assert doc["Architecture"] == "arm64"
    assert [p["platform"]["architecture"] for p in doc["Platforms"]] == ["amd64", "arm64"]


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gantry", "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_inspect_remote_errors_as_docker(tmp_path: Path, registry: RegistryThread):
    addr = registry.addr
    body, _ = seed(tmp_path, addr, "web/app:1")
    root = tmp_path / "root"
    # one name fails: the others are still printed, the error comes last, exit 1
    p = run(root, "image", "inspect", "--remote", f"{addr}/web/app:1", f"{addr}/web/nope:1")
    assert p.returncode == 1
    assert [d["Digest"] for d in json.loads(p.stdout)] == [sha(body)]
    assert p.stderr.startswith("Error: ") and "web/nope" in p.stderr
    # remote-only flags need --remote
    p = run(root, "image", "inspect", "--raw", "busybox")
    assert p.returncode == 1 and "--raw requires --remote" in p.stderr
    p = run(root, "tag", "--insecure", "a", "b")
    assert p.returncode == 1 and "--insecure requires --remote" in p.stderr
    p = run(root, "tag", "--remote", f"{addr}/web/app:1", "other.example:5000/web/app:1")
    assert p.returncode != 0 and "image copy" in p.stderr


def test_tag_remote_retags_in_the_registry(tmp_path: Path, registry: RegistryThread):
    addr = registry.addr
    body, _ = seed(tmp_path, addr, "web/app:1")
    root = tmp_path / "root"
    client = RegistryClient(addr, retry=FAST)
    r = gantry(root, "tag", "--remote", f"{addr}/web/app:1", "stable")
    assert r.exit_code == 0, r.output
    assert r.output == ""  # docker tag prints nothing
    assert client.get_manifest("web/app", "stable")[0] == body
    # another repository of the same registry: blobs mounted, manifest byte for byte
    r = gantry(root, "image", "tag", "--remote", f"{addr}/web/app:stable", f"{addr}/mirror/app:2")
    assert r.exit_code == 0, r.output
    assert client.get_manifest("mirror/app", "2")[0] == body
    assert sorted(client.tags("web/app")) == ["1", "stable"]
    # an index keeps its digest
    ibody, _ = seed_index(addr)
    r = gantry(root, "tag", "--remote", f"{addr}/t/multi:v1", "latest")
    assert r.exit_code == 0, r.output
    assert client.get_manifest("t/multi", "latest")[0] == ibody
    with Store(root) as store:
        assert list(store.images()) == []
