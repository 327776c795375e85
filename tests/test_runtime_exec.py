"""OCIRuntime.exec and the pidfd wait under create/exec, with real runc (root).

The fixtures (busybox rootfs under an overlay, a runtime root on /dev/shm that must be empty
afterwards) are the ones of tests/test_runtime_runc.py.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.errors import ContainerError
from gantry.runtime.oci_runtime import OCIRuntime, new_container_id, wait_child
from gantry.runtime.spec import SpecOptions, generate, write_config
from test_runtime_runc import base, busybox, layer, runtime

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.peers]
__all__ = ["base", "busybox", "layer", "runtime"]  # fixtures, used by name


@pytest.fixture
def running(
    runtime: OCIRuntime, layer: tuple[Path, Path], tmp_path: Path
) -> Iterator[tuple[str, dict[str, object]]]:
    """A started ``sleep 60`` container: (id, its spec's process object)."""
    rootfs, _ = layer
    cid = new_container_id()
    spec = generate(SpecOptions(args=["sleep", "60"], rootfs=str(rootfs)))
    write_config(tmp_path / "bundle", spec)
    runtime.create(tmp_path / "bundle", cid)
    try:
        runtime.start(cid)
        yield cid, dict(spec["process"])
    finally:
        runtime.delete(cid, force=True)


def _exec(rt: OCIRuntime, cid: str, process: dict[str, object], *argv: str, **kw: object) -> tuple[int, str]:  # fmt: skip
    with tempfile.TemporaryFile() as out:
        code = rt.exec(cid, {**process, "args": list(argv)}, stdout=out, stderr=subprocess.STDOUT,
                       **kw)  # type: ignore[arg-type]  # fmt: skip
        out.seek(0)
        return code, out.read().decode()


def test_exec_output_exit_code_and_env(
    runtime: OCIRuntime, running: tuple[str, dict[str, object]]
) -> None:
    cid, process = running
    env = [*process["env"], "A=b"]  # type: ignore[misc]  # a list in every spec
    code, out = _exec(runtime, cid, {**process, "env": env}, "sh", "-c", "echo $A; exit 7")
    assert (code, out) == (7, "b\n")
    # the container's init is PID 1 of the namespace the exec joined
    code, out = _exec(runtime, cid, process, "cat", "/proc/1/cmdline")
    assert code == 0 and out.split("\0")[0] == "sleep"


def test_exec_missing_command_is_127(
    runtime: OCIRuntime, running: tuple[str, dict[str, object]]
) -> None:
    cid, process = running
    with pytest.raises(ContainerError, match="exec failed") as err:
        _exec(runtime, cid, process, "/no/such/thing")
    assert err.value.exit_code == 127


def test_exec_timeout_and_detach(
    runtime: OCIRuntime, running: tuple[str, dict[str, object]]
) -> None:
    cid, process = running
    t0 = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        _exec(runtime, cid, process, "sleep", "30", timeout=0.5)
    assert time.monotonic() - t0 < 10
    assert runtime.exec(cid, {**process, "args": ["sleep", "30"]}, detach=True) == 0
    _, out = _exec(runtime, cid, process, "ps", "-o", "args")
    assert out.count("sleep 30") == 2  # the timed-out runc was killed, not its process


def test_wait_child_does_not_poll() -> None:
    """A child that exits after 0.3 s is seen at once (Popen.wait would sleep up to 50 ms
    past it); one that does not exit in time raises TimeoutExpired."""
    p = subprocess.Popen(["sleep", "0.3"])
    t0 = time.monotonic()
    assert wait_child(p, 10) == 0
    assert time.monotonic() - t0 < 5
    p = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            wait_child(p, 0.2)
    finally:
        p.kill()
        p.wait()
    assert wait_child(p, 1) == -9  # already reaped: the code Popen kept
