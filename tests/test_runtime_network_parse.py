"""Pure parts of gantry.runtime.net: -p/-P/--add-host parsing, naming, subnet choice, IPAM state."""

from __future__ import annotations

import ipaddress
import json
import multiprocessing
import os
from pathlib import Path

import pytest

from gantry.errors import ContainerError, StoreError, UsageError
from gantry.runtime.net import firewall
from gantry.runtime.net.hosts import parse_add_host, resolve_extra_hosts
from gantry.runtime.net.ipam import Endpoint, State, StateFile
from gantry.runtime.net.manager import (
    NetworkInfo,
    PublishedPort,
    choose_subnet,
    mac_for,
    netns_path,
    veth_name,
)
from gantry.runtime.net.ports import PortMapping, from_port_bindings, parse_publish, publish_exposed

# -- -p ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("80", [PortMapping(80)]),
        ("8080:80", [PortMapping(80, host_port=8080)]),
        ("8080:80/udp", [PortMapping(80, "udp", host_port=8080)]),
        ("53:53/UDP", [PortMapping(53, "udp", host_port=53)]),
        ("127.0.0.1:8080:80", [PortMapping(80, "tcp", "127.0.0.1", 8080)]),
        ("127.0.0.1::80", [PortMapping(80, "tcp", "127.0.0.1", 0)]),
        ("0.0.0.0:8080:80", [PortMapping(80, host_port=8080)]),
        (":8080:80", [PortMapping(80, host_port=8080)]),
        ("0:80", [PortMapping(80)]),
        (
            "8000-8001:80-81",
            [PortMapping(80, host_port=8000), PortMapping(81, host_port=8001)],
        ),
        ("80-81", [PortMapping(80), PortMapping(81)]),
        ("8000-8010:80", [PortMapping(80, host_range=(8000, 8010))]),
    ],
)
def test_parse_publish(spec: str, expected: list[PortMapping]) -> None:
    assert parse_publish(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no port specified: <empty>"),
        ("8080:", "no port specified: 8080:<empty>"),
        ("8080:80/sctpx", "invalid proto: sctpx"),
        ("8080:abc", "invalid containerPort: abc"),
        ("8080:0", "invalid containerPort: 0"),
        ("8080:70000", "invalid containerPort: 70000"),
        ("x:80", "invalid hostPort: x"),
        ("90-80:80", "invalid hostPort: 90-80"),
        (
            "8000-8002:80-81",
            "invalid ranges specified for container and host Ports: 80-81 and 8000-8002",
        ),
        ("1.2.3:80:80", "invalid IP address: 1.2.3"),
        ("[::1]:80:80", "invalid IP address: ::1"),
        ("8080:80/sctp", "publishing sctp ports is not supported"),
    ],
)
def test_parse_publish_errors(spec: str, message: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_publish(spec)
    assert str(exc.value) == message


def test_mapping_str_is_docker_like() -> None:
    assert str(parse_publish("127.0.0.1:8080:80/udp")[0]) == "127.0.0.1:8080:80/udp"
    assert str(parse_publish("8000-8010:80")[0]) == "0.0.0.0:8000-8010:80/tcp"


def test_publish_all_skips_explicit_and_sctp() -> None:
    explicit = parse_publish("8080:80")
    got = publish_exposed(["443/tcp", "80/tcp", "53/udp", "9/sctp", "8080"], explicit)
    assert got == [PortMapping(53, "udp"), PortMapping(443), PortMapping(8080)]


def test_from_port_bindings_matches_publish_flags() -> None:
    bindings = {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": ""}],
        "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5300-5310"}],
    }
    assert from_port_bindings(bindings) == [
        *parse_publish("5300-5310:53/udp"),
        *parse_publish("8080:80"),
        *parse_publish("127.0.0.1::80"),
    ]
    with pytest.raises(UsageError, match="invalid hostPort: x"):
        from_port_bindings({"80/tcp": [{"HostIp": "", "HostPort": "x"}]})
    with pytest.raises(UsageError, match="invalid IP address: ::1"):
        from_port_bindings({"80/tcp": [{"HostIp": "::1", "HostPort": "1"}]})


def test_publish_all_rejects_bad_exposed_key() -> None:
    with pytest.raises(UsageError, match="invalid containerPort"):
        publish_exposed(["80-90/tcp"])


# -- --add-host ----------------------------------------------------------------------------------


def test_add_host_forms() -> None:
    assert parse_add_host("db:10.0.0.5") == ("db", "10.0.0.5")
    assert parse_add_host("db=10.0.0.5") == ("db", "10.0.0.5")
    assert parse_add_host("v6:[::1]") == ("v6", "::1")
    assert parse_add_host("v6=::1") == ("v6", "::1")
    assert parse_add_host("gw:host-gateway") == ("gw", "host-gateway")
    assert resolve_extra_hosts(["a:1.2.3.4", "gw:host-gateway"], "10.77.0.1") == [
        ("a", "1.2.3.4"),
        ("gw", "10.77.0.1"),
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nohost", "bad format for add-host: 'nohost'"),
        (":1.2.3.4", "bad format for add-host: ':1.2.3.4'"),
        ("db:", "bad format for add-host: 'db:'"),
        ("db:notanip", "invalid IP address in add-host: 'notanip'"),
        ("bad name:1.2.3.4", "invalid hostname in add-host: 'bad name:1.2.3.4'"),
    ],
)
def test_add_host_errors(value: str, message: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_add_host(value)
    assert str(exc.value) == message


def test_host_gateway_needs_a_gateway() -> None:
    with pytest.raises(UsageError, match="host-gateway"):
        resolve_extra_hosts(["gw:host-gateway"], None)


# -- names ---------------------------------------------------------------------------------------


def test_names_are_bounded_and_stable() -> None:
    cid = "f" * 64
    assert veth_name(cid) == veth_name(cid)
    assert len(veth_name(cid)) == 15 and veth_name(cid).startswith("veth")
    assert veth_name(cid) != veth_name("e" * 64)
    assert netns_path(cid) == Path("/run/netns") / f"gantry-{cid}"
    for bad in ("", "../x", "a/b", "-x", "a b", "x" * 200):
        with pytest.raises(UsageError):
            netns_path(bad)


def test_mac_follows_docker_scheme() -> None:
    assert mac_for(ipaddress.IPv4Address("172.17.0.2")) == "02:42:ac:11:00:02"


def test_choose_subnet_skips_overlaps() -> None:
    used = [ipaddress.IPv4Network("10.77.0.0/24"), ipaddress.IPv4Network("10.128.0.0/9")]
    assert choose_subnet(["10.77.0.0/16", "10.200.0.0/16", "172.29.0.0/16"], used) == (
        ipaddress.IPv4Network("172.29.0.0/16")
    )
    with pytest.raises(ContainerError, match="non-overlapping"):
        choose_subnet(["10.77.0.0/16"], used)


def test_network_info_ports_map() -> None:
    info = NetworkInfo(
        "bridge",
        ports=(
            PublishedPort(80, "tcp", "", 32768),
            PublishedPort(80, "tcp", "127.0.0.1", 8080),
            PublishedPort(53, "udp", "", 5353),
        ),
    )
    assert info.ports_map() == {
        "80/tcp": [
            {"HostIp": "0.0.0.0", "HostPort": "32768"},
            {"HostIp": "127.0.0.1", "HostPort": "8080"},
        ],
        "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}],
    }
    assert str(info.ports[0]) == "80/tcp -> 0.0.0.0:32768"
    assert NetworkInfo("host").spec_network == "host"
    assert NetworkInfo("none", "/run/netns/x").spec_network == "/run/netns/x"


# -- IPAM ----------------------------------------------------------------------------------------


def test_allocation_is_sequential_and_skips_reserved() -> None:
    st = State(subnet="10.1.2.0/29", gateway="10.1.2.1")
    got = [st.allocate_ip() for _ in range(5)]
    assert [str(a) for a in got] == [f"10.1.2.{i}" for i in range(2, 7)]
    for a in got:
        st.endpoints[str(a)] = Endpoint(str(a), "bridge", ip=str(a))
    with pytest.raises(ContainerError, match="no available IPv4 addresses"):
        st.allocate_ip()
    # freeing one: it is handed out again only after wrapping around
    del st.endpoints["10.1.2.3"]
    assert str(st.allocate_ip()) == "10.1.2.3"


def test_allocation_does_not_reuse_a_freed_address_at_once() -> None:
    st = State(subnet="10.1.2.0/24", gateway="10.1.2.1")
    a = st.allocate_ip()
    b = st.allocate_ip()
    assert (str(a), str(b)) == ("10.1.2.2", "10.1.2.3")
    assert str(st.allocate_ip()) == "10.1.2.4"  # .2 would be free, but the cursor moves on


def test_state_round_trip_and_atomic_file(tmp_path: Path) -> None:
    sf = StateFile(tmp_path / "network")
    with sf.transaction() as st:
        assert st.endpoints == {}
        st.subnet, st.gateway, st.bridge = "10.9.0.0/16", "10.9.0.1", "gantry0"
        ip = st.allocate_ip()
        st.endpoints["c1"] = Endpoint(
            "c1",
            "bridge",
            ip=str(ip),
            ports=[{"container_port": 80, "proto": "tcp", "host_ip": "", "host_port": 8080}],
        )
        sf.save(st)
    loaded = sf.load()
    assert loaded.endpoints["c1"].ip == "10.9.0.2"
    assert loaded.endpoints["c1"].ports[0]["host_port"] == 8080
    assert {p.name for p in (tmp_path / "network").iterdir()} == {"lock", "state.json"}
    assert json.loads((tmp_path / "network" / "state.json").read_text())["version"] == 1


def test_corrupt_state_is_reported(tmp_path: Path) -> None:
    d = tmp_path / "network"
    d.mkdir()
    (d / "state.json").write_text("{not json")
    with pytest.raises(StoreError, match="corrupt"):
        StateFile(d).load()
    (d / "state.json").write_text('{"version": 99}')
    with pytest.raises(StoreError, match="version"):
        StateFile(d).load()


def _allocate_many(directory: str, worker: int, count: int) -> None:
    sf = StateFile(directory)
    for i in range(count):
        with sf.transaction() as st:
            if st.subnet is None:
                st.subnet, st.gateway = "10.50.0.0/22", "10.50.0.1"
            ip = st.allocate_ip()
            cid = f"w{worker}-{i}"
            st.endpoints[cid] = Endpoint(cid, "bridge", ip=str(ip))
            sf.save(st)


@pytest.mark.slow
def test_concurrent_processes_never_share_an_address(tmp_path: Path) -> None:
    d = str(tmp_path / "network")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_allocate_many, args=(d, w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    st = StateFile(d).load()
    ips = [e.ip for e in st.endpoints.values()]
    assert len(ips) == 100
    assert len(set(ips)) == 100
    assert not any(n.endswith(".tmp") for n in os.listdir(d))


# -- nftables batches (validated by nft itself, nothing applied) --------------------------------


@pytest.mark.root
def test_generated_ruleset_passes_nft_check() -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root (nft -c talks to the kernel)")
    cmds = firewall.base_commands("gantry_check", "gantry0", ipaddress.IPv4Network("10.77.0.0/16"))
    cmds += firewall.forward_commands(
        "gantry_check",
        "abc123",
        [
            firewall.Forward("tcp", 8080, ipaddress.IPv4Address("10.77.0.2"), 80, "127.0.0.1"),
            firewall.Forward("udp", 5353, ipaddress.IPv4Address("10.77.0.2"), 53),
        ],
    )
    firewall.apply(cmds, check=True)
    assert firewall.list_table("gantry_check") is None  # -c applied nothing


@pytest.mark.parametrize(
    "forward",
    [
        firewall.Forward("sctp", 1, ipaddress.IPv4Address("10.0.0.2"), 1),
        firewall.Forward("tcp", 0, ipaddress.IPv4Address("10.0.0.2"), 1),
        firewall.Forward("tcp", 1, ipaddress.IPv4Address("10.0.0.2"), 70000),
    ],
)
def test_forward_rules_validate_values(forward: firewall.Forward) -> None:
    with pytest.raises(ContainerError):
        firewall.forward_commands("gantry", "abc", [forward])


def test_names_in_rules_are_validated() -> None:
    with pytest.raises(ContainerError):
        firewall.base_commands("bad table", "gantry0", ipaddress.IPv4Network("10.0.0.0/8"))
    with pytest.raises(ContainerError):
        firewall.base_commands("gantry", 'br"; drop', ipaddress.IPv4Network("10.0.0.0/8"))
    with pytest.raises(ContainerError):
        firewall.tag_for("has space")
