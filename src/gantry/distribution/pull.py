"""``pull``: a reference from a registry into the store, as ``docker pull`` does.

Steps: resolve the tag (or take the digest), pick the platform's manifest from
an index, fetch the config, then the missing layers concurrently (bounded).
Every blob streams into a resumable ingest named ``pull:<digest>`` while it is
hashed; it is committed only when size and digest match, so wrong bytes are
never stored, and a pull that is interrupted (even by SIGKILL) continues with
``Range: bytes=<offset>-`` next time. All digests are put under a store lease
before any byte is written, so a concurrent ``prune`` cannot take them, and
the image is recorded (tags, repo digest) in one transaction at the end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from gantry import reference
from gantry.digest import Digest
from gantry.errors import (
    DigestMismatch,
    GantryError,
    ImageNotFound,
    InvalidManifest,
    RegistryError,
    StoreError,
)
from gantry.oci import (
    Descriptor,
    Index,
    Manifest,
    Platform,
    host_platform,
    parse_config,
    parse_manifest,
)
from gantry.oci import mediatypes as mt
from gantry.store import Image, Store

from . import progress as ev
from .client import RegistryClient
from .diffid import LayerScan
from .progress import Event, ProgressCallback, emit_nothing
from .sources import Sources
from .transport import Response, TransportError

__all__ = ["PullResult", "pull", "pull_all_tags", "resolve_platform_manifest"]

MAX_CONFIG_SIZE = 8 * 1024 * 1024
DEFAULT_CONCURRENCY = 3  # Docker's max-concurrent-downloads


@dataclass(frozen=True)
class PullResult:
    reference: reference.Reference  #: what was pulled (tag or digest)
    digest: Digest  #: the digest the registry serves the reference as (index or manifest)
    image: Image
    #: Docker's status: True ("Downloaded newer image") when bytes were fetched or the
    #: reference did not already name this image; False: "Image is up to date"
    downloaded: bool


def short(d: str) -> str:
    return Digest(d).hex[:12]


def _pull_error(err: RegistryError, ref: reference.Reference) -> RegistryError:
    """Docker's wording for the usual pull failures."""
    if err.code == "MANIFEST_UNKNOWN" or (err.status == 404 and err.code is None):
        return RegistryError(
            f"manifest for {ref.familiar()} not found: {err}", code=err.code, status=err.status
        )
    if err.code in ("NAME_UNKNOWN", "UNAUTHORIZED", "DENIED") or err.status in (401, 403):
        return RegistryError(
            f"pull access denied for {ref.familiar_name}, repository does not exist or may "
            f"require 'docker login': {err}",
            code=err.code,
            status=err.status,
        )
    return err


def resolve_platform_manifest(
    client: RegistryClient,
    repo: str,
    data: bytes,
    media_type: str,
    platform: Platform,
    *,
    what: str,
) -> tuple[bytes, Manifest, list[tuple[bytes, Digest]]]:
    """Follow indexes down to the image manifest for ``platform``.

    Returns (manifest bytes, manifest, [(index bytes, index digest)...]).
    """
    from gantry import digest as _digest

    indexes: list[tuple[bytes, Digest]] = []
    doc = parse_manifest(data, media_type or None)
    while isinstance(doc, Index):
        indexes.append((data, _digest.of_bytes(data)))
        if len(indexes) > 4:
            raise InvalidManifest("indexes nested too deep")
        chosen = doc.select(platform)
        if chosen is None:
            raise RegistryError(
                f"no matching manifest for {platform} in the manifest list entries",
                code="MANIFEST_UNKNOWN",
                hint=f"{what} has: {', '.join(str(p) for p in doc.platforms()) or 'nothing'}",
            )
        data, media_type = client.get_manifest(repo, chosen.digest)
        doc = parse_manifest(data, chosen.media_type)
    return data, doc, indexes


class _Puller:
    def __init__(
        self,
        store: Store,
        client: RegistryClient,
        repo: str,
        emit: ProgressCallback,
        concurrency: int,
        diff_ids: dict[str, Digest] | None = None,
    ) -> None:
        self.store = store
        #: layer digest -> diff ID from the config: checked while streaming
        self.diff_ids = diff_ids or {}
        #: layer digest -> unpacked size, for every layer measured while streaming
        self.sizes: dict[str, int] = {}
        self._lock = threading.Lock()
        self.client = client
        self.repo = repo
        self.emit = emit
        self.concurrency = max(1, concurrency)
        self.sem = threading.Semaphore(self.concurrency)

    def fetch_layer(self, desc: Descriptor, cancel: threading.Event) -> None:
        sid = short(desc.digest)
        content = self.store.content
        if not self.sem.acquire(blocking=False):
            self.emit(Event(sid, ev.WAITING))
            self.sem.acquire()
        try:
            if cancel.is_set():
                raise GantryError("cancelled")
            self._download(desc, sid, cancel)
        finally:
            self.sem.release()
        if not content.has(desc.digest):
            raise StoreError(f"blob {desc.digest} vanished after download")

    def _open_writer(self, desc: Descriptor, cancel: threading.Event) -> object | None:
        content = self.store.content
        while True:
            if content.has(desc.digest):
                return None
            try:
                return content.writer(desc.digest, size=desc.size, ref=f"pull:{desc.digest}")
            except StoreError:
                # another gantry process is downloading the same blob: wait for it
                if cancel.wait(0.2):
                    raise GantryError("cancelled") from None

    def _download(self, desc: Descriptor, sid: str, cancel: threading.Event) -> None:
        from gantry.content.store import BlobWriter

        w = self._open_writer(desc, cancel)
        if w is None:
            return
        assert isinstance(w, BlobWriter)
        total = desc.size
        failures = 0
        expected_diff = self.diff_ids.get(desc.digest)
        scan: list[LayerScan] = []
        if expected_diff is not None:
            scan.append(LayerScan(w.path, w.size))
        try:
            while True:
                start = w.size
                try:
                    self._stream_into(w, desc, sid, cancel, scan)
                except TransportError:
                    failures += 1
                    if failures >= self.client.retry.attempts + 3:
                        raise
                    if w.size == start:
                        time.sleep(self.client.retry.delay(failures - 1))
                    self.emit(Event(sid, ev.RETRYING, w.size, total))
                    continue
                except RegistryError as err:
                    if err.status is not None and err.status >= 500:
                        failures += 1
                        if failures < self.client.retry.attempts + 3:
                            time.sleep(self.client.retry.delay(failures - 1))
                            continue
                    raise
                break
            self.emit(Event(sid, ev.VERIFYING))
            if scan and w.size == total and w.digest == desc.digest:
                diff_id, unpacked = scan.pop().result()
                if diff_id != expected_diff:
                    raise DigestMismatch(
                        f"layer {desc.digest}: diff ID mismatch: the config says "
                        f"{expected_diff}, the layer is {diff_id}"
                    )
                with self._lock:
                    self.sizes[desc.digest] = unpacked
            w.commit()
        except BaseException:
            w.abort()
            raise
        finally:
            for s in scan:
                s.close()
        self.emit(Event(sid, ev.DOWNLOAD_COMPLETE))

    def _open_blob(self, desc: Descriptor, offset: int) -> Response:
        """The blob from the registry; a foreign layer the registry lacks comes from the
        first of its ``urls`` that answers (http/https only, as containerd)."""
        try:
            return self.client.get_blob(self.repo, desc.digest, offset=offset)
        except RegistryError as err:
            if err.status != 404 or not desc.urls:
                raise
            first = err
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        for url in desc.urls:
            if not url.startswith(("http://", "https://")):
                continue
            try:
                resp = self.client.transport.request("GET", url, headers=headers)
            except TransportError:
                continue
            if resp.status in (200, 206):
                return resp
            resp.close()
        raise RegistryError(
            f"foreign layer {desc.digest}: not in the registry and no URL served it",
            code=first.code,
            status=first.status,
        )

    def _stream_into(
        self,
        w: object,
        desc: Descriptor,
        sid: str,
        cancel: threading.Event,
        scan: list[LayerScan],
    ) -> None:
        from gantry.content.store import BlobWriter

        assert isinstance(w, BlobWriter)

        def restart() -> None:
            w.reset()
            if scan:
                scan.pop().close()
                scan.append(LayerScan())

        total = desc.size
        if w.size >= total:
            return
        resp = self._open_blob(desc, w.size)
        try:
            if resp.status == 206:
                cr = resp.headers.get("Content-Range", "")
                if not cr.startswith(f"bytes {w.size}-"):
                    restart()
                    resp.close()
                    raise TransportError(f"unexpected Content-Range {cr!r}")
            elif w.size:
                restart()  # the registry ignored Range: start over
            last = 0.0
            for chunk in resp.stream():
                if cancel.is_set():
                    raise GantryError("cancelled")
                w.write(chunk)
                if scan:
                    scan[0].write(chunk)
                now = time.monotonic()
                if now - last > 0.1:
                    last = now
                    self.emit(Event(sid, ev.DOWNLOADING, w.size, total))
            self.emit(Event(sid, ev.DOWNLOADING, w.size, total))
        finally:
            resp.close()
        if w.size < total:
            raise TransportError(f"blob {desc.digest}: connection closed at {w.size} of {total}")


def pull(
    store: Store,
    name: str,
    *,
    platform: Platform | str | None = None,
    client: RegistryClient | None = None,
    progress: ProgressCallback | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    tag: bool = True,
) -> PullResult:
    """Pull ``name`` (``x``, ``x:tag``, ``host/x@sha256:...``) into ``store``.

    ``platform``: which image of an index (default: this host's). ``progress``:
    receives :class:`~gantry.distribution.progress.Event` objects.
    ``tag=False`` records only the repo digest (no tag is moved).
    """
    ref = reference.parse_docker_ref(name)
    emit = progress or emit_nothing
    client = client or RegistryClient(ref.domain)
    plat = Platform.parse(platform) if isinstance(platform, str) else platform or host_platform()
    repo = ref.path
    target = ref.digest or ref.tag or reference.DEFAULT_TAG
    emit(Event("", f"{target}: Pulling from {repo}"))
    if ref.digest is None and tag:
        settled = _up_to_date(store, client, ref, target, plat)
        if settled is not None:
            emit(Event("", f"Digest: {settled.digest}"))
            return settled
    try:
        top, top_type = client.get_manifest(repo, target)
        from gantry import digest as _digest

        top_digest = Digest(ref.digest) if ref.digest else _digest.of_bytes(top)
        mbytes, manifest, indexes = resolve_platform_manifest(
            client, repo, top, top_type, plat, what=ref.familiar()
        )
    except RegistryError as err:
        raise _pull_error(err, ref) from None
    if not mt.is_config(manifest.config.media_type) and manifest.artifact_type is None:
        # artifacts (helm charts, signatures) are not images
        raise InvalidManifest(
            f"{ref.familiar()} is not a container image (config {manifest.config.media_type})"
        )
    return _finish(
        store, client, ref, top_digest, mbytes, manifest, indexes, emit, concurrency, tag
    )


def _up_to_date(
    store: Store, client: RegistryClient, ref: reference.Reference, target: str, plat: Platform
) -> PullResult | None:
    """A pull that a ``HEAD`` settles: the tag already names the image the registry
    serves it as (same manifest or index digest, and for an index this platform's image).
    None when anything is uncertain: the full pull decides then."""
    try:
        head = client.head_manifest(ref.path, target)
    except (RegistryError, TransportError):
        return None
    if head is None:
        return None
    digest, _, media = head
    try:
        image = store.resolve(str(ref))
    except ImageNotFound:
        return None
    if f"{ref.name}@{digest}" not in image.repo_digests:
        return None
    # from an index the stored image is the entry for some platform: is it this one?
    index = media in mt.INDEX_TYPES or media not in mt.MANIFEST_TYPES
    if index and (plat.variant or (image.os, image.architecture) != (plat.os, plat.architecture)):
        return None
    return PullResult(ref, digest, image, False)


def _finish(
    store: Store,
    client: RegistryClient,
    ref: reference.Reference,
    top_digest: Digest,
    mbytes: bytes,
    manifest: Manifest,
    indexes: list[tuple[bytes, Digest]],
    emit: ProgressCallback,
    concurrency: int,
    tag: bool,
) -> PullResult:
    repo = ref.path
    content = store.content
    downloaded = False
    sources = Sources(store.root)
    try:
        with store.lease() as lease:
            lease.add(
                manifest.config.digest,
                *(d.digest for d in manifest.layers),
                *(d for _, d in indexes),
            )
            for raw, d in indexes:
                content.write(raw, d)
            missing = [d for d in manifest.layers if not content.has(d.digest)]
            # Docker prints no layer lines for an image it has (moby checks the config
            # first); otherwise one per layer
            if missing or _names(store, manifest.config.digest) is None:
                for desc in manifest.layers:
                    status = ev.PULLING_FS_LAYER if desc in missing else ev.ALREADY_EXISTS
                    emit(Event(short(desc.digest), status))
            if not content.has(manifest.config.digest):
                cfg = client.read_blob(repo, manifest.config.digest, MAX_CONFIG_SIZE)
                if len(cfg) != manifest.config.size:
                    raise InvalidManifest(
                        f"config {manifest.config.digest}: {len(cfg)} bytes, manifest says "
                        f"{manifest.config.size}"
                    )
                content.write(cfg, manifest.config.digest)
                downloaded = True
            diff_ids = _diff_ids(store, manifest)
            sizes: dict[str, int] = {}
            if missing:
                sizes = _download_all(store, client, repo, missing, emit, concurrency, diff_ids)
                downloaded = True
            for desc in missing:
                emit(Event(short(desc.digest), ev.PULL_COMPLETE))
            for desc in manifest.layers:
                sources.seen(desc.digest, ref.domain, repo)
            # Docker says "Downloaded newer image" whenever the reference pulled (the tag,
            # or name@digest) did not already name this image, bytes fetched or not
            named = str(ref) if tag and ref.digest is None and ref.tag else None
            if _names(store, named or f"{ref.name}@{top_digest}") != manifest.config.digest:
                downloaded = True
            image = store.add_image(
                mbytes,
                media_type=manifest.media_type,
                tags=[str(ref)] if tag and ref.digest is None and ref.tag else [],
                repo_digests=[f"{ref.name}@{top_digest}"],
                blobs=[d for _, d in indexes],
                layer_sizes=sizes,
                tag_time=False,
            )
    finally:
        sources.close()
    emit(Event("", f"Digest: {top_digest}"))
    return PullResult(ref, top_digest, image, downloaded)


def _names(store: Store, name: str) -> str | None:
    """The image ID ``name`` (a full ``name:tag`` or ``name@digest``) points at, if any."""
    try:
        return store.resolve(name).id
    except ImageNotFound:
        return None


def _download_all(
    store: Store,
    client: RegistryClient,
    repo: str,
    missing: list[Descriptor],
    emit: ProgressCallback,
    concurrency: int,
    diff_ids: dict[str, Digest] | None = None,
) -> dict[str, int]:
    """Download ``missing``; returns the unpacked sizes measured on the way."""
    puller = _Puller(store, client, repo, emit, concurrency, diff_ids)
    cancel = threading.Event()
    unique = list({d.digest: d for d in missing}.values())
    with ThreadPoolExecutor(max_workers=min(len(unique), puller.concurrency)) as pool:
        futures: list[Future[None]] = [pool.submit(puller.fetch_layer, d, cancel) for d in unique]
        try:
            for f in futures:
                f.result()
        except BaseException:
            cancel.set()
            raise
    return puller.sizes


def _diff_ids(store: Store, manifest: Manifest) -> dict[str, Digest]:
    """Layer digest -> diff ID from the (stored) config; {} when they cannot be paired
    (a malformed config is then refused by ``Store.add_image``, with its wording)."""
    try:
        cfg = parse_config(store.content.read(manifest.config.digest, max_size=MAX_CONFIG_SIZE))
    except GantryError:
        return {}
    diffs = cfg.diff_ids
    if len(diffs) != len(manifest.layers):
        return {}
    out: dict[str, Digest] = {}
    for desc, diff in zip(manifest.layers, diffs, strict=True):
        if out.setdefault(desc.digest, Digest(diff)) != diff:
            return {}  # one blob, two diff IDs: let add_image refuse it
    return out


def pull_all_tags(
    store: Store,
    name: str,
    *,
    platform: Platform | str | None = None,
    client: RegistryClient | None = None,
    progress: ProgressCallback | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_result: Callable[[PullResult], None] | None = None,
) -> list[PullResult]:
    """``pull -a``: every tag of the repository."""
    ref = reference.parse(name)
    if not ref.is_name_only:
        from gantry.errors import UsageError

        raise UsageError("tag can't be used with --all-tags/-a")
    client = client or RegistryClient(ref.domain)
    try:
        tags = client.tags(ref.path)
    except RegistryError as err:
        raise _pull_error(err, ref) from None
    out = []
    for t in sorted(tags):
        r = pull(
            store,
            str(ref.with_tag(t)),
            platform=platform,
            client=client,
            progress=progress,
            concurrency=concurrency,
        )
        if on_result is not None:
            on_result(r)
        out.append(r)
    return out
