"""Bridge networking for real: namespaces, veths, nftables NAT, published ports (root).

Every test works on its own bridge, nftables table, netns prefix and /24 so it never touches
a real gantry0 network, and the fixture removes everything it made even when a test fails.
Traffic only flows between 127.0.0.1 and namespaces/links these tests create.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from conftest import need
from gantry.errors import Conflict, ContainerError
from gantry.runtime.net import (
    NetworkConfig,
    NetworkInfo,
    PortMapping,
    endpoints,
    firewall,
    inspect,
    links,
    netns,
    parse_publish,
    remove_network,
    setup,
    teardown,
)
from gantry.runtime.net.manager import veth_name

pytestmark = [pytest.mark.root, pytest.mark.slow]

if os.geteuid() != 0:  # pragma: no cover - the suite runs as root here
    pytest.fail("network tests need root", pytrace=False)


def _free_subnets(count: int) -> tuple[str, ...]:
    used = links.in_use_networks()
    out: list[str] = []
    while len(out) < count:
        net = ipaddress.IPv4Network(f"10.213.{secrets.randbelow(250) + 2}.0/24")
        if str(net) not in out and not any(net.overlaps(u) for u in used):
            out.append(str(net))
    return tuple(out)


@dataclass
class Net:
    root: Path
    config: NetworkConfig
    tag: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    cids: list[str] = field(default_factory=list)
    extra_links: list[str] = field(default_factory=list)
    extra_netns: list[str] = field(default_factory=list)

    def cid(self) -> str:
        c = secrets.token_hex(32)
        self.cids.append(c)
        return c

    def setup(
        self, cid: str, *, mode: str = "bridge", ports: Sequence[PortMapping] = ()
    ) -> NetworkInfo:
        return setup(cid, mode=mode, ports=ports, root=self.root, config=self.config)

    def teardown(self, cid: str) -> bool:
        return teardown(cid, root=self.root, config=self.config)

    def spawn(self, ns: str | None, *argv: str) -> subprocess.Popen[bytes]:
        cmd = [*(["nsenter", f"--net={ns}"] if ns else []), *argv]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(p)
        return p

    def httpd(self, ns: str, port: int, body: str, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "index.html").write_text(body)
        self.spawn(
            ns, need("busybox"), "httpd", "-f", "-p", f"0.0.0.0:{port}", "-h", str(directory)
        )


def run_in(ns: str | None, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    cmd = [*(["nsenter", f"--net={ns}"] if ns else []), *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def curl(ns: str | None, url: str) -> str:
    """GET ``url`` (from inside ``ns`` when given); retries while the server starts."""
    deadline = time.monotonic() + 15
    while True:
        r = run_in(ns, "curl", "-sS", "--max-time", "3", url)
        if r.returncode == 0 or time.monotonic() > deadline:
            assert r.returncode == 0, f"curl {url} from {ns or 'host'}: {r.stderr}"
            return r.stdout
        time.sleep(0.2)


def curl_fails(ns: str | None, url: str) -> bool:
    return run_in(ns, "curl", "-sS", "--max-time", "2", url).returncode != 0


def wait_tcp(ip: str, port: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection((ip, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def leftovers(n: Net) -> list[str]:
    """Everything of ``n`` still present on the host (should be empty after teardown)."""
    found = [
        f"netns {p}" for p in os.listdir(netns.NETNS_DIR) if p.startswith(n.config.netns_prefix)
    ]
    host_links = set(links.links())
    found += [f"link {v}" for v in map(veth_name, n.cids) if v in host_links]
    if firewall.list_table(n.config.table) is not None:
        found += [f"rule {r['comment']}" for r in firewall.container_rules(n.config.table)]
    found += [f"endpoint {c}" for c in endpoints(root=n.root)]
    return found


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    need("nft")
    need("nsenter")
    tag = secrets.token_hex(3)
    cfg = NetworkConfig(
        bridge=f"gt{tag}0",
        subnets=_free_subnets(3),
        table=f"gantry_t{tag}",
        netns_prefix=f"gantry-t{tag}-",
    )
    n = Net(tmp_path / "root", cfg, tag)
    try:
        yield n
    finally:
        for p in n.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for c in n.cids:
            try:
                n.teardown(c)
            except Exception:
                pass
        try:
            remove_network(root=n.root, config=cfg)
        except Exception:
            pass
        # belt and braces: nothing named after this test may survive it
        for name in os.listdir(netns.NETNS_DIR) if netns.NETNS_DIR.is_dir() else []:
            if name.startswith(cfg.netns_prefix):
                netns.remove(netns.NETNS_DIR / name)
        for ns in n.extra_netns:
            netns.remove(ns)
        for link in [cfg.bridge, *n.extra_links, *map(veth_name, n.cids)]:
            links.delete_link(link)
        firewall.remove_table(cfg.table)


def test_containers_reach_each_other_and_published_ports(net: Net, tmp_path: Path) -> None:
    a_id, b_id = net.cid(), net.cid()
    a = net.setup(
        a_id,
        ports=parse_publish("127.0.0.1::8000") + parse_publish("8000") + parse_publish("5300/udp"),
    )
    b = net.setup(b_id)
    assert a.mode == b.mode == "bridge"
    assert a.ip and b.ip and a.gateway and a.netns_path and b.netns_path
    subnet = ipaddress.IPv4Network(f"{a.ip}/{a.prefixlen}", strict=False)
    assert str(subnet) in net.config.subnets
    assert ipaddress.IPv4Address(b.ip) in subnet and a.ip != b.ip
    assert a.gateway == str(next(subnet.hosts()))
    assert a.mac == "02:42:" + ":".join(f"{int(x):02x}" for x in a.ip.split("."))
    assert a.spec_network == a.netns_path == str(netns.NETNS_DIR / f"gantry-t{net.tag}-{a_id}")
    assert netns.is_netns(a.netns_path)
    assert links.links(a.netns_path) == ["lo", "eth0"]
    assert links.addresses("eth0", a.netns_path) == [ipaddress.IPv4Interface(f"{a.ip}/24")]
    assert str(a.ports[0]).startswith("8000/tcp -> 127.0.0.1:")
    local_port, any_port, udp_port = (p.host_port for p in a.ports)
    assert len({local_port, any_port}) == 2 and all(p > 0 for p in (local_port, any_port, udp_port))

    net.httpd(a.netns_path, 8000, f"I am {a_id[:12]}\n", tmp_path / "a")
    net.httpd(b.netns_path, 8000, f"I am {b_id[:12]}\n", tmp_path / "b")
    wait_tcp(a.ip, 8000)
    wait_tcp(b.ip, 8000)

    # by IP, both ways, and ping
    assert curl(b.netns_path, f"http://{a.ip}:8000/") == f"I am {a_id[:12]}\n"
    assert curl(a.netns_path, f"http://{b.ip}:8000/") == f"I am {b_id[:12]}\n"
    ping = run_in(b.netns_path, need("busybox"), "ping", "-c", "1", "-W", "3", a.ip)
    assert ping.returncode == 0, ping.stdout + ping.stderr

    # published ports answer on the host's 127.0.0.1 ...
    assert curl(None, f"http://127.0.0.1:{local_port}/") == f"I am {a_id[:12]}\n"
    assert curl(None, f"http://127.0.0.1:{any_port}/") == f"I am {a_id[:12]}\n"
    # ... and from other containers through the gateway (hairpin), even back to A itself
    assert curl(b.netns_path, f"http://{a.gateway}:{any_port}/") == f"I am {a_id[:12]}\n"
    assert curl(a.netns_path, f"http://{a.gateway}:{any_port}/") == f"I am {a_id[:12]}\n"
    # the 127.0.0.1-only binding is not published on the gateway address
    assert curl_fails(b.netns_path, f"http://{a.gateway}:{local_port}/")

    # UDP: an echo server in A, reached on 127.0.0.1:<published>
    echo = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.bind(('0.0.0.0', 5300))\n"
        "while True:\n"
        "    d, peer = s.recvfrom(512)\n"
        "    s.sendto(d + b'!', peer)\n"
    )
    net.spawn(a.netns_path, sys.executable, "-c", echo)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        reply = b""
        deadline = time.monotonic() + 15
        while not reply and time.monotonic() < deadline:
            s.sendto(b"ping", ("127.0.0.1", udp_port))
            try:
                reply = s.recv(512)
            except TimeoutError:
                continue
    assert reply == b"ping!"

    # teardown removes exactly A's things; B keeps working
    tagged = firewall.container_rules(net.config.table, a_id)
    assert len(tagged) == 3
    assert net.teardown(a_id) is True
    assert firewall.container_rules(net.config.table, a_id) == []
    assert not os.path.lexists(a.netns_path)
    assert not links.link_exists(veth_name(a_id))
    assert inspect(a_id, root=net.root) is None
    assert curl_fails(None, f"http://127.0.0.1:{any_port}/")
    assert curl(None, f"http://{b.ip}:8000/") == f"I am {b_id[:12]}\n"

    for p in net.procs:
        p.kill()
        p.wait()
    assert net.teardown(b_id) is True
    assert leftovers(net) == []
    assert remove_network(root=net.root, config=net.config) is True
    assert not links.link_exists(net.config.bridge)
    assert firewall.list_table(net.config.table) is None


def test_outbound_nat_and_isolation(net: Net, tmp_path: Path) -> None:
    """An "outside" host behind its own veth: containers reach it masqueraded; it reaches
    only published ports."""
    outside = str(netns.NETNS_DIR / f"gantry-t{net.tag}x-outside")
    net.extra_netns.append(outside)
    host_end = f"gto{net.tag}"
    net.extra_links.append(host_end)
    third = int(ipaddress.IPv4Network(net.config.subnets[-1]).network_address.packed[2])
    link_net = ipaddress.IPv4Network(f"10.214.{third}.0/30")
    host_ip, outside_ip = (str(h) for h in link_net.hosts())
    netns.create(outside)
    links.loopback_up(outside)
    fd = os.open(outside, os.O_RDONLY)
    try:
        with IPRoute() as ipr:
            ipr.link("add", ifname=host_end, kind="veth", peer={"ifname": "eth0", "net_ns_fd": fd})
            idx = ipr.link_lookup(ifname=host_end)[0]
            ipr.addr("add", index=idx, address=host_ip, prefixlen=30)
            ipr.link("set", index=idx, state="up")
    finally:
        os.close(fd)
    with IPRoute(netns=outside) as ipr:
        idx = ipr.link_lookup(ifname="eth0")[0]
        ipr.addr("add", index=idx, address=outside_ip, prefixlen=30)
        ipr.link("set", index=idx, state="up")

    # the outside server answers with the address it sees the client at
    www = tmp_path / "outside"
    (www / "cgi-bin").mkdir(parents=True)
    script = www / "cgi-bin" / "whoami"
    script.write_text(
        '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s\\n" "$REMOTE_ADDR"\n'
    )
    script.chmod(0o755)
    net.spawn(outside, need("busybox"), "httpd", "-f", "-p", "0.0.0.0:8080", "-h", str(www))
    wait_tcp(outside_ip, 8080)

    cid = net.cid()
    c = net.setup(cid, ports=parse_publish("8000"))
    assert c.ip
    net.httpd(c.netns_path or "", 8000, "inside\n", tmp_path / "c")
    wait_tcp(c.ip, 8000)

    # outbound: the outside host has no route to the bridge subnet, so only NAT makes this work
    assert curl(c.netns_path, f"http://{outside_ip}:8080/cgi-bin/whoami") == f"{host_ip}\n"

    # give the outside host a route to the subnet through us: unpublished ports stay closed,
    # the published one is reachable on the host's address
    with IPRoute(netns=outside) as ipr:
        ipr.route(
            "add",
            dst=str(ipaddress.IPv4Network(f"{c.ip}/{c.prefixlen}", strict=False)),
            gateway=host_ip,
        )
    assert curl_fails(outside, f"http://{c.ip}:8000/")
    assert curl(outside, f"http://{host_ip}:{c.ports[0].host_port}/") == "inside\n"

    assert net.teardown(cid)
    assert curl_fails(outside, f"http://{host_ip}:{c.ports[0].host_port}/")
    assert leftovers(net) == []


def test_none_and_host_modes(net: Net) -> None:
    none_id, host_id = net.cid(), net.cid()
    n = net.setup(none_id, mode="none", ports=parse_publish("80"))
    assert n.mode == "none" and n.ip is None and n.ports == ()
    assert n.netns_path and netns.is_netns(n.netns_path)
    assert links.links(n.netns_path) == ["lo"]
    r = run_in(n.netns_path, "ip", "-o", "link", "show", "lo")
    assert "UP" in r.stdout.split(">")[0]
    assert not links.link_exists(net.config.bridge)  # none never needs the bridge

    h = net.setup(host_id, mode="host", ports=parse_publish("8080:80"))
    assert h.mode == "host" and h.netns_path is None and h.spec_network == "host"
    assert h.warnings == ("Published ports are discarded when using host network mode",)

    joined_id = net.cid()
    j = net.setup(joined_id, mode=f"container:{none_id}")
    assert j.netns_path == n.netns_path
    assert net.teardown(joined_id)
    assert netns.is_netns(n.netns_path)  # the owner's namespace stays

    assert net.teardown(none_id) and net.teardown(host_id)
    assert not os.path.lexists(n.netns_path)
    assert leftovers(net) == []


def test_idempotence_and_port_conflicts(net: Net) -> None:
    a_id, b_id = net.cid(), net.cid()
    a = net.setup(a_id, ports=parse_publish("127.0.0.1::80"))
    assert net.setup(a_id, ports=parse_publish("127.0.0.1::80")) == a
    port = a.ports[0].host_port

    with pytest.raises(Conflict) as exc:
        net.setup(b_id, ports=parse_publish(f"{port}:80"))
    assert str(exc.value) == f"Bind for 0.0.0.0:{port} failed: port is already allocated"
    assert inspect(b_id, root=net.root) is None
    with pytest.raises(Conflict, match="port is already allocated"):
        net.setup(b_id, ports=parse_publish(f"127.0.0.1:{port}:81"))
    # a different address is a different binding
    other = net.setup(b_id, ports=parse_publish(f"127.0.0.2:{port}:80"))
    assert other.ports[0].host_port == port
    assert net.teardown(b_id)

    # a host process already listening on the port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        with pytest.raises(ContainerError) as err:
            net.setup(b_id, ports=parse_publish(f"127.0.0.1:{busy}:80"))
    assert re.fullmatch(
        rf"failed to bind host port for 127\.0\.0\.1:{busy}:[0-9.]+:80/tcp: address already in use",
        str(err.value),
    )
    assert inspect(b_id, root=net.root) is None

    # a host address this machine does not have
    with pytest.raises(ContainerError, match="cannot assign requested address"):
        net.setup(b_id, ports=parse_publish("192.0.2.250::80"))

    # a damaged endpoint (veth gone) is rebuilt by setup
    links.delete_link(veth_name(a_id))
    again = net.setup(a_id, ports=parse_publish("127.0.0.1::80"))
    assert links.link_exists(veth_name(a_id)) and again.netns_path == a.netns_path

    assert net.teardown(a_id) is True
    assert net.teardown(a_id) is False
    assert leftovers(net) == []


def test_failed_setup_rolls_back(net: Net) -> None:
    """nft refuses the batch (its table holds a clashing chain): the veth, the namespace and
    the address made before that point are all undone."""
    firewall.apply(
        [
            {"add": {"table": {"family": "ip", "name": net.config.table}}},
            {
                "add": {
                    "chain": {
                        "family": "ip",
                        "table": net.config.table,
                        "name": "prerouting",
                        "type": "filter",
                        "hook": "input",
                        "prio": 0,
                        "policy": "accept",
                    }
                }
            },
        ]
    )
    cid = net.cid()
    with pytest.raises(ContainerError, match="nftables"):
        net.setup(cid, ports=parse_publish("80"))
    assert not os.path.lexists(netns.NETNS_DIR / f"{net.config.netns_prefix}{cid}")
    assert not links.link_exists(veth_name(cid))
    assert endpoints(root=net.root) == {}
    firewall.remove_table(net.config.table)
    ok = net.setup(cid)
    assert ok.ip  # the same root works once the obstacle is gone
    assert net.teardown(cid)
    assert leftovers(net) == []


_CHILD = """
import json, os, sys
from pathlib import Path
from gantry.runtime.net import NetworkConfig, setup, parse_publish
args = json.loads(sys.argv[1])
cfg = NetworkConfig(bridge=args["bridge"], subnets=tuple(args["subnets"]), table=args["table"],
                    netns_prefix=args["prefix"])
info = setup(args["cid"], ports=parse_publish("80"), root=args["root"], config=cfg)
print(info.ip, flush=True)
if args["crash"]:
    os._exit(9)  # die without any cleanup, as a killed gantry would
"""


def _child(net: Net, cid: str, crash: bool) -> subprocess.Popen[str]:
    args = {
        "bridge": net.config.bridge,
        "subnets": list(net.config.subnets),
        "table": net.config.table,
        "prefix": net.config.netns_prefix,
        "root": str(net.root),
        "cid": cid,
        "crash": crash,
    }
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_processes_and_crash_cleanup(net: Net) -> None:
    cids = [net.cid() for _ in range(3)]
    procs = [_child(net, c, crash=True) for c in cids]
    ips = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 9, err
        ips.append(out.strip())
    assert len(set(ips)) == 3
    recorded = endpoints(root=net.root)
    assert sorted(recorded) == sorted(cids)
    assert sorted(i.ip or "" for i in recorded.values()) == sorted(ips)
    assert len({i.ports[0].host_port for i in recorded.values()}) == 3
    for c in cids:  # the processes died; their namespaces, veths and rules are still there
        assert links.link_exists(veth_name(c))
    assert len(firewall.container_rules(net.config.table)) == 3
    for c in cids:
        assert net.teardown(c) is True
    assert leftovers(net) == []


@pytest.mark.peers
def test_runc_container_joins_the_namespace(net: Net, shm_tmp: Path) -> None:
    """The fit with gantry.runtime.spec: ``SpecOptions(network=info.spec_network)`` puts a
    real runc container into the namespace setup() made."""
    from gantry.runtime import SpecOptions, detect_runtime, run_container

    need("runc")
    rootfs = shm_tmp / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2(need("busybox"), rootfs / "bin" / "busybox")
    subprocess.run(["chroot", str(rootfs), "/bin/busybox", "--install", "-s"], check=True)
    (rootfs / "tmp").mkdir(mode=0o1777)
    rt = detect_runtime(shm_tmp / "state")

    server_id, client_id = net.cid(), net.cid()
    server = net.setup(server_id)
    client = net.setup(client_id)
    assert server.ip and server.netns_path
    net.httpd(server.netns_path, 8000, "from the server\n", shm_tmp / "www")
    wait_tcp(server.ip, 8000)

    out: list[bytes] = []
    script = f"ip -o -4 addr show eth0; wget -qO- http://{server.ip}:8000/"
    opts = SpecOptions(args=["/bin/sh", "-c", script], network=client.spec_network)
    rc = run_container(rootfs, opts, runtime=rt, on_output=lambda _s, b: out.append(b), timeout=60)
    text = b"".join(out).decode()
    assert rc == 0, text
    assert f"inet {client.ip}/{client.prefixlen}" in text
    assert text.endswith("from the server\n")
    assert net.teardown(client_id) and net.teardown(server_id)
    assert leftovers(net) == []
