"""image copy: registry <-> registry, oci: and docker-archive:, digests preserved; skopeo reads."""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.distribution import Event, RegistryClient, RetryPolicy, pull, push
from gantry.distribution.copy import copy
from gantry.distribution.locations import Location, parse_location
from gantry.errors import DigestMismatch, UsageError
from gantry.oci import mediatypes as mt
from gantry.oci.descriptor import Descriptor
from gantry.oci.manifest import Index
from gantry.oci.platform import Platform
from gantry.store import Store
from test_distribution_support import (
    RegistryThread,
    distribution,
    image_blobs,
    make_image,
    random_layer,
    sha,
)

FAST = RetryPolicy(attempts=6, base=0.01, cap=0.05)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryThread]:
    with RegistryThread(tmp_path / "registry") as r:
        yield r


def clients(*addrs: str) -> dict[str, RegistryClient]:
    return {a: RegistryClient(a, retry=FAST) for a in addrs}


def skopeo(*args: str) -> str:
    p = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout


def seeded(tmp_path: Path, addr: str, name: str = "t/app:1", n: int = 3):
    with Store(tmp_path / "src") as src:
        img = make_image(src, [random_layer(150_000, seed=i) for i in range(n)], f"{addr}/{name}")
        push(src, f"{addr}/{name}", client=RegistryClient(addr, retry=FAST))
        return img, src.manifest_bytes(img)


def test_parse_location():
    assert parse_location("oci:/tmp/x:v1") == Location("oci", "/tmp/x", "v1")
    assert parse_location("oci:/tmp/x") == Location("oci", "/tmp/x", None)
    assert parse_location("docker-archive:/a.tar:app:2") == Location(
        "docker-archive", "/a.tar", "app:2"
    )
    assert parse_location("docker://busybox") == Location(
        "docker", ref="docker.io/library/busybox:latest"
    )
    assert parse_location("localhost:5000/x:1").ref == "localhost:5000/x:1"
    assert parse_location("ubuntu:22.04").ref == "docker.io/library/ubuntu:22.04"
    with pytest.raises(UsageError, match="unknown transport 'dir'"):
        parse_location("dir:/tmp/x")
    with pytest.raises(UsageError, match="no path"):
        parse_location("oci:")


def test_registry_to_registry_preserves_digests_and_mounts_within_one(
    tmp_path: Path, registry: RegistryThread
):
    _img, body = seeded(tmp_path, registry.addr)
    with RegistryThread(tmp_path / "other") as other:
        cs = clients(registry.addr, other.addr)
        r = copy(f"{registry.addr}/t/app:1", f"docker://{other.addr}/u/app:2", clients=cs)
        assert r.digest == sha(body) and len(r.copied) == 4 and r.images == 1
        raw, _ = cs[other.addr].get_manifest("u/app", "2")
        assert raw == body
        again = copy(f"{registry.addr}/t/app:1", f"{other.addr}/u/app:2", clients=cs)
        assert len(again.skipped) == 4 and not again.copied
    events: list[Event] = []
    r = copy(
        f"{registry.addr}/t/app:1",
        f"{registry.addr}/v/app:1",
        clients=clients(registry.addr),
        progress=events.append,
    )
    assert len(r.mounted) == 4 and not r.copied
    assert [e.status for e in events].count("Mounted from t/app") == 3  # layers; no config line
    assert not [e for e in events if e.id and json.loads(body)["config"]["digest"][7:19] == e.id]


def test_registry_to_oci_layout_read_by_skopeo_and_back(tmp_path: Path, registry: RegistryThread):
    img, body = seeded(tmp_path, registry.addr)
    out = tmp_path / "layout"
    cs = clients(registry.addr)
    copy(f"{registry.addr}/t/app:1", f"oci:{out}:v1", clients=cs)
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == sha(body)
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v1"
    raw = skopeo("inspect", "--raw", f"oci:{out}:v1")
    assert raw.encode() == body
    skopeo("copy", f"oci:{out}:v1", f"oci:{tmp_path / 'sk'}:x")  # skopeo verifies every blob
    # a second ref in the same layout keeps the first
    copy(f"{registry.addr}/t/app:1", f"oci:{out}:v2", clients=cs)
    refs = sorted(
        m["annotations"]["org.opencontainers.image.ref.name"]
        for m in json.loads((out / "index.json").read_text())["manifests"]
    )
    assert refs == ["v1", "v2"]
    # and back to another repository: same digest, pullable
    r = copy(f"oci:{out}:v1", f"{registry.addr}/back/app:1", clients=cs)
    assert r.digest == sha(body)
    with Store(tmp_path / "dst") as store:
        got = pull(store, f"{registry.addr}/back/app:1", client=cs[registry.addr])
        assert got.image.id == img.id and got.digest == sha(body)
    # a layout written by skopeo is read too
    r = copy(f"oci:{tmp_path / 'sk'}:x", f"{registry.addr}/sk/app:1", clients=cs)
    assert r.images == 1


def test_docker_archive_both_ways_with_skopeo(tmp_path: Path, registry: RegistryThread):
    img, body = seeded(tmp_path, registry.addr)
    cs = clients(registry.addr)
    archive = tmp_path / "app.tar"
    copy(f"{registry.addr}/t/app:1", f"docker-archive:{archive}", clients=cs)
    with tarfile.open(archive) as tf:
        names = set(tf.getnames())
        entry = json.loads(tf.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert {"index.json", "manifest.json", "oci-layout", f"blobs/sha256/{sha(body)[7:]}"} <= names
    assert entry[0]["RepoTags"] == [f"{registry.addr}/t/app:1"]
    assert entry[0]["Config"] == f"blobs/sha256/{img.id[7:]}"
    # skopeo reads our archive (and checks the config's diff IDs against the layers)
    skopeo("copy", f"docker-archive:{archive}", f"oci:{tmp_path / 'sk'}:x")
    sk_cfg = json.loads(skopeo("inspect", "--config", f"oci:{tmp_path / 'sk'}:x"))
    assert (
        sk_cfg["rootfs"]["diff_ids"]
        == json.loads(skopeo("inspect", "--config", f"docker-archive:{archive}"))["rootfs"][
            "diff_ids"
        ]
    )
    # ours, back to a registry: the manifest is the original, byte for byte
    r = copy(f"docker-archive:{archive}", f"{registry.addr}/arch/app:1", clients=cs)
    assert r.digest == sha(body)
    # a classic archive written by skopeo (uncompressed layers, no index): a new manifest,
    # (skopeo re-serializes the config, so a new image ID) with the same layers, pullable
    classic = tmp_path / "classic.tar"
    skopeo("copy", f"oci:{tmp_path / 'sk'}:x", f"docker-archive:{classic}:some/app:3")
    r = copy(f"docker-archive:{classic}:some/app:3", f"{registry.addr}/cl/app:1", clients=cs)
    with Store(tmp_path / "dst") as store:
        got = pull(store, f"{registry.addr}/cl/app:1", client=cs[registry.addr])
        assert [x.diff_id for x in store.layers(got.image)] == sk_cfg["rootfs"]["diff_ids"]
        assert store.check() == []
    with pytest.raises(Exception, match="no image tagged"):
        copy(f"docker-archive:{classic}:other:1", f"oci:{tmp_path / 'x'}", clients=cs)


def test_index_one_platform_by_default_all_with_flag(tmp_path: Path, registry: RegistryThread):
    addr = registry.addr
    cs = clients(addr)
    c = cs[addr]
    descs = []
    for i, arch in enumerate(["amd64", "arm64"]):
        layers = [random_layer(50_000, seed=20 + i)]
        config, mbody, m = image_blobs(layers, arch=arch)
        for blob in [config, *layers]:
            loc, _ = c.start_upload("t/multi")
            assert loc is not None
            c.finish_upload("t/multi", loc, sha(blob), blob, len(blob))
        c.put_manifest("t/multi", sha(mbody), mbody, m.media_type)
        descs.append(
            Descriptor(m.media_type, sha(mbody), len(mbody), platform=Platform("linux", arch))
        )
    ibody = Index(manifests=tuple(descs), media_type=mt.OCI_INDEX).to_json()
    c.put_manifest("t/multi", "v1", ibody, mt.OCI_INDEX)
    one = copy(f"{addr}/t/multi:v1", f"{addr}/one/multi:v1", platform="linux/arm64", clients=cs)
    assert one.digest == descs[1].digest and one.images == 1
    assert c.get_manifest("one/multi", "v1")[1].startswith(mt.OCI_MANIFEST)
    every = copy(f"{addr}/t/multi:v1", f"oci:{tmp_path / 'all'}:v1", all_platforms=True, clients=cs)
    assert every.digest == sha(ibody) and every.images == 2
    for d in descs:
        assert (tmp_path / "all" / "blobs" / "sha256" / d.digest[7:]).is_file()
    skopeo("copy", "--all", f"oci:{tmp_path / 'all'}:v1", f"oci:{tmp_path / 'sk'}:v1")
    with pytest.raises(UsageError, match="one image"):
        copy(
            f"{addr}/t/multi:v1",
            f"docker-archive:{tmp_path / 'a.tar'}",
            all_platforms=True,
            clients=cs,
        )
    assert not (tmp_path / "a.tar").exists()


def test_corrupt_source_blob_is_refused_and_not_completed(tmp_path: Path, registry: RegistryThread):
    _img, body = seeded(tmp_path, registry.addr)
    cs = clients(registry.addr)
    out = tmp_path / "layout"
    copy(f"{registry.addr}/t/app:1", f"oci:{out}:v1", clients=cs)
    layer = json.loads(body)["layers"][1]["digest"]
    p = out / "blobs" / "sha256" / layer[7:]
    data = bytearray(p.read_bytes())
    data[-100] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch):
        copy(f"oci:{out}:v1", f"{registry.addr}/bad/app:1", clients=cs)
    assert not cs[registry.addr].has_blob("bad/app", layer)
    with pytest.raises(DigestMismatch):
        copy(f"oci:{out}:v1", f"oci:{tmp_path / 'o2'}", clients=cs)
    assert not (tmp_path / "o2" / "blobs" / "sha256" / layer[7:]).exists()
    assert not (tmp_path / "o2" / "index.json").exists()


@pytest.mark.slow
@pytest.mark.peers
def test_copy_to_distribution_and_skopeo_reads_it(tmp_path: Path, registry: RegistryThread):
    _img, body = seeded(tmp_path, registry.addr)
    with distribution(tmp_path) as addr:
        cs = clients(registry.addr, addr)
        copy(f"{registry.addr}/t/app:1", f"{addr}/d/app:1", clients=cs)
        raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{addr}/d/app:1")
        assert raw.encode() == body
        skopeo(
            "copy", "--src-tls-verify=false", f"docker://{addr}/d/app:1", f"oci:{tmp_path / 'k'}:x"
        )


def test_dropped_source_connection_resumes_with_range(tmp_path: Path, registry: RegistryThread):
    from test_distribution_support import FaultProxy

    _img, body = seeded(tmp_path, registry.addr)
    with FaultProxy(registry.addr, cut_once_after=60_000) as proxy:
        cs = clients(proxy.addr)
        r = copy(f"{proxy.addr}/t/app:1", f"oci:{tmp_path / 'o'}:1", clients=cs)
        assert proxy.drops == 1
        assert any(rg.startswith("bytes=") and rg != "bytes=0-" for rg in proxy.ranges)
        assert r.digest == sha(body) and len(r.copied) == 4
    skopeo("copy", f"oci:{tmp_path / 'o'}:1", f"oci:{tmp_path / 'k'}:1")  # verifies all blobs


@pytest.mark.slow
def test_copy_killed_half_way_is_finished_by_running_it_again(
    tmp_path: Path, registry: RegistryThread
):
    import os
    import signal
    import sys
    import time

    from test_distribution_support import FaultProxy

    _img, body = seeded(tmp_path, registry.addr, n=3)
    out = tmp_path / "layout"
    archive = tmp_path / "a.tar"
    with FaultProxy(registry.addr, delay_per_chunk=0.05) as slow:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gantry",
                    "image",
                    "copy",
                    "-q",
                    f"{slow.addr}/t/app:1",
                    dst,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for dst in (f"oci:{out}:v1", f"docker-archive:{archive}")
        ]
        deadline = time.monotonic() + 60
        while not list(out.glob("blobs/sha256/.tmp-*")) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        for p in procs:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    assert list(out.glob("blobs/sha256/.tmp-*"))  # killed while writing
    assert not (out / "index.json").exists() and not archive.exists()
    assert list(tmp_path.glob(".a.tar.tmp-*"))
    cs = clients(registry.addr)
    copy(f"{registry.addr}/t/app:1", f"oci:{out}:v1", clients=cs)
    copy(f"{registry.addr}/t/app:1", f"docker-archive:{archive}", clients=cs)
    assert not list(out.glob("blobs/sha256/.tmp-*")) and not list(tmp_path.glob(".a.tar.tmp-*"))
    assert skopeo("inspect", "--raw", f"oci:{out}:v1").encode() == body
    skopeo("copy", f"oci:{out}:v1", f"oci:{tmp_path / 'k'}:1")  # every blob verified
    skopeo("copy", f"docker-archive:{archive}", f"oci:{tmp_path / 'k'}:2")
