"""The tty progress view (frames as BuildKit draws them) and the CLI with --progress=tty."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest

from gantry.build.progress import TtyProgress
from gantry.store import Store
from test_build_support import add_busybox, gantry, need_root


def test_frame_numbers_cached_times_and_folded_output() -> None:
    out = io.StringIO()
    p = TtyProgress(out, width=60, height=40)
    a = p.vertex("[1/3] FROM docker.io/library/busybox:latest")
    p.done(a)
    b = p.vertex("[2/3] WORKDIR /app")
    p.cached(b)
    c = p.vertex("[3/3] RUN make")
    for i in range(10):
        p.log(c, f"line {i}\n".encode())
    frame = p.frame()
    assert re.fullmatch(r"\[\+\] Building \d+\.\ds \(2/3\)", frame[0])
    assert frame[1].startswith(" => [1/3] FROM docker.io/library/busybox:latest")
    assert frame[2].startswith(" => CACHED [2/3] WORKDIR /app") and frame[2].endswith(" 0.0s")
    assert frame[3].startswith(" => [3/3] RUN make")
    # the running step shows its last six lines
    assert frame[4:] == [f" => => # line {i}" for i in range(4, 10)]
    assert all(len(line) <= 60 for line in frame)
    p.done(c)
    p.summary(True)
    final = p.frame()
    assert final[0].endswith("(3/3) FINISHED")
    assert len(final) == 4  # the output folded away once the step finished
    text = out.getvalue()
    assert "\x1b[" in text  # drawn in place
    assert text.rstrip("\n").rsplit("\n", 4)[-4].startswith("\r[+] Building")


def test_failed_step_keeps_its_output_and_says_error() -> None:
    p = TtyProgress(io.StringIO(), width=80, height=40)
    n = p.vertex("[2/2] RUN false")
    p.log(n, b"boom\n")
    p.error(n, "exit code: 1")
    p.summary(False)
    frame = p.frame()
    assert frame[0].endswith("(0/1) ERROR")
    assert frame[1].startswith(" => ERROR [2/2] RUN false")
    assert frame[2] == " => => # boom"


def test_small_terminal_shows_the_latest_lines() -> None:
    p = TtyProgress(io.StringIO(), width=40, height=5)
    for i in range(10):
        p.done(p.vertex(f"[{i}/10] ENV X={i}"))
    p.summary(True)
    frame = p.frame()
    assert len(frame) == 5
    assert frame[-1].startswith(" => [9/10] ENV X=9")
    long = TtyProgress(io.StringIO(), width=30, height=10)
    long.vertex("[1/1] RUN " + "x" * 100)
    assert len(long.frame()[1]) <= 30
    long.summary(True)


def test_redraws_while_a_step_runs() -> None:
    out = io.StringIO()
    p = TtyProgress(out, width=50, height=20)
    n = p.vertex("[1/1] RUN sleep")
    time.sleep(0.35)
    p.done(n)
    p.summary(True)
    assert out.getvalue().count("[+] Building") >= 3


def test_cli_tty_progress(root: Path, tmp_path: Path) -> None:
    need_root()
    with Store(root) as s:
        add_busybox(s, tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo tty-out\n")
    r = gantry(root, "build", "--progress=tty", str(ctx))
    assert r.returncode == 0, r.stderr.decode()
    err = r.stderr.decode()
    last = err.split("[+] Building")[-1]
    assert "(3/3) FINISHED" in last  # the two steps and "exporting to image"
    assert " => [2/2] RUN echo tty-out" in last
    r = gantry(root, "build", "--progress=tty", str(ctx))
    assert " => CACHED [2/2] RUN echo tty-out" in r.stderr.decode().split("[+] Building")[-1]


@pytest.mark.parametrize("width", [20, 200])
def test_widths(width: int) -> None:
    p = TtyProgress(io.StringIO(), width=width, height=10)
    p.done(p.vertex("[1/1] COPY a b"))
    p.summary(True)
    assert all(len(line) <= max(width, 30) for line in p.frame()[1:])
