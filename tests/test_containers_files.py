"""exec, commit, cp and export against running and stopped containers."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from test_containers_support import err, gantry, out

pytestmark = pytest.mark.slow
pytest_plugins = ["test_containers_support"]  # the croot fixture


def _running(root: Path, *cmd: str) -> str:
    cid = out(gantry(root, "run", "-d", "--network", "none", "busybox", *cmd)).strip()
    assert len(cid) == 64
    return cid


def test_exec_sees_processes_user_workdir_env_and_exit_codes(croot: Path) -> None:
    cid = _running(croot, "sleep", "100")
    ps = out(gantry(croot, "exec", cid, "ps"))
    assert "1 root     sleep 100" in ps  # the container's PID namespace
    p = gantry(croot, "exec", "-u", "www-data", "-w", "/tmp", "-e", "X=1", cid,
               "sh", "-c", "id -u; pwd; echo $X $HOME")  # fmt: skip
    assert out(p) == "33\n/tmp\n1 /var/www\n"
    assert gantry(croot, "exec", cid, "sh", "-c", "exit 9").returncode == 9
    p = gantry(croot, "exec", cid, "nosuch")
    assert p.returncode == 127 and "executable file not found" in err(p)
    assert out(gantry(croot, "exec", "-i", cid, "cat", input=b"piped\n")) == "piped\n"
    assert gantry(croot, "exec", "-d", cid, "sh", "-c", "echo bg > /bg").returncode == 0
    assert out(gantry(croot, "exec", cid, "cat", "/bg")) == "bg\n"
    gantry(croot, "stop", "-t", "0", cid, check=True)
    p = gantry(croot, "exec", cid, "true")
    assert p.returncode != 0 and "is not running" in err(p)


def test_exec_tty_gets_a_pty(croot: Path) -> None:
    import pty
    import subprocess
    import sys

    cid = _running(croot, "sleep", "100")
    master, slave = pty.openpty()
    env = dict(os.environ, GANTRY_ROOT=str(croot))
    p = subprocess.run([sys.executable, "-m", "gantry", "exec", "-it", cid, "tty"],
                       stdin=slave, stdout=slave, stderr=slave, env=env, timeout=30,
                       check=False)  # fmt: skip
    os.close(slave)
    data = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    assert p.returncode == 0
    assert b"/dev/pts/" in data


def test_commit_layer_holds_only_the_change(croot: Path) -> None:
    cid = out(gantry(croot, "run", "-d", "--network", "none", "busybox", "sh", "-c",
                     "echo data > /added; rm /etc/group; mkdir -p /var/new/sub")).strip()  # fmt: skip
    gantry(croot, "wait", cid, check=True)
    p = gantry(
        croot, "commit", "-m", "msg", "-a", "me", "-c", 'CMD ["cat", "/added"]', cid, "snap:1"
    )
    assert p.returncode == 0, err(p)
    image_id = out(p).strip()
    assert image_id.startswith("sha256:")
    assert out(gantry(croot, "run", "--rm", "--network", "none", "snap:1")) == "data\n"
    from gantry.store import Store

    with Store(croot) as s:
        img = s.resolve("snap:1")
        layers = s.layers(img)
        assert len(layers) == 2
        blob = s.content.read(layers[-1].digest)
        cfg = json.loads(s.config_bytes(img))
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tf:
        names = sorted(m.name.rstrip("/") for m in tf.getmembers())
    assert names == ["added", "etc", "etc/.wh.group", "var", "var/new", "var/new/sub"]
    assert cfg["config"]["Cmd"] == ["cat", "/added"]
    assert cfg["history"][-1]["comment"] == "msg" and cfg["author"] == "me"
    hist = out(
        gantry(croot, "history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "snap:1")
    )
    assert hist.splitlines()[0].endswith("|msg")


def test_commit_of_a_running_container_leaves_out_mount_points(croot: Path, tmp_path: Path) -> None:
    cid = out(gantry(croot, "run", "-d", "--network", "none", "-v", f"{tmp_path}:/mnt/host",
                     "busybox", "sh", "-c", "echo x > /x; sleep 100")).strip()  # fmt: skip
    import time

    time.sleep(0.3)
    gantry(croot, "commit", cid, "live:1", check=True)
    from gantry.store import Store

    with Store(croot) as s:
        blob = s.content.read(s.layers(s.resolve("live:1"))[-1].digest)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tf:
        names = sorted(m.name.rstrip("/") for m in tf.getmembers())
    assert names == ["x"], names
    assert out(gantry(croot, "exec", cid, "cat", "/x")) == "x\n"  # resumed after the pause


def test_cp_both_ways_and_symlinks_stay_inside(croot: Path, tmp_path: Path) -> None:
    cid = out(gantry(croot, "create", "--network", "none", "busybox", "sh", "-c",
                     "cat /in/file.txt; ls /in")).strip()  # fmt: skip
    src = tmp_path / "in"
    src.mkdir()
    (src / "file.txt").write_text("copied in\n")
    assert gantry(croot, "cp", str(src), f"{cid}:/in").returncode == 0
    gantry(croot, "start", cid, check=True)
    assert out(gantry(croot, "wait", cid)) == "0\n"
    assert out(gantry(croot, "logs", cid)) == "copied in\nfile.txt\n"
    # out of a stopped container: file to a new name, dir into an existing dir
    dest = tmp_path / "out"
    dest.mkdir()
    assert gantry(croot, "cp", f"{cid}:/etc/passwd", str(dest / "pw")).returncode == 0
    assert (dest / "pw").read_text().startswith("root:x:0:0")
    assert gantry(croot, "cp", f"{cid}:/in", str(dest)).returncode == 0
    assert (dest / "in" / "file.txt").read_text() == "copied in\n"
    # a tar stream to stdout
    p = gantry(croot, "cp", f"{cid}:/in", "-")
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tf:
        assert sorted(tf.getnames()) == ["in", "in/file.txt"]
    # a symlink in the container pointing at the host's root resolves inside the container
    run = gantry(croot, "run", "-d", "--network", "none", "busybox", "sh", "-c",
                 "ln -s / /escape; ln -s /etc/passwd /pw; sleep 100")  # fmt: skip
    rid = out(run).strip()
    import time

    time.sleep(0.3)
    marker = tmp_path / "marker"
    marker.write_text("host\n")
    assert gantry(croot, "cp", str(marker), f"{rid}:/escape/tmp/").returncode == 0
    assert out(gantry(croot, "exec", rid, "cat", "/tmp/marker")) == "host\n"
    assert not Path("/tmp/marker").exists() or Path("/tmp/marker").read_text() != "host\n"
    gantry(croot, "cp", f"{rid}:/pw", str(dest / "link")).check_returncode()
    assert (dest / "link").is_symlink()  # copied as a link, not followed
    gantry(croot, "cp", "-L", f"{rid}:/pw", str(dest / "followed")).check_returncode()
    assert (dest / "followed").read_text().startswith("root:x:0:0")  # the container's file
    p = gantry(croot, "cp", f"{rid}:/nope", str(dest))
    assert p.returncode != 0 and "Could not find the file /nope in container" in err(p)


def test_export_is_the_whole_filesystem(croot: Path) -> None:
    cid = out(gantry(croot, "run", "-d", "--network", "none", "busybox", "sh", "-c",
                     "echo e > /exported; rm /bin/vi")).strip()  # fmt: skip
    gantry(croot, "wait", cid, check=True)
    p = gantry(croot, "export", cid)
    assert p.returncode == 0, err(p)
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tf:
        names = set(tf.getnames())
        assert tf.extractfile("exported").read() == b"e\n"  # type: ignore[union-attr]
    assert {"bin/busybox", "etc/passwd", "exported"} <= names
    assert "bin/vi" not in names
    target = croot.parent / "fs.tar"
    assert gantry(croot, "export", "-o", str(target), cid).returncode == 0
    assert target.stat().st_size == len(p.stdout)


def _in_pty(
    root: Path, args: list[str], keys: bytes = b"", timeout: float = 30
) -> tuple[int, bytes]:
    """Run the CLI with a pty as its terminal; type ``keys``; (exit code, all output)."""
    import pty
    import select
    import subprocess
    import sys
    import time

    master, slave = pty.openpty()
    env = dict(os.environ, GANTRY_ROOT=str(root))
    p = subprocess.Popen([sys.executable, "-m", "gantry", *args], stdin=slave, stdout=slave,
                         stderr=slave, env=env, start_new_session=True)  # fmt: skip
    os.close(slave)
    data = b""
    deadline = time.monotonic() + timeout
    sent = not keys
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        if not sent and b"# " in data:  # the shell's prompt: type now
            os.write(master, keys)
            sent = True
        if p.poll() is not None and not ready:
            break
    os.close(master)
    return p.wait(timeout=10), data


def test_run_it_gives_the_container_our_terminal(croot: Path) -> None:
    code, data = _in_pty(croot, ["run", "--rm", "-it", "--network", "none", "busybox", "sh",
                                 "-c", "tty; exit 3"])  # fmt: skip
    assert code == 3
    assert b"/dev/pts/0" in data
    code, data = _in_pty(croot, ["run", "--rm", "-it", "--network", "none", "busybox", "sh"],
                         keys=b"echo typed-$((6*7))\rexit 4\r")  # fmt: skip
    assert code == 4
    assert b"typed-42" in data
    p = gantry(croot, "run", "--rm", "-it", "busybox", "true")
    assert p.returncode == 125 and "the input device is not a TTY" in err(p)


def test_restart_command_restarts_a_running_container(croot: Path) -> None:
    cid = _running(croot, "sh", "-c", "echo up; sleep 100")
    import time

    first = json.loads(out(gantry(croot, "inspect", cid)))[0]["State"]["StartedAt"]
    time.sleep(0.2)
    p = gantry(croot, "restart", "-t", "0", cid)
    assert p.returncode == 0 and out(p) == cid + "\n"
    state = json.loads(out(gantry(croot, "inspect", cid)))[0]["State"]
    assert state["Status"] == "running" and state["StartedAt"] > first
    assert out(gantry(croot, "logs", cid)) == "up\nup\n"
