"""The content store: every blob by its digest, written atomically and verified.

Layout under the store's directory (``<root>/content``)::

    blobs/<algorithm>/<hex>    committed blobs (read-only once in place)
    ingest/tmp-<random>        anonymous writes in progress
    ingest/ref-<hash of ref>   resumable writes, named by a caller-chosen ref

Guarantees:

* A blob appears under ``blobs/`` only after its bytes hashed to its digest (and
  its size matched what was announced), were fsynced, and the temp file was
  renamed into place (the directory is fsynced too). Readers never see a partial
  blob.
* Writes stream in :data:`CHUNK` pieces: memory stays flat for any blob size.
* Writing a blob that is already present is a no-op that refreshes its mtime
  (the garbage collector's grace period counts from it). Two processes writing
  the same blob at once each use their own temp file; the second rename replaces
  identical bytes, so both succeed.
* A resumable ingest (``writer(ref=...)``) keeps its partial bytes when the
  writer fails with an I/O error, so a pull can continue with an HTTP Range
  request from :attr:`BlobWriter.offset`. One process at a time may hold a ref
  (an exclusive ``flock``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from gantry import digest as _digest
from gantry.digest import ALGORITHMS, CHUNK, Digest
from gantry.errors import BlobNotFound, DigestMismatch, GantryError, StoreError

__all__ = ["BlobWriter", "ContentStore", "IngestStatus"]


@dataclass(frozen=True)
class IngestStatus:
    """A write in progress (or abandoned) under ``ingest/``."""

    name: str
    path: Path
    size: int
    updated: float


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ContentStore:
    """Blobs by digest under ``path`` (normally ``<root>/content``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.root = Path(path)
        self.blobs_dir = self.root / "blobs"
        self.ingest_dir = self.root / "ingest"
        for algorithm in ALGORITHMS:
            (self.blobs_dir / algorithm).mkdir(parents=True, exist_ok=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)

    # -- reading -------------------------------------------------------------

    def path(self, d: str) -> Path:
        """Where blob ``d`` lives (or would live). Validates the digest string."""
        dg = Digest(d)
        return self.blobs_dir / dg.algorithm / dg.hex

    def has(self, d: str) -> bool:
        return self.path(d).is_file()

    def size(self, d: str) -> int:
        try:
            return self.path(d).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(f"blob {d} not found") from None

    def open(self, d: str) -> BinaryIO:
        """Open blob ``d`` for reading (not re-verified; use :meth:`verify` for that)."""
        try:
            return self.path(d).open("rb")
        except FileNotFoundError:
            raise BlobNotFound(f"blob {d} not found") from None

    def read(self, d: str, max_size: int | None = None) -> bytes:
        """The whole blob, verified against its digest. Refuses blobs over ``max_size``."""
        dg = Digest(d)
        with self.open(dg) as f:
            if max_size is not None:
                size = os.fstat(f.fileno()).st_size
                if size > max_size:
                    raise GantryError(f"blob {dg} is {size} bytes, over the limit of {max_size}")
            data = f.read()
        _digest.verify(data, dg)
        return data

    def verify(self, d: str) -> bool:
        """True if blob ``d`` is present and its bytes hash to ``d``."""
        dg = Digest(d)
        try:
            with self.path(dg).open("rb") as f:
                return _digest.of_file(f, dg.algorithm) == dg
        except FileNotFoundError:
            return False

    def iter_digests(self) -> Iterator[Digest]:
        """Every committed blob (names that are not valid digests are skipped)."""
        for algorithm in ALGORITHMS:
            directory = self.blobs_dir / algorithm
            try:
                names = os.listdir(directory)
            except FileNotFoundError:
                continue
            for name in names:
                value = f"{algorithm}:{name}"
                if _digest.is_digest(value):
                    yield Digest(value)

    def total_size(self) -> int:
        """Bytes of every committed blob (one directory scan per algorithm)."""
        total = 0
        for algorithm in ALGORITHMS:
            try:
                it = os.scandir(self.blobs_dir / algorithm)
            except FileNotFoundError:
                continue
            with it:
                for entry in it:
                    if not _digest.is_digest(f"{algorithm}:{entry.name}"):
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        total += entry.stat(follow_symlinks=False).st_size
        return total

    def mtime(self, d: str) -> float:
        try:
            return self.path(d).stat().st_mtime
        except FileNotFoundError:
            raise BlobNotFound(f"blob {d} not found") from None

    # -- writing -------------------------------------------------------------

    def writer(
        self,
        expected: str | None = None,
        *,
        size: int | None = None,
        algorithm: str | None = None,
        ref: str | None = None,
    ) -> BlobWriter:
        """A streaming writer; use as a context manager (commits on clean exit).

        ``expected``/``size``: what the bytes must hash to / how many there must be.
        ``ref``: make the write resumable under that name (see :class:`BlobWriter`).
        """
        return BlobWriter(self, expected=expected, size=size, algorithm=algorithm, ref=ref)

    def write(self, data: bytes, expected: str | None = None) -> Digest:
        """Store ``data`` (verified against ``expected`` when given); return its digest."""
        with self.writer(expected, size=len(data) if expected else None) as w:
            w.write(data)
        return w.digest

    def ingest(
        self,
        src: BinaryIO | Iterable[bytes],
        expected: str | None = None,
        size: int | None = None,
        *,
        ref: str | None = None,
    ) -> tuple[Digest, int]:
        """Stream ``src`` (a file object or an iterable of chunks) into the store.

        Verifies digest and size when given; on mismatch nothing is stored and
        :class:`DigestMismatch` is raised.
        """
        read = getattr(src, "read", None)
        with self.writer(expected, size=size, ref=ref) as w:
            if w.offset:
                seekable = getattr(src, "seekable", None)
                if read is not None and seekable is not None and seekable():
                    src.seek(w.offset)  # type: ignore[union-attr]  # seekable() proved it
                else:
                    w.reset()
            # a file object is read in CHUNK pieces (iterating it would split on b"\n")
            chunks: Iterable[bytes] = iter(lambda: read(CHUNK), b"") if read else src
            for chunk in chunks:
                w.write(chunk)
        return w.digest, w.size

    def delete(self, d: str) -> bool:
        """Remove blob ``d``; False if it was not there."""
        try:
            self.path(d).unlink()
        except FileNotFoundError:
            return False
        return True

    def touch(self, d: str) -> None:
        """Refresh the blob's mtime (restarts its garbage-collection grace period)."""
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.path(d))

    # -- ingests -------------------------------------------------------------

    def ingests(self) -> list[IngestStatus]:
        out = []
        for entry in os.scandir(self.ingest_dir):
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            out.append(IngestStatus(entry.name, Path(entry.path), st.st_size, st.st_mtime))
        return out

    def ingest_offset(self, ref: str) -> int:
        """How many bytes a resumable ingest under ``ref`` already holds (0 if none)."""
        try:
            return self._ref_path(ref).stat().st_size
        except FileNotFoundError:
            return 0

    def abort_ingest(self, ref: str) -> bool:
        """Drop the partial bytes kept for ``ref``."""
        try:
            self._ref_path(ref).unlink()
        except FileNotFoundError:
            return False
        return True

    def clean_ingests(self, older_than: float) -> int:
        """Remove ingest files untouched for ``older_than`` seconds that nobody holds.

        Returns the bytes reclaimed.
        """
        cutoff = time.time() - older_than
        reclaimed = 0
        for status in self.ingests():
            if status.updated > cutoff:
                continue
            try:
                fd = os.open(status.path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a writer holds it
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(status.path)
                    reclaimed += status.size
            finally:
                os.close(fd)
        return reclaimed

    def _ref_path(self, ref: str) -> Path:
        key = hashlib.sha256(ref.encode()).hexdigest()[:40]
        return self.ingest_dir / f"ref-{key}"

    def _commit(self, tmp: Path, dg: Digest) -> None:
        target = self.path(dg)
        if target.exists():
            # Already stored (maybe by a concurrent writer): identical by construction.
            os.utime(target)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
        _fsync_dir(target.parent)


class BlobWriter:
    """Streams bytes into a temp file under ``ingest/`` and commits them as a blob.

    Use as a context manager: a clean exit commits (verifying ``expected`` and
    ``size``); an exception aborts. An anonymous writer deletes its temp file on
    abort; a writer with a ``ref`` keeps the partial bytes (unless they proved
    wrong: a digest or size mismatch) so a later ``writer(ref=...)`` resumes at
    :attr:`offset`.
    """

    def __init__(
        self,
        store: ContentStore,
        *,
        expected: str | None = None,
        size: int | None = None,
        algorithm: str | None = None,
        ref: str | None = None,
    ) -> None:
        self._store = store
        self.expected = Digest(expected) if expected is not None else None
        if size is not None and size < 0:
            raise GantryError(f"invalid blob size {size}")
        self.expected_size = size
        algo = algorithm or (self.expected.algorithm if self.expected else "sha256")
        if self.expected is not None and algo != self.expected.algorithm:
            raise GantryError(f"algorithm {algo} does not match expected digest {self.expected}")
        self._hasher = _digest.new_hasher(algo)
        self.ref = ref
        self.size = 0
        self._digest: Digest | None = None
        self._done = True  # until the temp file is open (and locked)
        if ref is None:
            self._path = store.ingest_dir / f"tmp-{secrets.token_hex(16)}"
            self._fd = os.open(self._path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        else:
            self._path = store._ref_path(ref)
            while True:
                self._fd = os.open(self._path, os.O_CREAT | os.O_RDWR, 0o600)
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(self._fd)
                    raise StoreError(f"ingest {ref!r} is in use by another process") from None
                # the cleaner may have unlinked the file between our open and our lock
                try:
                    if os.stat(self._path).st_ino == os.fstat(self._fd).st_ino:
                        break
                except FileNotFoundError:
                    pass
                os.close(self._fd)
        self._done = False
        if ref is not None:
            self._resume()
        #: bytes already present before this writer wrote anything (resumed ingests)
        self.offset = self.size

    def _resume(self) -> None:
        """Re-hash the partial bytes kept from an earlier attempt."""
        held = os.fstat(self._fd).st_size
        if self.expected_size is not None and held > self.expected_size:
            os.ftruncate(self._fd, 0)
            held = 0
        os.lseek(self._fd, 0, os.SEEK_SET)
        remaining = held
        while remaining:
            chunk = os.read(self._fd, min(CHUNK, remaining))
            if not chunk:
                break
            self._hasher.update(chunk)
            remaining -= len(chunk)
        self.size = held - remaining
        os.ftruncate(self._fd, self.size)
        os.lseek(self._fd, self.size, os.SEEK_SET)

    # -- writing -------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._done:
            raise GantryError("write to a closed blob writer")
        n = len(data)
        if self.expected_size is not None and self.size + n > self.expected_size:
            self._fail_corrupt()
            raise DigestMismatch(
                f"size mismatch for {self.expected or 'blob'}: "
                f"more than the expected {self.expected_size} bytes"
            )
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._hasher.update(data)
        self.size += n
        return n

    def reset(self) -> None:
        """Forget any resumed bytes and start from zero."""
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._hasher = _digest.new_hasher(self._hasher.name)
        self.size = 0
        self.offset = 0

    @property
    def digest(self) -> Digest:
        """The digest of what was written (final once committed)."""
        if self._digest is not None:
            return self._digest
        return _digest.from_hasher(self._hasher.copy())

    @property
    def path(self) -> Path:
        return self._path

    def commit(self) -> Digest:
        """Verify, fsync and rename into place. Idempotent."""
        if self._digest is not None:
            return self._digest
        if self._done:
            raise GantryError("commit of an aborted blob writer")
        got = _digest.from_hasher(self._hasher)
        if self.expected_size is not None and self.size != self.expected_size:
            self._fail_corrupt()
            raise DigestMismatch(
                f"size mismatch for {self.expected or got}: expected {self.expected_size} "
                f"bytes, got {self.size}"
            )
        if self.expected is not None and got != self.expected:
            self._fail_corrupt()
            raise DigestMismatch(f"digest mismatch: expected {self.expected}, got {got}")
        os.fsync(self._fd)
        try:
            self._store._commit(self._path, got)
        except OSError as err:
            self._fail_corrupt()
            if err.errno == errno.ENOSPC:
                raise StoreError("no space left on device while storing a blob") from err
            raise
        finally:
            self._close()
        self._digest = got
        return got

    def abort(self) -> None:
        """Give up. An anonymous write is deleted; a ref keeps its bytes for resuming."""
        if self._done:
            return
        if self.ref is None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
        self._close()

    def _fail_corrupt(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
        self._close()

    def _close(self) -> None:
        if not self._done:
            self._done = True
            os.close(self._fd)  # also drops the flock

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def __del__(self) -> None:
        if not getattr(self, "_done", True):
            self.abort()
