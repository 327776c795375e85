"""Helpers for the registry-client tests (no tests here).

* :class:`RegistryThread`: gantry's registry app in this process, on a real
  127.0.0.1 socket, served by a background event loop;
* :class:`FaultProxy`: a TCP proxy on 127.0.0.1 that counts requests, sees
  Range headers, drops connections, answers 503 with Retry-After;
* :func:`distribution`: Debian's ``docker-registry`` as a process;
* :func:`make_image`: an image written straight into a gantry store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import io
import json
import random
import re
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from gantry.oci import mediatypes as mt
from gantry.oci.descriptor import Descriptor
from gantry.oci.manifest import Manifest
from gantry.registry import RegistryConfig, make_app
from gantry.store import Image, Store


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RegistryThread:
    """``gantry registry`` app served from a thread; ``.addr`` is host:port."""

    def __init__(self, data: Path, **cfg: Any) -> None:
        self.data = data
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.cfg = RegistryConfig(addr=self.addr, data=data, access_log=False, **cfg)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._runner = web.AppRunner(make_app(self.cfg), access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def __enter__(self) -> RegistryThread:
        self._thread.start()
        if not self._ready.wait(20):
            raise TimeoutError("registry thread did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(20)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(20)

    def blob_file(self, digest: str) -> Path:
        hexd = digest.split(":", 1)[1]
        return self.data / "blobs" / "sha256" / hexd[:2] / hexd / "data"


_REQ = re.compile(rb"(GET|HEAD|PUT|PATCH|POST|DELETE) (\S+) HTTP/1\.[01]\r\n")


class TcpProxy:
    """A TCP proxy on 127.0.0.1 (``addr``) to ``upstream`` (host:port): a thread accepts, and
    each connection is handed to :meth:`_serve` on its own thread. Subclasses forward and
    misbehave in ``_serve``; ``close()`` stops accepting."""

    def __init__(self, upstream: str, *, start: bool = True) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.addr = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        if start:
            self._thread.start()

    def close(self) -> None:
        self._stop = True
        with contextlib.suppress(OSError):
            self.sock.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        raise NotImplementedError


class FaultProxy(TcpProxy):
    """TCP proxy to ``upstream`` (host:port) that records and misbehaves on request.

    ``drop_rate``: chance per response chunk (64 KiB) to cut the connection while a
    blob body flows; ``fail_first``: answer that many connections' first request with
    ``status`` (503) and ``Retry-After: retry_after``; ``cut_once_after``: cut the first
    blob response after that many bytes.
    """

    def __init__(
        self,
        upstream: str,
        *,
        drop_rate: float = 0.0,
        fail_first: int = 0,
        status: int = 503,
        retry_after: str | None = "0",
        cut_once_after: int | None = None,
        delay_per_chunk: float = 0.0,
        seed: int = 7,
    ) -> None:
        super().__init__(upstream, start=False)
        self.drop_rate = drop_rate
        self.fail_first = fail_first
        self.status = status
        self.retry_after = retry_after
        self.cut_once_after = cut_once_after
        self.delay_per_chunk = delay_per_chunk
        self.rng = random.Random(seed)
        self.requests: list[tuple[str, str]] = []
        self.ranges: list[str] = []
        self.drops = 0

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count(self, method: str, fragment: str) -> int:
        with self.lock:
            return sum(1 for m, p in self.requests if m == method and fragment in p)

    def _serve(self, client: socket.socket) -> None:
        try:
            first = client.recv(65536)
        except OSError:
            client.close()
            return
        self._note(first)
        with self.lock:
            fail = self.fail_first > 0
            if fail:
                self.fail_first -= 1
        if fail:
            extra = f"Retry-After: {self.retry_after}\r\n" if self.retry_after is not None else ""
            with contextlib.suppress(OSError):
                client.sendall(
                    f"HTTP/1.1 {self.status} Service Unavailable\r\n{extra}"
                    "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
                )
            client.close()
            return
        try:
            up = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        up.sendall(first)
        state = {"blob": self._is_blob_get(first), "sent": 0}
        threading.Thread(target=self._pump_up, args=(client, up, state), daemon=True).start()
        self._pump_down(up, client, state)

    @staticmethod
    def _is_blob_get(data: bytes) -> bool:
        m = _REQ.search(data)
        return bool(m and m.group(1) == b"GET" and b"/blobs/sha256:" in m.group(2))

    def _note(self, data: bytes) -> None:
        with self.lock:
            for m in _REQ.finditer(data):
                self.requests.append((m.group(1).decode(), m.group(2).decode()))
            for m in re.finditer(rb"(?i)\r\nrange: (bytes=\S+)", data):
                self.ranges.append(m.group(1).decode())

    def _pump_up(self, client: socket.socket, up: socket.socket, state: dict[str, Any]) -> None:
        try:
            while data := client.recv(1 << 20):
                self._note(data)
                if _REQ.search(data):
                    state["blob"] = self._is_blob_get(data)
                    state["sent"] = 0
                up.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                up.shutdown(socket.SHUT_WR)

    def _pump_down(self, up: socket.socket, client: socket.socket, state: dict[str, Any]) -> None:
        try:
            while data := up.recv(65536):
                blob, sent = state["blob"], state["sent"]
                if blob and self.delay_per_chunk:
                    time.sleep(self.delay_per_chunk)
                if blob:
                    with self.lock:
                        cut = self.cut_once_after
                        if cut is not None and sent + len(data) > cut:
                            self.cut_once_after = None
                            self.drops += 1
                            client.sendall(data[: max(cut - sent, 0)])
                            break
                        if self.drop_rate and sent > 0 and self.rng.random() < self.drop_rate:
                            self.drops += 1
                            break
                client.sendall(data)
                state["sent"] = sent + len(data)
        except OSError:
            pass
        finally:
            for s in (client, up):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


def layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path, data in files.items():
            ti = tarfile.TarInfo(path)
            ti.size = len(data)
            ti.mtime = 0
            tf.addfile(ti, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def image_blobs(
    layers: list[bytes], *, arch: str = "amd64", docker: bool = False
) -> tuple[bytes, bytes, Manifest]:
    """(config bytes, manifest bytes, manifest) for gzip ``layers``."""
    diff_ids = [sha(gzip.decompress(b)) for b in layers]
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
        }
    ).encode()
    m = Manifest(
        config=Descriptor.of(config, mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG),
        layers=tuple(
            Descriptor.of(b, mt.DOCKER_LAYER if docker else mt.OCI_LAYER_GZIP) for b in layers
        ),
        media_type=mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
    )
    return config, m.to_json(), m


def make_image(store: Store, layers: list[bytes], tag: str, **kw: Any) -> Image:
    config, body, m = image_blobs(layers, **kw)
    store.content.write(config)
    for b in layers:
        store.content.write(b)
    return store.add_image(body, media_type=m.media_type, tags=[tag])


def random_layer(size: int, seed: int) -> bytes:
    """A gzip layer holding ``size`` incompressible bytes."""
    return layer({f"blob{seed}.bin": random.Random(seed).randbytes(size)})


@contextlib.contextmanager
def docker_registry(tmp: Path, name: str, config: str, port: int) -> Iterator[None]:
    """Debian's docker-registry (distribution 2.8) serving ``config`` (YAML text listening on
    127.0.0.1:``port``, written to ``tmp/<name>.yml``; its log goes to ``tmp/<name>.log``)
    until the block ends."""
    cfg = tmp / f"{name}.yml"
    cfg.write_text(config)
    log = open(tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp / f"{name}.log").read_text())
            time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextlib.contextmanager
def distribution(tmp: Path) -> Iterator[str]:
    """Debian's docker-registry (distribution 2.8) on 127.0.0.1; yields host:port."""
    port = free_port()
    config = (
        "version: 0.1\n"
        "log:\n  level: error\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {tmp / 'dist-data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    with docker_registry(tmp, "distribution", config, port):
        yield f"127.0.0.1:{port}"
