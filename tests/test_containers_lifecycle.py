"""run / create / start / stop / kill / rm / ps / logs / wait / inspect with runc for real."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from test_containers_support import (
    err,
    gantry,
    image_with,
    inspect,
    mounts_under,
    out,
    runc_containers,
    supervisor_pids,
    wait_for,
)

pytestmark = pytest.mark.slow
pytest_plugins = ["test_containers_support"]  # the croot fixture


def test_foreground_output_streams_and_exit_codes(croot: Path) -> None:
    p = gantry(
        croot, "run", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7"
    )
    assert p.returncode == 7
    assert out(p) == "out\n"
    assert err(p) == "err\n"
    p = gantry(croot, "run", "--rm", "--network", "none", "busybox", "nosuchcmd")
    assert p.returncode == 127
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in err(p)
    p = gantry(croot, "run", "--rm", "--network", "none", "busybox", "/etc/passwd")
    assert p.returncode == 126
    p = gantry(croot, "run", "--pull", "never", "nosuchimage:1", "true")
    assert p.returncode == 125
    assert "No such image" in err(p)
    p = gantry(croot, "run", "--nosuchflag", "busybox")
    assert p.returncode == 125


def test_run_rm_leaves_nothing_behind(croot: Path) -> None:
    p = gantry(croot, "run", "--rm", "busybox", "sh", "-c", "echo hi > /file; cat /file")
    assert p.returncode == 0, err(p)
    assert out(p) == "hi\n"
    assert gantry(croot, "ps", "-aq").stdout == b""
    assert os.listdir(croot / "containers") == []
    assert mounts_under(croot) == []
    assert runc_containers(croot) == []
    from gantry.store import Store

    with Store(croot) as s:
        snaps = s.snapshots()
    assert [x.refcount for x in snaps] == [1]  # only the image holds its snapshot


def test_detached_ps_logs_stop_with_image_stopsignal(croot: Path) -> None:
    image_with(croot, "sig:1", stop_signal="SIGUSR1", cmd=(
        "sh", "-c", 'echo started; trap "echo got USR1; exit 3" USR1; '
        "while true; do sleep 0.05; done",
    ))  # fmt: skip
    p = gantry(croot, "run", "-d", "--name", "web", "sig:1")
    assert p.returncode == 0, err(p)
    cid = out(p).strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert supervisor_pids(croot), "a supervisor runs the detached container"
    ps = out(gantry(croot, "ps"))
    header, row = ps.splitlines()
    assert header.split() == [
        "CONTAINER",
        "ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    assert row.startswith(cid[:12] + "   sig:1 ")
    assert re.search(r"\s{3}Up (Less than a second|\d+ seconds?)\s", row)
    assert row.endswith("web")
    wait_for(lambda: "started" in out(gantry(croot, "logs", "web")))
    t0 = time.monotonic()
    p = gantry(croot, "stop", "web")
    assert p.returncode == 0 and out(p) == "web\n"
    assert time.monotonic() - t0 < 5, "the image's STOPSIGNAL ended it, not the 10 s SIGKILL"
    logs = gantry(croot, "logs", "web")
    assert out(logs) == "started\ngot USR1\n"
    doc = inspect(croot, "web")
    assert doc["State"]["Status"] == "exited"
    assert doc["State"]["ExitCode"] == 3
    assert doc["Config"]["StopSignal"] == "SIGUSR1"
    status = out(gantry(croot, "ps", "-a", "--format", "{{.Status}}")).strip()
    assert re.fullmatch(r"Exited \(3\) (Less than a second|\d+ seconds?) ago", status)
    assert supervisor_pids(croot) == []
    assert mounts_under(croot) == []


def test_stop_timeout_then_sigkill(croot: Path) -> None:
    cid = out(gantry(croot, "run", "-d", "busybox", "sleep", "100")).strip()
    t0 = time.monotonic()
    assert gantry(croot, "stop", "-t", "1", cid[:8]).returncode == 0
    assert 0.9 < time.monotonic() - t0 < 6  # sleep as PID 1 ignores SIGTERM
    assert inspect(croot, cid)["State"]["ExitCode"] == 137


def test_kill_signal_and_not_running(croot: Path) -> None:
    cid = out(gantry(croot, "run", "-d", "busybox", "sh", "-c",
                     'trap "exit 42" HUP; while :; do sleep 0.05; done')).strip()  # fmt: skip
    assert gantry(croot, "kill", "-s", "HUP", cid).returncode == 0
    assert out(gantry(croot, "wait", cid)) == "42\n"
    p = gantry(croot, "kill", cid)
    assert p.returncode == 1
    assert "is not running" in err(p)


def test_rm_refuses_running_unless_forced(croot: Path) -> None:
    cid = out(gantry(croot, "run", "-d", "--name", "busy", "busybox", "sleep", "100")).strip()
    p = gantry(croot, "rm", "busy")
    assert p.returncode == 1
    assert "stop the container before removing or force remove" in err(p)
    p = gantry(croot, "rm", "-f", "busy")
    assert p.returncode == 0 and out(p) == "busy\n"
    assert gantry(croot, "ps", "-aq").stdout == b""
    assert not (croot / "containers" / cid).exists()
    p = gantry(croot, "rm", "busy")
    assert p.returncode == 1 and "No such container: busy" in err(p)


def test_names_unique_and_random(croot: Path) -> None:
    gantry(croot, "create", "--name", "one", "busybox", check=True)
    p = gantry(croot, "create", "--name", "one", "busybox")
    assert p.returncode == 125
    assert 'The container name "/one" is already in use by container' in err(p)
    p = gantry(croot, "create", "--name", "bad name", "busybox")
    assert p.returncode == 125
    names = set()
    for _ in range(3):
        cid = out(gantry(croot, "create", "busybox", check=True)).strip()
        names.add(inspect(croot, cid)["Name"])
    assert all(re.fullmatch(r"/[a-z]+_[a-z_]+\d?", n) for n in names), names
    assert len(names) == 3


def test_create_then_start_and_wait(croot: Path) -> None:
    cid = out(gantry(croot, "create", "busybox", "sh", "-c", "echo created-run; exit 5")).strip()
    assert out(gantry(croot, "ps", "-a", "--format", "{{.Status}}")) == "Created\n"
    assert inspect(croot, cid)["State"]["Status"] == "created"
    p = gantry(croot, "start", cid)
    assert p.returncode == 0 and out(p) == cid + "\n"
    assert out(gantry(croot, "wait", cid)) == "5\n"
    assert out(gantry(croot, "logs", cid)) == "created-run\n"
    # started again: the log grows, as Docker's does
    gantry(croot, "start", cid, check=True)
    assert out(gantry(croot, "wait", cid)) == "5\n"
    assert out(gantry(croot, "logs", cid)) == "created-run\ncreated-run\n"


def test_logs_tail_timestamps_since_and_follow(croot: Path, tmp_path: Path) -> None:
    # the container writes "late" only once the test says so: the checks below must see
    # "oops" as the last entry however slowly a loaded machine runs them
    sync = tmp_path / "sync"
    sync.mkdir()
    cid = out(gantry(croot, "run", "-d", "-v", f"{sync}:/sync", "busybox", "sh", "-c",
                     "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; "
                     "while [ ! -e /sync/go ]; do sleep 0.1; done; echo late")).strip()  # fmt: skip
    wait_for(lambda: "oops" in err(gantry(croot, "logs", cid)))
    p = gantry(croot, "logs", "--tail", "2", cid)
    assert out(p) == "line5\n" and err(p) == "oops\n"  # the last 2 entries of both streams
    p = gantry(croot, "logs", "-t", "-n", "1", cid)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z oops\n", err(p))
    assert out(gantry(croot, "logs", "--since", "1h", cid)).startswith("line1\n")
    assert out(gantry(croot, "logs", "--until", "2000-01-01T00:00:00Z", cid)) == ""
    # -f returns once the container exits, with everything it wrote
    (sync / "go").touch()
    p = gantry(croot, "logs", "-f", cid, timeout=20)
    assert out(p).endswith("line5\nlate\n")
    raw = (croot / "containers" / cid / f"{cid}-json.log").read_text().splitlines()
    first = json.loads(raw[0])
    assert list(first) == ["log", "stream", "time"] and first["log"] == "line1\n"
    assert raw[0].startswith('{"log":"line1\\n","stream":"stdout","time":"')


def test_restart_on_failure_three_times(croot: Path) -> None:
    cid = out(gantry(croot, "run", "-d", "--restart", "on-failure:3", "busybox", "sh", "-c",
                     "echo run; exit 1")).strip()  # fmt: skip

    def done() -> bool:
        d = inspect(croot, cid)
        return d["State"]["Status"] == "exited" and d["RestartCount"] == 3

    wait_for(done, timeout=20)
    time.sleep(0.5)
    doc = inspect(croot, cid)
    assert doc["RestartCount"] == 3 and doc["State"]["ExitCode"] == 1
    assert out(gantry(croot, "logs", cid)) == "run\n" * 4
    assert doc["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}


def test_restart_always_survives_exit_but_not_stop(croot: Path) -> None:
    cid = out(gantry(croot, "run", "-d", "--restart", "always", "busybox", "sh", "-c",
                     "echo up; sleep 0.2")).strip()  # fmt: skip
    wait_for(lambda: inspect(croot, cid)["RestartCount"] >= 2, timeout=20)
    gantry(croot, "stop", "-t", "1", cid, check=True)
    time.sleep(0.5)
    doc = inspect(croot, cid)
    assert doc["State"]["Status"] == "exited"
    count = doc["RestartCount"]
    time.sleep(1.0)
    assert inspect(croot, cid)["RestartCount"] == count
    assert supervisor_pids(croot) == []


def test_killed_supervisor_is_reconciled(croot: Path) -> None:
    cid = out(gantry(croot, "run", "-d", "busybox", "sleep", "100")).strip()
    doc = inspect(croot, cid)
    ctr_pid = doc["State"]["Pid"]
    (sup,) = supervisor_pids(croot)
    os.kill(sup, signal.SIGKILL)  # the supervisor this test started
    wait_for(lambda: sup not in supervisor_pids(croot))
    # the container outlived its supervisor: still running
    assert inspect(croot, cid)["State"]["Status"] == "running"
    os.kill(ctr_pid, signal.SIGKILL)

    def gone() -> bool:
        try:
            stat = Path(f"/proc/{ctr_pid}/stat").read_text()
        except OSError:
            return True
        return stat.rsplit(")", 1)[1].split()[0] == "Z"

    wait_for(gone)
    doc = wait_for(lambda: (d := inspect(croot, cid))["State"]["Status"] == "exited" and d)
    assert doc["State"]["ExitCode"] == 255
    assert "exit status unknown" in doc["State"]["Error"]
    assert mounts_under(croot) == []
    assert gantry(croot, "rm", cid).returncode == 0


def test_inspect_document_shape(croot: Path) -> None:
    cid = out(gantry(croot, "create", "--name", "shape", "-e", "A=1", "-l", "k=v",
                     "busybox", "echo", "x y")).strip()  # fmt: skip
    doc = inspect(croot, "shape")
    assert list(doc)[:6] == ["Id", "Created", "Path", "Args", "State", "Image"]
    assert doc["Id"] == cid and doc["Name"] == "/shape"
    assert doc["Path"] == "echo" and doc["Args"] == ["x y"]
    assert set(doc["State"]) >= {"Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead",
                                 "Pid", "ExitCode", "Error", "StartedAt", "FinishedAt"}  # fmt: skip
    assert doc["State"]["StartedAt"] == "0001-01-01T00:00:00Z"
    assert doc["Config"]["Env"][-1] == "A=1" and doc["Config"]["Labels"] == {"k": "v"}
    assert doc["Config"]["Cmd"] == ["echo", "x y"] and doc["Config"]["Entrypoint"] is None
    assert doc["Image"].startswith("sha256:")
    assert (
        out(gantry(croot, "inspect", "-f", "{{.Name}} {{.State.Status}}", "shape"))
        == "/shape created\n"
    )
    # top-level inspect: containers first, then images
    assert json.loads(out(gantry(croot, "inspect", "busybox")))[0]["RepoTags"] == ["busybox:latest"]
    p = gantry(croot, "inspect", "nothing-by-that-name")
    assert p.returncode == 1 and "No such object: nothing-by-that-name" in err(p)
    ps = out(
        gantry(croot, "ps", "-a", "--no-trunc", "--format", "{{.Command}}|{{.Labels}}|{{.Names}}")
    )
    assert ps == "\"echo 'x y'\"|k=v|shape\n"


def test_prune_removes_only_stopped(croot: Path) -> None:
    stopped = out(gantry(croot, "run", "-d", "busybox", "true")).strip()
    gantry(croot, "wait", stopped, check=True)
    running = out(gantry(croot, "run", "-d", "busybox", "sleep", "100")).strip()
    p = gantry(croot, "container", "prune", "-f")
    assert out(p).startswith(f"Deleted Containers:\n{stopped}\n\nTotal reclaimed space: ")
    assert out(gantry(croot, "ps", "-aq", "--no-trunc")) == running + "\n"
    p = gantry(croot, "container", "prune", input=b"n\n")
    assert "Are you sure you want to continue? [y/N]" in out(p)


def test_ps_filters_and_quiet(croot: Path) -> None:
    a = out(gantry(croot, "create", "--name", "alpha", "-l", "tier=web", "busybox")).strip()
    b = out(gantry(croot, "run", "-d", "--name", "beta", "busybox", "sh", "-c", "exit 3")).strip()
    gantry(croot, "wait", b, check=True)
    q = lambda *f: out(gantry(croot, "ps", "-aq", *f)).split()  # noqa: E731
    assert q() == [b[:12], a[:12]]
    assert q("--filter", "name=alp") == [a[:12]]
    assert q("--filter", "label=tier=web") == [a[:12]]
    assert q("--filter", "exited=3") == [b[:12]]
    assert q("--filter", "status=created") == [a[:12]]
    assert q("--filter", f"since={a[:12]}") == [b[:12]]
    assert out(gantry(croot, "ps", "-q")) == ""
    assert out(gantry(croot, "ps", "-a", "-n", "1", "--format", "{{.Names}}")) == "beta\n"
    p = gantry(croot, "ps", "--filter", "bogus=1")
    assert p.returncode != 0 and "invalid filter 'bogus'" in err(p)
