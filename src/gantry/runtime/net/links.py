"""Links, addresses and routes over netlink: the bridge and each container's veth.

Every call here talks rtnetlink directly (:mod:`gantry.runtime.net.rtnl`, standard library
only); no ``ip`` command lines are built. Interface names are produced by
:mod:`gantry.runtime.net.manager` from hashes, never taken from users.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gantry.errors import ContainerError
from gantry.runtime.net.rtnl import RT_TABLE_MAIN, RTNL

#: Linux's limit on interface names (IFNAMSIZ minus the NUL).
IFNAME_MAX = 15
CONTAINER_IFNAME = "eth0"


@contextmanager
def _netlink(what: str, netns: str | os.PathLike[str] | None = None) -> Iterator[RTNL]:
    try:
        with RTNL(netns) as nl:
            yield nl
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise ContainerError(f"{what}: {reason}") from e


def link_exists(name: str, netns: str | os.PathLike[str] | None = None) -> bool:
    with _netlink(f"looking up {name}", netns) as nl:
        return nl.link_index(name) is not None


def links(netns: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of every link (in ``netns`` when given)."""
    with _netlink("listing links", netns) as nl:
        return [link.name for link in nl.links()]


def addresses(
    name: str, netns: str | os.PathLike[str] | None = None
) -> list[ipaddress.IPv4Interface]:
    """IPv4 addresses on ``name`` (empty when the link does not exist)."""
    with _netlink(f"reading addresses of {name}", netns) as nl:
        idx = nl.link_index(name)
        if idx is None:
            return []
        return [ipaddress.IPv4Interface(f"{a.address}/{a.prefixlen}") for a in nl.addresses(idx)]


def in_use_networks(ignore_link: str | None = None) -> list[ipaddress.IPv4Network]:
    """IPv4 networks this host already routes or holds addresses in (default routes excluded).

    ``ignore_link`` leaves out what is on that link (our own bridge, when re-checking it).
    """
    nets: set[ipaddress.IPv4Network] = set()
    with _netlink("reading routes") as nl:
        skip = nl.link_index(ignore_link) if ignore_link else None
        for r in nl.routes():
            if r.table != RT_TABLE_MAIN or r.dst_len == 0 or (skip is not None and r.oif == skip):
                continue
            if r.dst:
                nets.add(ipaddress.IPv4Network(f"{r.dst}/{r.dst_len}", strict=False))
        for a in nl.addresses():
            if skip is not None and a.index == skip:
                continue
            net = ipaddress.IPv4Network(f"{a.address}/{a.prefixlen}", strict=False)
            if not net.is_loopback:
                nets.add(net)
    return sorted(nets)


def write_sysctl(key: str, value: str) -> None:
    """Set ``net.ipv4.ip_forward``-style keys through /proc/sys (no sysctl(8))."""
    path = Path("/proc/sys") / key.replace(".", "/")
    try:
        if path.read_text().strip() == value:
            return
        path.write_text(value + "\n")
    except OSError as e:
        raise ContainerError(f"setting {key}={value}: {e.strerror}") from e


def ensure_bridge(name: str, gateway: ipaddress.IPv4Interface, *, mtu: int | None = None) -> bool:
    """Create ``name`` (a bridge holding ``gateway``) and bring it up; True if it was created.

    The bridge gets ``route_localnet=1`` so that connections to published ports on 127.0.0.1
    can be DNATed out of it, and IPv4 forwarding is switched on (as dockerd does).
    """
    created = False
    with _netlink(f"creating bridge {name}") as nl:
        idx = nl.link_index(name)
        if idx is None:
            nl.add_bridge(name, mtu)
            idx = nl.link_index(name)
            created = True
            if idx is None:
                raise ContainerError(f"bridge {name} vanished right after creation")
        have = {(a.address, a.prefixlen) for a in nl.addresses(idx)}
        if (str(gateway.ip), gateway.network.prefixlen) not in have:
            nl.add_address(idx, str(gateway.ip), gateway.network.prefixlen)
        nl.set_up(idx)
    write_sysctl(f"net.ipv4.conf.{name}.route_localnet", "1")
    write_sysctl("net.ipv4.ip_forward", "1")
    return created


def delete_link(name: str, netns: str | os.PathLike[str] | None = None) -> bool:
    """Delete a link by name; False if it did not exist. Deleting one veth end deletes both."""
    with _netlink(f"deleting {name}", netns) as nl:
        idx = nl.link_index(name)
        if idx is None:
            return False
        try:
            nl.delete_link(idx)
        except OSError as e:
            if e.errno == errno.ENODEV:
                return False
            raise
        return True


def loopback_up(netns: str | os.PathLike[str]) -> None:
    with _netlink("bringing up lo", netns) as nl:
        idx = nl.link_index("lo")
        if idx is not None:
            nl.set_up(idx)


def add_veth(
    host_name: str,
    *,
    bridge: str,
    netns: str | os.PathLike[str],
    address: ipaddress.IPv4Interface,
    gateway: ipaddress.IPv4Address,
    mac: str,
    mtu: int | None = None,
) -> None:
    """Create a veth pair: ``host_name`` on ``bridge``, ``eth0`` (``address``, ``mac``) in ``netns``.

    Inside the namespace lo and eth0 come up and the default route points at ``gateway``. The
    host end is put in hairpin mode so a container reaches its own published ports.
    """
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with _netlink(f"creating veth {host_name}") as nl:
            br = nl.link_index(bridge)
            if br is None:
                raise ContainerError(f"bridge {bridge} does not exist")
            nl.add_veth(host_name, CONTAINER_IFNAME, peer_netns_fd=fd, peer_mac=mac, mtu=mtu)
            idx = nl.link_index(host_name)
            if idx is None:
                raise ContainerError(f"veth {host_name} vanished right after creation")
            nl.set_master(idx, br)
            nl.set_up(idx)
    finally:
        os.close(fd)
    hairpin = Path("/sys/class/net") / host_name / "brport" / "hairpin_mode"
    try:
        hairpin.write_text("1\n")
    except OSError as e:
        raise ContainerError(f"setting hairpin mode on {host_name}: {e.strerror}") from e
    with _netlink("configuring the container's interface", netns) as ns:
        lo = ns.link_index("lo")
        if lo is not None:
            ns.set_up(lo)
        eth = ns.link_index(CONTAINER_IFNAME)
        if eth is None:
            raise ContainerError(f"{CONTAINER_IFNAME} did not arrive in {netns}")
        ns.add_address(eth, str(address.ip), address.network.prefixlen)
        ns.set_up(eth)
        ns.add_default_route(str(gateway))
