"""``push``: an image from the store to a registry, as ``docker push`` does.

For each layer (concurrently, bounded): ``HEAD`` it in the target repository
(``Layer already exists``); else try a cross-repository mount from a
repository of the same registry where the blob was seen (``Mounted from x``);
else upload it: one ``PUT`` for small blobs, ``PATCH`` chunks then ``PUT`` for
large ones. Upload sessions are remembered in ``distribution.db``, so a push
killed half-way asks the registry how much it holds and continues from there.
Then the config, then the manifest, byte for byte as stored (so the layers keep
their compressed digests and a re-push anywhere is identical).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gantry import reference
from gantry.digest import CHUNK, Digest
from gantry.errors import GantryError, ImageNotFound, RegistryError
from gantry.oci import mediatypes as mt
from gantry.store import Image, Store

from . import progress as ev
from .client import RegistryClient
from .progress import Event, ProgressCallback, emit_nothing
from .sources import Sources
from .transport import TransportError

__all__ = ["PushResult", "push", "push_all_tags", "upload_blob"]

DEFAULT_CONCURRENCY = 5  # Docker's max-concurrent-uploads
#: blobs up to this size go in one PUT; larger ones in PATCH chunks of CHUNK_SIZE
MONOLITHIC_LIMIT = 32 * 1024 * 1024
CHUNK_SIZE = 128 * 1024 * 1024


@dataclass(frozen=True)
class PushResult:
    reference: reference.Reference
    digest: Digest  #: of the manifest as the registry stores it
    size: int  #: of the manifest


def _counting(
    chunks: Iterator[bytes], start: int, total: int, report: Callable[[int, int], None]
) -> Iterator[bytes]:
    done = start
    last = 0.0
    for chunk in chunks:
        done += len(chunk)
        now = time.monotonic()
        if now - last > 0.1 or done == total:
            last = now
            report(done, total)
        yield chunk


def _iter_file(path: Path, start: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(start)
        left = length
        while left > 0:
            data = f.read(min(CHUNK, left))
            if not data:
                raise GantryError(f"{path} shrank while being uploaded")
            left -= len(data)
            yield data


def upload_blob(
    client: RegistryClient,
    repo: str,
    digest: Digest,
    size: int,
    path: Path,
    *,
    sources: Sources | None = None,
    location: str | None = None,
    report: Callable[[int, int], None] | None = None,
    monolithic_limit: int = MONOLITHIC_LIMIT,
    chunk_size: int = CHUNK_SIZE,
) -> None:
    """Upload one blob from ``path``; resumes a remembered or given session."""
    report = report or (lambda done, total: None)
    domain = client.domain
    offset = 0
    if location is None and sources is not None:
        location = sources.upload(domain, repo, digest)
    if location is not None:
        held = client.upload_offset(repo, location)
        if held is None or held > size:
            location = None
        else:
            offset = held
    failures = 0
    while True:
        try:
            if location is None:
                location, _ = client.start_upload(repo)
                offset = 0
                if sources is not None and size > monolithic_limit:
                    sources.set_upload(domain, repo, digest, location)
            assert location is not None
            if offset == 0 and size <= monolithic_limit:
                client.finish_upload(
                    repo,
                    location,
                    digest,
                    _counting(_iter_file(path, 0, size), 0, size, report),
                    size,
                )
                break
            while offset < size:
                n = min(chunk_size, size - offset)
                body = _counting(_iter_file(path, offset, n), offset, size, report)
                location = client.patch_upload(repo, location, body, offset, n)
                offset += n
                if sources is not None:
                    sources.set_upload(domain, repo, digest, location)
            client.finish_upload(repo, location, digest, b"", 0)
            break
        except (TransportError, RegistryError) as err:
            retryable = isinstance(err, TransportError) or (
                err.status is not None and (err.status >= 500 or err.status in (408, 429, 416))
            )
            failures += 1
            if not retryable or failures >= client.retry.attempts:
                raise
            time.sleep(client.retry.delay(failures - 1))
            held = client.upload_offset(repo, location) if location is not None else None
            if held is None or held > size or (offset == 0 and size <= monolithic_limit):
                location, offset = None, 0
            else:
                offset = held
    if sources is not None:
        sources.set_upload(domain, repo, digest, None)
        sources.seen(digest, domain, repo)
    report(size, size)


class _Pusher:
    def __init__(
        self, store: Store, client: RegistryClient, repo: str, emit: ProgressCallback
    ) -> None:
        self.store = store
        self.client = client
        self.repo = repo
        self.emit = emit
        self.sources = Sources(store.root)
        self.lock = threading.Lock()

    def push_blob(self, digest: Digest, size: int, sid: str | None) -> None:
        """One blob; ``sid`` is the short ID to report on (None: the config, silent)."""
        client, repo = self.client, self.repo

        def say(status: str, current: int = 0, total: int = 0) -> None:
            if sid is not None:
                self.emit(Event(sid, status, current, total))

        if client.has_blob(repo, digest):
            say(ev.LAYER_EXISTS)
            self.sources.seen(digest, client.domain, repo)
            return
        location: str | None = None
        for source in self.sources.repositories(digest, client.domain):
            if source == repo:
                continue
            try:
                location, mounted = client.start_upload(repo, mount=digest, source=source)
            except RegistryError:
                continue
            if mounted:
                say(f"{ev.MOUNTED_FROM} {source}")
                self.sources.seen(digest, client.domain, repo)
                return
            break  # a session was opened instead: upload into it
        path = self.store.content.path(digest)
        upload_blob(
            client,
            repo,
            digest,
            size,
            path,
            sources=self.sources,
            location=location,
            report=lambda done, total: say(ev.PUSHING, done, total),
        )
        say(ev.PUSHED)


def push(
    store: Store,
    name: str,
    *,
    client: RegistryClient | None = None,
    progress: ProgressCallback | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> PushResult:
    """Push the image tagged ``name`` (``:latest`` when no tag is given)."""
    ref = reference.parse(name)
    if ref.digest is not None:
        raise GantryError("cannot push a digest reference")
    ref = ref.tagged_or_latest()
    try:
        image = store.resolve(str(ref))
    except ImageNotFound:
        raise ImageNotFound(
            f"An image does not exist locally with the tag: {ref.familiar_name}"
        ) from None
    return push_image(store, image, ref, client=client, progress=progress, concurrency=concurrency)


def push_image(
    store: Store,
    image: Image,
    ref: reference.Reference,
    *,
    client: RegistryClient | None = None,
    progress: ProgressCallback | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> PushResult:
    emit = progress or emit_nothing
    client = client or RegistryClient(ref.domain)
    repo = ref.path
    emit(Event("", f"The push refers to repository [{ref.name}]"))
    layers = store.layers(image)
    pusher = _Pusher(store, client, repo, emit)
    try:
        todo: list[tuple[Digest, int, str]] = []
        seen: set[str] = set()
        for layer in reversed(layers):  # Docker lists the top layer first
            sid = layer.diff_id.hex[:12]
            if mt.is_nondistributable(layer.media_type):
                emit(Event(sid, "Skipped foreign layer"))
                continue
            if layer.digest in seen:
                continue
            seen.add(layer.digest)
            emit(Event(sid, ev.PREPARING))
            todo.append((layer.digest, layer.size, sid))
        sem = threading.Semaphore(max(1, concurrency))
        cancel = threading.Event()

        def one(digest: Digest, size: int, sid: str) -> None:
            if not sem.acquire(blocking=False):
                emit(Event(sid, ev.WAITING))
                sem.acquire()
            try:
                if cancel.is_set():
                    raise GantryError("cancelled")
                pusher.push_blob(digest, size, sid)
            finally:
                sem.release()

        if todo:
            with ThreadPoolExecutor(max_workers=min(len(todo), max(1, concurrency))) as pool:
                futures: list[Future[None]] = [pool.submit(one, *t) for t in todo]
                try:
                    for f in futures:
                        f.result()
                except BaseException:
                    cancel.set()
                    raise
        config = image.id
        pusher.push_blob(config, store.content.size(config), None)
        body = store.manifest_bytes(image)
        digest = client.put_manifest(repo, ref.tag or reference.DEFAULT_TAG, body, image.media_type)
    finally:
        pusher.sources.close()
    store.add_repo_digest(image, ref.name, digest)
    emit(Event("", f"{ref.tag}: digest: {digest} size: {len(body)}"))
    return PushResult(ref, digest, len(body))


def push_all_tags(
    store: Store,
    name: str,
    *,
    client: RegistryClient | None = None,
    progress: ProgressCallback | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[PushResult]:
    """``push -a``: every local tag of the repository."""
    ref = reference.parse(name)
    if not ref.is_name_only:
        from gantry.errors import UsageError

        raise UsageError("tag can't be used with --all-tags/-a")
    tags = [t for t, _ in store.tags() if reference.parse(t).name == ref.name]
    if not tags:
        raise ImageNotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
    client = client or RegistryClient(ref.domain)
    return [push(store, t, client=client, progress=progress, concurrency=concurrency) for t in tags]
