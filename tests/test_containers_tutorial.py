"""The seed tutorial's flow from the CLI, for real: a Dockerfile FROM busybox that COPYs an
index.html, EXPOSEs 5000 and runs httpd; `gantry build -t web:1 .`; `gantry run -d -p
127.0.0.1:PORT:5000 web:1` answers the file; `run -d -P` publishes the EXPOSEd port on an
ephemeral host port (read from inspect: gantry has no `port` verb) and curl gets the page;
`rm -f` leaves no veth, no nftables rule naming the container and no mount.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from gantry.runtime.net.manager import netns_path, veth_name
from test_containers_support import (
    GANTRY,
    err,
    gantry,
    inspect,
    mounts_under,
    out,
    runc_containers,
    supervisor_pids,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.root]
pytest_plugins = ["test_containers_support"]  # the croot fixture

PAGE = "<h1>hello from the tutorial</h1>\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _curl(url: str) -> str | None:
    p = subprocess.run(
        ["curl", "-sS", "--max-time", "2", url], capture_output=True, text=True, check=False
    )
    return p.stdout if p.returncode == 0 else None


def _links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def _ruleset() -> str:
    return subprocess.run(
        ["nft", "list", "ruleset"], capture_output=True, text=True, check=True
    ).stdout


def _leftovers(root: Path, cid: str, veth: str) -> list[str]:
    found = []
    if veth in _links():
        found.append(f"veth {veth}")
    if f"gantry:{cid}" in _ruleset():
        found.append("nft rule")
    if mounts_under(root):
        found.append(f"mounts {mounts_under(root)}")
    if (root / "containers" / cid).exists():
        found.append("container directory")
    if netns_path(cid).exists():
        found.append("network namespace")
    if supervisor_pids(root):
        found.append("supervisor")
    if runc_containers(root):
        found.append("runc state")
    return found


def _build(root: Path, ctx: Path) -> None:
    ctx.mkdir()
    (ctx / "index.html").write_text(PAGE)
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "COPY index.html /www/index.html\n"
        "EXPOSE 5000\n"
        'CMD ["httpd", "-f", "-p", "5000", "-h", "/www"]\n'
    )
    p = subprocess.run(  # `gantry build -t web:1 .` from inside the context
        [*GANTRY, "build", "-t", "web:1", "."],
        cwd=ctx,
        capture_output=True,
        env={**os.environ, "GANTRY_ROOT": str(root)},
        timeout=120,
        check=False,
    )
    assert p.returncode == 0, p.stderr.decode()
    assert "naming to docker.io/library/web:1 done" in p.stderr.decode()


def test_build_run_publish_curl_and_clean_up(croot: Path, tmp_path: Path) -> None:
    _build(croot, tmp_path / "app")
    cfg = json.loads(out(gantry(croot, "image", "inspect", "-f", "{{json .Config}}", "web:1")))
    assert cfg["ExposedPorts"] == {"5000/tcp": {}}
    assert cfg["Cmd"] == ["httpd", "-f", "-p", "5000", "-h", "/www"]

    # -p 127.0.0.1:PORT:5000
    port = _free_port()
    p = gantry(croot, "run", "-d", "-p", f"127.0.0.1:{port}:5000", "web:1")
    assert p.returncode == 0, err(p)
    cid = out(p).strip()
    assert len(cid) == 64
    url = f"http://127.0.0.1:{port}/"
    assert wait_for(lambda: _curl(url), timeout=15) == PAGE
    ports = inspect(croot, cid)["NetworkSettings"]["Ports"]
    assert ports == {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert out(gantry(croot, "ps", "--format", "{{.Ports}}")) == f"127.0.0.1:{port}->5000/tcp\n"
    veth = veth_name(cid)
    assert veth in _links()
    assert netns_path(cid).exists() and supervisor_pids(croot)
    assert f"gantry:{cid}" in _ruleset()
    assert mounts_under(croot)  # the container's overlay is mounted while it runs

    assert out(gantry(croot, "rm", "-f", cid)) == f"{cid}\n"
    assert _curl(url) is None
    assert _leftovers(croot, cid, veth) == []

    # -P: the EXPOSEd port on an ephemeral host port, on every address (Docker: 0.0.0.0)
    p = gantry(croot, "run", "-d", "-P", "web:1")
    assert p.returncode == 0, err(p)
    cid2 = out(p).strip()
    fmt = "{{json .NetworkSettings.Ports}}"
    ports = json.loads(out(gantry(croot, "inspect", "-f", fmt, cid2)))
    assert list(ports) == ["5000/tcp"]
    (binding,) = ports["5000/tcp"]
    assert binding["HostIp"] == "0.0.0.0"
    host_port = int(binding["HostPort"])
    lo, hi = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert lo <= host_port <= hi, host_port
    url2 = f"http://127.0.0.1:{host_port}/"
    assert wait_for(lambda: _curl(url2), timeout=15) == PAGE
    ps = out(gantry(croot, "ps", "--format", "{{.Ports}}"))
    assert ps == f"0.0.0.0:{host_port}->5000/tcp\n"
    veth2 = veth_name(cid2)
    assert veth2 in _links()

    assert out(gantry(croot, "rm", "-f", cid2)) == f"{cid2}\n"
    assert _curl(url2) is None
    assert _leftovers(croot, cid2, veth2) == []
    assert out(gantry(croot, "ps", "-aq")) == ""
