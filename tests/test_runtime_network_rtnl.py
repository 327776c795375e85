"""gantry.runtime.net.rtnl: the hand-written rtnetlink client, against the real kernel (root).

Everything happens inside network namespaces these tests create (a bridge and a veth pair
between two of them), so the host's links are never touched; the namespaces are removed in
every case.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.runtime.net import netns
from gantry.runtime.net.rtnl import (
    IFLA_IFNAME,
    IFLA_MTU,
    RTNL,
    attr,
    attr_str,
    attr_u32,
    mac_bytes,
    parse_attrs,
)

pytestmark = [pytest.mark.root]


def test_attributes_round_trip() -> None:
    packed = attr_str(IFLA_IFNAME, "eth0") + attr_u32(IFLA_MTU, 1400) + attr(99, b"\x01\x02\x03")
    assert len(packed) % 4 == 0
    got = parse_attrs(packed)
    assert got[IFLA_IFNAME] == b"eth0\0"
    assert int.from_bytes(got[IFLA_MTU], "little") == 1400
    assert got[99] == b"\x01\x02\x03"
    assert mac_bytes("02:42:0a:00:00:01") == bytes([2, 0x42, 10, 0, 0, 1])
    with pytest.raises(ValueError):
        mac_bytes("02:42")


@pytest.fixture
def two_ns() -> Iterator[tuple[Path, Path]]:
    tag = secrets.token_hex(4)
    paths = [netns.NETNS_DIR / f"gantry-test-rtnl-{tag}-{n}" for n in ("a", "b")]
    try:
        for p in paths:
            netns.create(p)
        yield paths[0], paths[1]
    finally:
        for p in paths:
            netns.remove(p)


def _ip(ns: Path, *args: str) -> str:
    """What iproute2 sees (the independent witness of what the client did)."""
    return subprocess.run(
        ["ip", "-n", ns.name, *args], capture_output=True, text=True, check=True
    ).stdout


def test_bridge_veth_address_route_in_namespaces(two_ns: tuple[Path, Path]) -> None:
    a, b = two_ns
    with RTNL(a) as nl:
        assert [link.name for link in nl.links()] == ["lo"]
        assert nl.link_index("nosuch0") is None
        lo = nl.link_index("lo")
        assert lo is not None
        nl.set_up(lo)
        nl.add_bridge("br-t", mtu=1400)
        br = nl.link_index("br-t")
        assert br is not None
        assert "mtu 1400" in _ip(a, "link", "show", "br-t")  # (ports added later change it)
        nl.add_address(br, "10.250.3.1", 24)
        nl.set_up(br)
        fd = os.open(b, os.O_RDONLY | os.O_CLOEXEC)
        try:
            nl.add_veth("vt-host", "eth0", peer_netns_fd=fd, peer_mac="02:42:0a:fa:03:02")
        finally:
            os.close(fd)
        host = nl.link_index("vt-host")
        assert host is not None
        nl.set_master(host, br)
        nl.set_up(host)
        assert [(x.address, x.prefixlen) for x in nl.addresses(br)] == [("10.250.3.1", 24)]
        with pytest.raises(FileExistsError):
            nl.add_bridge("br-t")
    assert "master br-t" in _ip(a, "link", "show", "vt-host")
    with RTNL(b) as nl:
        eth = nl.link_index("eth0")
        assert eth is not None
        nl.add_address(eth, "10.250.3.2", 24)
        nl.set_up(eth)
        nl.add_default_route("10.250.3.1")
        routes = nl.routes()
        assert any(r.dst is None and r.dst_len == 0 and r.table == 254 for r in routes)
        assert any(r.dst == "10.250.3.0" and r.dst_len == 24 and r.oif == eth for r in routes)
    assert "02:42:0a:fa:03:02" in _ip(b, "link", "show", "eth0")
    assert "default via 10.250.3.1 dev eth0" in _ip(b, "route")
    with RTNL(a) as nl:
        nl.delete_link(host)
        assert nl.link_index("vt-host") is None
        with pytest.raises(OSError) as err:
            nl.delete_link(host)
        assert err.value.errno == 19  # ENODEV
    with RTNL(b) as nl:  # deleting one end of a veth deletes both
        assert nl.link_index("eth0") is None
