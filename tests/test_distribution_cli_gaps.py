"""CLI gaps of the registry client: ``pull -a``, ``push -a``, ``--max-concurrent-downloads``
bounding the blob GETs in flight (seen at a proxy), and podman pulling and running what
gantry pushed to distribution's ``docker-registry``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gantry.distribution import RegistryClient, push
from gantry.store import Store
from test_containers_support import add_image as add_busybox
from test_distribution_support import (
    RegistryThread,
    TcpProxy,
    distribution,
    make_image,
    random_layer,
)

_REQ = re.compile(rb"^(GET|HEAD|PUT|PATCH|POST|DELETE) (\S+) HTTP/1\.[01]\r\n")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryThread]:
    with RegistryThread(tmp_path / "registry") as r:
        yield r


def gantry(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gantry", *args],
        env={**os.environ, "GANTRY_ROOT": str(root), "DOCKER_CONFIG": str(root / ".docker")},
        capture_output=True,
        text=True,
        timeout=300,
    )


def registry_tags(addr: str, repo: str) -> list[str]:
    with urllib.request.urlopen(f"http://{addr}/v2/{repo}/tags/list", timeout=10) as r:
        return sorted(json.load(r)["tags"] or [])


def catalog(addr: str) -> list[str]:
    with urllib.request.urlopen(f"http://{addr}/v2/_catalog", timeout=10) as r:
        return sorted(json.load(r)["repositories"] or [])


# -- pull -a / push -a ------------------------------------------------------------


def test_pull_all_tags_pulls_every_tag(tmp_path: Path, registry: RegistryThread) -> None:
    addr = registry.addr
    ids = {}
    with Store(tmp_path / "src") as src:
        for i, tag in enumerate(["1", "2", "latest"]):
            img = make_image(src, [random_layer(30_000, 10 + i)], f"{addr}/p/app:{tag}")
            push(src, f"{addr}/p/app:{tag}", client=RegistryClient(addr))
            ids[tag] = img.id
        # a tag of another repository is not part of it
        make_image(src, [random_layer(30_000, 99)], f"{addr}/p/other:1")
        push(src, f"{addr}/p/other:1", client=RegistryClient(addr))
    root = tmp_path / "dst"
    r = gantry(root, "pull", "-a", f"{addr}/p/app")
    assert r.returncode == 0, r.stderr
    for tag in ids:
        assert f"{tag}: Pulling from p/app" in r.stdout
    lines = r.stdout.splitlines()
    assert lines[-2] == f"Status: Downloaded newer images for {addr}/p/app"
    assert lines[-1] == f"{addr}/p/app"
    with Store(root) as dst:
        got = {t: d for t, d in dst.tags()}
        for tag, image_id in ids.items():
            assert got[f"{addr}/p/app:{tag}"] == image_id
        assert not any("p/other" in t for t in got)
        assert dst.check() == []
    again = gantry(root, "pull", "-a", f"{addr}/p/app")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-2] == f"Status: Image is up to date for {addr}/p/app"


def test_pull_all_tags_refuses_a_tag(tmp_path: Path, registry: RegistryThread) -> None:
    r = gantry(tmp_path / "dst", "pull", "-a", f"{registry.addr}/p/app:1")
    assert r.returncode != 0
    assert "tag can't be used with --all-tags/-a" in r.stderr
    assert "Traceback" not in r.stderr


def test_push_all_tags_pushes_every_local_tag_of_the_repository(
    tmp_path: Path, registry: RegistryThread
) -> None:
    addr = registry.addr
    root = tmp_path / "src"
    with Store(root) as src:
        a = make_image(src, [random_layer(30_000, 1)], f"{addr}/q/app:1")
        src.tag(a, f"{addr}/q/app:also-1")
        b = make_image(src, [random_layer(30_000, 2)], f"{addr}/q/app:2")
        make_image(src, [random_layer(30_000, 3)], f"{addr}/q/other:1")
        make_image(src, [random_layer(30_000, 4)], "q/app:local-only")  # Docker Hub's q/app
    r = gantry(root, "push", "-a", f"{addr}/q/app")
    assert r.returncode == 0, r.stderr
    assert registry_tags(addr, "q/app") == ["1", "2", "also-1"]
    assert catalog(addr) == ["q/app"]  # nothing of q/other
    # each tag ends with Docker's digest line, and the registry serves that manifest
    with Store(root) as src:
        for tag, img in (("1", a), ("also-1", a), ("2", b)):
            assert f"{tag}: digest: {img.manifest_digest} size: " in r.stdout
            req = urllib.request.Request(
                f"http://{addr}/v2/q/app/manifests/{tag}",
                method="HEAD",
                headers={"Accept": img.media_type},
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.headers["Docker-Content-Digest"] == img.manifest_digest
        # and each tag now records its repo digest, as after `docker push`
        assert f"{addr}/q/app@{b.manifest_digest}" in src.resolve(f"{addr}/q/app:2").repo_digests


def test_push_all_tags_refuses_a_tag_and_an_unknown_repository(
    tmp_path: Path, registry: RegistryThread
) -> None:
    root = tmp_path / "src"
    with Store(root) as src:
        make_image(src, [random_layer(10_000, 1)], f"{registry.addr}/q/app:1")
    r = gantry(root, "push", "-a", f"{registry.addr}/q/app:1")
    assert r.returncode != 0
    assert "tag can't be used with --all-tags/-a" in r.stderr
    r = gantry(root, "push", "-a", f"{registry.addr}/q/none")
    assert r.returncode != 0
    assert f"An image does not exist locally with the tag: {registry.addr}/q/none" in r.stderr
    assert catalog(registry.addr) == []


def test_pull_all_tags_quiet_prints_the_name(tmp_path: Path, registry: RegistryThread) -> None:
    """``pull -a -q`` prints the repository name once (as docker/cli does)."""
    addr = registry.addr
    root = tmp_path / "src"
    with Store(root) as src:
        img = make_image(src, [random_layer(10_000, 1)], f"{addr}/q/app:1")
        src.tag(img, f"{addr}/q/app:2")
        push(src, f"{addr}/q/app:1", client=RegistryClient(addr))
        push(src, f"{addr}/q/app:2", client=RegistryClient(addr))
    r = gantry(tmp_path / "dst", "pull", "-a", "-q", f"{addr}/q/app")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{addr}/q/app\n"


def test_push_all_tags_quiet_prints_the_name_once(tmp_path: Path, registry: RegistryThread) -> None:
    addr = registry.addr
    root = tmp_path / "src"
    with Store(root) as src:
        img = make_image(src, [random_layer(10_000, 1)], f"{addr}/q/app:1")
        src.tag(img, f"{addr}/q/app:2")
    r = gantry(root, "push", "-a", "-q", f"{addr}/q/app")
    assert r.returncode == 0, r.stderr
    assert registry_tags(addr, "q/app") == ["1", "2"]
    assert r.stdout == f"{addr}/q/app\n"


# -- --max-concurrent-downloads ---------------------------------------------------


def is_blob_get(method: bytes, path: bytes) -> bool:
    return method == b"GET" and b"/blobs/sha256:" in path


def is_blob_put(method: bytes, path: bytes) -> bool:
    return method in (b"PUT", b"PATCH") and b"/blobs/uploads/" in path


class IntervalProxy(TcpProxy):
    """TCP proxy recording, for every tracked request (blob GETs by default), when it was
    asked and when its last response bytes passed; ``delay`` per 64 KiB of a tracked
    response and ``up_delay`` per 64 KiB of a tracked request body slow them down."""

    def __init__(
        self,
        upstream: str,
        *,
        delay: float = 0.0,
        up_delay: float = 0.0,
        track: Callable[[bytes, bytes], bool] = is_blob_get,
    ) -> None:
        self.delay = delay
        self.up_delay = up_delay
        self.track = track
        self.intervals: list[list[float]] = []  # [start, end] per blob GET
        super().__init__(upstream)

    def max_in_flight(self) -> int:
        with self.lock:
            points = sorted(
                [(s, 1) for s, _ in self.intervals] + [(e, -1) for _, e in self.intervals],
                key=lambda p: (p[0], p[1]),  # an end before a start at the same instant
            )
        best = cur = 0
        for _, d in points:
            cur += d
            best = max(best, cur)
        return best

    def _serve(self, client: socket.socket) -> None:
        try:
            up = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        current: list[list[float] | None] = [None]
        threading.Thread(target=self._down, args=(up, client, current), daemon=True).start()
        try:
            while data := client.recv(65536):
                m = _REQ.match(data)
                if m:
                    if self.track(m.group(1), m.group(2)):
                        now = time.monotonic()
                        iv = [now, now]
                        with self.lock:
                            self.intervals.append(iv)
                        current[0] = iv
                    else:
                        current[0] = None
                if current[0] is not None and self.up_delay:
                    time.sleep(self.up_delay)
                up.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                up.shutdown(socket.SHUT_WR)

    def _down(
        self, up: socket.socket, client: socket.socket, current: list[list[float] | None]
    ) -> None:
        try:
            while data := up.recv(65536):
                iv = current[0]
                if iv is not None and self.delay:
                    time.sleep(self.delay)
                client.sendall(data)
                if iv is not None:
                    with self.lock:
                        iv[1] = time.monotonic()
        except OSError:
            pass
        finally:
            for s in (up, client):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


@pytest.mark.slow
def test_max_concurrent_downloads_bounds_blob_gets_in_flight(
    tmp_path: Path, registry: RegistryThread
) -> None:
    proxy = IntervalProxy(registry.addr, delay=0.01)
    try:
        name = f"{proxy.addr}/c/app:1"
        with Store(tmp_path / "src") as src:
            img = make_image(src, [random_layer(700_000, i) for i in range(4)], name)
            push(src, name, client=RegistryClient(registry.addr))  # same registry behind
        # the default (3) really overlaps: the measure can see concurrency
        r = gantry(tmp_path / "d3", "pull", name)
        assert r.returncode == 0, r.stderr
        assert len(proxy.intervals) == 5  # config + 4 layers
        assert proxy.max_in_flight() >= 2
        with proxy.lock:
            proxy.intervals.clear()
        r = gantry(tmp_path / "d1", "pull", "--max-concurrent-downloads", "1", name)
        assert r.returncode == 0, r.stderr
        assert len(proxy.intervals) == 5
        assert proxy.max_in_flight() == 1
        with Store(tmp_path / "d1") as dst:
            assert dst.resolve(name).id == img.id
        bad = gantry(tmp_path / "d0", "pull", "--max-concurrent-downloads", "0", name)
        assert bad.returncode != 0
        assert "--max-concurrent-downloads" in bad.stderr
    finally:
        proxy.close()


@pytest.mark.slow
def test_max_concurrent_uploads_bounds_blob_uploads_in_flight(
    tmp_path: Path, registry: RegistryThread
) -> None:
    proxy = IntervalProxy(registry.addr, up_delay=0.01, track=is_blob_put)
    try:
        one, five = f"{proxy.addr}/c/one:1", f"{proxy.addr}/c/five:1"
        root = tmp_path / "src"
        with Store(root) as src:
            make_image(src, [random_layer(700_000, 20 + i) for i in range(4)], one)
            make_image(src, [random_layer(700_000, 30 + i) for i in range(4)], five)
        r = gantry(root, "push", "--max-concurrent-uploads", "1", one)
        assert r.returncode == 0, r.stderr
        assert len(proxy.intervals) == 5  # one PUT per blob: 4 layers and the config
        assert proxy.max_in_flight() == 1
        # the default (5) does overlap: the measure can see it
        with proxy.lock:
            proxy.intervals.clear()
        r = gantry(root, "push", five)
        assert r.returncode == 0, r.stderr
        assert len(proxy.intervals) == 5
        assert proxy.max_in_flight() >= 2
        assert catalog(registry.addr) == ["c/five", "c/one"]
    finally:
        proxy.close()


# -- podman pulls and runs what gantry pushed to distribution -----------------------


@pytest.mark.slow
@pytest.mark.peers
def test_podman_pulls_and_runs_an_image_gantry_pushed_to_distribution(tmp_path: Path) -> None:
    storage = Path(tempfile.mkdtemp(prefix="gp-", dir="/dev/shm"))  # runroot <= 50 chars
    podman = [
        "podman",
        "--root", str(storage / "root"),
        "--runroot", str(storage / "run"),
        "--storage-driver", "vfs",
        "--cgroup-manager", "cgroupfs",
        "--events-backend", "file",
    ]  # fmt: skip
    try:
        with distribution(tmp_path) as addr:
            root = tmp_path / "src"
            with Store(root) as src:
                img = add_busybox(src, f"{addr}/g/busybox:1")
            r = gantry(root, "push", f"{addr}/g/busybox:1")
            assert r.returncode == 0, r.stderr
            p = subprocess.run(
                [*podman, "pull", "--tls-verify=false", f"{addr}/g/busybox:1"],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert p.returncode == 0, p.stderr
            p = subprocess.run(
                [*podman, "image", "inspect", "--format", "{{.Id}}", f"{addr}/g/busybox:1"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert p.returncode == 0, p.stderr
            assert p.stdout.strip() == img.id.hex
            p = subprocess.run(
                [*podman, "run", "--rm", "--net=none", f"{addr}/g/busybox:1", "echo", "ok"],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert p.returncode == 0, p.stderr
            assert p.stdout == "ok\n"
    finally:
        subprocess.run([*podman, "rm", "-af"], capture_output=True, timeout=120)
        subprocess.run([*podman, "rmi", "-af"], capture_output=True, timeout=120)
        shutil.rmtree(storage, ignore_errors=True)
