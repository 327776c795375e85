"""OCI image layout directories (image-spec ``image-layout.md``): the model and its checks.

A layout is ``oci-layout`` (``{"imageLayoutVersion":"1.0.0"}``), ``index.json`` (an
image index) and ``blobs/<alg>/<encoded>``. Save/load are built on this by
``gantry.archive``; here a layout is only read and validated. Problems with the
directory raise :class:`~gantry.errors.InvalidArchive`; a blob that does not
hash to its name raises :class:`~gantry.errors.DigestMismatch`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gantry import digest as _digest
from gantry.digest import Digest
from gantry.errors import BlobNotFound, DigestMismatch, InvalidArchive, InvalidManifest

from . import annotations as ann
from . import canonical as cj
from .descriptor import Descriptor
from .manifest import MAX_MANIFEST_SIZE, Index

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
BLOBS_DIR = "blobs"
LAYOUT_VERSION = "1.0.0"


def parse_layout_header(data: bytes) -> str:
    """Validate the ``oci-layout`` file's content; return its version."""
    doc = cj.loads_object(data, LAYOUT_FILE)
    version = cj.as_str(cj.req(doc, "imageLayoutVersion", LAYOUT_FILE), "imageLayoutVersion")
    if version != LAYOUT_VERSION:
        raise InvalidManifest(f"unsupported OCI image layout version {version!r}")
    return version


def layout_header() -> bytes:
    """The ``oci-layout`` file gantry writes."""
    return cj.dumps({"imageLayoutVersion": LAYOUT_VERSION})


def blob_path(root: Path, digest: str) -> Path:
    """``root/blobs/<alg>/<encoded>`` for a validated digest (so no path tricks)."""
    d = Digest(digest)
    return root / BLOBS_DIR / d.algorithm / d.hex


@dataclass(frozen=True, slots=True)
class Layout:
    """A read, validated OCI layout directory."""

    path: Path
    index: Index
    version: str = LAYOUT_VERSION

    def blob_path(self, digest: str) -> Path:
        return blob_path(self.path, digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def read_blob(self, desc: Descriptor) -> bytes:
        """The blob ``desc`` names, checked against its size and digest.

        Meant for manifests and configs (small); stream layers from ``blob_path``.
        """
        path = self.blob_path(desc.digest)
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(Path(os.path.realpath(self.path))):
            raise InvalidArchive(f"blob {desc.digest} points outside the layout")
        try:
            with open(real, "rb") as f:
                data = f.read(desc.size + 1)
        except FileNotFoundError:
            raise BlobNotFound(f"blob {desc.digest} is missing from the layout") from None
        except OSError as e:
            raise InvalidArchive(f"cannot read blob {desc.digest}: {e.strerror}") from None
        if len(data) != desc.size:
            raise DigestMismatch(
                f"blob {desc.digest} has the wrong size: expected {desc.size}, "
                f"got {'more' if len(data) > desc.size else len(data)}"
            )
        _digest.verify(data, desc.digest)
        return data

    def read_index_blob(self, desc: Descriptor) -> bytes:
        """Like ``read_blob`` for a manifest/index, refusing anything over 4 MiB first."""
        if desc.size > MAX_MANIFEST_SIZE:
            raise InvalidManifest(
                f"manifest too large: {desc.size} bytes exceeds the limit of {MAX_MANIFEST_SIZE}"
            )
        return self.read_blob(desc)

    def refs(self) -> dict[str, Descriptor]:
        """``org.opencontainers.image.ref.name`` of index.json entries -> the entry."""
        out: dict[str, Descriptor] = {}
        for d in self.index.manifests:
            name = d.annotations.get(ann.REF_NAME)
            if name:
                out[name] = d
        return out


def read_layout(path: str | os.PathLike[str]) -> Layout:
    """Read and validate ``oci-layout`` and ``index.json`` of the layout at ``path``."""
    root = Path(path)
    if not root.is_dir():
        raise InvalidArchive(f"{root}: not a directory")
    try:
        header = (root / LAYOUT_FILE).read_bytes()
    except FileNotFoundError:
        raise InvalidArchive(f"{root}: not an OCI image layout (no {LAYOUT_FILE} file)") from None
    try:
        version = parse_layout_header(header)
    except InvalidManifest as e:
        raise InvalidArchive(f"{root}/{LAYOUT_FILE}: {e}") from None
    index_path = root / INDEX_FILE
    try:
        if index_path.stat().st_size > MAX_MANIFEST_SIZE:
            raise InvalidArchive(f"{index_path}: larger than {MAX_MANIFEST_SIZE} bytes")
        data = index_path.read_bytes()
    except FileNotFoundError:
        raise InvalidArchive(f"{root}: not an OCI image layout (no {INDEX_FILE})") from None
    try:
        index = Index.parse(data)
    except InvalidManifest as e:
        raise InvalidArchive(f"{index_path}: {e}") from None
    return Layout(path=root, index=index, version=version)
