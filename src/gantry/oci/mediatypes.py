"""Media types of the OCI image spec and Docker's image manifest v2 schema 2.

Both families are read and written. ``docker_equivalent`` / ``oci_equivalent``
map one onto the other for conversion (``docker save`` vs OCI layout, pushing
to registries that only speak schema 2).
"""

from __future__ import annotations

import re
from typing import Literal

from gantry.errors import InvalidManifest

# --- OCI image spec ---------------------------------------------------------
OCI_DESCRIPTOR = "application/vnd.oci.descriptor.v1+json"
OCI_LAYOUT_HEADER = "application/vnd.oci.layout.header.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
# Deprecated by the spec (1.1) but still met in the wild (Windows base layers).
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
#: The empty JSON object ``{}``: config of artifacts, placeholder blob.
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

# --- Docker image manifest v2, schema 2 --------------------------------------
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#: Uncompressed schema-2 layer (not in Docker's spec; written by containerd/moby).
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
#: Schema 1 (removed from Docker); recognised only to refuse it clearly.
DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_SIGNED})

_LAYERS: dict[str, Literal["gzip", "zstd"] | None] = {
    OCI_LAYER: None,
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_NONDIST: None,
    OCI_LAYER_NONDIST_GZIP: "gzip",
    OCI_LAYER_NONDIST_ZSTD: "zstd",
    DOCKER_LAYER: "gzip",
    DOCKER_FOREIGN_LAYER: "gzip",
    DOCKER_LAYER_TAR: None,
}
NONDISTRIBUTABLE_TYPES = frozenset(
    {OCI_LAYER_NONDIST, OCI_LAYER_NONDIST_GZIP, OCI_LAYER_NONDIST_ZSTD, DOCKER_FOREIGN_LAYER}
)

_TO_DOCKER = {
    OCI_MANIFEST: DOCKER_MANIFEST,
    OCI_INDEX: DOCKER_MANIFEST_LIST,
    OCI_CONFIG: DOCKER_CONFIG,
    OCI_LAYER_GZIP: DOCKER_LAYER,
    OCI_LAYER: DOCKER_LAYER_TAR,
    OCI_LAYER_NONDIST_GZIP: DOCKER_FOREIGN_LAYER,
}
_TO_OCI = {v: k for k, v in _TO_DOCKER.items()}

# RFC 6838 restricted names, as the image-spec descriptor schema writes them.
_MEDIA_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
)


def is_valid(media_type: str) -> bool:
    """Whether ``media_type`` is syntactically a media type (``type/subtype``)."""
    return bool(_MEDIA_TYPE.fullmatch(media_type))


def is_manifest(media_type: str) -> bool:
    return media_type in MANIFEST_TYPES


def is_index(media_type: str) -> bool:
    return media_type in INDEX_TYPES


def is_config(media_type: str) -> bool:
    return media_type in CONFIG_TYPES


def is_layer(media_type: str) -> bool:
    return media_type in _LAYERS


def is_docker(media_type: str) -> bool:
    return media_type.startswith("application/vnd.docker.")


def is_nondistributable(media_type: str) -> bool:
    """Layers that registries must not be asked to store (foreign layers)."""
    return media_type in NONDISTRIBUTABLE_TYPES


def layer_compression(media_type: str) -> Literal["gzip", "zstd"] | None:
    """The compression of a layer blob; None for a plain tar."""
    try:
        return _LAYERS[media_type]
    except KeyError:
        raise InvalidManifest(f"unsupported layer media type: {media_type}") from None


def layer_type(compression: str | None, *, docker: bool = False) -> str:
    """The layer media type for ``compression`` ("gzip", "zstd" or None)."""
    for mt, comp in _LAYERS.items():
        if comp == compression and is_docker(mt) == docker and not is_nondistributable(mt):
            return mt
    raise InvalidManifest(
        f"no {'Docker' if docker else 'OCI'} layer media type for compression {compression}"
    )


def docker_equivalent(media_type: str) -> str:
    """The schema-2 counterpart of an OCI media type (Docker types map to themselves)."""
    if is_docker(media_type):
        return media_type
    try:
        return _TO_DOCKER[media_type]
    except KeyError:
        raise InvalidManifest(
            f"media type {media_type} has no Docker schema 2 equivalent"
        ) from None


def oci_equivalent(media_type: str) -> str:
    """The OCI counterpart of a Docker schema-2 media type (others map to themselves)."""
    if not is_docker(media_type):
        return media_type
    try:
        return _TO_OCI[media_type]
    except KeyError:
        raise InvalidManifest(f"media type {media_type} has no OCI equivalent") from None
