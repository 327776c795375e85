"""gantry.registry: an OCI Distribution v1.1 registry server (``gantry registry serve``).

The library API::

    from gantry.registry import RegistryConfig, make_app, serve
    cfg = RegistryConfig(addr="127.0.0.1:5000", data=Path("/srv/registry"))
    serve(cfg)                       # blocks; or make_app(cfg) for an aiohttp app

Storage lives behind :class:`~gantry.registry.storage.StorageDriver`
(filesystem by default, S3); the server keeps no state outside it.
"""

from __future__ import annotations

from .app import Registry, make_app
from .config import RegistryConfig
from .config import load as load_config

__all__ = ["Registry", "RegistryConfig", "load_config", "make_app"]
