"""Image manifests and indexes (OCI image-spec and Docker schema 2).

``parse_manifest`` reads either kind from untrusted bytes and validates every
field; ``to_json`` gives the canonical bytes gantry writes (see
:mod:`gantry.oci.canonical`). The digest of a manifest is always the digest of
the bytes as stored or received, never of a re-serialization.

Deliberately more lenient than the image-spec JSON schema in one place: a
manifest with an empty ``layers`` array is accepted, because BuildKit and Docker
write one for a ``FROM scratch`` image without filesystem changes and every
registry stores it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gantry.errors import InvalidManifest

from . import canonical as cj
from . import mediatypes as mt
from .descriptor import Descriptor
from .platform import Platform

#: Registries are only required to accept manifests up to this size (distribution
#: spec); containerd and Docker refuse larger ones, and so does gantry.
MAX_MANIFEST_SIZE = 4 * 1024 * 1024


class _Document:
    """What manifests and indexes share: the envelope of their JSON."""

    __slots__ = ()
    media_type: str
    schema_version: int
    artifact_type: str | None
    subject: Descriptor | None
    annotations: Mapping[str, str]

    def _entries(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"schemaVersion": self.schema_version, "mediaType": self.media_type}
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        d.update(self._entries())
        if self.subject is not None:
            d["subject"] = self.subject.to_dict()
        if self.annotations:
            d["annotations"] = cj.sorted_map(self.annotations)
        return d

    def to_json(self) -> bytes:
        """Canonical bytes (compact, fixed key order); store these and digest them."""
        return cj.dumps(self.to_dict())

    def descriptor(self, **kwargs: Any) -> Descriptor:
        """A descriptor of ``to_json()`` (keyword arguments as for ``Descriptor.of``)."""
        return Descriptor.of(self.to_json(), self.media_type, **kwargs)


@dataclass(frozen=True, slots=True)
class Manifest(_Document):
    """An image (or artifact) manifest: one config blob and its layers."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = mt.OCI_MANIFEST
    subject: Descriptor | None = None
    annotations: Mapping[str, str] = field(default_factory=cj.FrozenDict)
    artifact_type: str | None = None
    schema_version: int = 2

    def __post_init__(self) -> None:
        cj.freeze(self, tuples=("layers",), maps=("annotations",))

    @classmethod
    def parse(cls, data: bytes, media_type: str | None = None) -> Manifest:
        """Parse ``data``, which must be an image manifest (not an index)."""
        m = parse_manifest(data, media_type)
        if not isinstance(m, Manifest):
            raise InvalidManifest(f"expected an image manifest, got {m.media_type}")
        return m

    @property
    def is_docker(self) -> bool:
        return self.media_type == mt.DOCKER_MANIFEST

    def to_docker(self) -> Manifest:
        """This image as a Docker schema 2 manifest (config and layer blobs unchanged,
        only their media types relabelled). Raises InvalidManifest for what schema 2
        cannot express: artifacts, subjects, zstd layers."""
        if self.is_docker:
            return self
        if self.artifact_type or self.subject is not None:
            raise InvalidManifest("an artifact manifest has no Docker schema 2 form")
        if not mt.is_config(self.config.media_type):
            raise InvalidManifest(
                f"config media type {self.config.media_type} has no Docker schema 2 form"
            )
        return dataclasses.replace(
            self,
            media_type=mt.DOCKER_MANIFEST,
            config=_relabel(self.config, mt.docker_equivalent),
            layers=tuple(_relabel(d, mt.docker_equivalent) for d in self.layers),
        )

    def to_oci(self) -> Manifest:
        """This image as an OCI manifest (the reverse of :meth:`to_docker`)."""
        if not self.is_docker:
            return self
        return dataclasses.replace(
            self,
            media_type=mt.OCI_MANIFEST,
            config=_relabel(self.config, mt.oci_equivalent),
            layers=tuple(_relabel(d, mt.oci_equivalent) for d in self.layers),
        )

    def _entries(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
        }


@dataclass(frozen=True, slots=True)
class Index(_Document):
    """An image index / Docker manifest list: manifests for several platforms."""

    manifests: tuple[Descriptor, ...]
    media_type: str = mt.OCI_INDEX
    subject: Descriptor | None = None
    annotations: Mapping[str, str] = field(default_factory=cj.FrozenDict)
    artifact_type: str | None = None
    schema_version: int = 2

    def __post_init__(self) -> None:
        cj.freeze(self, tuples=("manifests",), maps=("annotations",))

    @classmethod
    def parse(cls, data: bytes, media_type: str | None = None) -> Index:
        """Parse ``data``, which must be an index / manifest list."""
        m = parse_manifest(data, media_type)
        if not isinstance(m, Index):
            raise InvalidManifest(f"expected an image index, got {m.media_type}")
        return m

    @property
    def is_docker(self) -> bool:
        return self.media_type == mt.DOCKER_MANIFEST_LIST

    def platforms(self) -> list[Platform]:
        """Platforms of the image entries (attestations and unknown/unknown skipped)."""
        return [d.platform for d in self._images() if d.platform is not None]

    def select(self, platform: Platform) -> Descriptor | None:
        """The first image manifest for ``platform``, as Docker picks it; None if absent."""
        for d in self._images():
            if d.platform is not None and platform.matches(d.platform):
                return d
        return None

    def _images(self) -> Iterable[Descriptor]:
        for d in self.manifests:
            if not (mt.is_manifest(d.media_type) or mt.is_index(d.media_type)):
                continue
            # BuildKit attaches provenance/SBOM manifests with platform unknown/unknown.
            if d.annotations.get("vnd.docker.reference.type") == "attestation-manifest":
                continue
            yield d

    def _entries(self) -> dict[str, Any]:
        return {"manifests": [m.to_dict() for m in self.manifests]}


def _relabel(d: Descriptor, convert: Callable[[str], str]) -> Descriptor:
    return dataclasses.replace(d, media_type=convert(d.media_type))


def _strip_params(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _schema1_error() -> InvalidManifest:
    return InvalidManifest(
        "Docker Image manifest version 2, schema 1 is not supported: "
        "ask the image's author to push it in OCI or Docker schema 2 format",
        hint="see https://docs.docker.com/go/deprecated-image-specs/",
    )


def _kind(doc: dict[str, Any], media_type: str | None) -> str:
    declared = cj.opt_str(doc, "mediaType", "manifest")
    given = _strip_params(media_type) if media_type else None
    if given in mt.SCHEMA1_TYPES or declared in mt.SCHEMA1_TYPES:
        raise _schema1_error()
    if doc.get("schemaVersion") == 1 or "fsLayers" in doc:
        raise _schema1_error()
    known = mt.MANIFEST_TYPES | mt.INDEX_TYPES
    if given not in known:
        given = None  # e.g. application/json or octet-stream from a lax server
    if declared is not None:
        if not mt.is_valid(declared):
            raise InvalidManifest(f"manifest.mediaType: invalid media type {declared!r}")
        if given is not None and declared != given:
            raise InvalidManifest(
                f"manifest media type {declared} does not match the declared {given}"
            )
        kind = declared
    elif given is not None:
        kind = given
    elif "manifests" in doc and "config" not in doc and "layers" not in doc:
        kind = mt.OCI_INDEX
    elif "config" in doc and "manifests" not in doc:
        kind = mt.OCI_MANIFEST
    else:
        raise InvalidManifest("cannot tell whether the document is a manifest or an index")
    if kind not in known:
        raise InvalidManifest(f"unsupported manifest media type: {kind}")
    if mt.is_manifest(kind) and "manifests" in doc:
        raise InvalidManifest(f"{kind} must not contain a 'manifests' field")
    if mt.is_index(kind) and ("config" in doc or "layers" in doc):
        raise InvalidManifest(f"{kind} must not contain 'config' or 'layers' fields")
    return kind


def parse_manifest(data: bytes, media_type: str | None = None) -> Manifest | Index:
    """Validate and parse a manifest or index received from outside.

    ``media_type`` is what the transport said (a registry's Content-Type, an
    index entry's mediaType); when the document declares its own, they must
    agree. Without either, the fields decide (as containerd does). Raises
    :class:`~gantry.errors.InvalidManifest` with a one-line reason.
    """
    if len(data) > MAX_MANIFEST_SIZE:
        raise InvalidManifest(
            f"manifest too large: {len(data)} bytes exceeds the limit of {MAX_MANIFEST_SIZE}"
        )
    doc = cj.loads_object(data, "manifest")
    kind = _kind(doc, media_type)
    version = cj.as_int(cj.req(doc, "schemaVersion", "manifest"), "manifest.schemaVersion")
    if version != 2:
        raise InvalidManifest(f"manifest.schemaVersion: unsupported version {version}")
    artifact_type = cj.opt_str(doc, "artifactType", "manifest")
    if artifact_type is not None and not mt.is_valid(artifact_type):
        raise InvalidManifest(f"manifest.artifactType: invalid media type {artifact_type!r}")
    subject = None
    if doc.get("subject") is not None:
        subject = Descriptor.from_dict(doc["subject"], "manifest.subject")
    annotations = cj.str_map(doc.get("annotations"), "manifest.annotations")
    if mt.is_index(kind):
        entries = cj.as_list(cj.req(doc, "manifests", "index"), "index.manifests")
        return Index(
            manifests=tuple(
                Descriptor.from_dict(e, f"index.manifests[{i}]") for i, e in enumerate(entries)
            ),
            media_type=kind,
            subject=subject,
            annotations=annotations,
            artifact_type=artifact_type,
            schema_version=version,
        )
    config = Descriptor.from_dict(cj.req(doc, "config", "manifest"), "manifest.config")
    layers = cj.as_list(cj.req(doc, "layers", "manifest"), "manifest.layers")
    return Manifest(
        config=config,
        layers=tuple(
            Descriptor.from_dict(e, f"manifest.layers[{i}]") for i, e in enumerate(layers)
        ),
        media_type=kind,
        subject=subject,
        annotations=annotations,
        artifact_type=artifact_type,
        schema_version=version,
    )
