"""`gantry pull` on a terminal: Docker's per-layer lines updated in place, with bars."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gantry.distribution import RegistryClient, push
from gantry.store import Store
from test_distribution_support import FaultProxy, RegistryThread, make_image, random_layer

pytestmark = pytest.mark.slow


def run_in_pty(args: list[str], timeout: float = 60) -> str:
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120", "LINES": "40"}
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=10) == 0, out.decode(errors="replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return out.decode(errors="replace")


def test_pull_on_a_terminal_draws_bars_and_ends_with_dockers_lines(tmp_path: Path):
    with RegistryThread(tmp_path / "registry") as reg:
        with Store(tmp_path / "src") as src:
            make_image(
                src, [random_layer(1_500_000, seed=i) for i in range(2)], f"{reg.addr}/t/app:1"
            )
            push(src, f"{reg.addr}/t/app:1", client=RegistryClient(reg.addr))
        with FaultProxy(reg.addr, delay_per_chunk=0.03) as proxy:
            out = run_in_pty(
                [
                    sys.executable,
                    "-m",
                    "gantry",
                    "--root",
                    str(tmp_path / "dst"),
                    "pull",
                    f"{proxy.addr}/t/app:1",
                ]
            )
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)  # cursor moves and colours
    assert re.search(r"Downloading \[=*>? *\] +[\d.]+[kM]B/[\d.]+MB", text), text
    assert "\x1b[" in out  # redrawn in place, not appended
    assert text.count("Pull complete") >= 2
    assert "Status: Downloaded newer image for" in text
    assert text.rstrip().endswith(f"{proxy.addr}/t/app:1")
