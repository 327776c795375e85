"""Where ``image copy`` reads and writes images without the local store.

Three kinds, named as skopeo names them:

* ``docker://HOST/NAME[:TAG|@DIGEST]`` (or a bare reference): a registry;
* ``oci:DIR[:REF]``: an OCI image layout directory, ``REF`` being the
  ``org.opencontainers.image.ref.name`` of an ``index.json`` entry;
* ``docker-archive:FILE[:NAME:TAG]``: the tar ``docker save`` writes. gantry
  writes Docker >= 25's shape (an OCI layout plus ``manifest.json``) with the
  blobs as they are (compressed layers, the manifest itself), so the digests of
  a copy through an archive survive; it reads that and the classic shape
  (layers as plain tars named anything), for which a Docker manifest is made.

A :class:`Source` hands out manifests and blob byte streams; a
:class:`Destination` takes blobs (verified while they stream), manifests by
digest, and last the top manifest (tagged). Nothing here holds a whole layer in
memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import tarfile
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gantry import digest as _digest
from gantry import reference
from gantry.digest import CHUNK, Digest
from gantry.errors import (
    BlobNotFound,
    DigestMismatch,
    GantryError,
    InvalidArchive,
    RegistryError,
    UsageError,
)
from gantry.layers import tar
from gantry.layers.compression import detect
from gantry.oci import mediatypes as mt
from gantry.oci.annotations import CONTAINERD_IMAGE_NAME, REF_NAME
from gantry.oci.descriptor import Descriptor
from gantry.oci.layout import layout_header, read_layout
from gantry.oci.manifest import MAX_MANIFEST_SIZE, Index, Manifest, parse_manifest

from .client import RegistryClient
from .transport import TransportError

__all__ = [
    "ArchiveDestination",
    "ArchiveSource",
    "Destination",
    "LayoutDestination",
    "LayoutSource",
    "Location",
    "RegistryDestination",
    "RegistrySource",
    "Source",
    "open_destination",
    "open_source",
    "parse_location",
]

TRANSPORTS = ("docker", "oci", "docker-archive")


@dataclass(frozen=True)
class Location:
    """A parsed ``TRANSPORT:DETAILS`` argument."""

    transport: str  #: "docker", "oci" or "docker-archive"
    path: str = ""  #: directory or file (oci, docker-archive)
    ref: str | None = None  #: registry reference, layout ref name, or archive name:tag

    def __str__(self) -> str:
        if self.transport == "docker":
            return f"docker://{self.ref}"
        return f"{self.transport}:{self.path}" + (f":{self.ref}" if self.ref else "")


def parse_location(text: str) -> Location:
    """``docker://x``, ``oci:DIR[:REF]``, ``docker-archive:FILE[:REF]`` or a bare reference."""
    if text.startswith("docker://"):
        return Location("docker", ref=str(reference.parse_docker_ref(text[len("docker://") :])))
    for kind in ("oci", "docker-archive"):
        if text.startswith(kind + ":"):
            rest = text[len(kind) + 1 :]
            path, sep, ref = rest.partition(":")
            if not path:
                raise UsageError(f"invalid {kind} reference {text!r}: no path")
            if kind == "docker-archive" and sep and ref:
                reference.parse_docker_ref(ref)  # refuses a malformed name early
            return Location(kind, path=path, ref=ref or None)
    head, sep, rest = text.partition(":")
    if sep and head.replace("-", "").isalpha() and rest.startswith(("/", ".")):
        raise UsageError(
            f"unknown transport {head!r} in {text!r}: use one of "
            + ", ".join(f"{t}:" for t in TRANSPORTS)
        )
    return Location("docker", ref=str(reference.parse_docker_ref(text)))


# ------------------------------------------------------------------ sources


class Source:
    """An image to read: the top manifest, manifests by descriptor, blob streams."""

    #: set for a registry source: blobs can be mounted from (domain, repository)
    registry: tuple[str, str] | None = None

    def top(self) -> tuple[bytes, str]:
        """(bytes, media type) of the manifest or index the location names."""
        raise NotImplementedError

    def manifest(self, desc: Descriptor) -> bytes:
        raise NotImplementedError

    def blob(self, desc: Descriptor) -> Generator[bytes, None, None]:
        """The blob's bytes in pieces (a generator: close it when stopping early)."""
        raise NotImplementedError

    def name(self) -> str | None:
        """The image name the location carries, for archive tags (``x:tag``) or None."""
        return None

    def close(self) -> None:
        pass


class RegistrySource(Source):
    def __init__(self, ref: reference.Reference, client: RegistryClient) -> None:
        self.ref = ref
        self.client = client
        self.registry = (ref.domain, ref.path)

    def top(self) -> tuple[bytes, str]:
        return self.client.get_manifest(
            self.ref.path, self.ref.digest or self.ref.tag or reference.DEFAULT_TAG
        )

    def manifest(self, desc: Descriptor) -> bytes:
        return self.client.get_manifest(self.ref.path, desc.digest)[0]

    def blob(self, desc: Descriptor) -> Generator[bytes, None, None]:
        sent = 0
        failures = 0
        while True:
            resp = self.client.get_blob(self.ref.path, desc.digest, offset=sent)
            try:
                if sent and resp.status != 206:
                    raise GantryError(f"blob {desc.digest}: the registry ignored Range")
                for chunk in resp.stream():
                    sent += len(chunk)
                    yield chunk
                if sent >= desc.size:
                    return
                raise TransportError(f"blob {desc.digest}: connection closed at {sent}")
            except TransportError:
                failures += 1
                if failures >= self.client.retry.attempts + 3:
                    raise
                time.sleep(self.client.retry.delay(failures - 1))
            finally:
                resp.close()

    def name(self) -> str | None:
        return str(self.ref) if self.ref.tag else None


def _file_chunks(f: BinaryIO, start: int, size: int) -> Iterator[bytes]:
    f.seek(start)
    left = size
    while left > 0:
        data = f.read(min(CHUNK, left))
        if not data:
            raise InvalidArchive("unexpected end of file")
        left -= len(data)
        yield data


class LayoutSource(Source):
    def __init__(self, path: str, ref: str | None) -> None:
        self.layout = read_layout(path)
        self.ref = ref

    def _entry(self) -> Descriptor:
        entries = self.layout.index.manifests
        if self.ref is not None:
            found = self.layout.refs().get(self.ref)
            if found is None:
                raise BlobNotFound(f"no image named {self.ref!r} in {self.layout.path}/index.json")
            return found
        if len(entries) != 1:
            raise UsageError(
                f"{self.layout.path}/index.json holds {len(entries)} images: "
                f"name one with oci:{self.layout.path}:REF"
            )
        return entries[0]

    def top(self) -> tuple[bytes, str]:
        entry = self._entry()
        return self.layout.read_index_blob(entry), entry.media_type

    def manifest(self, desc: Descriptor) -> bytes:
        return self.layout.read_index_blob(desc)

    def blob(self, desc: Descriptor) -> Generator[bytes, None, None]:
        try:
            f = open(self.layout.blob_path(desc.digest), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise BlobNotFound(f"blob {desc.digest} is missing from {self.layout.path}") from None
        with f:
            yield from _file_chunks(f, 0, desc.size)

    def name(self) -> str | None:
        return None


class ArchiveSource(Source):
    """A docker-archive tar: Docker >= 25 (OCI layout inside) or the classic shape."""

    def __init__(self, path: str, ref: str | None) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._f = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as err:
            raise InvalidArchive(f"{path}: {err.strerror}") from None
        self.members: dict[str, tuple[int, int]] = {}
        try:
            with tarfile.open(fileobj=self._f, mode="r:") as tf:
                for m in tf:
                    if m.isfile():
                        self.members[os.path.normpath(m.name)] = (m.offset_data, m.size)
        except tarfile.TarError as err:
            raise InvalidArchive(f"{path}: not a tar archive: {err}") from None
        self.by_digest: dict[str, tuple[int, int]] = {}
        self._top, self._top_type, self.tags = self._pick(ref)

    def _read(self, name: str, limit: int = MAX_MANIFEST_SIZE) -> bytes:
        found = self.members.get(os.path.normpath(name))
        if found is None:
            raise InvalidArchive(f"{self.path}: no {name} in the archive")
        off, size = found
        if size > limit:
            raise InvalidArchive(f"{self.path}: {name} is over {limit} bytes")
        with self._lock:
            self._f.seek(off)
            return self._f.read(size)

    def _digest_of(self, name: str) -> tuple[Digest, int, bytes]:
        """(sha256, size, first bytes) of an archive member, reading it once."""
        off, size = self.members[os.path.normpath(name)]
        h = _digest.new_hasher()
        head = b""
        with open(self.path, "rb") as f:
            for chunk in _file_chunks(f, off, size):
                if not head:
                    head = chunk[:8]
                h.update(chunk)
        return _digest.from_hasher(h), size, head

    def _pick(self, ref: str | None) -> tuple[bytes, str, list[str]]:
        try:
            entries = json.loads(self._read("manifest.json"))
        except ValueError as err:
            raise InvalidArchive(f"{self.path}: manifest.json: {err}") from None
        if not isinstance(entries, list) or not entries:
            raise InvalidArchive(f"{self.path}: manifest.json lists no image")
        entry = entries[0]
        if ref is not None:
            want = reference.parse_docker_ref(ref)
            for e in entries:
                for t in e.get("RepoTags") or []:
                    if reference.parse_docker_ref(t) == want:
                        entry = e
                        break
                else:
                    continue
                break
            else:
                raise BlobNotFound(f"no image tagged {ref!r} in {self.path}")
        elif len(entries) > 1:
            raise UsageError(
                f"{self.path} holds {len(entries)} images: name one with "
                f"docker-archive:{self.path}:NAME:TAG"
            )
        tags = [str(t) for t in entry.get("RepoTags") or []]
        config_name = str(entry.get("Config", ""))
        layer_names = [str(n) for n in entry.get("Layers") or []]
        # Docker >= 25 (and gantry): the image's own manifest is in the OCI index
        found = self._from_index(config_name, layer_names)
        if found is not None:
            return found[0], found[1], tags
        return (*self._synthesize(config_name, layer_names), tags)

    def _from_index(self, config_name: str, layer_names: list[str]) -> tuple[bytes, str] | None:
        if "index.json" not in self.members:
            return None
        try:
            index = Index.parse(self._read("index.json"))
        except GantryError:
            return None
        todo = list(index.manifests)
        while todo:
            desc = todo.pop(0)
            path = f"blobs/{desc.digest.algorithm}/{desc.digest.hex}"
            if path not in self.members:
                continue
            raw = self._read(path)
            doc = parse_manifest(raw, desc.media_type)
            if isinstance(doc, Index):
                todo.extend(doc.manifests)
                continue
            names = [f"blobs/{d.digest.algorithm}/{d.digest.hex}" for d in doc.layers]
            cfg = f"blobs/{doc.config.digest.algorithm}/{doc.config.digest.hex}"
            if (
                os.path.normpath(config_name) == cfg
                and [os.path.normpath(n) for n in layer_names] == names
            ):
                for d in (doc.config, *doc.layers):
                    p = f"blobs/{d.digest.algorithm}/{d.digest.hex}"
                    self.by_digest[d.digest] = self.members[p]
                return raw, doc.media_type
        return None

    def _synthesize(self, config_name: str, layer_names: list[str]) -> tuple[bytes, str]:
        """A Docker schema 2 manifest for a classic archive (digests of the files)."""
        config = self._read(config_name, 8 << 20)
        cfg_desc = Descriptor.of(config, mt.DOCKER_CONFIG)
        self.by_digest[cfg_desc.digest] = self.members[os.path.normpath(config_name)]
        layers = []
        zstd = False
        for name in layer_names:
            if os.path.normpath(name) not in self.members:
                raise InvalidArchive(f"{self.path}: no {name} in the archive")
            d, size, head = self._digest_of(name)
            kind = detect(head)
            if kind == "zstd":
                zstd = True
            media = {"gzip": mt.DOCKER_LAYER, "zstd": mt.OCI_LAYER_ZSTD}.get(
                kind or "", mt.DOCKER_LAYER_TAR
            )
            layers.append(Descriptor(media_type=media, digest=d, size=size))
            self.by_digest[d] = self.members[os.path.normpath(name)]
        if zstd:  # zstd has no Docker media type: the whole manifest is OCI
            layers = [
                Descriptor(
                    media_type={
                        mt.DOCKER_LAYER: mt.OCI_LAYER_GZIP,
                        mt.DOCKER_LAYER_TAR: mt.OCI_LAYER,
                    }.get(d.media_type, d.media_type),
                    digest=d.digest,
                    size=d.size,
                )
                for d in layers
            ]
            cfg_desc = Descriptor(
                media_type=mt.OCI_CONFIG, digest=cfg_desc.digest, size=len(config)
            )
        m = Manifest(
            config=cfg_desc,
            layers=tuple(layers),
            media_type=mt.OCI_MANIFEST if zstd else mt.DOCKER_MANIFEST,
        )
        return m.to_json(), m.media_type

    def top(self) -> tuple[bytes, str]:
        return self._top, self._top_type

    def manifest(self, desc: Descriptor) -> bytes:
        return self._read(f"blobs/{desc.digest.algorithm}/{desc.digest.hex}")

    def blob(self, desc: Descriptor) -> Generator[bytes, None, None]:
        found = self.by_digest.get(desc.digest)
        if found is None:
            raise BlobNotFound(f"blob {desc.digest} is not in {self.path}")
        with open(self.path, "rb") as f:
            yield from _file_chunks(f, *found)

    def name(self) -> str | None:
        return self.tags[0] if self.tags else None

    def close(self) -> None:
        self._f.close()


# -------------------------------------------------------------- destinations


class Destination:
    """Where a copy goes. ``parallel``: blobs may be put from several threads."""

    parallel = True
    #: one image only (an index cannot be written)
    single_image = False

    def has_blob(self, desc: Descriptor) -> bool:
        raise NotImplementedError

    def mount(self, desc: Descriptor, source: Source) -> str | None:
        """Take the blob without its bytes when possible; returns the repository mounted from."""
        return None

    def put_blob(self, desc: Descriptor, chunks: Iterator[bytes]) -> None:
        raise NotImplementedError

    def put_manifest(self, raw: bytes, desc: Descriptor) -> None:
        """A manifest an index refers to (by digest)."""
        raise NotImplementedError

    def finish(self, raw: bytes, media_type: str, name: str | None) -> None:
        """The top manifest; ``name`` is the source's image name, for archives."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def verified(desc: Descriptor, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Pass ``chunks`` through, raising :class:`DigestMismatch` before the last piece
    is let go when the bytes are not ``desc``'s (so no destination completes them)."""
    h = _digest.new_hasher(desc.digest.algorithm)
    n = 0
    held: bytes | None = None
    for chunk in chunks:
        if held is not None:
            yield held
        h.update(chunk)
        n += len(chunk)
        if n > desc.size:
            raise DigestMismatch(f"blob {desc.digest}: more than the {desc.size} bytes announced")
        held = chunk
    got = _digest.from_hasher(h)
    if n != desc.size:
        raise DigestMismatch(f"blob {desc.digest}: {n} bytes, {desc.size} announced")
    if got != desc.digest:
        raise DigestMismatch(f"digest mismatch: expected {desc.digest}, got {got}")
    if held is not None:
        yield held


class RegistryDestination(Destination):
    def __init__(self, ref: reference.Reference, client: RegistryClient) -> None:
        self.ref = ref
        self.client = client

    def has_blob(self, desc: Descriptor) -> bool:
        return self.client.has_blob(self.ref.path, desc.digest)

    def mount(self, desc: Descriptor, source: Source) -> str | None:
        if source.registry is None or source.registry[0] != self.ref.domain:
            return None
        repo = source.registry[1]
        if repo == self.ref.path:
            return None
        try:
            location, mounted = self.client.start_upload(
                self.ref.path, mount=desc.digest, source=repo
            )
        except RegistryError:
            return None
        if mounted:
            return repo
        if location is not None:  # a session was opened instead: leave it to expire
            return None
        return None

    def put_blob(self, desc: Descriptor, chunks: Iterator[bytes]) -> None:
        location, _ = self.client.start_upload(self.ref.path)
        assert location is not None
        self.client.finish_upload(self.ref.path, location, desc.digest, chunks, desc.size)

    def put_manifest(self, raw: bytes, desc: Descriptor) -> None:
        self.client.put_manifest(self.ref.path, desc.digest, raw, desc.media_type)

    def finish(self, raw: bytes, media_type: str, name: str | None) -> None:
        self.client.put_manifest(
            self.ref.path, self.ref.digest or self.ref.tag or reference.DEFAULT_TAG, raw, media_type
        )


def _locked_temp(path: Path) -> BinaryIO:
    """Create ``path`` for writing and hold an exclusive lock on it while it is open, so
    :func:`_sweep` can tell a live temp file from one a killed copy left behind."""
    f = open(path, "xb")  # noqa: SIM115 - the caller closes it
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    return f


def _sweep(directory: Path, pattern: str) -> None:
    """Remove temp files matching ``pattern`` that no live writer holds."""
    for p in directory.glob(pattern):
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # another copy is writing it
        finally:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


class LayoutDestination(Destination):
    """An OCI layout directory (created if needed; an existing one is added to)."""

    def __init__(self, path: str, ref: str | None) -> None:
        self.root = Path(path)
        self.ref = ref
        if self.root.exists() and not self.root.is_dir():
            raise InvalidArchive(f"{path}: not a directory")
        if (self.root / "oci-layout").exists() and (self.root / "index.json").exists():
            read_layout(self.root)  # refuse a broken layout before writing into it
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        header = self.root / "oci-layout"
        if not header.exists():
            header.write_bytes(layout_header())
        for d in [self.root, *(p for p in (self.root / "blobs").iterdir() if p.is_dir())]:
            _sweep(d, ".tmp-*")  # left by a copy that was killed
        _sweep(self.root, ".index-*")

    def _path(self, d: Digest) -> Path:
        return self.root / "blobs" / d.algorithm / d.hex

    def has_blob(self, desc: Descriptor) -> bool:
        p = self._path(desc.digest)
        return p.is_file() and p.stat().st_size == desc.size

    def _write(self, d: Digest, chunks: Iterator[bytes]) -> None:
        p = self._path(d)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.parent / f".tmp-{secrets.token_hex(8)}"
        try:
            with _locked_temp(tmp) as f:
                for chunk in chunks:
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def put_blob(self, desc: Descriptor, chunks: Iterator[bytes]) -> None:
        self._write(desc.digest, chunks)

    def put_manifest(self, raw: bytes, desc: Descriptor) -> None:
        self._write(desc.digest, iter([raw]))

    def finish(self, raw: bytes, media_type: str, name: str | None) -> None:
        desc = Descriptor.of(raw, media_type)
        self._write(desc.digest, iter([raw]))
        # two copies into one layout: their index.json updates take turns (a lock on the
        # directory itself, so the layout gets no extra file)
        dirfd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(dirfd, fcntl.LOCK_EX)
            self._add_to_index(desc, media_type)
        finally:
            os.close(dirfd)

    def _add_to_index(self, desc: Descriptor, media_type: str) -> None:
        entries: list[Descriptor] = []
        index_file = self.root / "index.json"
        if index_file.exists():
            entries = list(read_layout(self.root).index.manifests)
        annotations = {REF_NAME: self.ref} if self.ref else {}
        if self.ref:
            entries = [e for e in entries if e.annotations.get(REF_NAME) != self.ref]
        else:  # the same image again without a name: one entry
            entries = [e for e in entries if e.digest != desc.digest or REF_NAME in e.annotations]
        platform = None
        entries.append(
            Descriptor(
                media_type=media_type,
                digest=desc.digest,
                size=desc.size,
                annotations=annotations,
                platform=platform,
            )
        )
        index = Index(manifests=tuple(entries), media_type=mt.OCI_INDEX)
        tmp = self.root / f".index-{secrets.token_hex(8)}"
        with _locked_temp(tmp) as f:
            f.write(index.to_json())
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, index_file)


class ArchiveDestination(Destination):
    """A docker-archive tar in Docker >= 25's shape, written as blobs arrive."""

    parallel = False
    single_image = True

    def __init__(self, path: str, ref: str | None) -> None:
        self.path = Path(path)
        self.ref = ref
        _sweep(self.path.parent, f".{self.path.name}.tmp-*")  # left by a killed copy
        self._tmp = self.path.with_name(f".{self.path.name}.tmp-{secrets.token_hex(6)}")
        self._f = _locked_temp(self._tmp)
        self._written: set[str] = set()
        self._done = False
        self._dir(b"blobs/")
        self._dir(b"blobs/sha256/")

    def _dir(self, name: bytes) -> None:
        self._f.write(tar.header(name, tar.DIR, mode=0o755, uid=0, gid=0, mtime=0))

    def _file(self, name: bytes, size: int, chunks: Iterator[bytes]) -> None:
        self._f.write(tar.header(name, tar.REG, mode=0o644, uid=0, gid=0, mtime=0, size=size))
        n = 0
        for chunk in chunks:
            self._f.write(chunk)
            n += len(chunk)
        if n != size:
            raise DigestMismatch(f"{name.decode()}: {n} bytes, {size} announced")
        if size % 512:
            self._f.write(b"\0" * (512 - size % 512))

    def has_blob(self, desc: Descriptor) -> bool:
        return desc.digest in self._written

    def put_blob(self, desc: Descriptor, chunks: Iterator[bytes]) -> None:
        if desc.digest.algorithm != "sha256":
            raise InvalidArchive(f"docker-archive holds sha256 blobs only, not {desc.digest}")
        self._file(f"blobs/sha256/{desc.digest.hex}".encode(), desc.size, chunks)
        self._written.add(desc.digest)

    def put_manifest(self, raw: bytes, desc: Descriptor) -> None:
        raise UsageError("docker-archive holds one image: copy one platform (no --all-platforms)")

    def finish(self, raw: bytes, media_type: str, name: str | None) -> None:
        m = Manifest.parse(raw, media_type)
        desc = Descriptor.of(raw, media_type)
        if desc.digest not in self._written:
            self._file(f"blobs/sha256/{desc.digest.hex}".encode(), len(raw), iter([raw]))
        tag = self.ref or name
        tags: list[str] = []
        annotations: dict[str, str] = {}
        if tag:
            r = reference.parse_docker_ref(tag)
            if r.digest is None:
                r = r.tagged_or_latest()
                tags = [r.familiar()]
                annotations = {CONTAINERD_IMAGE_NAME: str(r), REF_NAME: r.tag or "latest"}
        index = Index(
            manifests=(
                Descriptor(
                    media_type=media_type,
                    digest=desc.digest,
                    size=desc.size,
                    annotations=annotations,
                ),
            ),
            media_type=mt.OCI_INDEX,
        )
        entry = {
            "Config": f"blobs/sha256/{m.config.digest.hex}",
            "RepoTags": tags,
            "Layers": [f"blobs/sha256/{d.digest.hex}" for d in m.layers],
        }
        for fname, data in (
            ("index.json", index.to_json()),
            ("manifest.json", json.dumps([entry], separators=(",", ":")).encode()),
            ("oci-layout", layout_header()),
        ):
            self._file(fname.encode(), len(data), iter([data]))
        self._f.write(tar.end_of_archive())
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self._tmp, self.path)
        self._done = True

    def close(self) -> None:
        if not self._done:
            self._f.close()
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()


# ------------------------------------------------------------------ opening


def _client(
    ref: reference.Reference, insecure: bool | None, clients: dict[str, RegistryClient]
) -> RegistryClient:
    if ref.domain not in clients:
        clients[ref.domain] = RegistryClient(ref.domain, insecure=insecure)
    return clients[ref.domain]


def open_source(
    loc: Location, *, insecure: bool | None = None, clients: dict[str, RegistryClient] | None = None
) -> Source:
    clients = {} if clients is None else clients
    if loc.transport == "docker":
        assert loc.ref is not None
        ref = reference.parse_docker_ref(loc.ref)
        return RegistrySource(ref, _client(ref, insecure, clients))
    if loc.transport == "oci":
        return LayoutSource(loc.path, loc.ref)
    return ArchiveSource(loc.path, loc.ref)


def open_destination(
    loc: Location, *, insecure: bool | None = None, clients: dict[str, RegistryClient] | None = None
) -> Destination:
    clients = {} if clients is None else clients
    if loc.transport == "docker":
        assert loc.ref is not None
        ref = reference.parse_docker_ref(loc.ref)
        return RegistryDestination(ref, _client(ref, insecure, clients))
    if loc.transport == "oci":
        return LayoutDestination(loc.path, loc.ref)
    return ArchiveDestination(loc.path, loc.ref)
