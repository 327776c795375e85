"""Generate an OCI runtime-spec ``config.json`` the way Docker would for the same flags.

:class:`SpecOptions` holds what a build step or ``gantry run`` decides (command, env, user,
mounts, network, limits); :func:`generate` turns it into the spec object and
:func:`write_config` puts it into a bundle. Defaults are Docker's: its 14 default
capabilities, masked and read-only /proc and /sys paths, a 64 MiB /dev/shm, a device cgroup
that denies everything but the usual character devices, and the default seccomp filter
(:mod:`gantry.runtime.seccomp`). Resource limits are never asked above what this process may
grant (the current hard rlimits): runc would fail to start the container otherwise.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantry.errors import UsageError
from gantry.runtime import seccomp
from gantry.runtime.users import ExecUser

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_SIZE = 64 << 20
#: Docker's default open-files limit (capped at our own hard limit when generating).
DEFAULT_NOFILE = 1048576

DEFAULT_CAPABILITIES: tuple[str, ...] = (
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

#: Every capability by number (capabilities(7)); "ALL" in --cap-add means these.
ALL_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

# (type, major, minor, access): what a container may open besides "mknod anything".
_ALLOWED_DEVICES: tuple[tuple[str, int | None, int | None, str], ...] = (
    ("c", None, None, "m"),
    ("b", None, None, "m"),
    ("c", 1, 3, "rwm"),  # /dev/null
    ("c", 1, 8, "rwm"),  # /dev/random
    ("c", 1, 7, "rwm"),  # /dev/full
    ("c", 5, 0, "rwm"),  # /dev/tty
    ("c", 1, 5, "rwm"),  # /dev/zero
    ("c", 1, 9, "rwm"),  # /dev/urandom
    ("c", 136, None, "rwm"),  # /dev/pts/*
    ("c", 5, 2, "rwm"),  # /dev/ptmx
    ("c", 10, 200, "rwm"),  # /dev/net/tun
)

_RLIMIT_NAMES = {
    "core": "RLIMIT_CORE",
    "cpu": "RLIMIT_CPU",
    "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS",
    "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE",
    "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC",
    "rss": "RLIMIT_RSS",
    "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME",
    "sigpending": "RLIMIT_SIGPENDING",
    "stack": "RLIMIT_STACK",
    "as": "RLIMIT_AS",
}


@dataclass(frozen=True)
class Mount:
    """One entry of the spec's ``mounts``."""

    destination: str
    type: str = "bind"
    source: str = ""
    options: tuple[str, ...] = ()

    def to_oci(self) -> dict[str, Any]:
        d: dict[str, Any] = {"destination": self.destination, "type": self.type}
        if self.source:
            d["source"] = self.source
        if self.options:
            d["options"] = list(self.options)
        return d


def bind_mount(
    source: str | os.PathLike[str], destination: str, *, readonly: bool = False
) -> Mount:
    """A recursive, private bind mount (``-v SRC:DST[:ro]``)."""
    opts = ("rbind", "rprivate") + (("ro",) if readonly else ())
    return Mount(destination, "bind", os.fspath(source), opts)


def tmpfs_mount(destination: str, options: Sequence[str] = ()) -> Mount:
    """A tmpfs (``--tmpfs DST[:OPTS]``), ``noexec,nosuid,nodev`` unless the options say."""
    opts = list(options)
    for default, opposite in (("noexec", "exec"), ("nosuid", "suid"), ("nodev", "dev")):
        if default not in opts and opposite not in opts:
            opts.append(default)
    return Mount(destination, "tmpfs", "tmpfs", tuple(opts))


@dataclass(frozen=True)
class Rlimit:
    type: str  # RLIMIT_NOFILE ...
    soft: int
    hard: int


def parse_ulimit(spec: str) -> Rlimit:
    """Docker's ``--ulimit name=soft[:hard]`` syntax."""
    name, sep, values = spec.partition("=")
    rtype = _RLIMIT_NAMES.get(name.strip().lower())
    if not sep or rtype is None:
        raise UsageError(f"invalid ulimit argument: {spec}")
    soft_s, _, hard_s = values.partition(":")
    try:
        soft = int(soft_s)
        hard = int(hard_s) if hard_s else soft
    except ValueError:
        raise UsageError(f"invalid ulimit argument: {spec}") from None
    if soft > hard:
        raise UsageError(
            f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )
    return Rlimit(rtype, soft, hard)


@dataclass(frozen=True)
class Resources:
    """cgroup limits (``--memory``, ``--cpus``/``--cpu-quota``, ``--pids-limit``...)."""

    memory: int | None = None
    memory_reservation: int | None = None
    memory_swap: int | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None

    @classmethod
    def from_cpus(cls, cpus: float, **kw: Any) -> Resources:
        """``--cpus N``: a quota of N periods of 100 ms."""
        period = 100_000
        return cls(cpu_period=period, cpu_quota=int(cpus * period), **kw)


@dataclass
class SpecOptions:
    """What to run and how; every field has Docker's default."""

    args: Sequence[str]
    rootfs: str = "rootfs"
    env: Sequence[str] = ()
    cwd: str = "/"
    user: ExecUser = field(default_factory=lambda: ExecUser(0, 0, (0,), "/root", "root"))
    umask: int | None = None
    terminal: bool = False
    readonly_rootfs: bool = False
    hostname: str | None = None
    #: "host" (share the host's network: builds), "none" (a fresh netns with only lo),
    #: or the path of an existing network namespace to join.
    network: str = "host"
    pid_namespace: str = "private"  # or "host"
    ipc_namespace: str = "private"  # or "host"
    uts_namespace: str = "private"  # or "host"
    #: Files bind-mounted over /etc/hosts, /etc/resolv.conf, /etc/hostname when given.
    hosts_file: str | None = None
    resolv_conf: str | None = None
    hostname_file: str | None = None
    etc_files_readonly: bool = False
    mounts: Sequence[Mount] = ()
    shm_size: int = DEFAULT_SHM_SIZE
    cap_add: Sequence[str] = ()
    cap_drop: Sequence[str] = ()
    privileged: bool = False
    no_new_privileges: bool = False
    #: True: the default profile; False: unconfined; a mapping: that linux.seccomp object.
    seccomp: bool | Mapping[str, Any] = True
    #: None: Docker's default (open files); rlimits above our hard limits are capped.
    rlimits: Sequence[Rlimit] | None = None
    masked_paths: Sequence[str] = MASKED_PATHS
    readonly_paths: Sequence[str] = READONLY_PATHS
    cgroups_path: str | None = None
    resources: Resources | None = None
    oom_score_adj: int | None = None
    sysctl: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    add_default_env: bool = True


def normalize_capability(name: str) -> str:
    """``net_admin`` / ``NET_ADMIN`` / ``CAP_NET_ADMIN`` -> ``CAP_NET_ADMIN``; ``ALL`` stays."""
    n = name.strip().upper()
    if n == "ALL":
        return n
    if not n.startswith("CAP_"):
        n = "CAP_" + n
    if n not in ALL_CAPABILITIES:
        raise UsageError(f"invalid capability: {name}")
    return n


def host_capabilities() -> frozenset[str] | None:
    """The capabilities in this process's bounding set (None if /proc does not say)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    mask = int(line.split()[1], 16)
                    return frozenset(c for i, c in enumerate(ALL_CAPABILITIES) if mask >> i & 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


def capabilities(
    cap_add: Sequence[str] = (), cap_drop: Sequence[str] = (), *, privileged: bool = False
) -> list[str]:
    """Docker's rules: start from the defaults (or all, privileged), add, then drop.

    Only capabilities this process has itself are given (as dockerd does): asking runc for
    one outside our bounding set (``--privileged`` where CAP_SYS_RESOURCE is withheld from
    us, say) would make it refuse to start the container.
    """
    have = host_capabilities()
    if privileged:
        base = list(ALL_CAPABILITIES)
    else:
        add = [normalize_capability(c) for c in cap_add]
        drop = [normalize_capability(c) for c in cap_drop]
        base = [] if "ALL" in drop else list(DEFAULT_CAPABILITIES)
        if "ALL" in add:
            base = list(ALL_CAPABILITIES)
        for c in add:
            if c != "ALL" and c not in base:
                base.append(c)
        base = [c for c in base if c not in drop]
    return base if have is None else [c for c in base if c in have]


def capped_rlimits(rlimits: Sequence[Rlimit] | None) -> list[Rlimit]:
    """The rlimits to ask for, never above this process's current hard limits."""
    wanted = (
        list(rlimits)
        if rlimits is not None
        else [Rlimit("RLIMIT_NOFILE", DEFAULT_NOFILE, DEFAULT_NOFILE)]
    )
    out: list[Rlimit] = []
    for r in wanted:
        res = getattr(resource, r.type, None)
        if res is None:
            raise UsageError(f"unknown rlimit {r.type}")
        _, cur_hard = resource.getrlimit(res)
        hard = r.hard if cur_hard == resource.RLIM_INFINITY else min(r.hard, cur_hard)
        out.append(Rlimit(r.type, min(r.soft, hard), hard))
    return out


def _default_mounts(o: SpecOptions) -> list[Mount]:
    sys_opts = ("nosuid", "noexec", "nodev") + (() if o.privileged else ("ro",))
    return [
        Mount("/proc", "proc", "proc", ("nosuid", "noexec", "nodev")),
        Mount("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
        Mount(
            "/dev/pts",
            "devpts",
            "devpts",
            ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"),
        ),
        Mount("/sys", "sysfs", "sysfs", sys_opts),
        Mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            ("nosuid", "noexec", "nodev", "relatime") + (() if o.privileged else ("ro",)),
        ),
        Mount("/dev/mqueue", "mqueue", "mqueue", ("nosuid", "noexec", "nodev")),
        Mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            ("nosuid", "noexec", "nodev", "mode=1777", f"size={o.shm_size // 1024}k"),
        ),
    ]


def _depth(dest: str) -> int:
    return len([c for c in os.path.normpath(dest).split("/") if c])


def _mounts(o: SpecOptions) -> list[dict[str, Any]]:
    extra: list[Mount] = []
    for path, dest in (
        (o.hosts_file, "/etc/hosts"),
        (o.resolv_conf, "/etc/resolv.conf"),
        (o.hostname_file, "/etc/hostname"),
    ):
        if path is not None:
            extra.append(bind_mount(path, dest, readonly=o.etc_files_readonly))
    user_dests = {os.path.normpath(m.destination) for m in o.mounts}
    for m in o.mounts:
        if not m.destination.startswith("/"):
            raise UsageError(f"invalid mount config: mount path must be absolute: {m.destination}")
    extra = [m for m in extra if m.destination not in user_dests]
    defaults = [m for m in _default_mounts(o) if m.destination not in user_dests]
    # Parents before children, as Docker sorts them; stable for equal depths.
    users = sorted(o.mounts, key=lambda m: _depth(m.destination))
    return [m.to_oci() for m in (*defaults, *extra, *users)]


def _namespaces(o: SpecOptions) -> list[dict[str, str]]:
    ns: list[dict[str, str]] = [{"type": "mount"}]
    for kind, mode in (
        ("pid", o.pid_namespace),
        ("ipc", o.ipc_namespace),
        ("uts", o.uts_namespace),
    ):
        if mode == "private":
            ns.append({"type": kind})
        elif mode != "host":
            raise UsageError(f"invalid {kind} namespace mode: {mode}")
    if o.network == "none":
        ns.append({"type": "network"})
    elif o.network != "host":
        if not o.network.startswith("/"):
            raise UsageError(f"network namespace path must be absolute: {o.network}")
        ns.append({"type": "network", "path": o.network})
    return ns


def _resources(o: SpecOptions) -> dict[str, Any]:
    if o.privileged:
        devices: list[dict[str, Any]] = [{"allow": True, "access": "rwm"}]
    else:
        devices = [{"allow": False, "access": "rwm"}]
        for typ, major, minor, access in _ALLOWED_DEVICES:
            d: dict[str, Any] = {"allow": True, "type": typ, "access": access}
            if major is not None:
                d["major"] = major
            if minor is not None:
                d["minor"] = minor
            devices.append(d)
    out: dict[str, Any] = {"devices": devices}
    r = o.resources
    if r is None:
        return out
    mem = {
        k: v
        for k, v in (
            ("limit", r.memory),
            ("reservation", r.memory_reservation),
            ("swap", r.memory_swap),
        )
        if v is not None
    }
    if mem:
        out["memory"] = mem
    cpu: dict[str, Any] = {
        k: v
        for k, v in (
            ("shares", r.cpu_shares),
            ("quota", r.cpu_quota),
            ("period", r.cpu_period),
            ("cpus", r.cpuset_cpus),
            ("mems", r.cpuset_mems),
        )
        if v is not None
    }
    if cpu:
        out["cpu"] = cpu
    if r.pids_limit is not None:
        out["pids"] = {"limit": r.pids_limit}
    return out


def process_env(env: Sequence[str], user: ExecUser) -> list[str]:
    """``env`` plus Docker's defaults when missing: ``PATH`` and ``HOME`` (from passwd)."""
    out = list(env)
    keys = {e.split("=", 1)[0] for e in out}
    if "PATH" not in keys:
        out.insert(0, f"PATH={DEFAULT_PATH}")
    if "HOME" not in keys:
        out.append(f"HOME={user.home or '/'}")
    return out


def generate(o: SpecOptions) -> dict[str, Any]:
    """The ``config.json`` object for ``o`` (validates against the runtime-spec schema)."""
    if not o.args:
        raise UsageError("no command specified")
    if not o.cwd.startswith("/"):
        raise UsageError(
            f"the working directory '{o.cwd}' is invalid, it needs to be an absolute path"
        )
    caps = capabilities(o.cap_add, o.cap_drop, privileged=o.privileged)
    if o.user.uid == 0:
        cap_sets: dict[str, list[str]] = {"bounding": caps, "effective": caps, "permitted": caps}
    else:
        # As Docker: a non-root process gets only the bounding set, like after execve(2).
        cap_sets = {"bounding": caps}
    user: dict[str, Any] = {"uid": o.user.uid, "gid": o.user.gid}
    if o.user.additional_gids:
        user["additionalGids"] = list(o.user.additional_gids)
    if o.umask is not None:
        user["umask"] = o.umask
    process: dict[str, Any] = {
        "terminal": o.terminal,
        "user": user,
        "args": list(o.args),
        "env": process_env(o.env, o.user) if o.add_default_env else list(o.env),
        "cwd": o.cwd,
        "capabilities": cap_sets,
        "rlimits": [
            {"type": r.type, "soft": r.soft, "hard": r.hard} for r in capped_rlimits(o.rlimits)
        ],
        "noNewPrivileges": o.no_new_privileges,
    }
    if o.oom_score_adj is not None:
        process["oomScoreAdj"] = o.oom_score_adj
    linux: dict[str, Any] = {
        "namespaces": _namespaces(o),
        "resources": _resources(o),
        "maskedPaths": [] if o.privileged else list(o.masked_paths),
        "readonlyPaths": [] if o.privileged else list(o.readonly_paths),
    }
    if o.cgroups_path:
        linux["cgroupsPath"] = o.cgroups_path
    if o.sysctl:
        linux["sysctl"] = dict(o.sysctl)
    if o.seccomp is True and not o.privileged:
        linux["seccomp"] = seccomp.default_profile(caps)
    elif isinstance(o.seccomp, Mapping):
        linux["seccomp"] = dict(o.seccomp)
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": o.rootfs, "readonly": o.readonly_rootfs},
        "mounts": _mounts(o),
        "linux": linux,
    }
    if o.hostname is not None:
        if o.uts_namespace == "host":
            raise UsageError("conflicting options: hostname and the network mode")
        spec["hostname"] = o.hostname
    if o.annotations:
        spec["annotations"] = dict(o.annotations)
    return spec


def write_config(bundle: str | os.PathLike[str], spec: Mapping[str, Any]) -> Path:
    """Write ``bundle/config.json`` atomically (temp file + rename).

    Compact JSON from the C encoder (``indent`` would take the pure-Python one: a tenth of a
    container start). No fsync: a bundle is written again before every start, so one lost
    in a crash is never read.
    """
    b = Path(bundle)
    b.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", dir=b)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(spec, separators=(",", ":")))
        os.replace(tmp, b / "config.json")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return b / "config.json"
