"""``gantry run`` without click (gantry.cli.run.quick_parse/quick_run, used by
``python -m gantry``): it must read a command line exactly as the click command does, and
leave everything else to click."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gantry.cli.run import RUN_DEFAULTS, quick_parse, quick_run
from test_containers_support import err, gantry, out

pytest_plugins = ["test_containers_support"]  # the croot fixture


def click_parse(args: list[str]) -> dict[str, Any]:
    from gantry.cli.run import run

    ctx = run.make_context("run", list(args))
    return dict(ctx.params)


def test_defaults_are_the_click_commands() -> None:
    params = click_parse(["busybox"])
    assert params.pop("image") == "busybox"
    assert params == RUN_DEFAULTS


@pytest.mark.parametrize(
    "args",
    [
        ["busybox"],
        ["--rm", "busybox", "true"],
        ["--rm", "--network", "none", "busybox", "true"],
        ["--network=none", "--rm", "busybox", "sh", "-c", "echo hi --rm"],
        ["-d", "--name", "web", "busybox", "sleep", "300"],
        ["--name=web", "--detach", "busybox"],
        ["-it", "busybox", "sh"],
        ["-dit", "--rm", "busybox"],
        ["-ti", "--net", "host", "busybox"],
        ["-e", "A=1", "--env", "B", "--env=C=3", "-e", "--x", "busybox", "env"],
        ["-w", "/tmp", "-u", "1:2", "--entrypoint", "", "busybox", "-l"],
        ["--workdir=/", "--user=root", "--entrypoint=/bin/sh", "busybox"],
        ["-l", "a=b", "--label", "c", "busybox", "--rm"],
        ["--interactive", "--tty", "busybox", "-d"],
    ],
)
def test_quick_parse_reads_what_click_reads(args: list[str]) -> None:
    assert quick_parse(args) == click_parse(args)


@pytest.mark.parametrize(
    "args",
    [
        [],  # no image: click's usage error
        ["--rm"],
        ["--network"],  # a value is missing
        ["--help"],
        ["-p", "80:80", "busybox"],  # not a quick flag
        ["--rm=true", "busybox"],
        ["-eA=1", "busybox"],  # attached short value
        ["-itp", "busybox"],
        ["--", "busybox"],
        ["-", "busybox"],
        ["--pull", "always", "busybox"],
    ],
)
def test_quick_parse_leaves_other_shapes_to_click(args: list[str]) -> None:
    assert quick_parse(args) is None


@pytest.mark.parametrize(
    "argv",
    [
        ["ps", "-a"],
        ["--help"],
        ["--root"],
        ["--nosuch", "run", "busybox"],
        ["container", "run", "busybox"],
        ["run", "--help"],
        ["run", "-p", "1:1", "busybox"],
    ],
)
def test_quick_run_declines_without_doing_anything(argv: list[str], tmp_path: Path) -> None:
    assert quick_run(["--root", str(tmp_path / "r"), *argv]) is None
    assert not (tmp_path / "r").exists()


def test_a_root_that_is_a_file_is_clicks_error(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("")
    assert quick_run(["--root", str(f), "run", "busybox"]) is None
    p = subprocess.run(
        [sys.executable, "-m", "gantry", "--root", str(f), "run", "busybox"],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 125
    assert "is a file" in p.stderr


def test_quick_and_click_paths_agree(croot: Path) -> None:
    """The same runs, once quick and once through click (``--pull missing`` is not a quick
    flag and changes nothing): same output, errors and exit codes, nothing left behind."""
    cases = [
        ["--rm", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7"],
        ["--rm", "--network", "none", "busybox", "nosuchcmd"],
        ["--rm", "--network", "none", "-e", "A=1", "busybox", "sh", "-c", "echo $A"],
        ["--rm", "-t", "busybox", "true"],  # stdin is not a terminal here
        ["--rm", "--network", "none", "--name", "bad name", "busybox"],
        # not in the store: the quick path hands over to click, which pulls (and fails)
        ["--rm", "--network", "none", "127.0.0.1:1/nosuchimage:1", "true"],
    ]
    for args in cases:
        quick = gantry(croot, "run", *args)
        slow = gantry(croot, "run", "--pull", "missing", *args)
        assert (quick.returncode, out(quick), err(quick)) == (
            slow.returncode,
            out(slow),
            err(slow),
        ), args
    assert "Unable to find image '127.0.0.1:1/nosuchimage:1' locally" in err(quick)
    assert gantry(croot, "ps", "-aq").stdout == b""
    assert out(gantry(croot, "system", "check")).strip() == "No problems found"
