"""Shared helpers for the container tests: a store root with busybox images, the CLI as a
subprocess, and a clean-up that leaves no container, mount, runc state or supervisor.

The busybox image is made the way ``gantry import`` would (scripts/busybox-rootfs.sh, one
layer written with gantry.layers, ``Store.add_image``), with image configs chosen per test
(STOPSIGNAL, ENTRYPOINT, VOLUME, WORKDIR...).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from gantry.oci import (
    ContainerConfig,
    Descriptor,
    History,
    ImageConfig,
    Manifest,
    RootFS,
    mediatypes,
)
from gantry.store import Image, Store

PROJECT = Path(__file__).resolve().parent.parent
GANTRY = [sys.executable, "-m", "gantry"]
_LAYER: tuple[bytes, str] | None = None


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("container tests need root (overlay mounts and runc)")


def busybox_layer() -> tuple[bytes, str]:
    """(gzip layer bytes, diff ID) of a busybox rootfs, built once per session."""
    global _LAYER
    if _LAYER is None:
        from gantry.layers.create import create

        tmp = Path(tempfile.mkdtemp(prefix="gantry-bb-", dir="/dev/shm"))
        try:
            rootfs = tmp / "rootfs"
            subprocess.run(
                [str(PROJECT / "scripts" / "busybox-rootfs.sh"), str(rootfs)],
                check=True,
                capture_output=True,
            )
            (rootfs / "www").mkdir()
            (rootfs / "www" / "index.html").write_text("hello from busybox httpd\n")
            buf = io.BytesIO()
            info = create(rootfs, buf, source_date_epoch=0, compression="gzip")
            _LAYER = (buf.getvalue(), str(info.diff_id))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _LAYER


def add_image(store: Store, tag: str = "busybox:latest", **config: Any) -> Image:
    """A busybox image tagged ``tag`` whose container config has ``config`` (snake_case)."""
    data, diff_id = busybox_layer()
    layer_digest = store.content.write(data)
    cfg = {
        "env": ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
        "cmd": ("sh",),
    }
    cfg.update(config)
    image_config = ImageConfig(
        architecture="amd64",
        os="linux",
        rootfs=RootFS(diff_ids=(diff_id,)),
        config=ContainerConfig(**cfg),
        created="2024-01-01T00:00:00Z",
        history=(History(created="2024-01-01T00:00:00Z", created_by="ADD busybox /"),),
    )
    raw = image_config.to_json()
    cd = store.content.write(raw)
    manifest = Manifest(
        config=Descriptor(mediatypes.OCI_CONFIG, cd, len(raw)),
        layers=(Descriptor(mediatypes.OCI_LAYER_GZIP, layer_digest, len(data)),),
    )
    return store.add_image(manifest.to_json(), tags=[tag])


def gantry(
    root: Path, *args: str, input: bytes | None = None, timeout: float = 60, check: bool = False
) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, GANTRY_ROOT=str(root), PYTHONPATH=str(PROJECT / "src"))
    env.pop("GANTRY_DEBUG", None)
    p = subprocess.run(
        [*GANTRY, *args],
        input=input,
        capture_output=True,
        timeout=timeout,
        env=env,
        stdin=None if input is not None else subprocess.DEVNULL,
        check=False,
    )
    if check and p.returncode != 0:
        raise AssertionError(
            f"gantry {' '.join(args)} exited {p.returncode}: {p.stderr.decode(errors='replace')}"
        )
    return p


def out(p: subprocess.CompletedProcess[bytes]) -> str:
    return p.stdout.decode()


def err(p: subprocess.CompletedProcess[bytes]) -> str:
    return p.stderr.decode()


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        time.sleep(interval)


def mounts_under(path: Path) -> list[str]:
    real = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if mp == real or mp.startswith(real + "/"):
                found.append(mp)
    return found


def runc_containers(root: Path) -> list[str]:
    state = root / "runtime" / "runc"
    if not state.is_dir():
        return []
    p = subprocess.run(
        ["runc", "--root", str(state), "list", "-q"], capture_output=True, check=False
    )
    return [line for line in p.stdout.decode().split() if line]


def supervisor_pids(root: Path) -> list[int]:
    """Supervisors of ``root``: named gantry-supervis(or), working in a container dir."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if comm.startswith("gantry-supervis") and cwd.startswith(str(root) + "/"):
            pids.append(int(entry))
    return pids


def cleanup_root(root: Path) -> list[str]:
    """Remove every container of ``root`` through the library; report what was left."""
    from gantry.containers import Containers

    problems: list[str] = []
    if not (root / "meta.db").exists():
        return problems
    with Containers(root) as mgr:
        for c in mgr.store.containers():
            with contextlib.suppress(Exception):
                mgr.remove(c.id, force=True, volumes=True)
    deadline = time.monotonic() + 10
    while supervisor_pids(root) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in supervisor_pids(root):
        problems.append(f"supervisor {pid} still running")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    for mp in mounts_under(root):
        problems.append(f"mount left: {mp}")
        subprocess.run(["umount", "-l", mp], check=False)
    for cid in runc_containers(root):
        problems.append(f"runc container left: {cid}")
        subprocess.run(
            ["runc", "--root", str(root / "runtime" / "runc"), "delete", "-f", cid], check=False
        )
    with contextlib.suppress(Exception):
        from gantry.runtime.net import manager

        for cid in manager.endpoints(root=root):
            problems.append(f"network endpoint left: {cid}")
            manager.teardown(cid, root=root)
    return problems


@pytest.fixture
def croot() -> Iterator[Path]:
    """A fresh store root on /dev/shm with ``busybox:latest``; checked clean afterwards."""
    need_root()
    d = Path(tempfile.mkdtemp(prefix="gantry-ctr-", dir="/dev/shm"))
    root = d / "root"
    with Store(root) as store:
        add_image(store)
    try:
        yield root
    finally:
        try:
            problems = cleanup_root(root)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        assert not problems, problems


def inspect(root: Path, ref: str) -> dict[str, Any]:
    p = gantry(root, "container", "inspect", ref, check=True)
    docs = json.loads(p.stdout)
    assert isinstance(docs, list) and len(docs) == 1
    return dict(docs[0])


def image_with(root: Path, tag: str, **config: Any) -> None:
    with Store(root) as store:
        add_image(store, tag, **config)


def labels(d: Mapping[str, Any]) -> dict[str, str]:
    return dict(d.get("Config", {}).get("Labels") or {})
