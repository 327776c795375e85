"""Links, addresses and routes over netlink (pyroute2): the bridge and each container's veth.

Every call here talks netlink directly; no ``ip`` command lines are built. Interface names
are produced by :mod:`gantry.runtime.net.manager` from hashes, never taken from users.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gantry.errors import ContainerError

#: Linux's limit on interface names (IFNAMSIZ minus the NUL).
IFNAME_MAX = 15
CONTAINER_IFNAME = "eth0"


def _ipr(netns: str | os.PathLike[str] | None = None) -> Any:
    from pyroute2 import IPRoute

    if netns is None:
        return IPRoute()
    return IPRoute(netns=str(netns))


@contextmanager
def _netlink(what: str, netns: str | os.PathLike[str] | None = None) -> Iterator[Any]:
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        with _ipr(netns) as ipr:
            yield ipr
    except NetlinkError as e:
        code = e.code if isinstance(e.code, int) else 0
        reason = os.strerror(code) if code else str(e)
        raise ContainerError(f"{what}: {reason}") from e


def _index(ipr: Any, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def link_exists(name: str, netns: str | os.PathLike[str] | None = None) -> bool:
    with _netlink(f"looking up {name}", netns) as ipr:
        return _index(ipr, name) is not None


def links(netns: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of every link (in ``netns`` when given)."""
    with _netlink("listing links", netns) as ipr:
        return [str(msg.get_attr("IFLA_IFNAME")) for msg in ipr.get_links()]


def addresses(
    name: str, netns: str | os.PathLike[str] | None = None
) -> list[ipaddress.IPv4Interface]:
    """IPv4 addresses on ``name`` (empty when the link does not exist)."""
    with _netlink(f"reading addresses of {name}", netns) as ipr:
        idx = _index(ipr, name)
        if idx is None:
            return []
        out = []
        for msg in ipr.get_addr(index=idx, family=2):
            addr = msg.get_attr("IFA_ADDRESS")
            out.append(ipaddress.IPv4Interface(f"{addr}/{msg['prefixlen']}"))
        return out


def in_use_networks(ignore_link: str | None = None) -> list[ipaddress.IPv4Network]:
    """IPv4 networks this host already routes or holds addresses in (default routes excluded).

    ``ignore_link`` leaves out what is on that link (our own bridge, when re-checking it).
    """
    nets: set[ipaddress.IPv4Network] = set()
    with _netlink("reading routes") as ipr:
        skip = _index(ipr, ignore_link) if ignore_link else None
        for msg in ipr.get_routes(family=2, table=254):
            if msg["dst_len"] == 0 or (skip is not None and msg.get_attr("RTA_OIF") == skip):
                continue
            dst = msg.get_attr("RTA_DST")
            if dst:
                nets.add(ipaddress.IPv4Network(f"{dst}/{msg['dst_len']}", strict=False))
        for msg in ipr.get_addr(family=2):
            if skip is not None and msg["index"] == skip:
                continue
            addr = msg.get_attr("IFA_ADDRESS")
            net = ipaddress.IPv4Network(f"{addr}/{msg['prefixlen']}", strict=False)
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
    with _netlink(f"creating bridge {name}") as ipr:
        idx = _index(ipr, name)
        if idx is None:
            kw: dict[str, Any] = {"ifname": name, "kind": "bridge"}
            if mtu:
                kw["mtu"] = mtu
            ipr.link("add", **kw)
            idx = _index(ipr, name)
            created = True
            if idx is None:
                raise ContainerError(f"bridge {name} vanished right after creation")
        have = {
            (msg.get_attr("IFA_ADDRESS"), msg["prefixlen"])
            for msg in ipr.get_addr(index=idx, family=2)
        }
        if (str(gateway.ip), gateway.network.prefixlen) not in have:
            ipr.addr("add", index=idx, address=str(gateway.ip), prefixlen=gateway.network.prefixlen)
        ipr.link("set", index=idx, state="up")
    write_sysctl(f"net.ipv4.conf.{name}.route_localnet", "1")
    write_sysctl("net.ipv4.ip_forward", "1")
    return created


def delete_link(name: str, netns: str | os.PathLike[str] | None = None) -> bool:
    """Delete a link by name; False if it did not exist. Deleting one veth end deletes both."""
    from pyroute2.netlink.exceptions import NetlinkError

    with _netlink(f"deleting {name}", netns) as ipr:
        idx = _index(ipr, name)
        if idx is None:
            return False
        try:
            ipr.link("del", index=idx)
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return False
            raise
        return True


def loopback_up(netns: str | os.PathLike[str]) -> None:
    with _netlink("bringing up lo", netns) as ipr:
        idx = _index(ipr, "lo")
        if idx is not None:
            ipr.link("set", index=idx, state="up")


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
        with _netlink(f"creating veth {host_name}") as ipr:
            br = _index(ipr, bridge)
            if br is None:
                raise ContainerError(f"bridge {bridge} does not exist")
            peer: dict[str, Any] = {
                "ifname": CONTAINER_IFNAME,
                "net_ns_fd": fd,
                "address": mac,
            }
            kw: dict[str, Any] = {"ifname": host_name, "kind": "veth", "peer": peer}
            if mtu:
                kw["mtu"] = mtu
                peer["mtu"] = mtu
            ipr.link("add", **kw)
            idx = _index(ipr, host_name)
            if idx is None:
                raise ContainerError(f"veth {host_name} vanished right after creation")
            ipr.link("set", index=idx, master=br)
            ipr.link("set", index=idx, state="up")
    finally:
        os.close(fd)
    hairpin = Path("/sys/class/net") / host_name / "brport" / "hairpin_mode"
    try:
        hairpin.write_text("1\n")
    except OSError as e:
        raise ContainerError(f"setting hairpin mode on {host_name}: {e.strerror}") from e
    with _netlink("configuring the container's interface", netns) as ns:
        lo = _index(ns, "lo")
        if lo is not None:
            ns.link("set", index=lo, state="up")
        eth = _index(ns, CONTAINER_IFNAME)
        if eth is None:
            raise ContainerError(f"{CONTAINER_IFNAME} did not arrive in {netns}")
        ns.addr("add", index=eth, address=str(address.ip), prefixlen=address.network.prefixlen)
        ns.link("set", index=eth, state="up")
        ns.route("add", dst="0.0.0.0/0", gateway=str(gateway))
