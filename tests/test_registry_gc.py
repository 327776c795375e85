"""Garbage collection: what goes, what stays, and pushes racing with it."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gantry.digest import Digest
from gantry.oci import mediatypes as mt
from gantry.oci.descriptor import Descriptor
from gantry.oci.manifest import Index, Manifest
from gantry.oci.platform import Platform
from gantry.registry import RegistryConfig
from gantry.registry.gc import collect
from gantry.registry.storage import FilesystemDriver
from test_registry_support import (
    image_manifest,
    in_process,
    push_blob,
    push_image,
    registry_process,
    sha,
)


def cfg(tmp_path: Path) -> RegistryConfig:
    return RegistryConfig(data=tmp_path / "data", fsync=False, access_log=False)


def blob_exists(tmp_path: Path, digest: str) -> bool:
    algo, hexpart = digest.split(":")
    return (tmp_path / "data" / "blobs" / algo / hexpart[:2] / hexpart / "data").is_file()


def test_gc_deletes_unreferenced_and_keeps_tagged(tmp_path: Path) -> None:
    state: dict[str, Any] = {}

    async def setup(c: Any) -> None:
        a, abody = await push_image(c, "g", "a", seed=b"a")
        b, bbody = await push_image(c, "g", "b", seed=b"b")
        state["a"] = [sha(abody), a.config.digest, *(x.digest for x in a.layers)]
        state["b"] = [sha(bbody), b.config.digest, *(x.digest for x in b.layers)]
        state["orphan"] = await push_blob(c, "g", b"nobody needs me")
        r = await c.delete(f"/v2/g/manifests/{sha(bbody)}")
        assert r.status == 202

    in_process(cfg(tmp_path), setup)
    driver = FilesystemDriver(tmp_path / "data")
    doomed = {*state["b"], state["orphan"]}
    report = collect(driver, dry_run=True, grace_period=0)
    assert set(report.blobs) == doomed
    assert all(blob_exists(tmp_path, d) for d in doomed)  # dry run deletes nothing
    report = collect(driver, grace_period=0)
    assert set(report.blobs) == doomed
    assert not any(blob_exists(tmp_path, d) for d in doomed)
    assert all(blob_exists(tmp_path, d) for d in state["a"])
    assert collect(driver, grace_period=0).blobs == []

    async def check(c: Any) -> None:
        r = await c.get("/v2/g/manifests/a")
        assert r.status == 200
        for d in state["a"][1:]:
            r = await c.get(f"/v2/g/blobs/{d}")
            assert r.status == 200 and sha(await r.read()) == d
        r = await c.head(f"/v2/g/blobs/{state['orphan']}")
        assert r.status == 404

    in_process(cfg(tmp_path), check)


def test_gc_grace_period_and_live_uploads(tmp_path: Path) -> None:
    state: dict[str, Any] = {}

    async def setup(c: Any) -> None:
        state["orphan"] = await push_blob(c, "g", b"young orphan")
        r = await c.post("/v2/g/blobs/uploads/")
        state["loc"] = r.headers["Location"]
        r = await c.patch(state["loc"], data=b"half of it", headers={"Content-Range": "0-9"})
        assert r.status == 202

    in_process(cfg(tmp_path), setup)
    driver = FilesystemDriver(tmp_path / "data")
    report = collect(driver, grace_period=3600)
    assert report.blobs == [] and report.kept_young == 1
    assert blob_exists(tmp_path, state["orphan"])
    report = collect(driver, grace_period=0)
    assert report.blobs == [state["orphan"]] and report.uploads == 0

    async def finish(c: Any) -> None:
        data = b"half of it, and the rest"
        r = await c.put(f"{state['loc']}?digest={sha(data)}", data=data[10:])
        assert r.status == 201

    in_process(cfg(tmp_path), finish)

    # stale uploads are purged once older than the purge age
    async def stale(c: Any) -> None:
        r = await c.post("/v2/g/blobs/uploads/")
        assert r.status == 202

    in_process(cfg(tmp_path), stale)
    assert collect(driver, grace_period=0, upload_purge_age=0).uploads == 1


def test_gc_delete_untagged_keeps_children_and_referrers(tmp_path: Path) -> None:
    state: dict[str, Any] = {}

    async def setup(c: Any) -> None:
        ct = {"Content-Type": mt.OCI_MANIFEST}
        _x, xbody = await push_image(c, "u", "x", seed=b"x")
        # an untagged manifest: goes
        cfg_y = b'{"y":1}'
        layer_y = b"layer only y has"
        await push_blob(c, "u", cfg_y)
        await push_blob(c, "u", layer_y)
        y = image_manifest(cfg_y, [layer_y])
        r = await c.put(f"/v2/u/manifests/{sha(y.to_json())}", data=y.to_json(), headers=ct)
        assert r.status == 201
        # a child of a tagged index, pushed by digest: stays
        cfg_c = b'{"c":1}'
        await push_blob(c, "u", cfg_c)
        child = image_manifest(cfg_c, [])
        r = await c.put(f"/v2/u/manifests/{sha(child.to_json())}", data=child.to_json(), headers=ct)
        assert r.status == 201
        idx = Index(
            manifests=(
                Descriptor(
                    mt.OCI_MANIFEST,
                    sha(child.to_json()),
                    len(child.to_json()),
                    platform=Platform("linux", "arm64"),
                ),
            )
        )
        r = await c.put(
            "/v2/u/manifests/idx", data=idx.to_json(), headers={"Content-Type": mt.OCI_INDEX}
        )
        assert r.status == 201
        # a referrer of the tagged image: stays
        await push_blob(c, "u", b"{}")
        sig = await push_blob(c, "u", b"sig")
        ref = Manifest(
            config=Descriptor(mt.OCI_EMPTY, Digest(mt.EMPTY_DIGEST), 2),
            layers=(Descriptor("application/octet-stream", sig, 3),),
            artifact_type="application/x.sig",
            subject=Descriptor(mt.OCI_MANIFEST, sha(xbody), len(xbody)),
        )
        r = await c.put(f"/v2/u/manifests/{sha(ref.to_json())}", data=ref.to_json(), headers=ct)
        assert r.status == 201
        state.update(
            x=sha(xbody),
            y=sha(y.to_json()),
            layer_y=sha(layer_y),
            child=sha(child.to_json()),
            idx=sha(idx.to_json()),
            ref=sha(ref.to_json()),
            sig=sig,
        )

    in_process(cfg(tmp_path), setup)
    driver = FilesystemDriver(tmp_path / "data")
    # without --delete-untagged every manifest is kept
    assert collect(driver, grace_period=0).manifests == []
    report = collect(driver, grace_period=0, delete_untagged=True)
    assert report.manifests == [f"u@{state['y']}"]
    assert state["layer_y"] in report.blobs and state["y"] in report.blobs
    for keep in ("x", "child", "idx", "ref", "sig"):
        assert blob_exists(tmp_path, state[keep]), keep

    async def check(c: Any) -> None:
        r = await c.get(f"/v2/u/manifests/{state['y']}")
        assert r.status == 404
        for keep in ("x", "child", "idx", "ref"):
            r = await c.get(f"/v2/u/manifests/{state[keep]}")
            assert r.status == 200, keep
        r = await c.get(f"/v2/u/referrers/{state['x']}")
        assert [m["digest"] for m in (await r.json(content_type=None))["manifests"]] == [
            state["ref"]
        ]

    in_process(cfg(tmp_path), check)


def test_gc_cli(tmp_path: Path) -> None:
    async def setup(c: Any) -> None:
        await push_blob(c, "g", b"orphan")

    in_process(cfg(tmp_path), setup)
    run = [
        sys.executable,
        "-m",
        "gantry",
        "--root",
        str(tmp_path),
        "registry",
        "gc",
        "--data",
        str(tmp_path / "data"),
    ]
    p = subprocess.run([*run, "--dry-run", "--grace-period", "0s"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "would delete 1 blobs" in p.stdout
    p = subprocess.run([*run, "--grace-period", "0"], capture_output=True, text=True)
    assert "deleted 1 blobs" in p.stdout
    assert not blob_exists(tmp_path, sha(b"orphan"))
    p = subprocess.run([*run, "--grace-period", "soon"], capture_output=True, text=True)
    assert p.returncode != 0 and "invalid duration" in p.stderr


def test_manifest_push_refreshes_old_blobs_against_gc(tmp_path: Path) -> None:
    """A blob unreferenced for long is re-used by a push (HEAD says it exists): the
    manifest PUT refreshes its link, so GC keeps it; without that push it would go."""
    state: dict[str, Any] = {}

    async def upload(c: Any) -> None:
        state["cfg"] = await push_blob(c, "o", b'{"old":1}')
        state["layer"] = await push_blob(c, "o", b"old layer")

    in_process(cfg(tmp_path), upload)
    past = time.time() - 7200
    for f in (tmp_path / "data").rglob("*"):
        os.utime(f, (past, past))
    driver = FilesystemDriver(tmp_path / "data")
    assert sorted(collect(driver, dry_run=True, grace_period=3600).blobs) == sorted(
        [state["cfg"], state["layer"]]
    )

    async def push_manifest(c: Any) -> None:
        m = image_manifest(b'{"old":1}', [b"old layer"])
        r = await c.put(
            "/v2/o/manifests/t", data=m.to_json(), headers={"Content-Type": mt.OCI_MANIFEST}
        )
        assert r.status == 201
        r = await c.delete("/v2/o/manifests/t")  # unreferenced again, but freshly used
        assert r.status == 202

    in_process(cfg(tmp_path), push_manifest)
    report = collect(driver, grace_period=3600)
    assert state["layer"] not in report.blobs and blob_exists(tmp_path, state["layer"])


def _req(
    addr: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    host, port = addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@pytest.mark.slow
def test_gc_during_concurrent_pushes_never_breaks_a_tagged_image(tmp_path: Path) -> None:
    """GC with a tiny grace period in a loop while clients push, delete and re-push
    images that share layers (so old, unreferenced blobs get re-used by a HEAD-then-PUT
    push). Every manifest a client got 201 for (and did not delete) must be complete at
    the end; a push may fail with MANIFEST_BLOB_UNKNOWN and be retried."""
    shared = [os.urandom(50000) for _ in range(3)]
    stop = threading.Event()
    gc_runs = [0]
    gc_deleted = [0]
    with registry_process(tmp_path, "--data", str(tmp_path / "data"), "-q") as (addr, _):

        def gc_loop() -> None:
            driver = FilesystemDriver(tmp_path / "data")
            while not stop.is_set():
                report = collect(driver, grace_period=0.3, delete_untagged=True)
                gc_runs[0] += 1
                gc_deleted[0] += len(report.blobs)

        def pusher(worker: int) -> dict[str, list[str]]:
            kept: dict[str, list[str]] = {}
            name = f"race/w{worker}"
            for i in range(12):
                time.sleep(0.1)
                cfgb = json.dumps({"w": worker, "i": i}).encode()
                layers = [shared[(worker + i) % 3], os.urandom(2000)]
                m = image_manifest(cfgb, layers)
                body = m.to_json()
                for _attempt in range(10):
                    for blob in (cfgb, *layers):
                        d = sha(blob)
                        status, _ = _req(addr, "HEAD", f"/v2/{name}/blobs/{d}")
                        if status != 200:
                            status, _ = _req(
                                addr, "POST", f"/v2/{name}/blobs/uploads/?digest={d}", blob
                            )
                            assert status == 201
                    status, resp = _req(
                        addr,
                        "PUT",
                        f"/v2/{name}/manifests/t{i}",
                        body,
                        {"Content-Type": mt.OCI_MANIFEST},
                    )
                    if status == 201:
                        kept[f"t{i}"] = [sha(cfgb), *(sha(b) for b in layers)]
                        break
                    assert status == 400 and b"MANIFEST_BLOB_UNKNOWN" in resp, resp
                else:
                    pytest.fail(f"push never succeeded: {status} {resp!r}")
                if i % 3 == 2:  # make garbage: drop an older image
                    old = f"t{i - 2}"
                    status, _ = _req(addr, "DELETE", f"/v2/{name}/manifests/{old}")
                    assert status == 202
                    kept.pop(old)
            return kept

        gc_thread = threading.Thread(target=gc_loop)
        gc_thread.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                results = list(pool.map(pusher, range(4)))
        finally:
            stop.set()
            gc_thread.join()
        assert gc_runs[0] >= 2
        assert gc_deleted[0] > 0  # GC really collected while the pushes went on
        for worker, kept in enumerate(results):
            for tag, blobs in kept.items():
                status, _ = _req(addr, "GET", f"/v2/race/w{worker}/manifests/{tag}")
                assert status == 200, (worker, tag)
                for d in blobs:
                    status, data = _req(addr, "GET", f"/v2/race/w{worker}/blobs/{d}")
                    assert status == 200 and sha(data) == d, (worker, tag, d)
