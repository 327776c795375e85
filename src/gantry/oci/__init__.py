"""gantry.oci: the OCI / Docker image data model.

Descriptors, manifests, indexes, image configs, platforms and media types, each
validated when read from outside and written as canonical JSON (see
:mod:`gantry.oci.canonical`).

Names are loaded on first use: ``from gantry.oci import Manifest`` imports
:mod:`gantry.oci.manifest` and what it needs, not the whole package (a command
such as ``gantry images`` never pays for layouts or platforms).
"""

# no ``from __future__ import annotations`` here: it would shadow the submodule
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import annotations as annotations
    from . import mediatypes as mediatypes
    from .canonical import FrozenDict as FrozenDict
    from .config import ContainerConfig as ContainerConfig
    from .config import Healthcheck as Healthcheck
    from .config import History as History
    from .config import ImageConfig as ImageConfig
    from .config import RootFS as RootFS
    from .config import chain_ids as chain_ids
    from .config import parse_config as parse_config
    from .config import rfc3339 as rfc3339
    from .descriptor import EMPTY_DESCRIPTOR as EMPTY_DESCRIPTOR
    from .descriptor import Descriptor as Descriptor
    from .layout import Layout as Layout
    from .layout import read_layout as read_layout
    from .manifest import MAX_MANIFEST_SIZE as MAX_MANIFEST_SIZE
    from .manifest import Index as Index
    from .manifest import Manifest as Manifest
    from .manifest import parse_manifest as parse_manifest
    from .platform import Platform as Platform
    from .platform import host_platform as host_platform

# public name -> submodule that defines it ("" for a submodule itself)
_LAZY = {
    "annotations": "",
    "mediatypes": "",
    "FrozenDict": "canonical",
    "ContainerConfig": "config",
    "Healthcheck": "config",
    "History": "config",
    "ImageConfig": "config",
    "RootFS": "config",
    "chain_ids": "config",
    "parse_config": "config",
    "rfc3339": "config",
    "EMPTY_DESCRIPTOR": "descriptor",
    "Descriptor": "descriptor",
    "Layout": "layout",
    "read_layout": "layout",
    "MAX_MANIFEST_SIZE": "manifest",
    "Index": "manifest",
    "Manifest": "manifest",
    "parse_manifest": "manifest",
    "Platform": "platform",
    "host_platform": "platform",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    else:
        value = importlib.import_module(f"{__name__}.{name}")
    globals()[name] = value
    return value
