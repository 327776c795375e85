"""Well-known annotation keys (image-spec ``annotations.md`` and tools' own)."""

from __future__ import annotations

CREATED = "org.opencontainers.image.created"
AUTHORS = "org.opencontainers.image.authors"
URL = "org.opencontainers.image.url"
SOURCE = "org.opencontainers.image.source"
VERSION = "org.opencontainers.image.version"
REVISION = "org.opencontainers.image.revision"
TITLE = "org.opencontainers.image.title"
DESCRIPTION = "org.opencontainers.image.description"
#: In an OCI layout's index.json: the tag (or full name) of an entry.
REF_NAME = "org.opencontainers.image.ref.name"
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
#: containerd / ``docker save`` (OCI): the full image name of an index.json entry.
CONTAINERD_IMAGE_NAME = "io.containerd.image.name"
#: BuildKit attestation manifests in an index: value "attestation-manifest".
DOCKER_REFERENCE_TYPE = "vnd.docker.reference.type"
DOCKER_REFERENCE_DIGEST = "vnd.docker.reference.digest"
