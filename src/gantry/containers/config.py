"""What ``gantry create``/``run`` decide, merged with the image's config, in Docker's shapes.

:class:`CreateOptions` is the library's view of ``docker create``'s flags (already parsed:
sizes in bytes, env files read). :func:`container_settings` merges it with the image's
``config`` object the way the Docker daemon does (``merge`` + ``mergeAndVerifyConfig``):
the user's Env replaces the image's per key, an ``--entrypoint`` drops the image's Cmd,
``--entrypoint ""`` resets the entrypoint, and no command at all is an error. The result
is ``{"Config": ..., "HostConfig": ..., "Path": ..., "Args": [...]}`` as ``docker inspect``
shows it, and is what the container record keeps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gantry.errors import UsageError

RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
NETWORK_MODES = ("bridge", "host", "none", "default")

_ENV_KEY = re.compile(r"^[^=\s]+$")


@dataclass
class CreateOptions:
    """``docker create`` flags (the image and command included)."""

    image: str
    command: Sequence[str] = ()
    entrypoint: str | None = None  #: None: not given; "" resets the image's entrypoint
    name: str | None = None
    env: Sequence[str] = ()
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    domainname: str = ""
    add_hosts: Sequence[str] = ()
    dns: Sequence[str] = ()
    dns_search: Sequence[str] = ()
    dns_options: Sequence[str] = ()
    tty: bool = False
    interactive: bool = False
    attach: Sequence[str] = ()  #: streams for a foreground run: stdin, stdout, stderr
    read_only: bool = False
    cap_add: Sequence[str] = ()
    cap_drop: Sequence[str] = ()
    privileged: bool = False
    security_opt: Sequence[str] = ()
    init: bool = False
    binds: Sequence[str] = ()  #: -v SRC:DST[:OPTS] / -v DST
    mounts: Sequence[Mapping[str, Any]] = ()  #: --mount, parsed (type/source/target/readonly)
    tmpfs: Sequence[str] = ()
    publish: Sequence[str] = ()
    publish_all: bool = False
    expose: Sequence[str] = ()
    network: str = "bridge"
    memory: int = 0
    memory_swap: int = 0
    memory_reservation: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpuset_cpus: str = ""
    pids_limit: int | None = None
    ulimits: Sequence[str] = ()
    restart: str = "no"
    auto_remove: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str | None = None
    stop_timeout: int | None = None
    health_cmd: str | None = None
    health_interval: float = 0.0
    health_timeout: float = 0.0
    health_retries: int = 0
    health_start_period: float = 0.0
    no_healthcheck: bool = False
    log_driver: str = "json-file"
    log_opts: Mapping[str, str] = field(default_factory=dict)
    shm_size: int = 0
    sysctls: Mapping[str, str] = field(default_factory=dict)


def parse_restart(text: str) -> tuple[str, int]:
    """``no``, ``always``, ``unless-stopped``, ``on-failure[:N]`` -> (name, max retries)."""
    name, sep, count = text.partition(":")
    if name not in RESTART_POLICIES:
        raise UsageError(f"invalid restart policy format: {text}")
    if sep:
        if name != "on-failure":
            raise UsageError(
                f"invalid restart policy format: maximum retry count cannot be used with restart policy '{name}'"
            )
        try:
            n = int(count)
        except ValueError:
            raise UsageError(
                "invalid restart policy format: maximum retry count must be an integer"
            ) from None
        if n < 0:
            raise UsageError("invalid restart policy: maximum retry count cannot be negative")
        return name, n
    return name, 0


def merge_env(base: Sequence[str], override: Sequence[str]) -> list[str]:
    """Docker's ``ReplaceOrAppendEnvValues``: a key in ``override`` replaces the same key."""
    out = list(base)
    index = {e.split("=", 1)[0]: i for i, e in enumerate(out)}
    for e in override:
        key, sep, _ = e.partition("=")
        if not sep:
            continue  # a bare name the CLI could not resolve: dropped, as Docker does
        if key in index:
            out[index[key]] = e
        else:
            index[key] = len(out)
            out.append(e)
    return out


def entrypoint_and_cmd(
    image_config: Mapping[str, Any], command: Sequence[str], entrypoint: str | None
) -> tuple[list[str] | None, list[str] | None]:
    """The container's Entrypoint and Cmd (Docker's ``merge`` + ``mergeAndVerifyConfig``)."""
    user_ep: list[str] | None = None if entrypoint is None else [entrypoint]
    user_cmd: list[str] | None = list(command) if command else None
    if not user_ep:
        if not user_cmd:
            img_cmd = image_config.get("Cmd")
            user_cmd = list(img_cmd) if img_cmd else None
        if user_ep is None:
            img_ep = image_config.get("Entrypoint")
            user_ep = list(img_ep) if img_ep else None
    if user_ep == [""]:
        user_ep = None
    if not user_ep and not user_cmd:
        raise UsageError("No command specified")
    return user_ep, user_cmd


def path_and_args(
    entrypoint: Sequence[str] | None, cmd: Sequence[str] | None
) -> tuple[str, list[str]]:
    """Docker's ``getEntrypointAndArgs``."""
    ep = list(entrypoint or [])
    c = list(cmd or [])
    if ep:
        return ep[0], ep[1:] + c
    return c[0], c[1:]


def _ports_set(specs: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        port, _, proto = spec.partition("/")
        proto = proto or "tcp"
        if "-" in port:
            lo, _, hi = port.partition("-")
            try:
                for p in range(int(lo), int(hi) + 1):
                    out[f"{p}/{proto}"] = {}
            except ValueError:
                raise UsageError(f"invalid range format for --expose: {spec}") from None
        else:
            out[f"{port}/{proto}"] = {}
    return out


def _healthcheck(opts: CreateOptions, image_hc: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if opts.no_healthcheck:
        return {"Test": ["NONE"]}
    if opts.health_cmd is None and not (
        opts.health_interval
        or opts.health_timeout
        or opts.health_retries
        or opts.health_start_period
    ):
        return dict(image_hc) if image_hc else None
    hc: dict[str, Any] = dict(image_hc or {})
    if opts.health_cmd is not None:
        hc["Test"] = ["CMD-SHELL", opts.health_cmd]
    for key, val in (
        ("Interval", opts.health_interval),
        ("Timeout", opts.health_timeout),
        ("StartPeriod", opts.health_start_period),
    ):
        if val:
            hc[key] = int(val * 1e9)
    if opts.health_retries:
        hc["Retries"] = opts.health_retries
    return hc


def container_settings(
    opts: CreateOptions, image_config: Mapping[str, Any], *, container_id: str
) -> dict[str, Any]:
    """``{"Config", "HostConfig", "Path", "Args"}`` for a new container."""
    for e in opts.env:
        if not _ENV_KEY.match(e.split("=", 1)[0]):
            raise UsageError(f"invalid environment variable: {e}")
    restart, retries = parse_restart(opts.restart)
    if opts.auto_remove and restart != "no":
        raise UsageError("Conflicting options: --restart and --rm")
    network = opts.network or "bridge"
    if network == "default":
        network = "bridge"
    if network not in NETWORK_MODES and not network.startswith("container:"):
        raise UsageError(f"network {network} not found")
    if network == "host" and opts.publish:
        pass  # Docker prints a warning and discards them; the CLI says so
    ep, cmd = entrypoint_and_cmd(image_config, opts.command, opts.entrypoint)
    path, args = path_and_args(ep, cmd)
    hostname = opts.hostname or ""
    if not hostname:
        if network == "host":
            import socket

            hostname = socket.gethostname()
        else:
            hostname = container_id[:12]
    exposed = dict(image_config.get("ExposedPorts") or {})
    exposed.update(_ports_set(opts.expose))
    bindings = _port_bindings(opts.publish)
    exposed.update({k: {} for k in bindings})
    volumes = dict(image_config.get("Volumes") or {})
    labels = dict(image_config.get("Labels") or {})
    labels.update(opts.labels)
    config: dict[str, Any] = {
        "Hostname": hostname,
        "Domainname": opts.domainname,
        "User": opts.user if opts.user is not None else str(image_config.get("User") or ""),
        "AttachStdin": "stdin" in opts.attach,
        "AttachStdout": "stdout" in opts.attach,
        "AttachStderr": "stderr" in opts.attach,
    }
    if exposed:
        config["ExposedPorts"] = exposed
    config.update(
        {
            "Tty": opts.tty,
            "OpenStdin": opts.interactive,
            "StdinOnce": opts.interactive and "stdin" in opts.attach,
            "Env": merge_env(list(image_config.get("Env") or []), opts.env),
            "Cmd": cmd,
        }
    )
    hc = _healthcheck(opts, image_config.get("Healthcheck"))
    if hc:
        config["Healthcheck"] = hc
    config.update(
        {
            "Image": opts.image,
            "Volumes": volumes or None,
            "WorkingDir": opts.workdir
            if opts.workdir is not None
            else str(image_config.get("WorkingDir") or ""),
            "Entrypoint": ep,
            "OnBuild": None,
            "Labels": labels,
        }
    )
    stop_signal = opts.stop_signal or image_config.get("StopSignal")
    if stop_signal:
        config["StopSignal"] = stop_signal
    if opts.stop_timeout is not None:
        config["StopTimeout"] = opts.stop_timeout
    if config["WorkingDir"] and not str(config["WorkingDir"]).startswith("/"):
        raise UsageError(
            f"the working directory '{config['WorkingDir']}' is invalid, it needs to be an "
            "absolute path"
        )
    host_config: dict[str, Any] = {
        "Binds": list(opts.binds) or None,
        "ContainerIDFile": "",
        "LogConfig": {"Type": opts.log_driver, "Config": dict(opts.log_opts)},
        "NetworkMode": network,
        "PortBindings": {},
        "RestartPolicy": {"Name": restart, "MaximumRetryCount": retries},
        "AutoRemove": opts.auto_remove,
        "VolumeDriver": "",
        "VolumesFrom": None,
        "ConsoleSize": [0, 0],
        "CapAdd": list(opts.cap_add) or None,
        "CapDrop": list(opts.cap_drop) or None,
        "CgroupnsMode": "host",
        "Dns": list(opts.dns),
        "DnsOptions": list(opts.dns_options),
        "DnsSearch": list(opts.dns_search),
        "ExtraHosts": list(opts.add_hosts) or None,
        "GroupAdd": None,
        "IpcMode": "private",
        "Cgroup": "",
        "Links": None,
        "OomScoreAdj": 0,
        "PidMode": "",
        "Privileged": opts.privileged,
        "PublishAllPorts": opts.publish_all,
        "ReadonlyRootfs": opts.read_only,
        "SecurityOpt": list(opts.security_opt) or None,
        "Tmpfs": {t.partition(":")[0]: t.partition(":")[2] for t in opts.tmpfs} or None,
        "UTSMode": "",
        "UsernsMode": "",
        "ShmSize": opts.shm_size or 64 * 1024 * 1024,
        "Sysctls": dict(opts.sysctls) or None,
        "Runtime": "runc",
        "Isolation": "",
        "CpuShares": opts.cpu_shares,
        "Memory": opts.memory,
        "NanoCpus": opts.nano_cpus,
        "CgroupParent": "",
        "BlkioWeight": 0,
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpusetCpus": opts.cpuset_cpus,
        "CpusetMems": "",
        "MemoryReservation": opts.memory_reservation,
        "MemorySwap": opts.memory_swap,
        "PidsLimit": opts.pids_limit,
        "Ulimits": [_ulimit_json(u) for u in opts.ulimits] or None,
        "Mounts": [dict(m) for m in opts.mounts] or None,
        "Init": opts.init or None,
        "MaskedPaths": None,
        "ReadonlyPaths": None,
    }
    host_config["PortBindings"] = bindings
    return {"Path": path, "Args": args, "Config": config, "HostConfig": host_config}


def _ulimit_json(spec: str) -> dict[str, Any]:
    from gantry.runtime.spec import parse_ulimit

    r = parse_ulimit(spec)
    return {"Name": spec.partition("=")[0], "Soft": r.soft, "Hard": r.hard}


def _port_bindings(publish: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """``-p`` specs as Docker's HostConfig.PortBindings (parsed as Docker parses them)."""
    if not publish:
        return {}  # without -p the port parser is not even imported
    from gantry.runtime.net.ports import parse_publish_all

    out: dict[str, list[dict[str, str]]] = {}
    for m in parse_publish_all(publish):
        if m.host_port:
            hp = str(m.host_port)
        elif m.host_range:
            hp = f"{m.host_range[0]}-{m.host_range[1]}"
        else:
            hp = ""
        out.setdefault(m.key, []).append({"HostIp": m.host_ip, "HostPort": hp})
    return out
