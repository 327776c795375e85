"""Container behaviour from the CLI that other tests leave unproven: `--network host` sees the
host's interfaces, `--restart unless-stopped` (restarts after failures, not after `stop`, is
re-armed by `start`), `volume prune` as current Docker does it (anonymous volumes only unless
`-a`), and the OCI bundle of a real container validates against the runtime-spec schema.

About `unless-stopped` against `always`: in Docker the two differ only when the daemon starts
(after a daemon restart or a reboot, `always` containers are started again even if the user had
stopped them; `unless-stopped` ones the user stopped stay down). gantry has no daemon: nothing
starts containers when a machine boots, so a container whose supervisor and process are gone
is reconciled to `exited` (255, "exit status unknown") whatever its policy. That is what
test_policies_after_a_lost_supervisor_are_the_same proves; both policies behave as Docker's
otherwise (restart after failures, not after `stop`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from gantry.runtime.spec import DEFAULT_CAPABILITIES, MASKED_PATHS
from test_containers_support import (
    err,
    gantry,
    inspect,
    out,
    supervisor_pids,
    wait_for,
)
from test_runtime_spec import spec_errors

pytestmark = [pytest.mark.slow, pytest.mark.root]
pytest_plugins = ["test_containers_support"]  # the croot fixture

ANON_WARNING = (
    "WARNING! This will remove anonymous local volumes not used by at least one container.\n"
    "Are you sure you want to continue? [y/N] "
)
ALL_WARNING = (
    "WARNING! This will remove all local volumes not used by at least one container.\n"
    "Are you sure you want to continue? [y/N] "
)


def _interfaces(text: str) -> set[str]:
    """Interface names from /proc/net/dev (two header lines, then `name: counters`)."""
    return {line.split(":", 1)[0].strip() for line in text.splitlines()[2:] if ":" in line}


# ------------------------------------------------------------------------ --network host


def test_network_host_sees_the_hosts_interfaces(croot: Path) -> None:
    p = gantry(croot, "run", "--rm", "--network", "host", "busybox", "cat", "/proc/net/dev")
    assert p.returncode == 0, err(p)
    seen = _interfaces(out(p))
    host = _interfaces(Path("/proc/net/dev").read_text())
    # other tests add and remove veths meanwhile: compare what is not a veth
    stable = {n for n in host if not n.startswith("veth")}
    assert stable <= seen, (stable, seen)
    assert len(stable) >= 2  # lo and at least the host's uplink
    # the same image on the default bridge sees its own namespace: lo and eth0 only
    p = gantry(croot, "run", "--rm", "busybox", "cat", "/proc/net/dev")
    assert p.returncode == 0, err(p)
    assert _interfaces(out(p)) == {"lo", "eth0"}
    # host networking also means the host's hostname and no address of its own (Docker)
    p = gantry(croot, "run", "--network", "host", "--name", "hostnet", "busybox", "hostname")
    assert out(p) == os.uname().nodename + "\n"
    doc = inspect(croot, "hostnet")
    assert doc["HostConfig"]["NetworkMode"] == "host"
    assert doc["NetworkSettings"]["IPAddress"] == ""
    assert gantry(croot, "rm", "hostnet").returncode == 0


# --------------------------------------------------------------- --restart unless-stopped


def test_unless_stopped_restarts_after_failure_not_after_stop(croot: Path) -> None:
    p = gantry(croot, "run", "-d", "--restart", "unless-stopped", "busybox", "sh", "-c",
               "echo up; sleep 0.3; exit 3")  # fmt: skip
    assert p.returncode == 0, err(p)
    cid = out(p).strip()
    doc = inspect(croot, cid)
    assert doc["HostConfig"]["RestartPolicy"] == {"Name": "unless-stopped", "MaximumRetryCount": 0}
    wait_for(lambda: inspect(croot, cid)["RestartCount"] >= 2, timeout=20)
    assert out(gantry(croot, "logs", cid)).startswith("up\nup\n")

    gantry(croot, "stop", "-t", "1", cid, check=True)
    doc = inspect(croot, cid)
    assert doc["State"]["Status"] == "exited"
    count = doc["RestartCount"]
    time.sleep(1.5)  # several back-off periods: nothing brings it back
    doc = inspect(croot, cid)
    assert doc["State"]["Status"] == "exited" and doc["RestartCount"] == count
    assert supervisor_pids(croot) == []

    # `start` clears the user's stop: failures restart it again
    gantry(croot, "start", cid, check=True)
    wait_for(lambda: inspect(croot, cid)["RestartCount"] >= 1, timeout=20)
    assert out(gantry(croot, "logs", cid)).count("up\n") >= count + 2
    gantry(croot, "rm", "-f", cid, check=True)


def test_unless_stopped_restarts_a_clean_exit_too(croot: Path) -> None:
    """Exit code 0 restarts too (unlike on-failure), as with `always`."""
    cid = out(gantry(croot, "run", "-d", "--restart", "unless-stopped", "busybox", "sh", "-c",
                     "sleep 0.2")).strip()  # fmt: skip
    wait_for(lambda: inspect(croot, cid)["RestartCount"] >= 2, timeout=20)
    gantry(croot, "stop", "-t", "1", cid, check=True)
    assert inspect(croot, cid)["State"]["Status"] == "exited"
    gantry(croot, "rm", cid, check=True)


def _simulate_lost_supervisor(root: Path, cid: str) -> None:
    """What a reboot does to a running container: its supervisor and its process vanish."""
    doc = inspect(root, cid)
    ctr_pid = doc["State"]["Pid"]
    (sup,) = supervisor_pids(root)  # the one this test started: the only container running
    os.kill(sup, signal.SIGKILL)
    os.kill(ctr_pid, signal.SIGKILL)

    def gone() -> bool:
        try:
            stat = Path(f"/proc/{ctr_pid}/stat").read_text()
        except OSError:
            return True
        return stat.rsplit(")", 1)[1].split()[0] == "Z"

    wait_for(gone)


@pytest.mark.parametrize("policy", ["always", "unless-stopped"])
def test_policies_after_a_lost_supervisor_are_the_same(croot: Path, policy: str) -> None:
    cid = out(gantry(croot, "run", "-d", "--restart", policy, "busybox", "sleep", "100")).strip()
    wait_for(lambda: inspect(croot, cid)["State"]["Status"] == "running")
    _simulate_lost_supervisor(croot, cid)
    doc: dict[str, Any] = wait_for(
        lambda: (d := inspect(croot, cid))["State"]["Status"] == "exited" and d, timeout=15
    )
    assert doc["State"]["ExitCode"] == 255
    assert "exit status unknown" in doc["State"]["Error"]
    assert doc["RestartCount"] == 0
    time.sleep(1.0)
    assert inspect(croot, cid)["State"]["Status"] == "exited"  # no daemon brings it back
    # a `start` by hand runs it again under its policy
    gantry(croot, "start", cid, check=True)
    assert inspect(croot, cid)["State"]["Status"] == "running"
    gantry(croot, "rm", "-f", cid, check=True)


# ------------------------------------------------------------------------- volume prune


def _volumes(root: Path) -> set[str]:
    return set(out(gantry(root, "volume", "ls", "-q")).split())


def _make_volumes(root: Path) -> tuple[str, str]:
    """An unused anonymous volume holding 3000 bytes, an unused named one `keep`, and a named
    one `busy` used by a (stopped) container; returns (anonymous name, user container id)."""
    p = gantry(root, "run", "--name", "anon", "-v", "/data", "busybox", "sh", "-c",
               "head -c 3000 /dev/zero > /data/f")  # fmt: skip
    assert p.returncode == 0, err(p)
    (mount,) = inspect(root, "anon")["Mounts"]
    anon = mount["Name"]
    assert len(anon) == 64
    gantry(root, "rm", "anon", check=True)  # without -v: the volume stays
    assert out(gantry(root, "volume", "create", "keep")) == "keep\n"
    user = out(gantry(root, "create", "-v", "busy:/busy", "busybox", "true")).strip()
    assert _volumes(root) == {anon, "keep", "busy"}
    return anon, user


def test_volume_prune_removes_only_anonymous_unused_volumes(croot: Path) -> None:
    anon, user = _make_volumes(croot)
    p = gantry(croot, "volume", "prune", "-f")
    assert p.returncode == 0, err(p)
    assert out(p) == f"Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 3kB\n"
    assert _volumes(croot) == {"keep", "busy"}
    # nothing left to prune by default
    assert out(gantry(croot, "volume", "prune", "-f")) == "Total reclaimed space: 0B\n"
    # -a: named ones too, but never one a container (even a stopped one) uses
    p = gantry(croot, "volume", "prune", "-a", "-f")
    assert out(p) == "Deleted Volumes:\nkeep\n\nTotal reclaimed space: 0B\n"
    assert _volumes(croot) == {"busy"}
    gantry(croot, "rm", user, check=True)
    assert out(gantry(croot, "volume", "prune", "--filter", "all=true", "-f")).startswith(
        "Deleted Volumes:\nbusy\n"
    )
    assert _volumes(croot) == set()


def test_volume_prune_asks_first(croot: Path) -> None:
    anon, _ = _make_volumes(croot)
    p = gantry(croot, "volume", "prune", input=b"n\n")
    assert out(p).startswith(ANON_WARNING)
    assert _volumes(croot) == {anon, "keep", "busy"}
    p = gantry(croot, "volume", "prune", input=b"y\n")
    assert p.returncode == 0, err(p)
    assert out(p) == ANON_WARNING + f"Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 3kB\n"
    assert _volumes(croot) == {"keep", "busy"}


def test_volume_prune_all_warns_about_all_volumes(croot: Path) -> None:
    _make_volumes(croot)
    p = gantry(croot, "volume", "prune", "-a", input=b"n\n")
    assert out(p).startswith(ALL_WARNING)
    assert "keep" in _volumes(croot)


def test_volume_prune_all_flag_and_all_filter_conflict(croot: Path) -> None:
    _make_volumes(croot)
    p = gantry(croot, "volume", "prune", "-a", "--filter", "all=1", "-f")
    assert p.returncode != 0
    assert "conflicting options: cannot specify both --all and --filter all=1" in err(p)
    assert "keep" in _volumes(croot)


def test_anonymous_volume_is_labelled_like_dockers(croot: Path) -> None:
    anon, _ = _make_volumes(croot)
    (doc,) = json.loads(out(gantry(croot, "volume", "inspect", anon)))
    assert doc["Labels"] == {"com.docker.volume.anonymous": ""}
    (named,) = json.loads(out(gantry(croot, "volume", "inspect", "keep")))
    assert named["Labels"] is None


def test_volume_created_at_is_rfc3339_like_dockers(croot: Path) -> None:
    assert out(gantry(croot, "volume", "create", "stamp")) == "stamp\n"
    (doc,) = json.loads(out(gantry(croot, "volume", "inspect", "stamp")))
    created = doc["CreatedAt"]
    offset = time.localtime().tm_gmtoff
    if offset == 0:  # Go's time.RFC3339 of a UTC local time: 2006-01-02T15:04:05Z
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created), created
    else:
        sign = "+" if offset > 0 else "-"
        hh, mm = divmod(abs(offset) // 60, 60)
        assert created.endswith(f"{sign}{hh:02d}:{mm:02d}"), created


# ------------------------------------------------------------------ bundle against the spec


def test_bundle_of_a_real_container_validates_against_the_runtime_spec(croot: Path) -> None:
    cid = out(gantry(croot, "run", "-d", "--name", "spec", "-e", "A=1", "-w", "/tmp",
                     "--hostname", "spec-host", "--memory", "64m", "--pids-limit", "50",
                     "busybox", "sleep", "100")).strip()  # fmt: skip
    assert len(cid) == 64, err(gantry(croot, "logs", "spec"))
    bundle = croot / "containers" / cid / "bundle"
    raw = (bundle / "config.json").read_bytes()
    assert spec_errors(raw) == []
    cfg = json.loads(raw)
    assert cfg["process"]["args"] == ["sleep", "100"]
    assert "A=1" in cfg["process"]["env"]
    assert cfg["process"]["cwd"] == "/tmp"
    assert cfg["hostname"] == "spec-host"
    assert cfg["linux"]["resources"]["memory"]["limit"] == 64 << 20
    assert cfg["linux"]["resources"]["pids"]["limit"] == 50
    assert sorted(cfg["process"]["capabilities"]["bounding"]) == sorted(DEFAULT_CAPABILITIES)
    assert set(MASKED_PATHS) <= set(cfg["linux"]["maskedPaths"])
    assert cfg["root"]["path"]  # the merged overlay (absolute, or relative to the bundle)
    root_path = Path(cfg["root"]["path"])
    if not root_path.is_absolute():
        root_path = bundle / root_path
    assert (root_path / "bin" / "busybox").exists()
    # runc runs the container from that very bundle
    st = subprocess.run(
        ["runc", "--root", str(croot / "runtime" / "runc"), "state", cid],
        capture_output=True,
        check=True,
    )
    state = json.loads(st.stdout)
    assert state["status"] == "running" and state["bundle"] == str(bundle)
    gantry(croot, "rm", "-f", cid, check=True)


@pytest.mark.parametrize(
    ("flags", "check"),
    [
        (["--network", "host", "--privileged"], "privileged"),
        (
            [
                "--read-only",
                "--tmpfs",
                "/run",
                "--cap-drop",
                "ALL",
                "--cap-add",
                "NET_BIND_SERVICE",
                "--network",
                "none",
            ],
            "readonly",
        ),
        (
            [
                "--network",
                "none",
                "--init",
                "-u",
                "1000:1000",
                "--security-opt",
                "no-new-privileges",
                "--ulimit",
                "nofile=512:1024",
                "--sysctl",
                "net.ipv4.ip_forward=1",
            ],
            "hardened",
        ),
    ],
    ids=["host-privileged", "read-only", "hardened"],
)
def test_bundles_of_option_sets_validate(croot: Path, flags: list[str], check: str) -> None:
    p = gantry(croot, "run", "-d", *flags, "busybox", "sleep", "100")
    assert p.returncode == 0, err(p)
    cid = out(p).strip()
    cfg = json.loads((croot / "containers" / cid / "bundle" / "config.json").read_bytes())
    assert spec_errors(cfg) == []
    namespaces = {ns["type"] for ns in cfg["linux"]["namespaces"]}
    if check == "privileged":
        assert "network" not in namespaces  # the host's network namespace
        bounding = set(cfg["process"]["capabilities"]["bounding"])
        assert bounding > set(DEFAULT_CAPABILITIES) and "CAP_SYS_ADMIN" in bounding
        assert not cfg["linux"].get("maskedPaths")
        assert "seccomp" not in cfg["linux"]
    elif check == "readonly":
        assert cfg["root"]["readonly"] is True
        assert cfg["process"]["capabilities"]["bounding"] == ["CAP_NET_BIND_SERVICE"]
        run = [m for m in cfg["mounts"] if m["destination"] == "/run"]
        assert len(run) == 1 and run[0]["type"] == "tmpfs"
    else:
        assert cfg["process"]["user"]["uid"] == 1000 and cfg["process"]["user"]["gid"] == 1000
        assert cfg["process"]["noNewPrivileges"] is True
        assert {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024} in cfg["process"]["rlimits"]
        assert cfg["linux"]["sysctl"]["net.ipv4.ip_forward"] == "1"
        assert "network" in namespaces
    gantry(croot, "rm", "-f", cid, check=True)
