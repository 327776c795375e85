"""Container networking: the gantry0 bridge, veth pairs, IPAM, NAT and published ports.

- :mod:`~gantry.runtime.net.manager`: ``setup``/``teardown`` (the API the runtime calls)
- :mod:`~gantry.runtime.net.ports`: ``-p``/``-P`` parsing
- :mod:`~gantry.runtime.net.hosts`: ``--add-host`` parsing (``host-gateway``)
- :mod:`~gantry.runtime.net.ipam`: persistent, locked state and address allocation
- :mod:`~gantry.runtime.net.netns`: named network namespaces (``/run/netns``)
- :mod:`~gantry.runtime.net.links`: bridge and veth over netlink
- :mod:`~gantry.runtime.net.rtnl`: the rtnetlink client under it (standard library only)
- :mod:`~gantry.runtime.net.firewall`: the ``ip gantry`` nftables table

See docs/network.md.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gantry.runtime.net.hosts import parse_add_host, resolve_extra_hosts
    from gantry.runtime.net.manager import (
        NetworkConfig,
        NetworkInfo,
        PublishedPort,
        endpoints,
        inspect,
        remove_network,
        setup,
        teardown,
    )
    from gantry.runtime.net.ports import (
        PortMapping,
        from_port_bindings,
        parse_publish,
        parse_publish_all,
        publish_exposed,
    )

#: Where each name lives; imported on first use (``-p`` parsing must not load netlink, nft
#: and IPAM code).
_WHERE = {
    "parse_add_host": "hosts",
    "resolve_extra_hosts": "hosts",
    "NetworkConfig": "manager",
    "NetworkInfo": "manager",
    "PublishedPort": "manager",
    "endpoints": "manager",
    "inspect": "manager",
    "remove_network": "manager",
    "setup": "manager",
    "teardown": "manager",
    "PortMapping": "ports",
    "from_port_bindings": "ports",
    "parse_publish": "ports",
    "parse_publish_all": "ports",
    "publish_exposed": "ports",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:  # a submodule (``from gantry.runtime.net import links``) is imported
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    globals()[name] = value
    return value


__all__ = [
    "NetworkConfig",
    "NetworkInfo",
    "PortMapping",
    "PublishedPort",
    "endpoints",
    "from_port_bindings",
    "inspect",
    "parse_add_host",
    "parse_publish",
    "parse_publish_all",
    "publish_exposed",
    "remove_network",
    "resolve_extra_hosts",
    "setup",
    "teardown",
]
