"""``load``: docker-archive or OCI layout (a tar, compressed or not, or a directory).

Formats read:

* OCI image layout: ``index.json`` (+ ``oci-layout``) and ``blobs/<alg>/<hex>``;
  entries are image manifests, or indexes resolved to the requested platform
  (default: the host's). Tags come from the ``io.containerd.image.name``
  annotation, or from ``org.opencontainers.image.ref.name`` when it is a full
  name (a bare tag names no repository). The manifest is kept byte for byte.
* docker-archive: ``manifest.json`` ([{Config, RepoTags, Layers}]) as written by
  ``docker save`` (any version), ``podman save`` and ``skopeo copy``; layers may
  be plain or compressed. A Docker schema 2 manifest is made for them (OCI when
  a layer is zstd).
* Both at once (Docker >= 25, gantry): the OCI side wins, RepoTags are merged.

The archive is read once, as a stream, whatever its order: every file that is
not small JSON goes straight into the content store (verified against its name
when that is ``blobs/sha256/<hex>``), and is read as a layer on the way -- diff
ID, Docker size, every entry checked (:mod:`gantry.archive.layer`). Only then
are manifests followed: every blob digest and size, every diff ID and the
config are verified before the first image is recorded, so a refused archive
leaves no image (its blobs are garbage for GC, held by a lease meanwhile).
The image ID is the config digest, as in the archive.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from gantry import digest as _digest
from gantry import reference
from gantry.digest import CHUNK, Digest
from gantry.errors import (
    DigestMismatch,
    GantryError,
    InvalidArchive,
    InvalidManifest,
    InvalidReference,
    UnsafeArchive,
)
from gantry.layers import tar
from gantry.layers.compression import decompressing_reader
from gantry.oci import Descriptor, Index, Manifest, Platform, host_platform, parse_config
from gantry.oci import annotations as ann
from gantry.oci import mediatypes as mt
from gantry.oci.layout import parse_layout_header
from gantry.store import Image, Lease, Store

from .layer import THREADED_MIN, BackgroundSink, LayerScan, Limits, scan, spare_core

__all__ = ["Loaded", "load"]

#: files up to this size that look like JSON are kept in memory (configs, manifests)
SMALL = 8 * 1024 * 1024
_BLOB_PATH = re.compile(r"^blobs/(sha256|sha512)/([a-f0-9]+)$")


@dataclass(frozen=True)
class Loaded:
    image: Image
    #: familiar names it was tagged with (``busybox:latest``); empty: loaded by ID only
    tags: tuple[str, ...]


@dataclass
class _Blob:
    digest: Digest
    size: int
    layer: LayerScan | None = None
    error: GantryError | None = None


@dataclass
class _Candidate:
    manifest: bytes
    media_type: str
    config: bytes
    config_digest: Digest
    layers: list[_Blob]
    tags: list[str] = field(default_factory=list)


class _EntrySource:
    """One archive member as a readable stream; every byte read is also written to ``sink``."""

    def __init__(
        self, chunks: Iterator[bytes | memoryview], sink: Callable[[bytes], object]
    ) -> None:
        self.chunks = chunks
        self.sink = sink
        self.rest = b""

    def read(self, n: int = -1) -> bytes:
        if not self.rest:
            chunk = next(self.chunks, None)
            if chunk is None:
                return b""
            self.rest = bytes(chunk)
            self.sink(self.rest)
        if n < 0 or n >= len(self.rest):
            out, self.rest = self.rest, b""
            return out
        out, self.rest = self.rest[:n], self.rest[n:]
        return out

    def drain(self) -> None:
        self.rest = b""
        for chunk in self.chunks:
            self.sink(bytes(chunk))


@dataclass
class _Member:
    name: str
    kind: str  # "file" | "link" | "dir"
    size: int = 0
    target: str = ""
    chunks: Iterator[bytes | memoryview] | None = None


def _clean(name: str, what: str = "entry") -> str:
    if name.startswith("/"):
        raise UnsafeArchive(f"refusing archive {what} {name!r}: absolute path")
    parts = [p for p in name.split("/") if p and p != "."]
    if ".." in parts:
        raise UnsafeArchive(f"refusing archive {what} {name!r}: path leaves the archive")
    return "/".join(parts)


def _tar_members(f: BinaryIO) -> Iterator[_Member]:
    reader = tar.TarReader(
        decompressing_reader(f), max_size=None, hash=False
    )  # no digest of the outer tar
    entries = iter(reader)
    while True:
        try:
            e = next(entries)
        except StopIteration:
            return
        except InvalidArchive as err:
            raise InvalidArchive(f"invalid image archive: {err}") from None
        name = _clean(e.name.decode("utf-8", "surrogateescape"))
        if e.type in (tar.DIR, tar.GNU_DUMPDIR) or not name:
            continue
        link = e.linkname.decode("utf-8", "surrogateescape")
        if e.type == tar.SYM:
            if link.startswith("/"):
                raise UnsafeArchive(f"refusing archive symlink {name!r}: absolute target {link!r}")
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), link))
            if target == ".." or target.startswith("../"):
                raise UnsafeArchive(
                    f"refusing archive symlink {name!r}: {link!r} leaves the archive"
                )
            yield _Member(name, "link", target=target)
        elif e.type == tar.LNK:
            yield _Member(name, "link", target=_clean(link, "hardlink target"))
        elif e.type in tar.REGULAR:
            yield _Member(name, "file", e.size, chunks=reader.data())
        else:
            raise InvalidArchive(f"unsupported archive entry type {e.type!r} for {name!r}")


def _dir_members(root: Path) -> Iterator[_Member]:
    base = os.path.realpath(root)
    for dirpath, dirs, files in os.walk(base):
        dirs.sort()
        for fname in sorted(files):
            full = os.path.join(dirpath, fname)
            rel = os.path.relpath(full, base).replace(os.sep, "/")
            real = os.path.realpath(full)
            if os.path.commonpath([real, base]) != base:
                raise UnsafeArchive(f"refusing {rel!r}: it points outside the layout")
            if not os.path.isfile(real):
                continue
            with open(real, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                yield _Member(rel, "file", size, chunks=iter(lambda fh=fh: fh.read(CHUNK), b""))  # type: ignore[misc]  # bound per file


class _Reader:
    def __init__(self, store: Store, lease: Lease, limits: Limits) -> None:
        self.store = store
        self.lease = lease
        self.limits = limits
        self.files: dict[str, bytes] = {}
        self.blobs: dict[str, _Blob] = {}
        self.links: dict[str, str] = {}

    def consume(self, members: Iterator[_Member]) -> None:
        for m in members:
            if m.kind == "link":
                self.links[m.name] = m.target
                continue
            assert m.chunks is not None
            if m.size <= SMALL:
                data = b"".join(bytes(c) for c in m.chunks)
                if len(data) != m.size:
                    raise InvalidArchive(f"archive entry {m.name!r} is truncated")
                if data[:1] in (b"{", b"["):
                    self.files[m.name] = data
                    continue
                self._ingest(m.name, m.size, iter((data,)))
            else:
                self._ingest(m.name, m.size, m.chunks)

    def _ingest(self, name: str, size: int, chunks: Iterator[bytes | memoryview]) -> None:
        match = _BLOB_PATH.match(name)
        expected: Digest | None = None
        if match is not None:
            try:
                expected = Digest(f"{match.group(1)}:{match.group(2)}")
            except GantryError:
                raise InvalidArchive(f"archive entry {name!r}: not a valid blob name") from None
            self.lease.add(expected)
        with self.store.content.writer(expected, size=size) as w:
            # A big blob is written and hashed on a second thread while this one
            # decompresses, hashes and checks it: two cores instead of one.
            threaded = size >= THREADED_MIN and spare_core()
            sink = BackgroundSink(w.write) if threaded else None

            def written_digest() -> Digest:
                if sink is not None:
                    sink.close()
                return w.digest

            src = _EntrySource(chunks, sink or w.write)
            layer: LayerScan | None = None
            error: GantryError | None = None
            try:
                layer = scan(src, limits=self.limits, raw_digest=written_digest, threaded=threaded)  # type: ignore[arg-type]  # duck-typed stream
            except (InvalidArchive, UnsafeArchive) as err:
                error = err
                src.drain()
            finally:
                if sink is not None:
                    sink.close()
        if expected is None:
            self.lease.add(w.digest)
        self.blobs[name] = _Blob(w.digest, w.size, layer, error)

    # -- lookups -------------------------------------------------------------
    def _resolve(self, name: str) -> str:
        seen = 0
        while name in self.links and name not in self.files and name not in self.blobs:
            name = self.links[name]
            seen += 1
            if seen > 64:
                raise InvalidArchive(f"archive entry {name!r}: too many levels of links")
        return name

    def file(self, name: str) -> bytes | None:
        return self.files.get(self._resolve(_clean(name, "reference")))

    def blob(self, name: str) -> _Blob | None:
        return self.blobs.get(self._resolve(_clean(name, "reference")))

    def blob_bytes(self, desc: Descriptor, what: str) -> bytes:
        """A small blob (manifest, index, config) by descriptor, size and digest verified."""
        path = f"blobs/{desc.digest.algorithm}/{desc.digest.hex}"
        data = self.file(path)
        if data is None:
            if self.blob(path) is not None:
                raise InvalidArchive(f"{what} {desc.digest} is not a JSON document")
            raise InvalidArchive(f"{what} {desc.digest} is missing from the archive")
        if len(data) != desc.size:
            raise DigestMismatch(
                f"{what} {desc.digest}: size {len(data)} does not match the descriptor's {desc.size}"
            )
        try:
            _digest.verify(data, desc.digest)
        except DigestMismatch:
            raise DigestMismatch(
                f"{what} {desc.digest}: content does not match its digest"
            ) from None
        return data


def _check_layers(
    reader: _Reader, blobs: list[_Blob], diff_ids: tuple[Digest, ...], where: str
) -> None:
    if len(blobs) != len(diff_ids):
        raise InvalidManifest(
            f"{where}: invalid manifest, layers length mismatch: expected {len(blobs)}, "
            f"got {len(diff_ids)}"
        )
    for i, (blob, want) in enumerate(zip(blobs, diff_ids, strict=True)):
        if blob.error is not None:
            raise type(blob.error)(f"layer {blob.digest}: {blob.error}")
        assert blob.layer is not None
        if blob.layer.diff_id != want:
            raise DigestMismatch(
                f"invalid diffID for layer {i}: expected {want!r}, got {blob.layer.diff_id!r}"
            )


def _tags_from_annotations(desc: Descriptor) -> list[str]:
    name = desc.annotations.get(ann.CONTAINERD_IMAGE_NAME)
    if not name:
        ref_name = desc.annotations.get(ann.REF_NAME, "")
        if "/" in ref_name or ":" in ref_name:
            name = ref_name
    if not name:
        return []
    try:
        ref = reference.parse(name)
    except InvalidReference:
        return []
    if ref.digest is not None:
        return []
    return [str(ref.tagged_or_latest())]


class _Planner:
    def __init__(self, reader: _Reader, platform: Platform) -> None:
        self.reader = reader
        self.platform = platform
        self.candidates: dict[Digest, _Candidate] = {}
        self.deferred: list[tuple[Digest, Exception]] = []

    def oci(self) -> None:
        r = self.reader
        header = r.file("oci-layout")
        if header is not None:
            try:
                parse_layout_header(header)
            except InvalidManifest as err:
                raise InvalidArchive(f"oci-layout: {err}") from None
        data = r.file("index.json")
        if data is None:
            return
        try:
            index = Index.parse(data)
        except InvalidManifest as err:
            raise InvalidArchive(f"index.json: {err}") from None
        for desc in index.manifests:
            self._entry(desc, _tags_from_annotations(desc), depth=0)

    def _entry(self, desc: Descriptor, tags: list[str], depth: int) -> None:
        if mt.is_index(desc.media_type):
            if depth > 4:
                raise InvalidArchive("index.json: indexes nested too deeply")
            sub = Index.parse(self.reader.blob_bytes(desc, "index"), desc.media_type)
            chosen = sub.select(self.platform)
            if chosen is None:
                raise InvalidArchive(
                    f"index {desc.digest} has no image for platform {self.platform}"
                )
            self._entry(chosen, tags, depth + 1)
            return
        if not mt.is_manifest(desc.media_type):
            return  # artifacts and unknown entries are not images
        raw = self.reader.blob_bytes(desc, "manifest")
        m = Manifest.parse(raw, desc.media_type)
        if not mt.is_config(m.config.media_type):
            return  # an artifact manifest
        config_raw = self.reader.blob_bytes(m.config, "config")
        config = parse_config(config_raw)
        blobs = []
        for ld in m.layers:
            blob = self.reader.blob(f"blobs/{ld.digest.algorithm}/{ld.digest.hex}")
            if blob is None:
                raise InvalidArchive(f"layer {ld.digest} is missing from the archive")
            if blob.size != ld.size:
                raise DigestMismatch(
                    f"layer {ld.digest}: size {blob.size} does not match the manifest's {ld.size}"
                )
            if blob.layer is not None:
                declared = mt.layer_compression(ld.media_type)
                if declared != blob.layer.compression:
                    raise InvalidManifest(
                        f"layer {ld.digest}: media type {ld.media_type} but the blob is "
                        f"{blob.layer.compression or 'uncompressed'}"
                    )
            blobs.append(blob)
        try:
            _check_layers(self.reader, blobs, config.diff_ids, f"manifest {desc.digest}")
        except InvalidManifest as err:
            # Docker 25.0 wrote index.json manifests listing only foreign layers:
            # manifest.json describes those images; fall back to it if it can.
            self.deferred.append((_digest.of_bytes(config_raw), err))
            return
        image_id = _digest.of_bytes(config_raw)
        cand = self.candidates.get(image_id)
        if cand is None:
            cand = _Candidate(raw, m.media_type, config_raw, image_id, blobs)
            self.candidates[image_id] = cand
        cand.tags += [t for t in tags if t not in cand.tags]

    def docker(self) -> None:
        r = self.reader
        data = r.file("manifest.json")
        if data is None:
            return
        try:
            items = json.loads(data)
        except (ValueError, UnicodeDecodeError) as err:
            raise InvalidArchive(f"manifest.json: invalid JSON: {err}") from None
        if not isinstance(items, list):
            raise InvalidArchive("invalid manifest, manifest cannot be null (but can be [])")
        for i, item in enumerate(items):
            self._item(item, f"manifest.json[{i}]")

    def _item(self, item: Any, where: str) -> None:
        r = self.reader
        if not isinstance(item, dict):
            raise InvalidArchive(f"{where}: not an object")
        config_path = item.get("Config")
        layer_paths = item.get("Layers") or []
        repo_tags = item.get("RepoTags") or []
        if not isinstance(config_path, str) or not isinstance(layer_paths, list):
            raise InvalidArchive(f"{where}: Config and Layers are required")
        if not isinstance(repo_tags, list) or not all(isinstance(t, str) for t in repo_tags):
            raise InvalidArchive(f"{where}: RepoTags must be a list of names")
        config_raw = r.file(config_path)
        if config_raw is None:
            raise InvalidArchive(f"{where}: config {config_path!r} is missing from the archive")
        image_id = _digest.of_bytes(config_raw)
        m = _BLOB_PATH.match(_clean(config_path))
        if m is not None and f"{m.group(1)}:{m.group(2)}" != image_id:
            raise DigestMismatch(f"config {config_path}: content does not match its digest")
        tags = []
        for t in repo_tags:
            ref = reference.parse(t)
            if ref.tag is None or ref.digest is not None:
                raise InvalidArchive(f"invalid tag {t!r}")
            tags.append(str(ref))
        existing = self.candidates.get(image_id)
        if existing is not None:
            existing.tags += [t for t in tags if t not in existing.tags]
            return
        config = parse_config(config_raw)
        blobs = []
        for p in layer_paths:
            if not isinstance(p, str):
                raise InvalidArchive(f"{where}: Layers must be paths")
            blob = r.blob(p)
            if blob is None:
                raise InvalidArchive(f"{where}: layer {p!r} is missing from the archive")
            blobs.append(blob)
        _check_layers(r, blobs, config.diff_ids, where)
        self.candidates[image_id] = _synthesize(config_raw, image_id, blobs, tags)


def _synthesize(
    config_raw: bytes, image_id: Digest, blobs: list[_Blob], tags: list[str]
) -> _Candidate:
    """A manifest for layers found through manifest.json (schema 2 unless zstd needs OCI)."""
    comps = [b.layer.compression if b.layer else None for b in blobs]
    for c in comps:
        if c not in (None, "gzip", "zstd"):
            raise InvalidArchive(f"layers compressed with {c} cannot be stored; recompress them")
    docker = all(c in (None, "gzip") for c in comps)
    layers = tuple(
        Descriptor(mt.layer_type(c, docker=docker), b.digest, b.size)
        for b, c in zip(blobs, comps, strict=True)
    )
    config = Descriptor(mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG, image_id, len(config_raw))
    manifest = Manifest(
        config=config,
        layers=layers,
        media_type=mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
    )
    return _Candidate(manifest.to_json(), manifest.media_type, config_raw, image_id, blobs, tags)


def load(
    store: Store,
    source: str | os.PathLike[str] | BinaryIO,
    *,
    platform: str | Platform | None = None,
    limits: Limits | None = None,
) -> list[Loaded]:
    """Load every image of the archive at ``source`` (a path, a directory or a stream).

    Returns what was loaded, in archive order. Raises :class:`InvalidArchive`,
    :class:`UnsafeArchive`, :class:`DigestMismatch` or :class:`InvalidManifest`
    with a one-line reason; nothing is recorded then.
    """
    plat = (
        host_platform()
        if not platform
        else platform
        if isinstance(platform, Platform)
        else Platform.parse(platform)
    )
    limits = limits or Limits()
    with store.lease() as lease, contextlib.ExitStack() as stack:
        reader = _Reader(store, lease, limits)
        members: Iterator[_Member]
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if path.is_dir():
                members = _dir_members(path)
            else:
                members = _tar_members(stack.enter_context(open(path, "rb")))
        else:
            members = _tar_members(source)
        reader.consume(members)
        if "index.json" not in reader.files and "manifest.json" not in reader.files:
            if not reader.files and not reader.blobs:
                raise InvalidArchive("empty archive: no images to load")
            raise InvalidArchive(
                "not a docker-archive or OCI layout: no manifest.json or index.json found"
            )
        planner = _Planner(reader, plat)
        planner.oci()
        planner.docker()
        for image_id, err in planner.deferred:
            if image_id not in planner.candidates:
                raise err
        if not planner.candidates:
            raise InvalidArchive("no images found in the archive")
        loaded: list[Loaded] = []
        for cand in planner.candidates.values():
            lease.add(cand.config_digest)
            store.content.write(cand.config, cand.config_digest)
        for cand in planner.candidates.values():
            img = store.add_image(
                cand.manifest,
                media_type=cand.media_type,
                tags=cand.tags,
                layer_sizes={b.digest: b.layer.size for b in cand.layers if b.layer is not None},
                tag_time=False,  # as docker load: tags from an archive are not a `docker tag`
            )
            loaded.append(Loaded(img, tuple(reference.parse(t).familiar() for t in cand.tags)))
        return loaded


def load_bytes(store: Store, data: bytes, **kwargs: Any) -> list[Loaded]:
    """Convenience for tests and small archives."""
    return load(store, io.BytesIO(data), **kwargs)
