"""NAT and port publishing in an nftables table of gantry's own (``ip gantry`` by default).

Rules are written as nftables JSON objects and handed to libnftables in-process (the library
``nft -j -f -`` is built on; the ``nft`` command when the library is missing): every address
and port in them is a validated value placed in a JSON field, never text spliced into a rule
string. Each batch is applied atomically. The table holds:

- ``postrouting`` (nat): masquerade what leaves the subnet through another interface (outbound
  NAT); masquerade 127.0.0.0/8 sources DNATed onto the bridge (published ports reached on
  127.0.0.1; the bridge has ``route_localnet=1``); masquerade hairpin connections (a container
  reaching a published port that leads back onto the bridge).
- ``prerouting`` / ``output`` (nat): traffic for a local address jumps to ``publish``.
- ``publish``: one DNAT rule per published port, each commented ``gantry:<container id>``,
  which is how :func:`remove_container` finds exactly a container's rules.
- ``forward`` (filter): from outside the bridge into it only replies and DNATed (published)
  connections pass, as Docker isolates unpublished ports.

Only the ``ip`` family is handled: the bridge network is IPv4.
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gantry.errors import ContainerError

DEFAULT_TABLE = "gantry"
FAMILY = "ip"
TAG_PREFIX = "gantry:"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_TAG = re.compile(r"[A-Za-z0-9_.:-]{1,128}")

BASE_CHAINS: dict[str, tuple[str, str, int]] = {
    "prerouting": ("nat", "prerouting", -100),
    "output": ("nat", "output", -100),
    "postrouting": ("nat", "postrouting", 100),
    "forward": ("filter", "forward", 0),
}
PUBLISH_CHAIN = "publish"


@dataclass(frozen=True)
class Forward:
    """One DNAT: ``host_ip`` ("" = any local address) ``proto``/``host_port`` -> ip:port."""

    proto: str
    host_port: int
    container_ip: ipaddress.IPv4Address
    container_port: int
    host_ip: str = ""


def _nft() -> str:
    path = shutil.which("nft") or next(
        (p for p in ("/usr/sbin/nft", "/sbin/nft") if shutil.which(p)), None
    )
    if path is None:
        raise ContainerError("nft (nftables) is not installed; it is needed for bridge networking")
    return path


NFT_CTX_OUTPUT_JSON = 1 << 4


class _Libnftables:
    """nftables' own library (what ``nft`` is a front end of), called in-process: the same
    JSON in and out without an exec of ``nft`` per batch."""

    def __init__(self) -> None:
        lib = ctypes.CDLL("libnftables.so.1")  # (find_library would exec ldconfig)
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_ctx_set_dry_run.argtypes = [ctypes.c_void_p, ctypes.c_bool]
        for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name).restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        self.lib = lib

    def run(self, text: str, *, check: bool = False) -> tuple[int, str, str]:
        lib = self.lib
        ctx = lib.nft_ctx_new(0)
        if not ctx:
            raise ContainerError("nftables: cannot create a libnftables context")
        try:
            lib.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON)  # JSON in and out
            lib.nft_ctx_set_dry_run(ctx, check)
            lib.nft_ctx_buffer_output(ctx)
            lib.nft_ctx_buffer_error(ctx)
            rc = lib.nft_run_cmd_from_buffer(ctx, text.encode())
            out = lib.nft_ctx_get_output_buffer(ctx) or b""
            err = lib.nft_ctx_get_error_buffer(ctx) or b""
            return rc, out.decode(errors="replace"), err.decode(errors="replace")
        finally:
            lib.nft_ctx_free(ctx)


_LIB: list[_Libnftables | None] = []


def _library() -> _Libnftables | None:
    if not _LIB:
        try:
            _LIB.append(_Libnftables())
        except (OSError, AttributeError):  # not installed: the nft command is used instead
            _LIB.append(None)
    return _LIB[0]


def _run(payload: dict[str, Any], *, check: bool = False) -> str:
    """Run one nft JSON batch; nft's JSON answer (empty for changes)."""
    text = json.dumps(payload)
    lib = _library()
    if lib is not None:
        rc, out, err = lib.run(text, check=check)
    else:
        try:
            proc = subprocess.run(
                [_nft(), *(["-c"] if check else []), "-j", "-f", "-"],
                input=text,
                capture_output=True,
                text=True,
                check=False,
                timeout=30,
            )
        except subprocess.TimeoutExpired as e:
            raise ContainerError("nft did not answer within 30s") from e
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    if rc != 0:
        msg = err.strip().splitlines()
        raise ContainerError("nftables: " + (msg[0] if msg else f"nft exited with {rc}"))
    return out


def apply(commands: list[dict[str, Any]], *, check: bool = False) -> None:
    """Run one atomic nft JSON batch (``check``: only validate it, ``nft -c``)."""
    if commands:
        _run({"nftables": commands}, check=check)


def _check_name(table: str) -> str:
    if not _NAME.fullmatch(table):
        raise ContainerError(f"invalid nftables table name: {table!r}")
    return table


def _check_ifname(name: str) -> str:
    if not _IFNAME.fullmatch(name):
        raise ContainerError(f"invalid interface name: {name!r}")
    return name


def _match(left: Any, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


def _payload(protocol: str, field: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": field}}


def _prefix(net: ipaddress.IPv4Network) -> dict[str, Any]:
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def _rule(
    table: str, chain: str, expr: list[dict[str, Any]], comment: str | None = None
) -> dict[str, Any]:
    rule: dict[str, Any] = {"family": FAMILY, "table": table, "chain": chain, "expr": expr}
    if comment is not None:
        rule["comment"] = comment
    return {"add": {"rule": rule}}


def base_commands(table: str, bridge: str, subnet: ipaddress.IPv4Network) -> list[dict[str, Any]]:
    """The batch that (re)creates the table's fixed part; ``publish`` keeps its rules."""
    _check_name(table)
    _check_ifname(bridge)
    cmds: list[dict[str, Any]] = [{"add": {"table": {"family": FAMILY, "name": table}}}]
    for name, (ctype, hook, prio) in BASE_CHAINS.items():
        cmds.append(
            {
                "add": {
                    "chain": {
                        "family": FAMILY,
                        "table": table,
                        "name": name,
                        "type": ctype,
                        "hook": hook,
                        "prio": prio,
                        "policy": "accept",
                    }
                }
            }
        )
        cmds.append({"flush": {"chain": {"family": FAMILY, "table": table, "name": name}}})
    cmds.append({"add": {"chain": {"family": FAMILY, "table": table, "name": PUBLISH_CHAIN}}})
    local_dst = _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
    jump = {"jump": {"target": PUBLISH_CHAIN}}
    from_subnet = _match(_payload("ip", "saddr"), _prefix(subnet))
    to_bridge = _match(_meta("oifname"), bridge)
    not_from_bridge = _match(_meta("iifname"), bridge, "!=")
    dnat = _match({"ct": {"key": "status"}}, "dnat", "in")
    masq = {"masquerade": None}
    cmds += [
        _rule(table, "prerouting", [local_dst, jump]),
        _rule(table, "output", [local_dst, jump]),
        # outbound NAT: the subnet leaving through any other interface
        _rule(table, "postrouting", [from_subnet, _match(_meta("oifname"), bridge, "!="), masq]),
        # published ports reached on 127.0.0.1 (DNATed in output, routed out of the bridge)
        _rule(
            table,
            "postrouting",
            [
                _match(_payload("ip", "saddr"), _prefix(ipaddress.IPv4Network("127.0.0.0/8"))),
                to_bridge,
                masq,
            ],
        ),
        # hairpin: a container reaching a published port that leads back onto the bridge
        _rule(table, "postrouting", [from_subnet, to_bridge, dnat, masq]),
        # isolation: from outside into the bridge only replies and published ports
        _rule(
            table,
            "forward",
            [
                to_bridge,
                not_from_bridge,
                _match({"ct": {"key": "state"}}, ["established", "related"], "in"),
                {"accept": None},
            ],
        ),
        _rule(table, "forward", [to_bridge, not_from_bridge, dnat, {"accept": None}]),
        _rule(table, "forward", [to_bridge, not_from_bridge, {"drop": None}]),
    ]
    return cmds


def ensure_base(table: str, bridge: str, subnet: ipaddress.IPv4Network) -> None:
    """Create or refresh the table's fixed chains and rules (idempotent, one atomic batch)."""
    apply(base_commands(table, bridge, subnet))


def tag_for(container_id: str) -> str:
    tag = TAG_PREFIX + container_id
    if not _TAG.fullmatch(tag):
        raise ContainerError(f"invalid container id for a rule tag: {container_id!r}")
    return tag


def forward_commands(
    table: str, container_id: str, forwards: Iterable[Forward]
) -> list[dict[str, Any]]:
    """DNAT rules for one container's published ports, each tagged with its id."""
    _check_name(table)
    tag = tag_for(container_id)
    cmds = []
    for f in forwards:
        if f.proto not in ("tcp", "udp"):
            raise ContainerError(f"cannot publish protocol {f.proto!r}")
        for port in (f.host_port, f.container_port):
            if not 0 < port < 65536:
                raise ContainerError(f"invalid port {port}")
        expr: list[dict[str, Any]] = []
        if f.host_ip:
            expr.append(_match(_payload("ip", "daddr"), str(ipaddress.IPv4Address(f.host_ip))))
        expr.append(_match(_payload(f.proto, "dport"), f.host_port))
        expr.append(
            {"dnat": {"addr": str(ipaddress.IPv4Address(f.container_ip)), "port": f.container_port}}
        )
        cmds.append(_rule(table, PUBLISH_CHAIN, expr, comment=tag))
    return cmds


def add_container(table: str, container_id: str, forwards: Iterable[Forward]) -> None:
    apply(forward_commands(table, container_id, forwards))


def list_table(table: str) -> list[dict[str, Any]] | None:
    """The table's objects (``nft -j list table``), or None when it does not exist."""
    _check_name(table)
    try:
        out = _run({"nftables": [{"list": {"table": {"family": FAMILY, "name": table}}}]})
    except ContainerError as e:
        if "No such file or directory" in str(e):
            return None
        raise
    items = json.loads(out).get("nftables", [])
    return [i for i in items if isinstance(i, dict)]


def table_exists(table: str) -> bool:
    return list_table(table) is not None


def container_rules(table: str, container_id: str | None = None) -> list[dict[str, Any]]:
    """Rules tagged for ``container_id`` (every gantry-tagged rule when None)."""
    items = list_table(table) or []
    tag = tag_for(container_id) if container_id is not None else None
    out = []
    for item in items:
        rule = item.get("rule")
        if not isinstance(rule, dict):
            continue
        comment = rule.get("comment")
        if not isinstance(comment, str) or not comment.startswith(TAG_PREFIX):
            continue
        if tag is None or comment == tag:
            out.append(rule)
    return out


def remove_container(table: str, container_id: str) -> int:
    """Delete exactly the rules tagged for ``container_id``; return how many there were.

    A missing table counts as no rules.
    """
    rules = container_rules(table, container_id)
    apply(
        [
            {
                "delete": {
                    "rule": {
                        "family": FAMILY,
                        "table": table,
                        "chain": r["chain"],
                        "handle": r["handle"],
                    }
                }
            }
            for r in rules
        ]
    )
    return len(rules)


def remove_table(table: str) -> bool:
    """Drop the whole table; False if it did not exist."""
    if not table_exists(table):
        return False
    apply([{"delete": {"table": {"family": FAMILY, "name": _check_name(table)}}}])
    return True
