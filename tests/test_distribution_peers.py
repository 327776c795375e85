"""Interop with real peers: distribution (docker-registry), skopeo, podman; SIGKILL mid-pull."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from gantry.distribution import RegistryClient, pull, push
from gantry.store import Store
from test_distribution_support import (
    FaultProxy,
    RegistryThread,
    distribution,
    make_image,
    random_layer,
)

pytestmark = [pytest.mark.slow, pytest.mark.peers]


def skopeo(*args: str) -> str:
    p = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_distribution_roundtrip_and_skopeo_both_ways(tmp_path: Path) -> None:
    with distribution(tmp_path) as addr, Store(tmp_path / "src") as src:
        img = make_image(src, [random_layer(200_000, i) for i in range(3)], f"{addr}/g/app:1")
        push(src, f"{addr}/g/app:1")
        # skopeo reads what gantry pushed, byte for byte
        raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{addr}/g/app:1")
        assert raw.encode() == src.manifest_bytes(img)
        out = tmp_path / "oci"
        skopeo("copy", "--src-tls-verify=false", f"docker://{addr}/g/app:1", f"oci:{out}:x")
        # skopeo pushes (docker schema 2 this time); gantry pulls the same image ID
        skopeo(
            "copy",
            "--format",
            "v2s2",
            "--dest-tls-verify=false",
            f"oci:{out}:x",
            f"docker://{addr}/s/app:2",
        )
        with Store(tmp_path / "dst") as dst:
            r = pull(dst, f"{addr}/s/app:2")
            assert r.image.id == img.id
            assert dst.check() == []
            statuses: list[str] = []
            again = pull(dst, f"{addr}/g/app:1", progress=lambda e: statuses.append(e.status))
            assert again.image.id == img.id
            # nothing moves and, the image being known, Docker prints no layer line; the
            # tag is new, so its status is "Downloaded newer image"
            assert statuses == ["1: Pulling from g/app", f"Digest: {img.manifest_digest}"]
            assert again.downloaded


def test_podman_pulls_what_gantry_pushed(tmp_path: Path) -> None:
    """An image gantry pushes is pulled by podman with the same image ID."""
    with RegistryThread(tmp_path / "reg") as reg, Store(tmp_path / "src") as src:
        addr = reg.addr
        img = make_image(src, [random_layer(50_000, 5)], f"{addr}/g/podman:1")
        push(src, f"{addr}/g/podman:1")
        storage = Path(tempfile.mkdtemp(prefix="gp-", dir="/dev/shm"))  # runroot <= 50 chars
        common = [
            "podman",
            "--root",
            str(storage / "root"),
            "--runroot",
            str(storage / "run"),
            "--storage-driver",
            "vfs",
        ]
        p = subprocess.run(
            [*common, "pull", "--tls-verify=false", f"{addr}/g/podman:1"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert p.returncode == 0, p.stderr
        p = subprocess.run(
            [*common, "image", "inspect", f"{addr}/g/podman:1"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)[0]["Id"] == img.id.hex
        subprocess.run([*common, "rmi", "-a", "-f"], capture_output=True, timeout=120)
        shutil.rmtree(storage, ignore_errors=True)


def test_sigkill_mid_pull_resumes(tmp_path: Path) -> None:
    with RegistryThread(tmp_path / "reg") as reg:
        with Store(tmp_path / "src") as src:
            img = make_image(src, [random_layer(6_000_000, 11)], f"{reg.addr}/g/big:1")
            push(src, f"{reg.addr}/g/big:1", client=RegistryClient(reg.addr))
        root = tmp_path / "dst"
        env = {**os.environ, "GANTRY_ROOT": str(root)}
        with FaultProxy(reg.addr, delay_per_chunk=0.01) as proxy:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gantry", "pull", f"{proxy.addr}/g/big:1"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            ingest = root / "content" / "ingest"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                sizes = [p.stat().st_size for p in ingest.glob("ref-*")] if ingest.exists() else []
                if sizes and max(sizes) > 1_000_000:
                    break
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            held = max(p.stat().st_size for p in ingest.glob("ref-*"))
            assert 0 < held < 6_100_000
            proxy.delay_per_chunk = 0
            p = subprocess.run(
                [sys.executable, "-m", "gantry", "pull", f"{proxy.addr}/g/big:1"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert p.returncode == 0, p.stderr
            assert any(r != "bytes=0-" for r in proxy.ranges)
        check = subprocess.run(
            [sys.executable, "-m", "gantry", "system", "check"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        with Store(root) as dst:
            assert dst.resolve(f"{proxy.addr}/g/big:1").id == img.id
