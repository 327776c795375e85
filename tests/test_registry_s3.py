"""The S3 driver against a real S3 API server (moto_server on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gantry.registry import RegistryConfig, make_app
from gantry.registry.config import S3Config
from gantry.registry.gc import collect
from gantry.registry.storage.base import PathNotFound
from gantry.registry.storage.s3 import S3Driver
from test_registry_support import (
    free_port,
    in_process,
    make_oci_layout,
    push_image,
    registry_process,
    sha,
    skopeo,
    wait_http,
)

MOTO = Path(sys.executable).parent / "moto_server"


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not MOTO.exists():
        pytest.fail("moto_server is not installed in the venv; run `make setup`")
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


_n = [0]


def s3cfg(endpoint: str, **kw: Any) -> S3Config:
    _n[0] += 1
    return S3Config(
        bucket=f"gantry-test-{os.getpid()}-{_n[0]}",
        endpoint=endpoint,
        access_key="testing",
        secret_key="testing",
        prefix="reg",
        chunk_size=5 << 20,
        **kw,
    )


def test_driver_basics(s3_endpoint: str) -> None:
    d = S3Driver(s3cfg(s3_endpoint))
    with pytest.raises(PathNotFound):
        d.get_content("a/b")
    d.put_content("a/b/c", b"hello")
    d.put_content("a/d", b"x")
    assert d.get_content("a/b/c") == b"hello"
    assert d.stat("a/b/c").size == 5 and not d.stat("a/b/c").is_dir
    assert d.stat("a/b").is_dir
    assert sorted(d.list("a")) == ["b", "d"]
    assert sorted(f.path for f in d.walk("a")) == ["a/b/c", "a/d"]
    d.move("a/d", "e/f")
    assert d.get_content("e/f") == b"x" and not d.exists("a/d")
    d.delete("a")
    with pytest.raises(PathNotFound):
        d.list("a")
    with pytest.raises(PathNotFound):
        d.delete("a")
    with pytest.raises(ValueError):
        d.get_content("a/../../etc")


def test_driver_append_compose_and_ranges(s3_endpoint: str) -> None:
    d = S3Driver(s3cfg(s3_endpoint))
    pieces = [os.urandom(n) for n in (3 << 20, 7 << 20, 100, 6 << 20, 1 << 20)]
    d.put_content("up/data", b"")
    for p in pieces:
        w = d.writer("up/data", append=True)
        assert w.size == d.stat("up/data").size
        # write in odd slices to cross the part buffer boundaries
        for i in range(0, len(p), 3 << 19):
            w.write(p[i : i + (3 << 19)])
        w.commit()
    whole = b"".join(pieces)
    assert d.stat("up/data").size == len(whole)
    assert d.list("up") == ["data"]
    with d.reader("up/data", 5 << 20, 6 << 20) as f:
        assert f.read() == whole[5 << 20 : 11 << 20]
    d.move("up/data", "blob/data")
    assert not d.exists("up/data")
    with d.reader("blob/data") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(whole).digest()
    # a cancelled append leaves the file as it was
    w = d.writer("blob2", append=True)
    w.write(b"abc")
    w.commit()
    w = d.writer("blob2", append=True)
    w.write(os.urandom(6 << 20))
    w.cancel()
    assert d.get_content("blob2") == b"abc"


def test_registry_on_s3_with_two_replicas(s3_endpoint: str, tmp_path: Path) -> None:
    """Two servers on one bucket act as one registry: an upload started on one is
    continued and finished on the other, and each sees the other's manifests."""
    cfg = RegistryConfig(storage="s3", s3=s3cfg(s3_endpoint), access_log=False)
    data = os.urandom(9 << 20)
    d = sha(data)

    async def main() -> None:
        a = TestClient(TestServer(make_app(cfg)))
        b = TestClient(TestServer(make_app(cfg)))
        async with a, b:
            r = await a.post("/v2/rep/blobs/uploads/")
            loc = r.headers["Location"]
            r = await a.patch(
                loc, data=data[: 6 << 20], headers={"Content-Range": f"0-{(6 << 20) - 1}"}
            )
            assert r.status == 202
            r = await b.get(loc)
            assert r.status == 204 and r.headers["Range"] == f"0-{(6 << 20) - 1}"
            r = await b.patch(
                loc, data=data[6 << 20 :], headers={"Content-Range": f"{6 << 20}-{len(data) - 1}"}
            )
            assert r.status == 202
            r = await a.put(f"{loc}?digest={d}")
            assert r.status == 201, await r.text()
            r = await b.get(f"/v2/rep/blobs/{d}", headers={"Range": "bytes=100-199"})
            assert r.status == 206 and await r.read() == data[100:200]
            r = await b.get(f"/v2/rep/blobs/{d}")
            assert sha(await r.read()) == d
            _, mbody = await push_image(a, "rep", "v1")
            r = await b.get("/v2/rep/manifests/v1")
            assert r.status == 200 and await r.read() == mbody
            r = await b.get("/v2/_catalog")
            assert (await r.json())["repositories"] == ["rep"]
            r = await b.delete("/v2/rep/manifests/v1")
            assert r.status == 202
            r = await a.get("/v2/rep/manifests/v1")
            assert r.status == 404

    asyncio.run(main())
    assert cfg.s3 is not None
    driver = S3Driver(cfg.s3)
    report = collect(driver, grace_period=0)
    assert report.blobs == [d]  # deleting the tag kept the (now untagged) manifest
    report = collect(driver, grace_period=0, delete_untagged=True)
    assert len(report.blobs) == 4  # config, 2 layers, manifest


def test_s3_monolithic_and_referrers(s3_endpoint: str) -> None:
    cfg = RegistryConfig(storage="s3", s3=s3cfg(s3_endpoint), access_log=False)

    async def body(c: Any) -> None:
        r = await c.get("/healthz")  # an empty bucket is a healthy one
        assert r.status == 200 and (await r.json())["storage"] == "s3"
        blob = b"tiny"
        r = await c.post(f"/v2/m/blobs/uploads/?digest={sha(blob)}", data=blob)
        assert r.status == 201
        r = await c.head(f"/v2/m/blobs/{sha(blob)}")
        assert r.status == 200 and r.headers["Content-Length"] == "4"
        r = await c.post(f"/v2/m/blobs/uploads/?digest={sha(b'wrong')}", data=blob)
        assert r.status == 400
        _, mbody = await push_image(c, "m", "v1")
        r = await c.get(f"/v2/m/referrers/{sha(mbody)}")
        assert r.status == 200 and json.loads(await r.read())["manifests"] == []

    in_process(cfg, body)


@pytest.mark.slow
@pytest.mark.peers
def test_skopeo_against_s3_backed_server(s3_endpoint: str, tmp_path: Path) -> None:
    if shutil.which("skopeo") is None:
        pytest.fail("skopeo is not installed")
    s3 = s3cfg(s3_endpoint)
    conf = tmp_path / "registry.yml"
    conf.write_text(
        json.dumps(
            {
                "storage": {
                    "s3": {
                        "bucket": s3.bucket,
                        "regionendpoint": s3_endpoint,
                        "accesskey": "testing",
                        "secretkey": "testing",
                        "rootdirectory": "/x",
                    }
                }
            }
        )
    )
    src = tmp_path / "src"
    mdigest, blobs = make_oci_layout(src)
    with registry_process(tmp_path, "--config", str(conf)) as (addr, _):
        skopeo("copy", "--dest-tls-verify=false", f"oci:{src}:latest", f"docker://{addr}/s3/app:v1")
        back = tmp_path / "back"
        skopeo("copy", "--src-tls-verify=false", f"docker://{addr}/s3/app:v1", f"oci:{back}:v1")
        got = {f"sha256:{p.name}" for p in (back / "blobs" / "sha256").iterdir()}
        assert {mdigest, *blobs} <= got
