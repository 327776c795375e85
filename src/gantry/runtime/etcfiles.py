"""The /etc/hosts, /etc/resolv.conf and /etc/hostname a container gets, as Docker writes them.

These are written next to the bundle and bind-mounted over the image's files
(``SpecOptions.hosts_file`` / ``resolv_conf`` / ``hostname_file``), so the image is never
modified by running it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

#: Docker's fallback when the host only lists resolvers a container cannot reach.
DEFAULT_DNS = ("8.8.8.8", "8.8.4.4")


def hosts_content(
    hostname: str | None = None,
    *,
    ip: str | None = None,
    extra_hosts: Sequence[tuple[str, str]] = (),
) -> str:
    """Docker's /etc/hosts: loopback names, ``--add-host`` entries, then the container's own.

    Without ``ip`` (host or no network) the hostname is an alias of 127.0.0.1.
    """
    lines = [
        "127.0.0.1\tlocalhost" + (f" {hostname}" if hostname and ip is None else ""),
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "ff00::0\tip6-mcastprefix",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
    ]
    lines += [f"{addr}\t{name}" for name, addr in extra_hosts]
    if hostname and ip is not None:
        lines.append(f"{ip}\t{hostname}")
    return "\n".join(lines) + "\n"


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def resolv_conf_content(
    host: str,
    *,
    network: str = "host",
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_options: Sequence[str] = (),
) -> str:
    """The container's resolv.conf from the host's (``host`` is its text).

    With the host's network it is kept as is; in a namespace of its own, loopback resolvers
    (systemd-resolved's 127.0.0.53, a local dnsmasq) are unreachable and are dropped, falling
    back to Docker's public defaults when nothing is left. ``--dns*`` flags replace the
    corresponding lines.
    """
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    other: list[str] = []
    for raw in host.splitlines():
        line = raw.strip()
        fields = line.split()
        if not fields or line.startswith(("#", ";")):
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            nameservers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            search = fields[1:]
        elif fields[0] == "options":
            options += fields[1:]
        else:
            other.append(line)
    if dns:
        nameservers = list(dns)
    elif network != "host":
        nameservers = [n for n in nameservers if not _is_loopback(n)] or list(DEFAULT_DNS)
    if dns_search:
        search = [] if list(dns_search) == ["."] else list(dns_search)
    if dns_options:
        options = list(dns_options)
    out = [f"nameserver {n}" for n in nameservers]
    if search:
        out.append("search " + " ".join(search))
    if options:
        out.append("options " + " ".join(options))
    out += other
    return "\n".join(out) + ("\n" if out else "")


def write_etc_files(
    directory: str | os.PathLike[str],
    *,
    hostname: str,
    network: str = "host",
    host_resolv_conf: str | os.PathLike[str] = "/etc/resolv.conf",
    extra_hosts: Sequence[tuple[str, str]] = (),
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_options: Sequence[str] = (),
) -> tuple[Path, Path, Path]:
    """Write ``hosts``, ``resolv.conf`` and ``hostname`` into ``directory``; return their paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    try:
        host = Path(host_resolv_conf).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        host = ""
    files = (
        (d / "hosts", hosts_content(hostname, extra_hosts=extra_hosts)),
        (
            d / "resolv.conf",
            resolv_conf_content(
                host, network=network, dns=dns, dns_search=dns_search, dns_options=dns_options
            ),
        ),
        (d / "hostname", hostname + "\n"),
    )
    for path, text in files:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return files[0][0], files[1][0], files[2][0]
