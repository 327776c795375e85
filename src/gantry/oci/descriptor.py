"""Content descriptors (image-spec ``descriptor.md``): what, where, how big."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gantry import digest as _digest
from gantry.digest import Digest
from gantry.errors import InvalidDigest, InvalidManifest

from . import canonical as cj
from . import mediatypes as mt
from .platform import Platform

MAX_SIZE = (1 << 63) - 1  # sizes are int64 in every implementation that matters
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$")


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A reference to a blob by media type, digest and size."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=cj.FrozenDict)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None
    data: bytes | None = None

    def __post_init__(self) -> None:
        # Accept plain dicts/strs from callers; store the immutable forms.
        cj.freeze(self, tuples=("urls",), maps=("annotations",))
        raw: Any = self.digest
        if not isinstance(raw, Digest):
            object.__setattr__(self, "digest", Digest(raw))

    @classmethod
    def of(
        cls,
        data: bytes,
        media_type: str,
        *,
        annotations: Mapping[str, str] | None = None,
        platform: Platform | None = None,
        artifact_type: str | None = None,
        embed: bool = False,
    ) -> Descriptor:
        """Describe ``data`` (digest and size computed); ``embed`` puts it in ``data``."""
        return cls(
            media_type=media_type,
            digest=_digest.of_bytes(data),
            size=len(data),
            annotations=cj.FrozenDict(annotations),
            platform=platform,
            artifact_type=artifact_type,
            data=data if embed else None,
        )

    def with_annotations(self, annotations: Mapping[str, str]) -> Descriptor:
        """A copy whose annotations are these (others kept) merged over the current ones."""
        merged = dict(self.annotations)
        merged.update(annotations)
        return dataclasses.replace(self, annotations=cj.FrozenDict(merged))

    def with_platform(self, platform: Platform | None) -> Descriptor:
        return dataclasses.replace(self, platform=platform)

    @classmethod
    def from_dict(cls, obj: Any, where: str = "descriptor") -> Descriptor:
        """Validate and build a descriptor from parsed JSON; raises InvalidManifest."""
        o = cj.as_object(obj, where)
        media_type = cj.as_str(cj.req(o, "mediaType", where), f"{where}.mediaType")
        if not mt.is_valid(media_type):
            raise InvalidManifest(f"{where}.mediaType: invalid media type {media_type!r}")
        raw_digest = cj.as_str(cj.req(o, "digest", where), f"{where}.digest")
        try:
            dgst = Digest(raw_digest)
        except InvalidDigest as e:
            raise InvalidManifest(f"{where}.digest: {e}") from None
        size = cj.as_int(cj.req(o, "size", where), f"{where}.size")
        if size < 0 or size > MAX_SIZE:
            raise InvalidManifest(f"{where}.size: {size} is out of range")
        urls = cj.str_list(o.get("urls"), f"{where}.urls")
        for i, u in enumerate(urls):
            if not _URI.fullmatch(u):
                raise InvalidManifest(f"{where}.urls[{i}]: not an absolute URI: {u!r}")
        artifact_type = cj.opt_str(o, "artifactType", where)
        if artifact_type is not None and not mt.is_valid(artifact_type):
            raise InvalidManifest(f"{where}.artifactType: invalid media type {artifact_type!r}")
        data: bytes | None = None
        raw_data = cj.opt_str(o, "data", where)
        if raw_data is not None:
            try:
                data = base64.b64decode(raw_data, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidManifest(f"{where}.data: invalid base64") from None
            if len(data) != size:
                raise InvalidManifest(
                    f"{where}.data: embedded data is {len(data)} bytes, size says {size}"
                )
            if _digest.of_bytes(data, dgst.algorithm) != dgst:
                raise InvalidManifest(f"{where}.data: embedded data does not match {dgst}")
        platform = None
        if o.get("platform") is not None:
            platform = Platform.from_dict(o["platform"], f"{where}.platform")
        return cls(
            media_type=media_type,
            digest=dgst,
            size=size,
            annotations=cj.str_map(o.get("annotations"), f"{where}.annotations"),
            platform=platform,
            urls=urls,
            artifact_type=artifact_type,
            data=data,
        )

    def to_dict(self) -> dict[str, Any]:
        """The descriptor as JSON, fields in the image-spec Go struct's order."""
        d: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.urls:
            d["urls"] = list(self.urls)
        if self.annotations:
            d["annotations"] = cj.sorted_map(self.annotations)
        if self.data is not None:
            d["data"] = base64.b64encode(self.data).decode("ascii")
        if self.platform is not None:
            d["platform"] = self.platform.to_dict()
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        return d


#: The OCI empty descriptor: media type ``application/vnd.oci.empty.v1+json``,
#: content ``{}`` (embedded), used as the config of artifacts.
EMPTY_DESCRIPTOR = Descriptor(
    media_type=mt.OCI_EMPTY,
    digest=Digest(mt.EMPTY_DIGEST),
    size=len(mt.EMPTY_JSON),
    data=mt.EMPTY_JSON,
)
