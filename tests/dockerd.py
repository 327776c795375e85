"""A private Docker daemon (dockerd 20.10 from Debian's docker.io) as a peer in tests.

No tests here. :func:`dockerd` starts containerd and dockerd of their own, under one
temporary directory, and yields a :class:`Docker` (``env`` with ``DOCKER_HOST`` and
``DOCKER_CONFIG``, ``cli`` the docker client's path). Other engineers use the host's
network at the same time, so the daemon is told to leave it alone: no iptables or
ip6tables rules, no bridge, no ip_forward, no masquerading; nothing listens on TCP.
Nothing is shared with the host's defaults either: containerd gets its own socket,
root and state (the CRI plugin off), dockerd its own data root, exec root, pidfile,
socket, daemon.json and trust key, the client its own config directory (``docker
login`` writes there).

Both daemons are children of the calling process (killed with it through
PR_SET_PDEATHSIG if it dies); on exit they are stopped by PID (TERM, then KILL), any
containerd shim still naming the directory is killed by PID, and every mount left under
the directory is unmounted before it is removed.

    with dockerd() as d:
        d.run("pull", "127.0.0.1:5000/x:1")
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pytest

DOCKERD = "dockerd"
CONTAINERD = "containerd"
PR_SET_PDEATHSIG = 1
START_TIMEOUT = 60.0
PROJECT = Path(__file__).resolve().parent.parent
DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64}) size: (\d+)")
STOP_TIMEOUT = 30.0


@dataclasses.dataclass(frozen=True, eq=False)
class Docker:
    """What a test needs to drive the private daemon; unpacks as ``(env, cli)``.

    ``base``: the directory holding all of the daemons' state; ``pids``: containerd's
    and dockerd's process IDs.
    """

    env: dict[str, str]
    cli: str
    base: Path
    pids: tuple[int, ...] = ()

    def __iter__(self) -> Iterator[Any]:  # Any: (dict, str), as the fixture's callers unpack it
        return iter((self.env, self.cli))

    def run(
        self, *args: str, check: bool = True, input: str | bytes | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """``docker ARGS`` against this daemon; raises with stderr when ``check`` and it fails."""
        data = input.decode() if isinstance(input, bytes) else input
        p = subprocess.run(
            [self.cli, *args],
            env=self.env,
            input=data,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and p.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} exited {p.returncode}:\n{p.stderr}{p.stdout}"
            )
        return p

    def image_id(self, ref: str) -> str:
        """``docker inspect -f {{.Id}} REF``: ``sha256:<hex>``."""
        return self.run("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()

    def log(self) -> str:
        return _tail(self.base / "dockerd.log")


class DockerMissing(RuntimeError):
    """dockerd, containerd or the docker client is not installed."""


def need_docker() -> tuple[str, str, str]:
    """Paths of dockerd, containerd and the docker client; raises :class:`DockerMissing`."""
    found = {t: shutil.which(t) for t in (DOCKERD, CONTAINERD, "docker")}
    missing = [t for t, p in found.items() if p is None]
    if missing:
        raise DockerMissing(
            f"{', '.join(missing)} not installed; run `make setup` (apt: docker.io)"
        )
    return found[DOCKERD] or "", found[CONTAINERD] or "", found["docker"] or ""


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the process that started it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _wait_socket(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"{log.stem} exited {proc.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear:\n{_tail(log)}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    """TERM the process we started, wait; KILL it if it does not go."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def strays(base: Path) -> list[int]:
    """Processes whose command line names ``base``: containerd shims of containers run
    under our daemons outlive them (they daemonize away from containerd)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(base).encode() in cmdline:
            found.append(int(proc.name))
    return found


def _kill_strays(base: Path) -> None:
    for pid in strays(base):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while strays(base) and time.monotonic() < deadline:
        time.sleep(0.05)


def _mounts_under(base: Path) -> list[str]:
    """Mount points at or below ``base`` (deepest first), from /proc/self/mountinfo."""
    prefix = str(base)
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(set(points), key=len, reverse=True)


def _unmount_all(base: Path) -> list[str]:
    """Unmount what the daemons left under ``base``; busy ones lazily. Returns leftovers."""
    for point in _mounts_under(base):
        p = subprocess.run(["umount", "-R", point], capture_output=True)
        if p.returncode != 0:
            subprocess.run(["umount", "-R", "-l", point], capture_output=True)
    return _mounts_under(base)


def _containerd_config(base: Path) -> str:
    """A containerd 1.6 config that owns nothing of the host's (TOML by hand: few keys)."""
    c = base / "containerd"
    lines = [
        "version = 2",
        f'root = "{c / "root"}"',
        f'state = "{c / "state"}"',
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        "[grpc]",
        f'  address = "{c / "containerd.sock"}"',
        "[ttrpc]",
        f'  address = "{c / "containerd.sock.ttrpc"}"',
        "[debug]",
        '  level = "warn"',
        '[plugins."io.containerd.internal.v1.opt"]',
        f'  path = "{c / "opt"}"',
    ]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def dockerd(insecure: Sequence[str] = (), *, parent: Path | None = None) -> Iterator[Docker]:
    """Start a private containerd + dockerd, wait for ``docker info``; yield a :class:`Docker`.

    ``insecure``: extra ``--insecure-registry`` entries (host:port); 127.0.0.0/8 is
    insecure to Docker anyway. ``parent``: where the state goes (default /dev/shm: the
    root disk is slow, and socket paths must stay short).
    """
    dockerd_bin, containerd_bin, cli = need_docker()
    if parent is None and Path("/dev/shm").is_dir():
        parent = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(prefix="gd-", dir=parent))
    run_docker = Path("/run/docker")  # dockerd makes /run/docker/plugins whatever it is told
    had_run_docker = run_docker.exists()
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[BinaryIO] = []
    try:
        (base / "containerd").mkdir()
        (base / "containerd" / "config.toml").write_text(_containerd_config(base))
        clog_path = base / "containerd.log"
        clog = open(clog_path, "wb")  # noqa: SIM115 - closed in finally
        logs.append(clog)
        containerd = subprocess.Popen(
            [containerd_bin, "--config", str(base / "containerd" / "config.toml")],
            stdin=subprocess.DEVNULL,
            stdout=clog,
            stderr=clog,
            preexec_fn=_die_with_parent,
        )
        procs.append(containerd)
        csock = base / "containerd" / "containerd.sock"
        _wait_socket(csock, containerd, clog_path, START_TIMEOUT)

        (base / "daemon.json").write_text(
            json.dumps({"deprecated-key-path": str(base / "key.json")}) + "\n"
        )
        sock = base / "docker.sock"
        args = [
            dockerd_bin,
            "--config-file",
            str(base / "daemon.json"),
            "--data-root",
            str(base / "data"),
            "--exec-root",
            str(base / "exec"),
            "--pidfile",
            str(base / "dockerd.pid"),
            "-H",
            f"unix://{sock}",
            "--containerd",
            str(csock),
            "--containerd-namespace",
            "gantry-tests",
            "--containerd-plugins-namespace",
            "gantry-tests-plugins",
            "--storage-driver=overlay2",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--ip-forward=false",
            "--ip-masq=false",
            "--userland-proxy=false",
            "--log-level=warn",
        ]
        for reg in insecure:
            args += ["--insecure-registry", reg]
        dlog_path = base / "dockerd.log"
        dlog = open(dlog_path, "wb")  # noqa: SIM115 - closed in finally
        logs.append(dlog)
        daemon = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=dlog,
            stderr=dlog,
            preexec_fn=_die_with_parent,
        )
        procs.append(daemon)
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
        }
        env["DOCKER_HOST"] = f"unix://{sock}"
        env["DOCKER_CONFIG"] = str(base / "client")
        (base / "client").mkdir()
        docker = Docker(env, cli, base, tuple(p.pid for p in procs))
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            p = docker.run("info", "--format", "{{.ServerVersion}}", check=False, timeout=30)
            if p.returncode == 0 and p.stdout.strip():
                break
            if daemon.poll() is not None:
                raise RuntimeError(f"dockerd exited {daemon.returncode}:\n{_tail(dlog_path)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"dockerd did not answer:\n{p.stderr}\n{_tail(dlog_path)}")
            time.sleep(0.2)
        yield docker
    finally:
        for proc in reversed(procs):  # dockerd first, then its containerd
            _stop(proc)
        for f in logs:
            f.close()
        _kill_strays(base)
        left = _unmount_all(base)
        if not left:
            shutil.rmtree(base, ignore_errors=True)
        if not had_run_docker:
            for d in (run_docker / "plugins", run_docker):
                with contextlib.suppress(OSError):
                    d.rmdir()  # only when empty


class _Shared:
    """One daemon for every module that imports the fixture: pytest makes one session
    fixture per importing module, so they count themselves in and out here."""

    stack: contextlib.ExitStack | None = None
    docker: Docker | None = None
    users = 0


@pytest.fixture(scope="session", name="docker")
def docker_fixture() -> Iterator[Docker]:
    """``docker``: a private dockerd for the session (import ``docker_fixture`` to use it)."""
    try:
        need_docker()
    except DockerMissing as e:
        pytest.fail(str(e))  # a missing peer is a set-up bug: fail, do not skip
    if _Shared.docker is None:
        stack = contextlib.ExitStack()
        _Shared.docker = stack.enter_context(dockerd())
        _Shared.stack = stack
    _Shared.users += 1
    try:
        yield _Shared.docker
    finally:
        _Shared.users -= 1
        if _Shared.users == 0 and _Shared.stack is not None:
            stack, _Shared.stack, _Shared.docker = _Shared.stack, None, None
            stack.close()


@pytest.fixture(scope="session", name="rootfs_tar")
def rootfs_tar_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox root filesystem as a plain tar (what ``docker import`` takes)."""
    d = tmp_path_factory.getbasetemp() / "busybox"
    if (d / "rootfs.tar").exists():  # made already for another module
        return d / "rootfs.tar"
    d.mkdir()
    subprocess.run(
        ["bash", str(PROJECT / "scripts" / "busybox-rootfs.sh"), str(d / "rootfs")], check=True
    )
    subprocess.run(["tar", "-C", str(d / "rootfs"), "-cf", str(d / "rootfs.tar"), "."], check=True)
    return d / "rootfs.tar"


def pushed_digest(out: str) -> tuple[str, int]:
    """The ``TAG: digest: sha256:... size: N`` line of ``docker push``."""
    m = DIGEST.search(out)
    assert m, out
    return m.group(1), int(m.group(2))


def build_on(docker: Docker, base: str, tag: str, tmp: Path, size: int) -> None:
    """``FROM base`` + COPY of ``size`` random bytes: one more layer, nothing run."""
    ctx = tmp / f"ctx-{tag.replace('/', '_').replace(':', '_')}"
    ctx.mkdir()
    (ctx / "payload.bin").write_bytes(os.urandom(size))
    (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY payload.bin /data/payload.bin\n")
    env = {**docker.env, "DOCKER_BUILDKIT": "0"}
    p = subprocess.run(
        [docker.cli, "build", "-q", "-t", tag, str(ctx)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
