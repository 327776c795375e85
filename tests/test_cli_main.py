from __future__ import annotations

import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gantry", *args], capture_output=True, text=True)


def test_help_lists_commands() -> None:
    p = run("--help")
    assert p.returncode == 0
    assert "version" in p.stdout


def test_unknown_command_is_one_line_error() -> None:
    p = run("frobnicate")
    assert p.returncode != 0
    assert "No such command 'frobnicate'" in p.stderr
