"""``docker inspect``'s container object (``container.InspectResponse``), field for field."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gantry.containers.bundle import public_mounts
from gantry.containers.logs import format_time
from gantry.containers.state import DEAD, PAUSED, RESTARTING, RUNNING, Container

if TYPE_CHECKING:
    from gantry.containers.lifecycle import Containers

ZERO_TIME = "0001-01-01T00:00:00Z"


def go_time(ts: float | None) -> str:
    """A Unix time as Go marshals ``time.Time`` in JSON (UTC, RFC 3339 nano)."""
    if ts is None or ts <= 0:
        return ZERO_TIME
    return format_time(int(ts * 1_000_000_000))


def state_document(c: Container) -> dict[str, Any]:
    st: dict[str, Any] = {
        "Status": c.state,
        "Running": c.state in (RUNNING, PAUSED),
        "Paused": c.state == PAUSED,
        "Restarting": c.state == RESTARTING,
        "OOMKilled": c.oom_killed,
        "Dead": c.state == DEAD,
        "Pid": c.pid or 0 if c.state in (RUNNING, PAUSED) else 0,
        "ExitCode": c.exit_code or 0,
        "Error": c.error,
        "StartedAt": go_time(c.started),
        "FinishedAt": go_time(c.finished),
    }
    if c.health:
        st["Health"] = c.health
    return st


def _ports(c: Container) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for port in c.config.get("ExposedPorts") or {}:
        out[port] = None
    if c.state == RUNNING:
        for port, bindings in (c.settings.get("NetworkPorts") or {}).items():
            out[port] = bindings
    return out


def network_settings(c: Container) -> dict[str, Any]:
    net = c.settings.get("Network") or {}
    mode = str(c.host_config.get("NetworkMode") or "bridge")
    ip = str(net.get("IPAddress") or "") if c.state == RUNNING else ""
    gateway = str(net.get("Gateway") or "") if c.state == RUNNING else ""
    prefix = int(net.get("IPPrefixLen") or 0) if c.state == RUNNING else 0
    mac = str(net.get("MacAddress") or "") if c.state == RUNNING else ""
    networks: dict[str, Any] = {}
    if not mode.startswith("container:"):
        networks[mode] = {
            "IPAMConfig": None,
            "Links": None,
            "Aliases": None,
            "MacAddress": mac,
            "DriverOpts": None,
            "NetworkID": str(net.get("NetworkID") or ""),
            "EndpointID": str(net.get("EndpointID") or "") if c.state == RUNNING else "",
            "Gateway": gateway,
            "IPAddress": ip,
            "IPPrefixLen": prefix,
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "DNSNames": None,
        }
    bridge = mode == "bridge"
    return {
        "Bridge": "",
        "SandboxID": c.id if c.state == RUNNING else "",
        "SandboxKey": str(net.get("SandboxKey") or "") if c.state == RUNNING else "",
        "Ports": _ports(c),
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": str(net.get("EndpointID") or "") if bridge and c.state == RUNNING else "",
        "Gateway": gateway if bridge else "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": ip if bridge else "",
        "IPPrefixLen": prefix if bridge else 0,
        "IPv6Gateway": "",
        "MacAddress": mac if bridge else "",
        "Networks": networks,
    }


def inspect_document(mgr: Containers, c: Container, *, size: bool = False) -> dict[str, Any]:
    """The object ``docker container inspect`` prints for ``c``."""
    cdir = mgr.container_dir(c.id)
    bundle = cdir / "bundle"
    lowers = ""
    if c.chain_id is not None:
        try:
            lowers = ":".join(str(p) for p in mgr.store.lowerdirs(c.chain_id))
        except Exception:
            lowers = ""
    doc: dict[str, Any] = {
        "Id": c.id,
        "Created": go_time(c.created),
        "Path": c.path,
        "Args": c.args,
        "State": state_document(c),
        "Image": c.image_id,
        "ResolvConfPath": str(bundle / "resolv.conf"),
        "HostnamePath": str(bundle / "hostname"),
        "HostsPath": str(bundle / "hosts"),
        "LogPath": str(mgr.log_path(c.id)),
        "Name": "/" + c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlay2",
        "Platform": str(c.settings.get("Platform") or "linux"),
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": c.settings.get("ExecIDs") or None,
        "HostConfig": c.host_config,
        "GraphDriver": {
            "Data": {
                "LowerDir": lowers,
                "MergedDir": str(cdir / "merged"),
                "UpperDir": str(cdir / "upper"),
                "WorkDir": str(cdir / "work"),
            },
            "Name": "overlay2",
        },
    }
    if size:
        rw = mgr.size_rw(c.id)
        doc["SizeRw"] = rw
        try:
            doc["SizeRootFs"] = rw + int(mgr.store.image(c.image_id).size)
        except Exception:
            doc["SizeRootFs"] = rw
    doc["Mounts"] = public_mounts(c.settings.get("Mounts") or [])
    doc["Config"] = c.config
    doc["NetworkSettings"] = network_settings(c)
    return doc
