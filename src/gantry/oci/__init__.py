"""gantry.oci: the OCI / Docker image data model.

Descriptors, manifests, indexes, image configs, platforms and media types, each
validated when read from outside and written as canonical JSON (see
:mod:`gantry.oci.canonical`).
"""

from . import annotations, mediatypes
from .canonical import FrozenDict
from .config import (
    ContainerConfig,
    Healthcheck,
    History,
    ImageConfig,
    RootFS,
    chain_ids,
    parse_config,
    rfc3339,
)
from .descriptor import EMPTY_DESCRIPTOR, Descriptor
from .layout import Layout, read_layout
from .manifest import MAX_MANIFEST_SIZE, Index, Manifest, parse_manifest
from .platform import Platform, host_platform

__all__ = [
    "EMPTY_DESCRIPTOR",
    "MAX_MANIFEST_SIZE",
    "ContainerConfig",
    "Descriptor",
    "FrozenDict",
    "Healthcheck",
    "History",
    "ImageConfig",
    "Index",
    "Layout",
    "Manifest",
    "Platform",
    "RootFS",
    "annotations",
    "chain_ids",
    "host_platform",
    "mediatypes",
    "parse_config",
    "parse_manifest",
    "read_layout",
    "rfc3339",
]
