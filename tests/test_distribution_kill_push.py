"""``gantry push`` SIGKILLed half-way, then run again: it completes and re-sends only
what the registry does not hold yet. Against gantry's registry and distribution's
``docker-registry``, through a counting proxy on 127.0.0.1 that measures the bytes
the registry receives (and slows the upload down so the kill lands mid-blob).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gantry.distribution import RegistryClient, pull
from gantry.store import Store
from test_distribution_support import RegistryThread, TcpProxy, distribution, make_image

pytestmark = [pytest.mark.slow]

_REQ = re.compile(rb"^(GET|HEAD|PUT|PATCH|POST|DELETE) (\S+) HTTP/1\.[01]\r\n")
MB = 1_000_000


class CountingProxy(TcpProxy):
    """TCP proxy to ``upstream`` counting the bytes sent upstream, per request method.

    ``delay`` sleeps that long per 64 KiB forwarded upstream (a slow uplink);
    ``hold_patch`` stops forwarding a connection once it starts a PATCH (the
    registry then has the session but none of the chunk's bytes).
    """

    def __init__(self, upstream: str, *, delay: float = 0.0, hold_patch: bool = False) -> None:
        self.delay = delay
        self.hold_patch = hold_patch
        self.bytes_up: dict[str, int] = {}
        self.requests: list[tuple[str, str]] = []
        super().__init__(upstream)

    def reset(self) -> None:
        with self.lock:
            self.bytes_up.clear()
            self.requests.clear()

    def total_up(self) -> int:
        with self.lock:
            return sum(self.bytes_up.values())

    def up(self, method: str) -> int:
        with self.lock:
            return self.bytes_up.get(method, 0)

    def count(self, method: str, fragment: str = "") -> int:
        with self.lock:
            return sum(1 for m, p in self.requests if m == method and fragment in p)

    def _serve(self, client: socket.socket) -> None:
        try:
            up = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        threading.Thread(target=self._down, args=(up, client), daemon=True).start()
        method = "?"
        try:
            while data := client.recv(65536):
                m = _REQ.match(data)
                if m:
                    method = m.group(1).decode()
                    with self.lock:
                        self.requests.append((method, m.group(2).decode()))
                if method == "PATCH" and self.hold_patch:
                    continue  # swallow: the registry never sees this chunk
                if self.delay:
                    time.sleep(self.delay)
                up.sendall(data)
                with self.lock:
                    self.bytes_up[method] = self.bytes_up.get(method, 0) + len(data)
        except OSError:
            pass
        finally:
            for s in (up, client):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _down(up: socket.socket, client: socket.socket) -> None:
        try:
            while data := up.recv(65536):
                client.sendall(data)
        except OSError:
            pass
        finally:
            for s in (up, client):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


def random_layer(size: int, seed: int) -> tuple[bytes, str]:
    """(gzip layer holding ``size`` random bytes, its diff ID); gzip level 1 to stay quick."""
    data = random.Random(seed).randbytes(size)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo(f"blob{seed}.bin")
        ti.size = size
        tf.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    return z.compress(raw) + z.flush(), hashlib.sha256(raw).hexdigest()


def gantry(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gantry", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def upload_data(registry_data: Path) -> list[Path]:
    """Upload-in-progress data files (both registries keep ``_uploads/<id>/data``)."""
    return list(registry_data.rglob("_uploads/*/data"))


def held_bytes(registry_data: Path) -> int:
    return sum(p.stat().st_size for p in upload_data(registry_data))


def has_blob(registry_data: Path, digest: str) -> bool:
    hexd = digest.split(":", 1)[1]
    return any(registry_data.rglob(f"blobs/sha256/{hexd[:2]}/{hexd}/data"))


@pytest.fixture(params=["gantry", "distribution"])
def registry(request: pytest.FixtureRequest, shm_tmp: Path) -> Iterator[tuple[str, str, Path]]:
    """(kind, host:port, data dir) of a registry on 127.0.0.1, data on /dev/shm."""
    if request.param == "gantry":
        with RegistryThread(shm_tmp / "reg") as r:
            yield "gantry", r.addr, shm_tmp / "reg"
    else:
        with distribution(shm_tmp) as addr:
            yield "distribution", addr, shm_tmp / "dist-data"


def test_sigkill_mid_push_resumes_and_resends_only_the_rest(
    registry: tuple[str, str, Path], shm_tmp: Path
) -> None:
    kind, upstream, data_dir = registry
    big, big_diff = random_layer(64 * 1024 * 1024, 1)  # > 32 MiB: chunked, resumable
    small = [random_layer(6 * MB, s) for s in (2, 3)]
    proxy = CountingProxy(upstream, delay=0.004)  # ~16 MB/s per connection
    try:
        name = f"{proxy.addr}/kill/big:1"
        root = shm_tmp / "client"
        with Store(root) as store:
            img = make_image(store, [big, *(b for b, _ in small)], name)
            blobs = {str(d.digest): d.size for d in store.manifest(img).layers}
        small_digests = [d for d, size in blobs.items() if size < 32 * 1024 * 1024]
        total = sum(blobs.values())
        assert 50 * MB < total < 100 * MB
        env = {**os.environ, "GANTRY_ROOT": str(root), "DOCKER_CONFIG": str(shm_tmp / "dc")}

        proc = subprocess.Popen(
            [sys.executable, "-m", "gantry", "push", name],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # the small layers are in, and the big one is some 20 MB into its PATCH
            wait_for(
                lambda: (
                    all(has_blob(data_dir, d) for d in small_digests)
                    and proxy.up("PATCH") > 20 * MB
                ),
                120,
                "the small layers and 20 MB of the big one",
            )
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        time.sleep(0.5)  # let the registry take what the proxy had forwarded
        sent_first = proxy.up("PATCH")
        held = held_bytes(data_dir)
        assert sent_first < len(big), "the kill came too late: the big layer was all sent"
        assert 10 * MB < held <= sent_first

        proxy.reset()
        proxy.delay = 0.0
        again = gantry(["push", name], env)
        assert again.returncode == 0, again.stderr
        # the finished layers are only HEADed, in Docker's words
        for _, diff in small:
            assert f"{diff[:12]}: Layer already exists" in again.stdout, again.stdout
        assert f"{big_diff[:12]}: Pushed" in again.stdout
        assert re.search(r"1: digest: sha256:[0-9a-f]{64} size: \d+", again.stdout)
        # what the registry received the second time: the big layer (the unfinished
        # blob), the config and the manifest, plus headers; not the small layers
        second = proxy.total_up()
        if kind == "gantry":
            # gantry's registry keeps the bytes of a cut PATCH and reports them on GET:
            # only the rest of the big layer is sent
            assert len(big) - held <= second <= len(big) - held + 256 * 1024, (second, held)
        else:
            # distribution cancels a session whose data outgrew the offset signed into
            # its Location (_state) by an unfinished PATCH: that blob starts over
            assert len(big) <= second <= len(big) + 256 * 1024, (second, held)
        if kind == "gantry":
            assert upload_data(data_dir) == []  # the session was closed, nothing left over

        check = gantry(["system", "check"], env)
        assert check.returncode == 0, check.stdout + check.stderr
        # pulled back (straight from the registry): the same manifest digest and image
        with Store(shm_tmp / "back") as back:
            r = pull(back, f"{upstream}/kill/big:1", client=RegistryClient(upstream))
            assert r.digest == img.manifest_digest
            assert r.image.id == img.id
            assert back.check() == []
    finally:
        proxy.close()


def test_push_killed_before_any_chunk_byte_arrived_resumes(
    registry: tuple[str, str, Path], shm_tmp: Path
) -> None:
    """A remembered session the registry holds nothing for (``Range: 0-0``) restarts at 0.

    Both registries answer ``Range: 0-0`` for an empty session, the same as for one byte.
    """
    _, upstream, data_dir = registry
    big, _ = random_layer(34 * 1024 * 1024, 9)
    proxy = CountingProxy(upstream, hold_patch=True)
    try:
        name = f"{proxy.addr}/kill/empty:1"
        root = shm_tmp / "client"
        with Store(root) as store:
            img = make_image(store, [big], name)
        env = {**os.environ, "GANTRY_ROOT": str(root), "DOCKER_CONFIG": str(shm_tmp / "dc")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "gantry", "push", name],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: proxy.count("PATCH") > 0, 60, "the first PATCH")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert held_bytes(data_dir) == 0
        proxy.hold_patch = False
        proxy.reset()
        again = gantry(["push", name], {**env, "GANTRY_RETRY_BASE": "0.01"})
        assert again.returncode == 0, again.stderr
        assert proxy.total_up() <= len(big) + 256 * 1024
        with Store(shm_tmp / "back") as back:
            r = pull(back, f"{upstream}/kill/empty:1", client=RegistryClient(upstream))
            assert r.image.id == img.id
    finally:
        proxy.close()


def test_push_killed_twice_sends_each_byte_once(shm_tmp: Path) -> None:
    """Killed, resumed, killed again, resumed: with gantry's registry (which keeps the
    bytes of a cut PATCH) the big blob crosses the wire once in all, in three pieces."""
    big, _ = random_layer(48 * 1024 * 1024, 21)
    with RegistryThread(shm_tmp / "reg") as reg:
        proxy = CountingProxy(reg.addr, delay=0.004)
        try:
            name = f"{proxy.addr}/kill/twice:1"
            root = shm_tmp / "client"
            with Store(root) as store:
                img = make_image(store, [big], name)
            env = {**os.environ, "GANTRY_ROOT": str(root), "DOCKER_CONFIG": str(shm_tmp / "dc")}
            sent = []
            for _ in range(2):
                proxy.reset()
                proc = subprocess.Popen(
                    [sys.executable, "-m", "gantry", "push", name],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                try:
                    wait_for(lambda: proxy.up("PATCH") > 12 * MB, 120, "12 MB of PATCH")
                finally:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                time.sleep(0.3)
                sent.append(proxy.total_up())
            held = held_bytes(shm_tmp / "reg")
            assert 24 * MB < held < len(big)
            proxy.reset()
            proxy.delay = 0.0
            last = gantry(["push", name], env)
            assert last.returncode == 0, last.stderr
            sent.append(proxy.total_up())
            # headers and the small config/manifest aside, every byte went once
            assert len(big) <= sum(sent) <= len(big) + 512 * 1024, (sent, len(big))
            assert upload_data(shm_tmp / "reg") == []
            with Store(shm_tmp / "back") as back:
                r = pull(back, f"{reg.addr}/kill/twice:1", client=RegistryClient(reg.addr))
                assert r.digest == img.manifest_digest
                assert back.check() == []
        finally:
            proxy.close()
