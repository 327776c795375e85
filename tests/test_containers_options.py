"""``run`` options against the real thing: env, user, workdir, mounts, volumes, limits,
capabilities, read-only rootfs, --init, the bridge network with a published port."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from test_containers_support import err, gantry, image_with, inspect, out, wait_for

pytestmark = pytest.mark.slow
pytest_plugins = ["test_containers_support"]  # the croot fixture


def run(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return gantry(root, "run", "--rm", "--network", "none", *args)


def test_env_env_file_user_workdir_hostname(croot: Path, tmp_path: Path) -> None:
    envf = tmp_path / "env"
    envf.write_text("# comment\nFROM_FILE=yes\n\nSPACED=a b\nHOST_VAR\n")
    p = gantry(croot, "run", "--rm", "--network", "none", "-e", "A=1", "--env-file", str(envf),
               "-e", "HOST_VAR", "-w", "/made/here", "-u", "www-data", "-h", "box",
               "busybox", "sh", "-c", 'echo "$A|$FROM_FILE|$SPACED|$HOST_VAR|$HOSTNAME|$HOME"; '
               "pwd; id; hostname; stat -c %U /made/here")  # fmt: skip
    assert p.returncode == 0, err(p)
    lines = out(p).splitlines()
    assert lines[0] == "1|yes|a b||box|/var/www"
    assert lines[1] == "/made/here"
    assert lines[2].startswith("uid=33(www-data) gid=33(www-data)")
    assert lines[3] == "box" and lines[4] == "www-data"
    p = run(croot, "-u", "nosuchuser", "busybox", "true")
    assert p.returncode == 125 and "nosuchuser" in err(p)


def test_default_env_and_hostname_is_short_id(croot: Path) -> None:
    cid = out(gantry(croot, "run", "-d", "--network", "none", "busybox", "sh", "-c",
                     "env; hostname")).strip()  # fmt: skip
    gantry(croot, "wait", cid, check=True)
    text = out(gantry(croot, "logs", cid))
    assert f"HOSTNAME={cid[:12]}" in text.splitlines()
    assert "HOME=/root" in text and "PATH=/usr/local/sbin:" in text
    assert text.splitlines()[-1] == cid[:12]


def test_entrypoint_flag_and_image_entrypoint(croot: Path) -> None:
    image_with(croot, "ep:1", entrypoint=("echo", "from-entrypoint"), cmd=("default-arg",))
    assert out(run(croot, "ep:1")) == "from-entrypoint default-arg\n"
    assert out(run(croot, "ep:1", "given")) == "from-entrypoint given\n"
    assert out(run(croot, "--entrypoint", "echo", "ep:1")) == "\n"  # image Cmd dropped
    assert out(run(croot, "--entrypoint", "", "ep:1", "echo", "reset")) == "reset\n"
    p = run(croot, "--entrypoint", "", "ep:1")
    assert p.returncode == 125 and "No command specified" in err(p)


def test_add_host_and_etc_files(croot: Path) -> None:
    p = run(croot, "--add-host", "db:10.1.2.3", "-h", "web", "busybox", "cat", "/etc/hosts",
            "/etc/hostname")  # fmt: skip
    assert "10.1.2.3\tdb\n" in out(p)
    assert out(p).endswith("web\n")


def test_bind_mounts_ro_and_rw(croot: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("from host\n")
    p = run(croot, "-v", f"{data}:/data:ro", "busybox", "sh", "-c",
            "cat /data/in.txt; echo x > /data/new")  # fmt: skip
    assert out(p) == "from host\n"
    assert p.returncode != 0 and "Read-only file system" in err(p)
    assert not (data / "new").exists()
    p = run(croot, "-v", f"{data}:/data", "busybox", "sh", "-c", "echo written > /data/new")
    assert p.returncode == 0, err(p)
    assert (data / "new").read_text() == "written\n"
    p = run(croot, "--mount", f"type=bind,source={data},target=/m,readonly", "busybox",
            "touch", "/m/x")  # fmt: skip
    assert p.returncode != 0
    p = run(croot, "--mount", "type=bind,source=/no/such/dir,target=/m", "busybox", "true")
    assert p.returncode == 125 and "bind source path does not exist" in err(p)


def test_named_volume_persists_and_volume_commands(croot: Path) -> None:
    assert out(gantry(croot, "volume", "create", "--label", "k=v", "vol1")) == "vol1\n"
    assert run(croot, "-v", "vol1:/v", "busybox", "sh", "-c", "echo kept > /v/f").returncode == 0
    assert out(run(croot, "-v", "vol1:/v:ro", "busybox", "cat", "/v/f")) == "kept\n"
    ls = out(gantry(croot, "volume", "ls"))
    assert ls.splitlines()[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert "local     vol1" in ls
    doc = json.loads(out(gantry(croot, "volume", "inspect", "vol1")))[0]
    assert doc["Name"] == "vol1" and doc["Driver"] == "local" and doc["Labels"] == {"k": "v"}
    assert Path(doc["Mountpoint"], "f").read_text() == "kept\n"
    cid = out(gantry(croot, "create", "-v", "vol1:/v", "busybox")).strip()
    p = gantry(croot, "volume", "rm", "vol1")
    assert p.returncode == 1 and f"volume is in use - [{cid}]" in err(p)
    gantry(croot, "rm", cid, check=True)
    assert out(gantry(croot, "volume", "rm", "vol1")) == "vol1\n"
    assert out(gantry(croot, "volume", "ls", "-q")) == ""


def test_image_volume_is_copied_up_and_anonymous_volume_removed_with_rm_v(croot: Path) -> None:
    image_with(croot, "vol:1", volumes=("/etc",))
    cid = out(gantry(croot, "create", "vol:1", "cat", "/etc/passwd")).strip()
    mounts = inspect(croot, cid)["Mounts"]
    assert len(mounts) == 1 and mounts[0]["Type"] == "volume" and mounts[0]["Destination"] == "/etc"
    gantry(croot, "start", cid, check=True)
    assert out(gantry(croot, "wait", cid)) == "0\n"
    assert out(gantry(croot, "logs", cid)).startswith("root:x:0:0:")  # the image's content
    name = mounts[0]["Name"]
    assert out(gantry(croot, "volume", "ls", "-q")) == name + "\n"
    gantry(croot, "rm", "-v", cid, check=True)
    assert out(gantry(croot, "volume", "ls", "-q")) == ""


def test_read_only_rootfs_and_tmpfs(croot: Path) -> None:
    p = run(croot, "--read-only", "--tmpfs", "/scratch", "busybox", "sh", "-c",
            "echo ok > /scratch/f && cat /scratch/f; touch /nope")  # fmt: skip
    assert out(p) == "ok\n"
    assert "Read-only file system" in err(p)


def test_capabilities_and_privileged(croot: Path) -> None:
    def capeff(*flags: str) -> int:
        p = run(croot, *flags, "busybox", "sh", "-c", "grep CapEff /proc/self/status")
        return int(out(p).split()[1], 16)

    default = capeff()
    assert default & (1 << 12) == 0  # no CAP_NET_ADMIN by default
    assert capeff("--cap-add", "NET_ADMIN") & (1 << 12)
    assert capeff("--cap-drop", "CHOWN") & 1 == 0
    assert capeff("--cap-drop", "ALL") == 0
    assert capeff("--privileged") & (1 << 21)  # CAP_SYS_ADMIN
    p = run(croot, "busybox", "sh", "-c", "ip link add dummy0 type dummy")
    assert p.returncode != 0


def test_memory_limit_oom_killed(croot: Path) -> None:
    cid = out(gantry(croot, "run", "-d", "--network", "none", "-m", "8m", "--memory-swap", "8m",
                     "busybox", "sh", "-c",
                     'x=$(head -c 50000000 /dev/zero | tr "\\0" a); echo survived')).strip()  # fmt: skip
    assert out(gantry(croot, "wait", cid, timeout=60)) == "137\n"
    state = inspect(croot, cid)["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    assert "survived" not in out(gantry(croot, "logs", cid))
    assert inspect(croot, cid)["HostConfig"]["Memory"] == 8 << 20


def test_pids_limit_and_cpus_enforced(croot: Path) -> None:
    p = run(croot, "--pids-limit", "5", "busybox", "sh", "-c",
            "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait")  # fmt: skip
    assert "can't fork" in err(p)
    assert out(run(croot, "--cpus", "0.5", "busybox", "cat",
                   "/sys/fs/cgroup/cpu/cpu.cfs_quota_us")) == "50000\n"  # fmt: skip


def test_init_reaps_and_forwards(croot: Path) -> None:
    p = run(croot, "--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '")
    assert p.returncode == 0, err(p)
    assert out(p).startswith("/sbin/docker-init -- sh -c")
    cid = out(gantry(croot, "run", "-d", "--init", "--network", "none", "busybox",
                     "sleep", "100")).strip()  # fmt: skip
    t0 = time.monotonic()
    gantry(croot, "stop", cid, check=True)  # tini forwards SIGTERM to sleep
    assert time.monotonic() - t0 < 5
    assert inspect(croot, cid)["State"]["ExitCode"] == 143


def test_bridge_network_published_port(croot: Path) -> None:
    import urllib.request

    port = 18000 + os.getpid() % 1000
    cid = out(gantry(croot, "run", "-d", "-p", f"{port}:80", "busybox",
                     "httpd", "-f", "-v", "-p", "80", "-h", "/www")).strip()  # fmt: skip
    assert len(cid) == 64, err(gantry(croot, "logs", cid))

    def fetch() -> bytes | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                return bytes(r.read())
        except OSError:
            return None

    assert wait_for(fetch, timeout=15) == b"hello from busybox httpd\n"
    ps = out(gantry(croot, "ps", "--format", "{{.Ports}}"))
    assert ps == f"0.0.0.0:{port}->80/tcp\n"
    net = inspect(croot, cid)["NetworkSettings"]
    assert net["IPAddress"] and net["Ports"] == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]
    }
    wait_for(lambda: "response:200" in err(gantry(croot, "logs", cid)))  # httpd -v on stderr
    gantry(croot, "rm", "-f", cid, check=True)
    assert fetch() is None


def test_image_healthcheck_and_health_cmd_override(croot: Path) -> None:
    from gantry.oci.config import Healthcheck

    image_with(croot, "hc:1", healthcheck=Healthcheck(
        test=("CMD-SHELL", "test -f /ready"), interval=300_000_000, retries=2,
    ), cmd=("sh", "-c", "sleep 1; touch /ready; sleep 100"))  # fmt: skip
    cid = out(gantry(croot, "run", "-d", "--network", "none", "hc:1")).strip()
    status = out(gantry(croot, "ps", "--format", "{{.Status}}")).strip()
    assert status.endswith("(health: starting)")
    wait_for(lambda: inspect(croot, cid)["State"]["Health"]["Status"] == "healthy", timeout=20)
    assert out(gantry(croot, "ps", "--format", "{{.Status}}")).strip().endswith("(healthy)")
    health = inspect(croot, cid)["State"]["Health"]
    assert health["FailingStreak"] == 0 and health["Log"][-1]["ExitCode"] == 0
    assert out(gantry(croot, "ps", "-q", "--filter", "health=healthy")).strip() == cid[:12]
    # --health-cmd replaces the image's test; failures make it unhealthy after the retries
    bad = out(gantry(croot, "run", "-d", "--network", "none", "--health-cmd", "exit 1",
                     "--health-interval", "0.2s", "hc:1")).strip()  # fmt: skip
    wait_for(lambda: inspect(croot, bad)["State"]["Health"]["Status"] == "unhealthy", timeout=20)
    assert inspect(croot, bad)["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "exit 1"]
    nohc = out(gantry(croot, "create", "--no-healthcheck", "hc:1")).strip()
    assert inspect(croot, nohc)["Config"]["Healthcheck"] == {"Test": ["NONE"]}
