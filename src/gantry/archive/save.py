"""``save``: images to the archive Docker >= 25 writes, streamed.

The archive is at once an OCI image layout and a classic docker-archive::

    blobs/sha256/<hex>   every blob: manifests, configs, layers (as stored)
    index.json           OCI index: one entry per saved tag, annotated with
                         io.containerd.image.name (docker.io/library/x:tag) and
                         org.opencontainers.image.ref.name (tag); one entry
                         without annotations per image saved by ID only
    manifest.json        [{"Config": "blobs/sha256/<hex>", "RepoTags": [...],
                           "Layers": ["blobs/sha256/<hex>", ...]}]
    oci-layout           {"imageLayoutVersion":"1.0.0"}
    repositories         {"busybox": {"latest": "<top layer hex>"}}

Unlike Docker, layers are written as stored (gzip-compressed), not
decompressed: the manifest in the archive is the image's own, with its digest,
and saving is a plain copy of blobs (``sendfile``). ``docker load`` and podman
decompress compressed layers they find through manifest.json; OCI readers
(skopeo ``oci-archive:``, umoci) follow the manifests' media types.

Entries are written in Docker's order (sorted names, directories first), with
mtime 0, mode 0644/0755 and owner 0:0, so the same images always give the same
bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from gantry import reference
from gantry.digest import CHUNK, Digest
from gantry.errors import ImageNotFound
from gantry.layers import tar
from gantry.oci import Descriptor, Index, Platform, mediatypes
from gantry.oci import annotations as ann
from gantry.oci.layout import layout_header
from gantry.store import Image, Store

__all__ = ["SavedImage", "resolve_images", "save", "save_to_path"]


@dataclass
class SavedImage:
    image: Image
    #: full tags (``docker.io/library/x:tag``) to record for it, in the order asked
    refs: list[str] = field(default_factory=list)


def resolve_images(store: Store, names: Sequence[str]) -> list[SavedImage]:
    """What ``docker save NAME...`` picks (moby's ``parseNames``).

    ``name:tag`` -> that tag; a bare repository name -> every tag of it (or an
    image ID prefix when it has none); an ID, ``sha256:...`` or ``name@digest``
    -> the image without a tag.
    """
    by_id: dict[str, SavedImage] = {}

    def add(img: Image, ref: str | None) -> None:
        item = by_id.setdefault(img.id, SavedImage(img))
        if ref is not None and ref not in item.refs:
            item.refs.append(ref)

    for name in names:
        parsed = reference.parse_any(name)
        if not isinstance(parsed, reference.Reference):
            add(store.resolve(name), None)
            continue
        if parsed.familiar_name == "sha256" or parsed.digest is not None:
            add(store.resolve(name), None)
            continue
        if parsed.is_name_only:
            tags = [t for t, _ in store.tags() if reference.parse(t).name == parsed.name]
            if not tags:
                add(store.resolve(name), None)
            for t in tags:
                add(store.resolve(t), t)
            continue
        full = str(parsed.tagged_or_latest())
        add(store.resolve(full), full)
    return list(by_id.values())


def _plan(
    store: Store, images: Sequence[SavedImage]
) -> tuple[dict[str, Digest], bytes, bytes, bytes | None]:
    """(archive path -> blob digest, index.json, manifest.json, repositories)."""
    blobs: dict[str, Digest] = {}
    index_entries: list[Descriptor] = []
    items: list[dict[str, object]] = []
    repos: dict[str, dict[str, str]] = {}

    def path(d: Digest) -> str:
        p = f"blobs/{d.algorithm}/{d.hex}"
        blobs[p] = d
        return p

    for saved in images:
        img = saved.image
        manifest = store.manifest(img)
        config = store.config(img)
        path(img.manifest_digest)
        config_path = path(img.id)
        layer_paths = [path(Digest(d.digest)) for d in manifest.layers]
        for d in (img.manifest_digest, img.id, *(x.digest for x in manifest.layers)):
            if not store.content.has(d):
                raise ImageNotFound(f"image {img.id.short}: blob {d} is missing from the store")
        size = store.content.size(img.manifest_digest)
        plat = Platform(config.os, config.architecture, config.variant)
        base = Descriptor(img.media_type, img.manifest_digest, size, platform=plat)
        familiar_tags = []
        for ref in saved.refs:
            r = reference.parse(ref)
            tag = r.tag or reference.DEFAULT_TAG
            index_entries.append(
                base.with_annotations({ann.CONTAINERD_IMAGE_NAME: str(r), ann.REF_NAME: tag})
            )
            familiar_tags.append(r.familiar())
            if manifest.layers:
                repos.setdefault(r.familiar_name, {})[tag] = Digest(manifest.layers[-1].digest).hex
        if not saved.refs:
            index_entries.append(base)
        items.append(
            {"Config": config_path, "RepoTags": familiar_tags or None, "Layers": layer_paths}
        )
    index = Index(manifests=tuple(index_entries), media_type=mediatypes.OCI_INDEX)
    manifest_json = (json.dumps(items, separators=(",", ":")) + "\n").encode()
    repositories = (json.dumps(repos, separators=(",", ":")) + "\n").encode() if repos else None
    return blobs, index.to_json(), manifest_json, repositories


class _TarOut:
    """Writes tar entries to ``out``; blob bodies go through ``sendfile`` when possible."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        try:
            self.fd: int | None = out.fileno()
        except (AttributeError, OSError, ValueError):
            self.fd = None

    def dir(self, name: str) -> None:
        self.out.write(tar.header(name.encode(), tar.DIR, mode=0o755, uid=0, gid=0, mtime=0))

    def file(self, name: str, data: bytes) -> None:
        self.out.write(
            tar.header(name.encode(), tar.REG, mode=0o644, uid=0, gid=0, mtime=0, size=len(data))
        )
        self.out.write(data)
        self._pad(len(data))

    def blob(self, name: str, src: Path) -> None:
        with open(src, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            self.out.write(
                tar.header(name.encode(), tar.REG, mode=0o644, uid=0, gid=0, mtime=0, size=size)
            )
            self._copy(f, size)
        self._pad(size)

    def _copy(self, f: BinaryIO, size: int) -> None:
        if self.fd is not None:
            self.out.flush()
            offset = 0
            try:
                while offset < size:
                    sent = os.sendfile(self.fd, f.fileno(), offset, min(size - offset, 1 << 30))
                    if sent == 0:
                        break
                    offset += sent
            except OSError:
                if offset:
                    raise
            else:
                if offset == size:
                    return
            f.seek(offset)
            size -= offset
        while size > 0:
            data = f.read(min(CHUNK, size))
            if not data:
                raise ImageNotFound(f"blob {f.name} shrank while being saved")
            self.out.write(data)
            size -= len(data)

    def _pad(self, size: int) -> None:
        pad = -size % tar.BLOCK
        if pad:
            self.out.write(bytes(pad))

    def close(self) -> None:
        self.out.write(tar.end_of_archive())
        self.out.flush()


def save(store: Store, names: Sequence[str], out: BinaryIO) -> list[SavedImage]:
    """Write the archive of ``names`` (as ``docker save`` picks them) to ``out``."""
    images = resolve_images(store, names)
    blobs, index_json, manifest_json, repositories = _plan(store, images)
    w = _TarOut(out)
    files: list[tuple[str, bytes | Digest]] = [(p, d) for p, d in blobs.items()]
    files += [("index.json", index_json), ("manifest.json", manifest_json)]
    files.append(("oci-layout", layout_header()))
    if repositories is not None:
        files.append(("repositories", repositories))
    lookup = dict(files)
    for name in _with_dirs(sorted(lookup)):
        if name.endswith("/"):
            w.dir(name)
            continue
        value = lookup[name]
        if isinstance(value, Digest):
            w.blob(name, store.content.path(value))
        else:
            w.file(name, value)
    w.close()
    return images


def _with_dirs(names: Iterable[str]) -> list[str]:
    """Sorted file names with their parent directories before them (``blobs/``...)."""
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i]) + "/"
            if d not in seen:
                seen.add(d)
                out.append(d)
        out.append(name)
    return out


def save_to_path(
    store: Store, names: Sequence[str], path: str | os.PathLike[str]
) -> list[SavedImage]:
    """``save -o PATH``: written to a temp file beside it and renamed into place."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as f:
            images = save(store, names, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return images
