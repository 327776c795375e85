"""Helpers for the registry tests (no tests here): servers, OCI layouts, clients.

Imported by the other ``test_registry_*`` modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from gantry.digest import Digest
from gantry.oci import mediatypes as mt
from gantry.oci.descriptor import Descriptor
from gantry.oci.manifest import Index, Manifest
from gantry.oci.platform import Platform
from gantry.registry import RegistryConfig, make_app

PROJECT = Path(__file__).resolve().parent.parent
OCI_ACCEPT = ", ".join([mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST])


def sha(data: bytes) -> Digest:
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def in_process(
    cfg: RegistryConfig, body: Callable[[TestClient[Any, Any]], Awaitable[None]], **kw: Any
) -> None:
    """Run ``body(client)`` against the registry app on aiohttp's test server."""

    async def main() -> None:
        app = make_app(cfg, **kw)
        async with TestClient(TestServer(app)) as client:
            await body(client)

    asyncio.run(main())


async def push_blob(client: Any, name: str, data: bytes) -> Digest:
    d = sha(data)
    r = await client.post(f"/v2/{name}/blobs/uploads/?digest={d}", data=data)
    assert r.status == 201, await r.text()
    return d


def image_manifest(
    config: bytes, layers: list[bytes], *, docker: bool = False, **kw: Any
) -> Manifest:
    layer_type = mt.DOCKER_LAYER if docker else mt.OCI_LAYER_GZIP
    return Manifest(
        config=Descriptor.of(config, mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG),
        layers=tuple(Descriptor.of(b, layer_type) for b in layers),
        media_type=mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
        **kw,
    )


async def push_image(
    client: Any, name: str, tag: str, *, docker: bool = False, seed: bytes = b"x", **kw: Any
) -> tuple[Manifest, bytes]:
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed.hex()}).encode()
    layers = [gzip.compress(seed * 100 + bytes([i]), mtime=0) for i in range(2)]
    for b in (cfg, *layers):
        await push_blob(client, name, b)
    m = image_manifest(cfg, layers, docker=docker, **kw)
    body = m.to_json()
    r = await client.put(
        f"/v2/{name}/manifests/{tag}", data=body, headers={"Content-Type": m.media_type}
    )
    assert r.status == 201, await r.text()
    return m, body


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path, data in files.items():
            ti = tarfile.TarInfo(path)
            ti.size = len(data)
            ti.mtime = 0
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def make_oci_layout(
    root: Path,
    *,
    tag: str = "latest",
    layers: list[bytes] | None = None,
    docker: bool = False,
    index: bool = False,
) -> tuple[str, list[str]]:
    """Write an OCI image layout; returns (manifest digest, blob digests)."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> Digest:
        d = sha(data)
        (blobs / d.split(":")[1]).write_bytes(data)
        return d

    if layers is None:
        layers = [gzip.compress(layer_tar({"hello.txt": b"hello from gantry\n"}), mtime=0)]
    diff_ids = [sha(gzip.decompress(b)) for b in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "test"} for _ in layers],
        }
    ).encode()
    m = image_manifest(config, layers, docker=docker)
    put(config)
    for b in layers:
        put(b)
    body = m.to_json()
    mdigest = put(body)
    top = Descriptor(m.media_type, mdigest, len(body))
    if index:
        idx = Index(
            manifests=(top.with_platform(Platform("linux", "amd64")),),
            media_type=mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX,
        )
        ibody = idx.to_json()
        top = Descriptor(idx.media_type, put(ibody), len(ibody))
    entry = top.to_dict()
    entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (root / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [entry]})
    )
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return str(top.digest), [sha(config), *(sha(b) for b in layers)]


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers (401 with auth)
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(url)


@contextlib.contextmanager
def registry_process(
    root: Path, *args: str, port: int | None = None, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``gantry registry serve`` as a real process on 127.0.0.1; yields (host:port, proc)."""
    port = port or free_port()
    log = open(root / f"registry-{port}.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gantry",
            "--root",
            str(root),
            "registry",
            "serve",
            "--addr",
            f"127.0.0.1:{port}",
            *args,
        ],
        stdout=log,
        stderr=log,
        env={**os.environ, **(env or {})},
    )
    try:
        scheme = "https" if "--tls-cert" in args else "http"
        if scheme == "http":
            wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        else:
            _wait_port(port, proc)
        yield f"127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(port)


def skopeo(
    *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed:\n{p.stderr}")
    return p


def raw_request(port: int, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (no client-side path normalisation); (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body
