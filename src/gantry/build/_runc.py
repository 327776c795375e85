"""Run one RUN step's process with runc in a prepared root filesystem.

A minimal OCI bundle for a build step, the way BuildKit's runc worker sets one up:
private pid/ipc/uts/mount namespaces, the host network unless ``--network=none``
(then a fresh, empty network namespace), Docker's default capabilities, a tmpfs
``/dev`` with the usual nodes, ``/proc``, ``/sys`` read-only, and ``/etc/hosts`` and
``/etc/resolv.conf`` bound from files the builder writes. Mount points runc has to
create in the rootfs are recorded and removed after the run, so they never end up
in the layer (BuildKit removes its "mount stubs" the same way).

This is build-room glue until ``gantry.runtime`` offers its spec generator and
runner; it only uses the documented runc CLI (``runc run --bundle``).
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gantry.errors import BuildError

DEFAULT_CAPS = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

MASKED_PATHS = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)
READONLY_PATHS = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

HOSTNAME = "buildkitsandbox"


@dataclass
class RunSpec:
    args: Sequence[str]
    env: Sequence[str]
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: Sequence[int] = ()
    network: str = "host"  # host | none
    #: extra bind mounts: (host source, container target, readonly)
    binds: Sequence[tuple[str, str, bool]] = field(default_factory=tuple)
    tmpfs: Sequence[str] = ()


def _runc() -> str:
    path = shutil.which("runc")
    if path is None:
        raise BuildError("runc is not installed", hint="apt-get install runc (or make setup)")
    return path


def _missing_top(rootfs: Path, target: str) -> Path | None:
    """The first component of ``target`` missing in ``rootfs`` (None: it all exists)."""
    cur = rootfs
    for part in [p for p in target.split("/") if p]:
        cur = cur / part
        if not os.path.lexists(cur):
            return cur
        if os.path.islink(cur):
            return None  # runc resolves it inside the rootfs; not ours to track
    return None


def _is_stub(path: Path) -> bool:
    """Only empty directories and empty files below ``path``: what runc created."""
    if path.is_symlink():
        return False
    if path.is_file():
        return path.stat().st_size == 0
    if not path.is_dir():
        return False
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.islink(p) or os.path.getsize(p) != 0:
                return False
    return True


def _spec(rootfs: Path, run: RunSpec, hosts: Path, resolv: Path) -> dict[str, object]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = hard if hard != resource.RLIM_INFINITY else 1048576
    mounts: list[dict[str, object]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/etc/hosts",
            "type": "bind",
            "source": str(hosts),
            "options": ["rbind", "ro"],
        },
        {
            "destination": "/etc/resolv.conf",
            "type": "bind",
            "source": str(resolv),
            "options": ["rbind", "ro"],
        },
    ]
    for target in run.tmpfs:
        mounts.append(
            {"destination": target, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}
        )
    for source, target, readonly in run.binds:
        mounts.append(
            {
                "destination": target,
                "type": "bind",
                "source": source,
                "options": ["rbind", "ro" if readonly else "rw"],
            }
        )
    namespaces: list[dict[str, str]] = [
        {"type": "pid"},
        {"type": "ipc"},
        {"type": "uts"},
        {"type": "mount"},
    ]
    if run.network == "none":
        namespaces.append({"type": "network"})
    caps = list(DEFAULT_CAPS)
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {
                "uid": run.uid,
                "gid": run.gid,
                "additionalGids": list(run.additional_gids),
            },
            "args": list(run.args),
            "env": list(run.env),
            "cwd": run.cwd or "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": min(nofile, 1048576)}],
            "noNewPrivileges": False,
        },
        "root": {"path": str(rootfs), "readonly": False},
        "hostname": HOSTNAME,
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


def _resolv_conf(network: str) -> bytes:
    if network == "none":
        return b""
    try:
        with open("/etc/resolv.conf", "rb") as f:
            data = f.read()
    except OSError:
        data = b""
    # a loopback resolver (systemd-resolved) is unreachable from most containers
    lines = [ln for ln in data.splitlines() if not ln.strip().startswith(b"nameserver 127.")]
    if not any(ln.strip().startswith(b"nameserver") for ln in lines):
        lines += [b"nameserver 8.8.8.8", b"nameserver 8.8.4.4"]
    return b"\n".join(lines) + b"\n"


def run(
    rootfs: Path,
    spec: RunSpec,
    workdir: Path,
    *,
    state_root: Path,
    output: Callable[[bytes], None],
) -> int:
    """Run ``spec`` in ``rootfs`` (a mounted overlay); stream output; return the exit code.

    ``workdir`` is a private scratch directory for the bundle (removed by the caller).
    """
    bundle = workdir / "bundle"
    bundle.mkdir()
    hosts = bundle / "hosts"
    hosts.write_bytes(
        b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        + f"127.0.0.1\t{HOSTNAME}\n".encode()
    )
    resolv = bundle / "resolv.conf"
    resolv.write_bytes(_resolv_conf(spec.network))
    targets = ["/proc", "/dev", "/sys", "/etc/hosts", "/etc/resolv.conf"]
    targets += [t for _s, t, _r in spec.binds] + list(spec.tmpfs)
    stubs = [m for m in (_missing_top(rootfs, t) for t in targets) if m is not None]
    (bundle / "config.json").write_text(json.dumps(_spec(rootfs, spec, hosts, resolv)))
    state_root.mkdir(parents=True, exist_ok=True)
    cid = "gantry-build-" + secrets.token_hex(8)
    cmd = [_runc(), "--root", str(state_root), "run", "--bundle", str(bundle), cid]
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as err:
        raise BuildError(f"cannot start runc: {err}") from err
    assert proc.stdout is not None
    try:
        while True:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            output(chunk)
        code = proc.wait()
    except BaseException:
        subprocess.run(
            [_runc(), "--root", str(state_root), "kill", cid, "KILL"],
            capture_output=True,
            check=False,
        )
        proc.wait()
        raise
    finally:
        subprocess.run(
            [_runc(), "--root", str(state_root), "delete", "--force", cid],
            capture_output=True,
            check=False,
        )
    for stub in dict.fromkeys(stubs):
        if os.path.lexists(stub) and _is_stub(stub):
            if stub.is_dir():
                shutil.rmtree(stub, ignore_errors=True)
            else:
                stub.unlink()
    return code
