"""A load or import killed with SIGKILL at any point leaves a clean store: no partial image,
nothing `system check` would report, and the next attempt succeeds."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gantry.archive import import_image, save_to_path
from gantry.store import Store
from test_archive_support import entry, gantry, make_tar

pytestmark = pytest.mark.slow


def _big_rootfs(path: Path) -> Path:
    rnd = random.Random(7)
    files = [entry(f"data/f{i}", rnd.randbytes(6 << 20)) for i in range(4)]
    files += [entry(f"small/{i}", b"x" * i) for i in range(300)]
    path.write_bytes(make_tar(files))
    return path


def _kill_loop(root: Path, args: list[str], rounds: int) -> int:
    """Start ``gantry ARGS`` and SIGKILL it at a random point of its run, ``rounds`` times."""
    env = {**os.environ, "GANTRY_ROOT": str(root)}
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "gantry", *args],
        env={**env, "GANTRY_ROOT": str(root) + "-timing"},
        capture_output=True,
        check=True,
    )
    duration = time.monotonic() - t0
    killed = 0
    rnd = random.Random(11)
    for _ in range(rounds):
        p = subprocess.Popen(
            [sys.executable, "-m", "gantry", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rnd.uniform(0.02, duration * 0.95))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed += 1
        p.wait()
    return killed


def _assert_clean(root: Path, tag: str) -> None:
    with Store(root) as s:
        assert s.check() == []
        for img in s.images():
            # any image present is complete: every layer readable, config parses
            assert s.config(img).diff_ids
            for layer in s.layers(img):
                assert s.content.verify(layer.digest)
        if s.images():
            assert [t for t, _ in s.tags()] == [f"docker.io/library/{tag}"]


def test_killed_imports_leave_the_store_clean(shm_tmp: Path) -> None:
    src = _big_rootfs(shm_tmp / "rootfs.tar")
    root = shm_tmp / "root"
    killed = _kill_loop(root, ["import", str(src), "big:1"], rounds=12)
    assert killed >= 6  # most attempts were really interrupted
    _assert_clean(root, "big:1")
    assert gantry(root, "import", str(src), "big:1").returncode == 0
    _assert_clean(root, "big:1")


def test_killed_loads_leave_the_store_clean(shm_tmp: Path) -> None:
    src = _big_rootfs(shm_tmp / "rootfs.tar")
    origin = shm_tmp / "origin"
    with Store(origin) as s:
        import_image(s, src, "big:2")
        save_to_path(s, ["big:2"], shm_tmp / "big.tar")
    root = shm_tmp / "root"
    killed = _kill_loop(root, ["load", "-i", str(shm_tmp / "big.tar")], rounds=12)
    assert killed >= 6
    _assert_clean(root, "big:2")
    r = gantry(root, "load", "-i", str(shm_tmp / "big.tar"))
    assert r.returncode == 0 and r.stdout == b"Loaded image: big:2\n"
    _assert_clean(root, "big:2")
