"""``image copy SRC DST``: an image from one place to another without the store.

Like ``skopeo copy`` / ``crane copy``: blobs stream from the source to the
destination (hashed on the way, a wrong byte stops the blob before the
destination completes it), blobs the destination has are skipped, blobs on the
same registry are mounted, and the manifests are written byte for byte, so every
digest survives. From an index, one platform is copied (``platform``, default
this host's) and written as the top manifest, as skopeo does; with
``all_platforms`` every image and the index itself are copied.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from gantry import digest as _digest
from gantry.digest import Digest
from gantry.errors import GantryError, InvalidManifest, RegistryError, UsageError
from gantry.oci import mediatypes as mt
from gantry.oci.descriptor import Descriptor
from gantry.oci.manifest import Index, Manifest, parse_manifest
from gantry.oci.platform import Platform, host_platform

from . import progress as ev
from .client import RegistryClient
from .locations import (
    Destination,
    Location,
    Source,
    open_destination,
    open_source,
    parse_location,
    verified,
)
from .progress import Event, ProgressCallback, emit_nothing
from .transport import TransportError

__all__ = ["CopyResult", "copy"]

DEFAULT_CONCURRENCY = 3
RETRIES = 4  #: attempts per blob when the transfer itself fails


@dataclass
class CopyResult:
    source: Location
    destination: Location
    digest: Digest  #: of the top manifest or index written
    media_type: str
    images: int = 0  #: image manifests copied
    copied: list[Digest] = field(default_factory=list)  #: blobs whose bytes moved
    skipped: list[Digest] = field(default_factory=list)  #: already there
    mounted: list[Digest] = field(default_factory=list)  #: mounted across repositories


class _Copier:
    def __init__(
        self,
        src: Source,
        dst: Destination,
        emit: ProgressCallback,
        concurrency: int,
        result: CopyResult,
    ) -> None:
        self.src = src
        self.dst = dst
        self.emit = emit
        self.concurrency = max(1, concurrency) if dst.parallel else 1
        self.result = result
        self.lock = threading.Lock()
        self.done: set[str] = set()

    def blob(self, desc: Descriptor, cancel: threading.Event, quiet: bool = False) -> None:
        """One blob; ``quiet``: no progress lines (the config, as docker push shows none)."""
        sid = desc.digest.hex[:12]
        loud = self.emit

        def say(event: Event) -> None:
            if not quiet:
                loud(event)

        with self.lock:
            if desc.digest in self.done:
                return
            self.done.add(desc.digest)
        if cancel.is_set():
            raise GantryError("cancelled")
        if self.dst.has_blob(desc):
            say(Event(sid, ev.LAYER_EXISTS))
            with self.lock:
                self.result.skipped.append(desc.digest)
            return
        source_repo = self.dst.mount(desc, self.src)
        if source_repo is not None:
            say(Event(sid, f"{ev.MOUNTED_FROM} {source_repo}"))
            with self.lock:
                self.result.mounted.append(desc.digest)
            return
        failures = 0
        while True:
            chunks = self.src.blob(desc)
            try:
                self.dst.put_blob(
                    desc, self._counted(sid, desc, verified(desc, chunks), cancel, say)
                )
                break
            except (TransportError, RegistryError) as err:
                # the upload failed half way (a registry destination): send the blob again
                retryable = isinstance(err, TransportError) or (
                    err.status is not None and (err.status >= 500 or err.status in (408, 429))
                )
                failures += 1
                if not retryable or failures >= RETRIES:
                    raise
                say(Event(sid, ev.RETRYING))
                time.sleep(min(2.0, 0.1 * 2**failures))
            finally:
                chunks.close()  # stop reading the source
        say(Event(sid, ev.PUSHED))
        with self.lock:
            self.result.copied.append(desc.digest)

    def _counted(
        self,
        sid: str,
        desc: Descriptor,
        chunks: Iterator[bytes],
        cancel: threading.Event,
        say: ProgressCallback,
    ) -> Iterator[bytes]:
        done = 0
        last = 0.0
        for chunk in chunks:
            if cancel.is_set():
                raise GantryError("cancelled")
            done += len(chunk)
            now = time.monotonic()
            if now - last > 0.1:
                last = now
                say(Event(sid, ev.PUSHING, done, desc.size))
            yield chunk

    def blobs(self, descs: list[Descriptor], quiet: bool = False) -> None:
        cancel = threading.Event()
        if self.concurrency == 1 or len(descs) == 1:
            for d in descs:
                self.blob(d, cancel, quiet)
            return
        with ThreadPoolExecutor(max_workers=min(len(descs) or 1, self.concurrency)) as pool:
            futures: list[Future[None]] = [pool.submit(self.blob, d, cancel) for d in descs]
            try:
                for f in futures:
                    f.result()
            except BaseException:
                cancel.set()
                raise

    def image(self, raw: bytes, media_type: str) -> Manifest:
        m = Manifest.parse(raw, media_type or None)
        layers = [d for d in m.layers if not (mt.is_nondistributable(d.media_type) and d.urls)]
        for d in m.layers:
            if d not in layers:
                self.emit(Event(d.digest.hex[:12], "Skipped foreign layer"))
        for d in layers:
            self.emit(Event(d.digest.hex[:12], ev.PREPARING))
        # the config first: small, and a registry may want it before the manifest anyway
        self.blobs([m.config], quiet=True)
        self.blobs(layers)
        self.result.images += 1
        return m


def copy(
    source: str | Location,
    destination: str | Location,
    *,
    all_platforms: bool = False,
    platform: Platform | str | None = None,
    progress: ProgressCallback | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    insecure: bool | None = None,
    clients: dict[str, RegistryClient] | None = None,
) -> CopyResult:
    """Copy the image at ``source`` to ``destination`` (``docker://``, ``oci:``,
    ``docker-archive:`` or a bare reference for a registry).

    ``clients``: RegistryClient per registry domain, to reuse (tests, custom
    transports); missing ones are made with ``insecure``.
    """
    src_loc = parse_location(source) if isinstance(source, str) else source
    dst_loc = parse_location(destination) if isinstance(destination, str) else destination
    emit = progress or emit_nothing
    plat = Platform.parse(platform) if isinstance(platform, str) else platform or host_platform()
    clients = {} if clients is None else clients
    src = open_source(src_loc, insecure=insecure, clients=clients)
    try:
        dst = open_destination(dst_loc, insecure=insecure, clients=clients)
        try:
            return _copy(src, dst, src_loc, dst_loc, all_platforms, plat, emit, concurrency)
        finally:
            dst.close()
    finally:
        src.close()


def _copy(
    src: Source,
    dst: Destination,
    src_loc: Location,
    dst_loc: Location,
    all_platforms: bool,
    plat: Platform,
    emit: ProgressCallback,
    concurrency: int,
) -> CopyResult:
    raw, media_type = src.top()
    doc = parse_manifest(raw, media_type or None)
    media_type = doc.media_type
    result = CopyResult(src_loc, dst_loc, _digest.of_bytes(raw), media_type)
    copier = _Copier(src, dst, emit, concurrency, result)
    if isinstance(doc, Index):
        if all_platforms:
            if dst.single_image:
                raise UsageError(
                    f"{dst_loc} holds one image: copy one platform (leave out --all-platforms)"
                )
            _copy_index(copier, doc, depth=0)
        else:
            chosen = doc.select(plat)
            if chosen is None:
                raise InvalidManifest(
                    f"no image for {plat} in {src_loc}: it has "
                    + (", ".join(str(p) for p in doc.platforms()) or "nothing")
                )
            raw = src.manifest(chosen)
            media_type = chosen.media_type
            child = parse_manifest(raw, media_type)
            if isinstance(child, Index):
                raise InvalidManifest(f"{src_loc}: nested index for {plat}")
            result.digest = Digest(chosen.digest)
            result.media_type = media_type
            copier.image(raw, media_type)
    else:
        copier.image(raw, media_type)
    dst.finish(raw, media_type, src.name())
    emit(Event("", f"Digest: {result.digest}"))
    return result


def _copy_index(copier: _Copier, index: Index, depth: int) -> None:
    if depth > 4:
        raise InvalidManifest("indexes nested too deep")
    for desc in index.manifests:
        raw = copier.src.manifest(desc)
        child = parse_manifest(raw, desc.media_type)
        if isinstance(child, Index):
            _copy_index(copier, child, depth + 1)
        else:
            copier.image(raw, desc.media_type)
        copier.dst.put_manifest(raw, desc)
