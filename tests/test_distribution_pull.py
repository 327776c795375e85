"""pull and push against gantry's registry in this process (real sockets), with faults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.digest import Digest
from gantry.distribution import Event, RegistryClient, RetryPolicy, pull, push
from gantry.distribution.push import upload_blob
from gantry.errors import DigestMismatch, RegistryError
from gantry.oci import Descriptor, Index, Platform
from gantry.oci import mediatypes as mt
from gantry.store import Store
from test_distribution_support import (
    FaultProxy,
    RegistryThread,
    image_blobs,
    layer,
    make_image,
    random_layer,
    sha,
)

FAST = RetryPolicy(attempts=6, base=0.01, cap=0.05)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryThread]:
    with RegistryThread(tmp_path / "registry") as r:
        yield r


def client(addr: str) -> RegistryClient:
    return RegistryClient(addr, retry=FAST)


def seeded(tmp_path: Path, addr: str, repo: str = "t/app:1", n: int = 3, size: int = 300_000):
    """Push an image of ``n`` random layers from a source store; returns its image."""
    with Store(tmp_path / "src") as src:
        layers = [random_layer(size, seed=i) for i in range(n)]
        img = make_image(src, layers, f"{addr}/{repo}")
        push(src, f"{addr}/{repo}", client=client(addr))
        return img


def test_pull_by_tag_records_image_tag_and_repo_digest(tmp_path: Path, registry: RegistryThread):
    img = seeded(tmp_path, registry.addr)
    events: list[Event] = []
    with Store(tmp_path / "dst") as store:
        r = pull(
            store, f"{registry.addr}/t/app:1", client=client(registry.addr), progress=events.append
        )
        assert r.image.id == img.id
        assert r.downloaded
        assert r.digest == img.manifest_digest
        got = store.resolve(f"{registry.addr}/t/app:1")
        assert got.id == img.id
        assert f"{registry.addr}/t/app@{img.manifest_digest}" in got.repo_digests
        # each layer is fetched, verified and completed, in Docker's words
        statuses = [e.status for e in events]
        assert statuses[0] == "1: Pulling from t/app"
        assert statuses.count("Pull complete") == 3
        assert statuses.count("Verifying Checksum") == 3
        assert statuses[-1] == f"Digest: {img.manifest_digest}"
        assert store.check() == []
        # again: nothing downloaded
        events.clear()
        r2 = pull(
            store, f"{registry.addr}/t/app:1", client=client(registry.addr), progress=events.append
        )
        assert not r2.downloaded
        # Docker's up-to-date pull: no layer lines, the digest, nothing else
        assert [e.status for e in events] == [
            "1: Pulling from t/app",
            f"Digest: {img.manifest_digest}",
        ]


def test_present_blobs_are_not_fetched(tmp_path: Path, registry: RegistryThread):
    seeded(tmp_path, registry.addr)
    with FaultProxy(registry.addr) as proxy, Store(tmp_path / "dst") as store:
        pull(store, f"{proxy.addr}/t/app:1", client=client(proxy.addr))
        assert proxy.count("GET", "/blobs/") == 4  # config + 3 layers
        before = len(proxy.requests)
        again = pull(store, f"{proxy.addr}/t/app:1", client=client(proxy.addr))
        assert not again.downloaded
        # up to date: one HEAD of the manifest and nothing else (the client's ping aside)
        assert [r for r in proxy.requests[before:] if r[1] != "/v2/"] == [
            ("HEAD", "/v2/t/app/manifests/1")
        ]


def test_pull_by_digest_and_platform_from_index(tmp_path: Path, registry: RegistryThread):
    addr = registry.addr
    c = client(addr)
    descs = []
    for arch in ("amd64", "arm64"):
        lay = layer({f"{arch}.txt": arch.encode()})
        config, body, m = image_blobs([lay], arch=arch)
        for blob in (config, lay):
            loc, _ = c.start_upload("t/multi")
            assert loc
            c.finish_upload("t/multi", loc, sha(blob), blob, len(blob))
        d = c.put_manifest("t/multi", sha(body), body, m.media_type)
        descs.append(Descriptor(m.media_type, d, len(body), platform=Platform("linux", arch)))
    idx = Index(manifests=tuple(descs), media_type=mt.OCI_INDEX)
    ibody = idx.to_json()
    c.put_manifest("t/multi", "v1", ibody, mt.OCI_INDEX)
    with Store(tmp_path / "dst") as store:
        r = pull(store, f"{addr}/t/multi:v1", platform="linux/arm64", client=client(addr))
        assert store.config(r.image).architecture == "arm64"
        assert r.digest == sha(ibody)  # Docker records the index digest
        assert f"{addr}/t/multi@{sha(ibody)}" in r.image.repo_digests
        r2 = pull(
            store, f"{addr}/t/multi@{sha(ibody)}", platform="linux/amd64", client=client(addr)
        )
        assert store.config(r2.image).architecture == "amd64"
        assert r2.image.repo_tags == ()  # by digest: no tag moved
        # the tag again: arm64 is up to date (a HEAD settles it); amd64 is another image
        # under the same index digest, so the HEAD cannot settle it and the tag moves
        assert not pull(store, f"{addr}/t/multi:v1", platform="linux/arm64", client=c).downloaded
        r3 = pull(store, f"{addr}/t/multi:v1", platform="linux/amd64", client=c)
        assert r3.downloaded and r3.image.id == r2.image.id
        assert store.resolve(f"{addr}/t/multi:v1").id == r2.image.id
        with pytest.raises(RegistryError, match="no matching manifest for linux/s390x"):
            pull(store, f"{addr}/t/multi:v1", platform="linux/s390x", client=client(addr))


def test_missing_tag_and_repository_errors(tmp_path: Path, registry: RegistryThread):
    seeded(tmp_path, registry.addr, n=1)
    with Store(tmp_path / "dst") as store:
        with pytest.raises(
            RegistryError, match=r"manifest for .*/t/app:nope not found: manifest unknown"
        ):
            pull(store, f"{registry.addr}/t/app:nope", client=client(registry.addr))
        with pytest.raises(RegistryError) as e:
            pull(store, f"{registry.addr}/t/none:1", client=client(registry.addr))
        assert "t/none" in str(e.value)


def test_wrong_bytes_are_refused_and_nothing_is_stored(tmp_path: Path, registry: RegistryThread):
    img = seeded(tmp_path, registry.addr, n=2)
    with Store(tmp_path / "src") as src:
        victim = src.layers(img)[1].digest
    f = registry.blob_file(victim)
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.chmod(0o644)
    f.write_bytes(bytes(data))
    with Store(tmp_path / "dst") as store:
        with pytest.raises(DigestMismatch):
            pull(store, f"{registry.addr}/t/app:1", client=client(registry.addr))
        assert not store.content.has(victim)
        assert not [i for i in store.content.ingests() if i.size]
        assert store.images() == []


def test_interrupted_download_resumes_with_range(tmp_path: Path, registry: RegistryThread):
    seeded(tmp_path, registry.addr, n=1, size=3_000_000)
    with FaultProxy(registry.addr, cut_once_after=1_000_000) as proxy, Store(tmp_path / "dst") as s:
        r = pull(s, f"{proxy.addr}/t/app:1", client=client(proxy.addr))
        assert proxy.drops == 1
        assert any(rg.startswith("bytes=") and rg != "bytes=0-" for rg in proxy.ranges)
        assert s.check() == []
        assert r.downloaded


def test_dropped_connections_still_give_a_correct_pull(tmp_path: Path, registry: RegistryThread):
    seeded(tmp_path, registry.addr, n=4, size=1_000_000)
    retry = RetryPolicy(attempts=30, base=0.01, cap=0.05)
    with FaultProxy(registry.addr, drop_rate=0.05) as proxy, Store(tmp_path / "dst") as s:
        pull(s, f"{proxy.addr}/t/app:1", client=RegistryClient(proxy.addr, retry=retry))
        assert proxy.drops > 0
        assert s.check() == []


def test_503_with_retry_after_is_retried(tmp_path: Path, registry: RegistryThread):
    seeded(tmp_path, registry.addr, n=1)
    with FaultProxy(registry.addr, fail_first=3) as proxy, Store(tmp_path / "dst") as s:
        pull(s, f"{proxy.addr}/t/app:1", client=client(proxy.addr))
        assert proxy.fail_first == 0


def test_429_persisting_gives_one_line_error(tmp_path: Path, registry: RegistryThread):
    with FaultProxy(registry.addr, fail_first=100, status=429) as proxy, Store(tmp_path / "d") as s:
        with pytest.raises(RegistryError) as e:
            pull(s, f"{proxy.addr}/t/app:1", client=client(proxy.addr))
        assert "429" in str(e.value) or "toomanyrequests" in str(e.value)
        assert "\n" not in str(e.value)


def test_push_keeps_digests_and_is_byte_identical(tmp_path: Path, registry: RegistryThread):
    img = seeded(tmp_path, registry.addr, n=2)
    c = client(registry.addr)
    raw, ctype = c.get_manifest("t/app", "1")
    assert sha(raw) == img.manifest_digest
    assert ctype == mt.OCI_MANIFEST
    # pushing again: every layer already exists
    events: list[Event] = []
    with Store(tmp_path / "src") as src:
        r = push(src, f"{registry.addr}/t/app:1", client=c, progress=events.append)
        assert r.digest == img.manifest_digest
        assert [e.status for e in events].count("Layer already exists") == 2
        assert events[-1].status == f"1: digest: {img.manifest_digest} size: {r.size}"
        assert f"{registry.addr}/t/app@{img.manifest_digest}" in src.resolve(img.id).repo_digests
        # to another repository of the same registry: mounted, not uploaded
        with FaultProxy(registry.addr) as proxy:
            src.tag(img, f"{proxy.addr}/t/first:1")
            push(src, f"{proxy.addr}/t/first:1", client=client(proxy.addr))
            uploads = proxy.count("PUT", "/blobs/uploads/")
            assert uploads == 3  # config and two layers, each in one PUT
            events.clear()
            src.tag(img, f"{proxy.addr}/t/copy:2")
            push(src, f"{proxy.addr}/t/copy:2", client=client(proxy.addr), progress=events.append)
            assert proxy.count("PUT", "/blobs/uploads/") == uploads
            assert proxy.count("PATCH", "/blobs/uploads/") == 0
            assert [e.status for e in events].count("Mounted from t/first") == 2


def test_chunked_upload_resumes_after_a_cut(tmp_path: Path, registry: RegistryThread):
    blob = random_layer(2_500_000, seed=9)
    path = tmp_path / "blob"
    path.write_bytes(blob)
    d = Digest(sha(blob))
    c = client(registry.addr)
    seen: list[int] = []
    upload_blob(
        c,
        "t/chunks",
        d,
        len(blob),
        path,
        report=lambda n, t: seen.append(n),
        monolithic_limit=100_000,
        chunk_size=700_000,
    )
    assert c.has_blob("t/chunks", d)
    assert seen[-1] == len(blob)
    # a session left half-done is picked up where the registry's session ends
    loc, _ = c.start_upload("t/resume")
    assert loc
    loc = c.patch_upload("t/resume", loc, [blob[:1_000_000]], 0, 1_000_000)
    assert c.upload_offset("t/resume", loc) == 1_000_000
    sent: list[int] = []
    upload_blob(
        c,
        "t/resume",
        d,
        len(blob),
        path,
        location=loc,
        report=lambda n, t: sent.append(n),
        monolithic_limit=100_000,
        chunk_size=700_000,
    )
    assert c.has_blob("t/resume", d)
    assert min(sent) > 1_000_000  # the first megabyte was not sent again
    assert sha(c.get_blob("t/resume", d).read()) == d


@pytest.mark.slow
def test_cli_lines_match_docker_when_not_a_terminal(tmp_path: Path, registry: RegistryThread):
    import subprocess
    import sys

    img = seeded(tmp_path, registry.addr, n=1, size=1000)
    with Store(tmp_path / "src") as src:
        layer_id = src.layers(img)[0].digest.hex[:12]
        diff_id = src.layers(img)[0].diff_id.hex[:12]

    def run(*args: str) -> list[str]:
        p = subprocess.run(
            [sys.executable, "-m", "gantry", "--root", str(tmp_path / "cli"), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0, p.stderr
        return p.stdout.splitlines()

    name = f"{registry.addr}/t/app"
    assert run("pull", f"{name}:1") == [
        "1: Pulling from t/app",
        f"{layer_id}: Pulling fs layer",
        f"{layer_id}: Verifying Checksum",
        f"{layer_id}: Download complete",
        f"{layer_id}: Pull complete",
        f"Digest: {img.manifest_digest}",
        f"Status: Downloaded newer image for {name}:1",
        f"{name}:1",
    ]
    assert run("pull", f"{name}:1")[-2:] == [
        f"Status: Image is up to date for {name}:1",
        f"{name}:1",
    ]
    assert run("tag", f"{name}:1", f"{name}:2") == []
    with Store(tmp_path / "cli") as cli_store:
        size = len(cli_store.manifest_bytes(img))
    assert run("push", f"{name}:2") == [
        f"The push refers to repository [{name}]",
        f"{diff_id}: Preparing",
        f"{diff_id}: Layer already exists",
        f"2: digest: {img.manifest_digest} size: {size}",
    ]
