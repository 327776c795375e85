"""Give a container its network: ``setup`` before it starts, ``teardown`` when it is removed.

Modes, as ``docker run --network``:

- ``bridge`` (default): a named netns, a veth pair whose host end sits on the ``gantry0``
  bridge, an address from the bridge's subnet, outbound NAT, published ports.
- ``none``: a named netns with only ``lo`` (up).
- ``host``: no namespace; the container shares the host's network. Published ports are
  discarded (with a warning, as Docker does).
- ``container:<id>``: join the namespace of another container set up here.

The OCI bundle joins the namespace by path: pass ``NetworkInfo.netns_path`` as
``SpecOptions.network`` (``"host"`` for host mode), which becomes
``{"type": "network", "path": ...}`` in ``linux.namespaces``.

Every step runs under the network lock of the store root (``<root>/network/lock``); the
endpoint record is saved before anything is created, so :func:`teardown` can always clean up
after a crash. Both calls are idempotent.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import random
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantry.config import default_root
from gantry.errors import Conflict, ContainerError, NotFound, UsageError
from gantry.runtime.net import firewall, links, netns
from gantry.runtime.net.ipam import Endpoint, State, StateFile
from gantry.runtime.net.ports import PortMapping

DEFAULT_BRIDGE = "gantry0"
#: Tried in order; the first that overlaps nothing the host routes is taken. Docker's
#: 172.17/16 and podman's 10.88/16 are left alone so gantry can live beside both.
DEFAULT_SUBNETS: tuple[str, ...] = (
    "10.77.0.0/16",
    "10.78.0.0/16",
    "10.79.0.0/16",
    "172.29.0.0/16",
    "172.30.0.0/16",
    "192.168.213.0/24",
)
NETNS_PREFIX = "gantry-"
MODES = ("bridge", "none", "host")
#: Docker's fallback when ip_local_port_range cannot be read.
FALLBACK_PORT_RANGE = (49153, 60999)

_CONTAINER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class NetworkConfig:
    """Where the bridge network lives; tests use their own names to stay out of the way."""

    bridge: str = DEFAULT_BRIDGE
    subnets: tuple[str, ...] = DEFAULT_SUBNETS
    table: str = firewall.DEFAULT_TABLE
    netns_dir: Path = netns.NETNS_DIR
    netns_prefix: str = NETNS_PREFIX
    mtu: int | None = None
    #: Host ports for ``-p CONTAINER``; None: the kernel's ip_local_port_range (as Docker).
    port_range: tuple[int, int] | None = None


@dataclass(frozen=True)
class PublishedPort:
    """A published port as it ended up: ``host_ip`` "" means every address (0.0.0.0)."""

    container_port: int
    proto: str
    host_ip: str
    host_port: int

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"

    def __str__(self) -> str:
        """``docker port`` style: ``80/tcp -> 0.0.0.0:32768``."""
        return f"{self.key} -> {self.host_ip or '0.0.0.0'}:{self.host_port}"

    def to_json(self) -> dict[str, Any]:
        return {
            "container_port": self.container_port,
            "proto": self.proto,
            "host_ip": self.host_ip,
            "host_port": self.host_port,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PublishedPort:
        return cls(
            int(d["container_port"]), str(d["proto"]), str(d["host_ip"]), int(d["host_port"])
        )


@dataclass(frozen=True)
class NetworkInfo:
    """What a container got; ``netns_path`` None means the host's network."""

    mode: str
    netns_path: str | None = None
    ip: str | None = None
    prefixlen: int | None = None
    gateway: str | None = None
    mac: str | None = None
    bridge: str | None = None
    ports: tuple[PublishedPort, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def spec_network(self) -> str:
        """The value for ``SpecOptions.network``: ``"host"`` or the namespace path."""
        return self.netns_path or "host"

    def ports_map(self) -> dict[str, list[dict[str, str]]]:
        """Docker's ``NetworkSettings.Ports``: ``{"80/tcp": [{"HostIp", "HostPort"}]}``."""
        out: dict[str, list[dict[str, str]]] = {}
        for p in self.ports:
            out.setdefault(p.key, []).append(
                {"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(p.host_port)}
            )
        return out


def _check_id(container_id: str) -> str:
    if not _CONTAINER_ID.fullmatch(container_id):
        raise UsageError(f"invalid container id for networking: {container_id!r}")
    return container_id


def veth_name(container_id: str) -> str:
    """The host end of a container's veth: ``veth`` + 11 hex digits of sha256(id)."""
    return "veth" + hashlib.sha256(container_id.encode()).hexdigest()[: links.IFNAME_MAX - 4]


def netns_path(container_id: str, config: NetworkConfig | None = None) -> Path:
    c = config or NetworkConfig()
    return c.netns_dir / f"{c.netns_prefix}{_check_id(container_id)}"


def mac_for(ip: ipaddress.IPv4Address) -> str:
    """Docker's scheme: 02:42 followed by the four bytes of the address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)


def choose_subnet(
    candidates: Iterable[str], in_use: Iterable[ipaddress.IPv4Network]
) -> ipaddress.IPv4Network:
    """The first candidate overlapping none of ``in_use``."""
    used = list(in_use)
    tried = []
    for c in candidates:
        net = ipaddress.IPv4Network(c)
        tried.append(str(net))
        if not any(net.overlaps(u) for u in used):
            return net
    raise ContainerError(
        "could not find an available, non-overlapping IPv4 address pool among the defaults "
        f"to assign to the network ({', '.join(tried)})"
    )


def _network_dir(root: str | os.PathLike[str] | None) -> StateFile:
    return StateFile(Path(root if root is not None else default_root()) / "network")


# -- host ports -------------------------------------------------------------------------------


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return FALLBACK_PORT_RANGE


def _bindable(proto: str, host_ip: str, port: int) -> int:
    """0 if a socket could bind ``host_ip:port`` right now, else the errno."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host_ip or "0.0.0.0", port))
        except OSError as e:
            return e.errno or errno.EADDRINUSE
    return 0


def _overlaps(a_ip: str, b_ip: str) -> bool:
    return not a_ip or not b_ip or a_ip == b_ip


def _taken(state: State, chosen: Sequence[PublishedPort], proto: str, ip: str, port: int) -> bool:
    for ep in state.endpoints.values():
        for p in ep.ports:
            if p["proto"] == proto and p["host_port"] == port and _overlaps(p["host_ip"], ip):
                return True
    return any(
        p.proto == proto and p.host_port == port and _overlaps(p.host_ip, ip) for p in chosen
    )


def _assign_ports(
    state: State,
    mappings: Sequence[PortMapping],
    container_ip: ipaddress.IPv4Address,
    config: NetworkConfig,
) -> list[PublishedPort]:
    out: list[PublishedPort] = []
    for m in mappings:
        where = f"{m.host_ip or '0.0.0.0'}"
        if m.host_port:
            if _taken(state, out, m.proto, m.host_ip, m.host_port):
                raise Conflict(f"Bind for {where}:{m.host_port} failed: port is already allocated")
            err = _bindable(m.proto, m.host_ip, m.host_port)
            if err:
                raise ContainerError(
                    f"failed to bind host port for {where}:{m.host_port}:{container_ip}:"
                    f"{m.container_port}/{m.proto}: {os.strerror(err).lower()}"
                )
            out.append(PublishedPort(m.container_port, m.proto, m.host_ip, m.host_port))
            continue
        lo, hi = m.host_range or config.port_range or _ephemeral_range()
        span = hi - lo + 1
        offset = random.randrange(span)  # spread concurrent roots; the lock keeps one root exact
        for i in range(span):
            port = lo + (offset + i) % span
            if port == 0 or _taken(state, out, m.proto, m.host_ip, port):
                continue
            err = _bindable(m.proto, m.host_ip, port)
            if err == errno.EADDRNOTAVAIL:
                raise ContainerError(
                    f"failed to bind host port for {where}:{port}:{container_ip}:"
                    f"{m.container_port}/{m.proto}: {os.strerror(err).lower()}"
                )
            if err == 0:
                out.append(PublishedPort(m.container_port, m.proto, m.host_ip, port))
                break
        else:
            raise Conflict(
                f"Bind for {where}:{lo}-{hi} failed: all ports are allocated"
                if m.host_range
                else "all ports are allocated"
            )
    return out


# -- the bridge ---------------------------------------------------------------------------------


def _ensure_network(state: State, sf: StateFile, config: NetworkConfig) -> None:
    """Settle bridge/subnet/table in ``state``, then make sure the bridge exists.

    The nftables table is refreshed by the caller, in the same batch as the container's rules.
    """
    if state.subnet is None or (not state.endpoints and state.bridge != config.bridge):
        state.bridge, state.table, state.subnet, state.gateway = (
            config.bridge,
            config.table,
            None,
            None,
        )
    assert state.bridge is not None and state.table is not None
    on_bridge = links.addresses(state.bridge)
    if state.subnet is None:
        if on_bridge:  # a bridge left from an earlier root or a lost state file: adopt it
            iface = on_bridge[0]
            state.subnet, state.gateway = str(iface.network), str(iface.ip)
        else:
            net = choose_subnet(config.subnets, links.in_use_networks(ignore_link=state.bridge))
            state.subnet, state.gateway = str(net), str(next(net.hosts()))
        sf.save(state)
    net = ipaddress.IPv4Network(state.subnet)
    gateway = ipaddress.IPv4Interface(f"{state.gateway}/{net.prefixlen}")
    if gateway not in on_bridge:
        clash = [u for u in links.in_use_networks(ignore_link=state.bridge) if u.overlaps(net)]
        if clash:
            raise ContainerError(
                f"the subnet {net} of bridge {state.bridge} overlaps {clash[0]}, "
                "which is already routed on this host"
            )
    links.ensure_bridge(state.bridge, gateway, mtu=config.mtu)


def _info(ep: Endpoint, state: State) -> NetworkInfo:
    ports = tuple(PublishedPort.from_json(p) for p in ep.ports)
    if ep.mode != "bridge":
        return NetworkInfo(ep.mode, ep.netns, warnings=tuple(ep.warnings))
    net = state.network
    return NetworkInfo(
        mode="bridge",
        netns_path=ep.netns,
        ip=ep.ip,
        prefixlen=net.prefixlen if net else None,
        gateway=state.gateway,
        mac=ep.mac,
        bridge=state.bridge,
        ports=ports,
        warnings=tuple(ep.warnings),
    )


def _healthy(ep: Endpoint) -> bool:
    if ep.mode == "host" or ep.mode.startswith("container:"):
        return True
    if ep.netns is None or not netns.is_netns(ep.netns):
        return False
    if ep.mode == "bridge":
        if ep.veth is None or not links.link_exists(ep.veth):
            return False
        if ep.ports and ep.table:
            tagged = firewall.container_rules(ep.table, ep.container_id)
            if len(tagged) != len(ep.ports):
                return False
    return True


def _release(ep: Endpoint, config: NetworkConfig, *, recorded: bool = True) -> bool:
    """Remove whatever of ``ep`` exists (rules, veth, netns); True if something was removed.

    A ``recorded`` endpoint without published ports never had rules: nft is not asked (an
    exec of nft is most of a teardown's cost). One without a record is searched for all.
    """
    cid = ep.container_id
    removed = False
    if ep.mode.startswith("container:"):
        return False
    path = ep.netns or str(netns_path(cid, config))
    veth = ep.veth or veth_name(cid)
    if not recorded and not os.path.lexists(path) and not links.link_exists(veth):
        # setup records an endpoint before it makes anything and adds rules last (after the
        # namespace and the veth): with neither there, there is nothing of it left
        return False
    if ep.ports or not recorded:
        removed |= firewall.remove_container(ep.table or config.table, cid) > 0
    if ep.mode == "bridge" or not recorded:
        removed |= links.delete_link(veth)
    removed |= netns.remove(path)
    return removed


# -- public API -------------------------------------------------------------------------------


def setup(
    container_id: str,
    *,
    mode: str = "bridge",
    ports: Sequence[PortMapping] = (),
    root: str | os.PathLike[str] | None = None,
    config: NetworkConfig | None = None,
) -> NetworkInfo:
    """Create (or return the existing) network of ``container_id`` in ``mode``.

    ``ports`` are ``-p``/``-P`` mappings (:mod:`gantry.runtime.net.ports`); dynamic host
    ports are chosen here. ``root`` is the store root (state under ``<root>/network``).
    """
    cid = _check_id(container_id)
    cfg = config or NetworkConfig()
    sf = _network_dir(root)
    if mode not in MODES and not mode.startswith("container:"):
        raise UsageError(
            f"network {mode} not found", hint="use bridge, host, none or container:<id>"
        )
    with sf.transaction() as state:
        old = state.endpoints.get(cid)
        if old is not None:
            if old.mode == mode and _healthy(old):
                return _info(old, state)
            _release(old, cfg)
            del state.endpoints[cid]
            sf.save(state)
        if mode == "host":
            warnings = (
                ["Published ports are discarded when using host network mode"] if ports else []
            )
            ep = Endpoint(cid, "host", warnings=warnings)
            state.endpoints[cid] = ep
            sf.save(state)
            return _info(ep, state)
        if mode.startswith("container:"):
            other = state.endpoints.get(mode.partition(":")[2])
            if other is None or other.netns is None:
                raise NotFound(f"No such container: {mode.partition(':')[2]}")
            if ports:
                raise UsageError(
                    "conflicting options: port publishing and the container type network mode"
                )
            ep = Endpoint(cid, mode, netns=other.netns)
            state.endpoints[cid] = ep
            sf.save(state)
            return _info(ep, state)
        path = str(netns_path(cid, cfg))
        if mode == "none":  # published ports have nowhere to go: ignored, as Docker does
            ep = Endpoint(cid, "none", netns=path)
            state.endpoints[cid] = ep
            sf.save(state)
            try:
                netns.remove(path)
                netns.create(path)
                links.loopback_up(path)
            except BaseException:
                _undo(cid, state, sf, cfg)
                raise
            return _info(ep, state)

        _ensure_network(state, sf, cfg)
        assert state.bridge is not None and state.table is not None and state.gateway is not None
        ip = state.allocate_ip()
        published = _assign_ports(state, ports, ip, cfg)
        ep = Endpoint(
            cid,
            "bridge",
            netns=path,
            ip=str(ip),
            mac=mac_for(ip),
            veth=veth_name(cid),
            table=state.table,
            ports=[p.to_json() for p in published],
        )
        state.endpoints[cid] = ep
        sf.save(state)  # recorded before anything exists: a crash leaves something to tear down
        try:
            if os.path.lexists(path) or links.link_exists(ep.veth or ""):
                _release(ep, cfg, recorded=False)  # leftovers of an attempt that lost its record
            netns.create(path)
            net = ipaddress.IPv4Network(state.subnet or "")
            links.add_veth(
                ep.veth or "",
                bridge=state.bridge,
                netns=path,
                address=ipaddress.IPv4Interface(f"{ip}/{net.prefixlen}"),
                gateway=ipaddress.IPv4Address(state.gateway),
                mac=ep.mac or "",
                mtu=cfg.mtu,
            )
            forwards = [
                firewall.Forward(p.proto, p.host_port, ip, p.container_port, p.host_ip)
                for p in published
            ]
            # one atomic nft batch: refresh the table's fixed part, add this container's DNATs
            firewall.apply(
                firewall.base_commands(state.table, state.bridge, net)
                + firewall.forward_commands(state.table, cid, forwards)
            )
        except BaseException:
            _undo(cid, state, sf, cfg)
            raise
        return _info(ep, state)


def _undo(cid: str, state: State, sf: StateFile, cfg: NetworkConfig) -> None:
    ep = state.endpoints.get(cid)
    if ep is None:
        return
    try:
        _release(ep, cfg)
    finally:
        del state.endpoints[cid]
        sf.save(state)


def teardown(
    container_id: str,
    *,
    root: str | os.PathLike[str] | None = None,
    config: NetworkConfig | None = None,
) -> bool:
    """Remove the container's rules, veth, namespace and address; True if anything existed.

    Safe to call again, and after a crash at any point of :func:`setup`.
    """
    cid = _check_id(container_id)
    cfg = config or NetworkConfig()
    sf = _network_dir(root)
    with sf.transaction() as state:
        ep = state.endpoints.get(cid)
        had = ep is not None
        removed = _release(ep or Endpoint(cid, "bridge"), cfg, recorded=had)
        if had:
            del state.endpoints[cid]
            sf.save(state)
        return had or removed


def inspect(container_id: str, *, root: str | os.PathLike[str] | None = None) -> NetworkInfo | None:
    """The recorded network of ``container_id`` (None when it has none)."""
    sf = _network_dir(root)
    with sf.transaction() as state:
        ep = state.endpoints.get(_check_id(container_id))
        return None if ep is None else _info(ep, state)


def endpoints(*, root: str | os.PathLike[str] | None = None) -> dict[str, NetworkInfo]:
    """Every recorded container network, by container id."""
    sf = _network_dir(root)
    with sf.transaction() as state:
        return {cid: _info(ep, state) for cid, ep in sorted(state.endpoints.items())}


def remove_network(
    *, root: str | os.PathLike[str] | None = None, config: NetworkConfig | None = None
) -> bool:
    """Delete the bridge and the nftables table (no container may still be attached)."""
    cfg = config or NetworkConfig()
    sf = _network_dir(root)
    with sf.transaction() as state:
        attached = [e.container_id for e in state.endpoints.values() if e.mode == "bridge"]
        if attached:
            raise Conflict(
                f"error while removing network: network {state.bridge or cfg.bridge} has "
                f"active endpoints ({', '.join(sorted(attached))})"
            )
        bridge = state.bridge or cfg.bridge
        table = state.table or cfg.table
        removed = firewall.remove_table(table)
        removed |= links.delete_link(bridge)
        state.bridge = state.subnet = state.gateway = state.table = state.last_ip = None
        sf.save(state)
        return removed
