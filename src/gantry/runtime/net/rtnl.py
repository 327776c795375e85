"""A small synchronous rtnetlink client: just what the bridge network needs.

Messages are packed by hand (``struct``) and sent on a blocking ``AF_NETLINK`` socket; every
request asks for an acknowledgement, so a failure comes back as :class:`OSError` with the
kernel's errno. A socket opened with ``netns=`` lives in that network namespace: it is made by
a short-lived thread that ``setns``\\ es into the namespace first, so the calling thread never
moves. Nothing here imports more than the standard library (pyroute2 costs 0.3-1.3 s to
import, more than a whole ``gantry run``).

Layouts (include/uapi/linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h):
``nlmsghdr`` = len u32, type u16, flags u16, seq u32, pid u32; ``ifinfomsg`` = family u8,
pad u8, type u16, index i32, flags u32, change u32; ``ifaddrmsg`` = family, prefixlen, flags,
scope u8, index u32; ``rtmsg`` = family, dst_len, src_len, tos, table, protocol, scope, type
u8, flags u32; attributes ``rtattr`` = len u16, type u16, payload padded to 4 bytes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

NETLINK_ROUTE = 0

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26

NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_LINKINFO, IFLA_NET_NS_FD = 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFF_UP = 0x1

IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1

CLONE_NEWNET = 0x40000000

_HDR = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTA = struct.Struct("=HH")


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One ``rtattr`` with its padding."""
    raw = _RTA.pack(_RTA.size + len(payload), kind) + payload
    return raw + b"\0" * (_align(len(raw)) - len(raw))


def attr_str(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def parse_attrs(data: bytes) -> dict[int, bytes]:
    """Attributes by type (the last one wins; nested ones stay packed)."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos + _RTA.size <= len(data):
        length, kind = _RTA.unpack_from(data, pos)
        if length < _RTA.size:
            break
        out[kind & 0x3FFF] = data[pos + _RTA.size : pos + length]
        pos += _align(length)
    return out


def ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change)


def mac_bytes(mac: str) -> bytes:
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError(f"invalid MAC address: {mac!r}")
    return bytes(int(p, 16) for p in parts)


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    flags: int


@dataclass(frozen=True)
class Address:
    index: int
    address: str
    prefixlen: int


@dataclass(frozen=True)
class Route:
    dst: str | None
    dst_len: int
    oif: int | None
    table: int


_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.setns.restype = ctypes.c_int


def _socket_in(netns: str | os.PathLike[str]) -> socket.socket:
    """A netlink socket of the namespace pinned at ``netns`` (made by a helper thread)."""
    result: list[socket.socket | BaseException] = []

    def make() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            # the thread is in the namespace for good now; it ends right after this
            result.append(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE))
        except BaseException as e:  # handed to the caller
            result.append(e)

    t = threading.Thread(target=make, name="gantry-rtnl", daemon=True)
    t.start()
    t.join()
    got = result[0]
    if isinstance(got, BaseException):
        raise got
    return got


class RTNL:
    """One rtnetlink socket (in ``netns`` when given); use as a context manager."""

    def __init__(self, netns: str | os.PathLike[str] | None = None) -> None:
        if netns is None:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        else:
            self.sock = _socket_in(netns)
        self.sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RTNL:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _send(self, kind: int, flags: int, body: bytes) -> int:
        self._seq += 1
        msg = _HDR.pack(_HDR.size + len(body), kind, flags | NLM_F_REQUEST, self._seq, 0) + body
        self.sock.sendto(msg, (0, 0))
        return self._seq

    def _replies(self, seq: int) -> Iterator[tuple[int, bytes]]:
        """(type, payload) of each answer to ``seq`` until ACK or DONE; errors raise."""
        while True:
            data = self.sock.recv(1 << 16)
            pos = 0
            while pos + _HDR.size <= len(data):
                length, kind, _flags, mseq, _pid = _HDR.unpack_from(data, pos)
                if length < _HDR.size:
                    raise OSError(errno.EBADMSG, "truncated netlink message")
                payload = data[pos + _HDR.size : pos + length]
                pos += _align(length)
                if mseq != seq:
                    continue
                if kind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", payload)
                    if code:
                        raise OSError(-code, os.strerror(-code))
                    return
                if kind == NLMSG_DONE:
                    return
                yield kind, payload  # a GET of one object: its ACK follows

    def request(self, kind: int, body: bytes, flags: int = 0) -> None:
        """Send a change and wait for its acknowledgement."""
        for _ in self._replies(self._send(kind, flags | NLM_F_ACK, body)):
            pass

    def dump(self, kind: int, body: bytes) -> Iterator[bytes]:
        yield from (p for _k, p in self._replies(self._send(kind, NLM_F_DUMP, body)))

    # ------------------------------------------------------------------ links

    @staticmethod
    def _link(payload: bytes) -> Link:
        _fam, _type, index, flags, _change = _IFINFO.unpack_from(payload)
        attrs = parse_attrs(payload[_IFINFO.size :])
        name = attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode(errors="replace")
        return Link(index, name, flags)

    def link_index(self, name: str) -> int | None:
        """The index of link ``name``; None when there is none."""
        seq = self._send(RTM_GETLINK, NLM_F_ACK, ifinfo() + attr_str(IFLA_IFNAME, name))
        try:
            for _kind, payload in self._replies(seq):
                return self._link(payload).index
        except OSError as e:
            if e.errno in (errno.ENODEV, errno.ENOENT):
                return None
            raise
        return None

    def links(self) -> list[Link]:
        return [self._link(p) for p in self.dump(RTM_GETLINK, ifinfo())]

    def add_bridge(self, name: str, mtu: int | None = None) -> None:
        attrs = attr_str(IFLA_IFNAME, name)
        if mtu:
            attrs += attr_u32(IFLA_MTU, mtu)
        attrs += attr(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, "bridge"))
        self.request(RTM_NEWLINK, ifinfo() + attrs, NLM_F_CREATE | NLM_F_EXCL)

    def add_veth(
        self, name: str, peer: str, *, peer_netns_fd: int, peer_mac: str, mtu: int | None = None
    ) -> None:
        """A veth pair ``name`` (here) / ``peer`` (moved into the namespace of the fd)."""
        peer_attrs = attr_str(IFLA_IFNAME, peer) + attr_u32(IFLA_NET_NS_FD, peer_netns_fd)
        peer_attrs += attr(IFLA_ADDRESS, mac_bytes(peer_mac))
        attrs = attr_str(IFLA_IFNAME, name)
        if mtu:
            peer_attrs += attr_u32(IFLA_MTU, mtu)
            attrs += attr_u32(IFLA_MTU, mtu)
        info = attr_str(IFLA_INFO_KIND, "veth") + attr(
            IFLA_INFO_DATA, attr(VETH_INFO_PEER, ifinfo() + peer_attrs)
        )
        attrs += attr(IFLA_LINKINFO, info)
        self.request(RTM_NEWLINK, ifinfo() + attrs, NLM_F_CREATE | NLM_F_EXCL)

    def set_master(self, index: int, master: int) -> None:
        self.request(RTM_NEWLINK, ifinfo(index) + attr_u32(IFLA_MASTER, master))

    def set_up(self, index: int) -> None:
        self.request(RTM_NEWLINK, ifinfo(index, IFF_UP, IFF_UP))

    def delete_link(self, index: int) -> None:
        self.request(RTM_DELLINK, ifinfo(index))

    # ------------------------------------------------------------------ addresses, routes

    def addresses(self, index: int | None = None) -> list[Address]:
        """IPv4 addresses (of link ``index`` when given)."""
        out = []
        for p in self.dump(RTM_GETADDR, _IFADDR.pack(socket.AF_INET, 0, 0, 0, 0)):
            family, prefixlen, _flags, _scope, idx = _IFADDR.unpack_from(p)
            if family != socket.AF_INET or (index is not None and idx != index):
                continue
            attrs = parse_attrs(p[_IFADDR.size :])
            raw = attrs.get(IFA_ADDRESS) or attrs.get(IFA_LOCAL)
            if raw is not None and len(raw) == 4:
                out.append(Address(idx, socket.inet_ntoa(raw), prefixlen))
        return out

    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        raw = socket.inet_aton(address)
        body = _IFADDR.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
        body += attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw)
        self.request(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL)

    def routes(self) -> list[Route]:
        """IPv4 routes of every table."""
        out = []
        body = _RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
        for p in self.dump(RTM_GETROUTE, body):
            family, dst_len, _s, _tos, table, _proto, _scope, _type, _fl = _RTMSG.unpack_from(p)
            if family != socket.AF_INET:
                continue
            attrs = parse_attrs(p[_RTMSG.size :])
            if RTA_TABLE in attrs:
                (table,) = struct.unpack("=I", attrs[RTA_TABLE][:4])
            dst = attrs.get(RTA_DST)
            oif = attrs.get(RTA_OIF)
            out.append(
                Route(
                    socket.inet_ntoa(dst) if dst and len(dst) == 4 else None,
                    dst_len,
                    struct.unpack("=I", oif[:4])[0] if oif else None,
                    table,
                )
            )
        return out

    def add_default_route(self, gateway: str) -> None:
        body = _RTMSG.pack(
            socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0
        )
        body += attr(RTA_GATEWAY, socket.inet_aton(gateway))
        self.request(RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_EXCL)
