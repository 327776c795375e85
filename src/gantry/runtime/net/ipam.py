"""The network's persistent state: subnet, gateway and one record per container endpoint.

It lives in ``<root>/network/state.json`` and is only read or written while holding an
exclusive ``flock`` on ``<root>/network/lock``, so concurrent gantry processes sharing a root
never hand out the same address or host port. Writes are atomic (temp file, fsync, rename,
fsync of the directory): a process killed at any point leaves the previous or the new state,
never a torn one. A record is written *before* the interfaces and rules it describes are
created, so a crash mid-setup leaves a record that ``teardown`` uses to clean up.

Addresses are handed out in order after the last one given (wrapping around), like Docker's
IPAM, so an address just freed is not reused at once while peers may still cache it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantry.errors import ContainerError, StoreError

STATE_FILE = "state.json"
LOCK_FILE = "lock"
VERSION = 1


@dataclass
class Endpoint:
    """What setup created for one container (all names, so teardown needs nothing else)."""

    container_id: str
    mode: str
    netns: str | None = None
    ip: str | None = None
    mac: str | None = None
    veth: str | None = None
    table: str | None = None
    #: [{"container_port", "proto", "host_ip", "host_port"}] as published
    ports: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "container_id": self.container_id,
            "mode": self.mode,
            "netns": self.netns,
            "ip": self.ip,
            "mac": self.mac,
            "veth": self.veth,
            "table": self.table,
            "ports": self.ports,
            "warnings": self.warnings,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Endpoint:
        return cls(
            container_id=str(d["container_id"]),
            mode=str(d["mode"]),
            netns=d.get("netns"),
            ip=d.get("ip"),
            mac=d.get("mac"),
            veth=d.get("veth"),
            table=d.get("table"),
            ports=list(d.get("ports") or []),
            warnings=list(d.get("warnings") or []),
        )


@dataclass
class State:
    bridge: str | None = None
    subnet: str | None = None
    gateway: str | None = None
    table: str | None = None
    last_ip: str | None = None
    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    @property
    def network(self) -> ipaddress.IPv4Network | None:
        return ipaddress.IPv4Network(self.subnet) if self.subnet else None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "bridge": self.bridge,
            "subnet": self.subnet,
            "gateway": self.gateway,
            "table": self.table,
            "last_ip": self.last_ip,
            "endpoints": {k: e.to_json() for k, e in sorted(self.endpoints.items())},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> State:
        if d.get("version") != VERSION:
            raise StoreError(f"unsupported network state version: {d.get('version')!r}")
        return cls(
            bridge=d.get("bridge"),
            subnet=d.get("subnet"),
            gateway=d.get("gateway"),
            table=d.get("table"),
            last_ip=d.get("last_ip"),
            endpoints={k: Endpoint.from_json(v) for k, v in (d.get("endpoints") or {}).items()},
        )

    def used_ips(self) -> set[ipaddress.IPv4Address]:
        return {ipaddress.IPv4Address(e.ip) for e in self.endpoints.values() if e.ip}

    def allocate_ip(self) -> ipaddress.IPv4Address:
        """The next free host address after ``last_ip`` (gateway, network, broadcast excluded)."""
        net = self.network
        if net is None:
            raise ContainerError("the network has no subnet yet")
        reserved = self.used_ips() | {net.network_address, net.broadcast_address}
        if self.gateway:
            reserved.add(ipaddress.IPv4Address(self.gateway))
        first = int(net.network_address) + 1
        last = int(net.broadcast_address) - 1
        size = last - first + 1
        start = first
        if self.last_ip and ipaddress.IPv4Address(self.last_ip) in net:
            start = int(ipaddress.IPv4Address(self.last_ip)) + 1
        for i in range(size):
            cand = ipaddress.IPv4Address(first + (start - first + i) % size)
            if cand not in reserved:
                self.last_ip = str(cand)
                return cand
        raise ContainerError(f"no available IPv4 addresses on this network's address pools: {net}")


class StateFile:
    """``<root>/network``: the state file and its lock."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.path = self.dir / STATE_FILE

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the description releases the flock

    def load(self) -> State:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return State()
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise StoreError(f"network state {self.path} is corrupt: {e}") from e
        if not isinstance(data, dict):
            raise StoreError(f"network state {self.path} is corrupt: not an object")
        return State.from_json(data)

    def save(self, state: State) -> None:
        data = json.dumps(state.to_json(), indent=1, sort_keys=True).encode() + b"\n"
        tmp = self.path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        except OSError as e:  # some filesystems refuse fsync on directories
            if e.errno not in (errno.EINVAL, errno.EBADF):
                raise
        finally:
            os.close(dfd)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        """Lock, load, yield the state; the caller saves explicitly at each durable point."""
        with self.lock():
            yield self.load()
