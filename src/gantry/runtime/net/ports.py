"""Published ports: ``-p``/``--publish`` and ``-P``/``--publish-all`` as Docker reads them.

A spec is ``[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`` where each port may be a range
(``8000-8010:80-90``). An empty host port asks for a free one at setup time; a host range
against a single container port means "any free port in this range". Parsing follows
docker/go-connections (error wording included) and yields one :class:`PortMapping` per
container port. Nothing here touches the network: choosing free host ports is
:func:`gantry.runtime.net.manager.setup`'s job, done under the network lock.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gantry.errors import UsageError

PROTOCOLS = ("tcp", "udp", "sctp")
#: What gantry can publish today (no SCTP NAT rules yet).
SUPPORTED_PROTOCOLS = ("tcp", "udp")

_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class PortMapping:
    """One container port and where it is published on the host.

    ``host_port == 0`` means "pick a free port": from ``host_range`` when set (``-p
    8000-8010:80``), else from the kernel's ephemeral range. ``host_ip == ""`` means every
    host address (Docker's 0.0.0.0).
    """

    container_port: int
    proto: str = "tcp"
    host_ip: str = ""
    host_port: int = 0
    host_range: tuple[int, int] | None = None

    @property
    def key(self) -> str:
        """Docker's ``PORT/PROTO`` name (the key of ``NetworkSettings.Ports``)."""
        return f"{self.container_port}/{self.proto}"

    def __str__(self) -> str:
        host = self.host_ip or "0.0.0.0"
        if ":" in host:
            host = f"[{host}]"
        hp = str(self.host_port) if self.host_port else ""
        if not self.host_port and self.host_range:
            hp = f"{self.host_range[0]}-{self.host_range[1]}"
        return f"{host}:{hp}:{self.key}"


def _port_number(text: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise ValueError(text)
    n = int(text)
    if n > 65535:
        raise ValueError(text)
    return n


def parse_port_range(text: str) -> tuple[int, int]:
    """``"80"`` -> (80, 80); ``"8000-8010"`` -> (8000, 8010). ValueError when malformed."""
    if text == "":
        raise ValueError("empty string specified for ports")
    start_s, sep, end_s = text.partition("-")
    start = _port_number(start_s)
    end = _port_number(end_s) if sep else start
    if end < start:
        raise ValueError(f"invalid range specified for port: {text}")
    return start, end


def _split_parts(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _host_ip(ip: str) -> str:
    if ip.startswith("["):
        if not ip.endswith("]"):
            raise UsageError(f"invalid IP address {ip}: missing ']' in address")
        ip = ip[1:-1]
    if not ip:
        return ""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise UsageError(f"invalid IP address: {ip}") from None
    if addr.version == 6:
        raise UsageError(
            f"invalid IP address: {ip}",
            hint="gantry's bridge network is IPv4 only; publish on an IPv4 host address",
        )
    return "" if addr == ipaddress.IPv4Address("0.0.0.0") else str(addr)


def parse_publish(spec: str) -> list[PortMapping]:
    """Parse one ``-p`` value into the mappings it stands for (one per container port)."""
    ip, host_port, container = _split_parts(spec)
    container, _, proto = container.partition("/")
    if container == "":
        raise UsageError(f"no port specified: {spec}<empty>")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise UsageError(f"invalid proto: {proto}")
    if proto not in SUPPORTED_PROTOCOLS:
        raise UsageError(f"publishing {proto} ports is not supported")
    host_ip = _host_ip(ip)
    try:
        start, end = parse_port_range(container)
    except ValueError:
        raise UsageError(f"invalid containerPort: {container}") from None
    if start == 0:
        raise UsageError(f"invalid containerPort: {container}")
    hstart = hend = 0
    if host_port != "":
        try:
            hstart, hend = parse_port_range(host_port)
        except ValueError:
            raise UsageError(f"invalid hostPort: {host_port}") from None
        if end - start != hend - hstart and end != start:
            raise UsageError(
                "invalid ranges specified for container and host Ports: "
                f"{container} and {host_port}"
            )
        if hstart == 0 and hend != 0:
            raise UsageError(f"invalid hostPort: {host_port}")
    if end == start and hend != hstart:
        # one container port against a host range: any free port inside the range
        return [PortMapping(start, proto, host_ip, 0, (hstart, hend))]
    return [
        PortMapping(start + i, proto, host_ip, hstart + i if hstart else 0)
        for i in range(end - start + 1)
    ]


def parse_publish_all(specs: Iterable[str]) -> list[PortMapping]:
    """Every ``-p`` flag of a command line, in order."""
    out: list[PortMapping] = []
    for s in specs:
        out += parse_publish(s)
    return out


def parse_exposed(port: str) -> tuple[int, str]:
    """An image's ``ExposedPorts`` key (``"80/tcp"``, ``"53/udp"``, ``"8080"``) -> (80, "tcp")."""
    num, _, proto = port.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise UsageError(f"invalid proto: {proto}")
    try:
        start, end = parse_port_range(num)
    except ValueError:
        raise UsageError(f"invalid containerPort: {num}") from None
    if start != end:
        raise UsageError(f"invalid containerPort: {num}")
    return start, proto


def publish_exposed(
    exposed: Iterable[str], explicit: Iterable[PortMapping] = ()
) -> list[PortMapping]:
    """``-P``: every exposed port not already published by ``-p``, on a random host port.

    SCTP ports are skipped (gantry cannot NAT them yet) rather than failing the run.
    """
    taken = {(m.container_port, m.proto) for m in explicit}
    out: list[PortMapping] = []
    for key in sorted(set(exposed), key=lambda k: parse_exposed(k)):
        port, proto = parse_exposed(key)
        if proto in SUPPORTED_PROTOCOLS and (port, proto) not in taken:
            taken.add((port, proto))
            out.append(PortMapping(port, proto))
    return out


def from_port_bindings(bindings: Mapping[str, Iterable[Mapping[str, str]]]) -> list[PortMapping]:
    """Docker's ``HostConfig.PortBindings`` (``{"80/tcp": [{"HostIp", "HostPort"}]}``) as
    mappings, validated exactly like ``-p`` values."""
    out: list[PortMapping] = []
    for key in sorted(bindings, key=lambda k: parse_exposed(k)):
        port, proto = parse_exposed(key)
        for b in bindings[key] or ():
            ip = str(b.get("HostIp") or "")
            if ":" in ip:
                ip = f"[{ip}]"
            out += parse_publish(f"{ip}:{b.get('HostPort') or ''}:{port}/{proto}")
    return out
