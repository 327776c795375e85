"""``--add-host`` values: ``NAME:IP`` (or ``NAME=IP``), IP may be ``host-gateway``.

The /etc/hosts text itself is written by :mod:`gantry.runtime.etcfiles`; this module turns
the flag values into validated ``(name, address)`` pairs, resolving ``host-gateway`` to the
bridge gateway (the host as containers on the bridge reach it), as Docker does.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from gantry.errors import UsageError

HOST_GATEWAY = "host-gateway"
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def parse_add_host(value: str) -> tuple[str, str]:
    """``"db:10.0.0.5"`` -> ``("db", "10.0.0.5")``; IPv6 may be bracketed; errors as Docker's."""
    sep = "=" if "=" in value else ":"
    name, found, addr = value.partition(sep)
    if not found or not name or not addr:
        raise UsageError(f"bad format for add-host: {value!r}")
    if not _NAME.fullmatch(name):
        raise UsageError(f"invalid hostname in add-host: {value!r}")
    if addr.startswith("[") and addr.endswith("]"):
        addr = addr[1:-1]
    if addr != HOST_GATEWAY:
        try:
            addr = str(ipaddress.ip_address(addr))
        except ValueError:
            raise UsageError(f"invalid IP address in add-host: {addr!r}") from None
    return name, addr


def resolve_extra_hosts(values: Iterable[str], gateway: str | None) -> list[tuple[str, str]]:
    """Parse every ``--add-host`` and replace ``host-gateway`` by ``gateway``."""
    out = []
    for v in values:
        name, addr = parse_add_host(v)
        if addr == HOST_GATEWAY:
            if gateway is None:
                raise UsageError(
                    f"unable to resolve {HOST_GATEWAY} for add-host {v!r}: "
                    "the container has no bridge gateway"
                )
            addr = gateway
        out.append((name, addr))
    return out
