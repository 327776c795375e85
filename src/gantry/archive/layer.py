"""Reading a layer tar that came from outside: check every entry, measure it, pass it on.

``import`` and ``load`` never unpack what they receive; they store it. But a
layer that would be refused at unpack time must be refused *now*, with a
one-line error, before any image points at it. :class:`EntryChecker` applies
the rules :mod:`gantry.layers.extract` enforces on a real filesystem, on names
alone:

* names and hardlink targets are relative and never contain ``..``
  (:func:`gantry.layers.extract.split_name`);
* no entry and no hardlink target lies below a symlink of the same layer
  (a write "through" a symlink);
* a hardlink names an entry that came earlier in the same layer;
* only the entry types a layer may hold (files, dirs, links, devices, fifos).

Decompression bombs (see :class:`Limits`): the uncompressed tar is capped
(``max_size``), a stream inflating more than ``max_ratio`` times its compressed
size past ``ratio_floor`` bytes is refused (gzip cannot exceed ~1032:1, so the
default 1000:1 only trips on near-empty data), and at most ``max_trailing``
bytes may follow the end-of-archive marker (GNU tar pads to 10 KiB records; a
stream of zeros after it is the classic bomb).
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from gantry.digest import CHUNK, Digest
from gantry.errors import InvalidArchive, UnsafeArchive
from gantry.layers import tar
from gantry.layers.compression import Compression, open_decompressed
from gantry.layers.extract import show, split_name

_ALLOWED = frozenset(
    {*tar.REGULAR, tar.DIR, tar.GNU_DUMPDIR, tar.SYM, tar.LNK, tar.CHR, tar.BLK, tar.FIFO}
)
_WHITEOUT = b".wh."


@dataclass(frozen=True)
class Limits:
    """Guards against decompression bombs (defaults never hurt a real image)."""

    #: largest uncompressed layer tar accepted (bytes)
    max_size: int = 1 << 40
    #: largest uncompressed/compressed ratio accepted once past ``ratio_floor`` (0: off)
    max_ratio: int = 1000
    ratio_floor: int = 1 << 30
    #: bytes allowed after the end-of-archive marker
    max_trailing: int = 1 << 20

    @classmethod
    def from_env(cls) -> Limits:
        """Defaults, overridden by ``GANTRY_MAX_LAYER_SIZE`` / ``GANTRY_MAX_LAYER_RATIO``."""
        kw: dict[str, int] = {}
        for var, key in (
            ("GANTRY_MAX_LAYER_SIZE", "max_size"),
            ("GANTRY_MAX_LAYER_RATIO", "max_ratio"),
        ):
            value = os.environ.get(var)
            if value:
                try:
                    kw[key] = int(value)
                except ValueError:
                    raise InvalidArchive(f"{var}: not a number: {value!r}") from None
        return cls(**kw)


class EntryChecker:
    """Refuses layer entries that would escape or be refused at unpack time."""

    def __init__(self) -> None:
        self.symlinks: set[bytes] = set()
        self.others: set[bytes] = set()  # everything that is neither a dir nor a symlink

    def _below_symlink(self, parts: list[bytes], name: bytes, what: str) -> None:
        if not self.symlinks:
            return
        for i in range(1, len(parts)):
            parent = b"/".join(parts[:i])
            if parent in self.symlinks:
                raise UnsafeArchive(
                    f"refusing layer {what} {show(name)!r}: its parent {show(parent)!r} is a symlink"
                )

    def check(self, e: tar.Entry) -> None:
        if e.type not in _ALLOWED:
            raise InvalidArchive(f"unsupported tar entry type {e.type!r} for {show(e.name)!r}")
        parts = split_name(e.name)
        if not parts:
            if e.type in (tar.DIR, tar.GNU_DUMPDIR):
                return
            raise InvalidArchive(f"invalid layer entry {show(e.name)!r}: empty name")
        self._below_symlink(parts, e.name, "entry")
        path = b"/".join(parts)
        if parts[-1].startswith(_WHITEOUT):
            return
        if e.type == tar.LNK:
            target = split_name(e.linkname, "hardlink target")
            if not target:
                raise UnsafeArchive(f"refusing layer hardlink {show(e.name)!r}: empty target")
            self._below_symlink(target, e.name, "hardlink")
            joined = b"/".join(target)
            if joined not in self.others and joined not in self.symlinks:
                raise UnsafeArchive(
                    f"refusing layer hardlink {show(e.name)!r}: target {show(e.linkname)!r} "
                    "is not a file of this layer"
                )
        elif e.type == tar.SYM and not e.linkname:
            raise InvalidArchive(f"invalid layer entry {show(e.name)!r}: symlink without a target")
        self.symlinks.discard(path)
        self.others.discard(path)
        if e.type == tar.SYM:
            self.symlinks.add(path)
        elif e.type not in (tar.DIR, tar.GNU_DUMPDIR):
            self.others.add(path)


#: layers from this size on are hashed and written on other threads (see :class:`BackgroundSink`)
THREADED_MIN = 4 << 20


def spare_core() -> bool:
    return len(os.sched_getaffinity(0)) > 1


class BackgroundSink:
    """Passes chunks to ``write`` on a thread of its own, through a short queue (memory
    stays flat). sha256, isal and ``os.write`` release the GIL, so writing and hashing
    the compressed bytes overlaps with decompressing and hashing them here.
    The writer's error (a size mismatch...) is raised by the next call or by :meth:`close`."""

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self._write = write
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="gantry-layer-worker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write(item)
                except BaseException as err:  # handed to the producer thread
                    self._error = err

    def __call__(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:  # nothing left to overlap with
            self._write(data)
            return
        self._queue.put(data)

    def close(self) -> None:
        """Wait until every chunk is written; raise what the writer raised."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error


class _Counting:
    """Counts the compressed bytes read from ``f``."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.count += len(data)
        return data


class _Tee:
    """The uncompressed tar stream, handed to ``sink`` as it is read; enforces Limits."""

    def __init__(
        self,
        inner: BinaryIO,
        raw: _Counting,
        sink: Callable[[bytes], object] | None,
        limits: Limits,
    ) -> None:
        self.inner = inner
        self.raw = raw
        self.sink = sink
        self.limits = limits
        self.count = 0
        self.trailing: int | None = None  # bytes seen after the end marker, once it is reached

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        if not data:
            return data
        self.count += len(data)
        lim = self.limits
        if self.count > lim.max_size:
            raise InvalidArchive(
                f"layer is larger than the {lim.max_size} bytes allowed uncompressed "
                "(possible decompression bomb; raise GANTRY_MAX_LAYER_SIZE)"
            )
        if (
            lim.max_ratio
            and self.count > lim.ratio_floor
            and self.count > lim.max_ratio * max(self.raw.count, 1)
        ):
            raise InvalidArchive(
                f"layer inflates more than {lim.max_ratio}:1 (possible decompression bomb; "
                "set GANTRY_MAX_LAYER_RATIO=0 to allow it)"
            )
        if self.trailing is not None:
            self.trailing += len(data)
            if self.trailing > lim.max_trailing:
                raise InvalidArchive(
                    f"more than {lim.max_trailing} bytes after the end of the layer tar "
                    "(possible decompression bomb)"
                )
        if self.sink is not None:
            self.sink(data)
        return data


@dataclass(frozen=True)
class LayerScan:
    diff_id: Digest
    #: Docker's layer size: regular files' and symlinks' sizes (whiteouts excluded)
    size: int
    #: bytes of the uncompressed tar
    tar_size: int
    compression: Compression | None
    entries: int


def scan(
    src: BinaryIO,
    *,
    sink: Callable[[bytes], object] | None = None,
    limits: Limits | None = None,
    raw_digest: Callable[[], Digest] | None = None,
    threaded: bool = False,
) -> LayerScan:
    """Read a (possibly compressed) layer tar from ``src`` once, checking every entry.

    ``sink`` receives the *uncompressed* tar bytes in order (to compress them
    again, or store them). ``raw_digest``: the caller hashes every byte read from ``src``
    itself; for an uncompressed layer that digest *is* the diff ID, so the tar
    is not hashed twice (called once ``src`` is exhausted). ``threaded``: the diff ID of a
    compressed layer is computed on another thread while this one decompresses and checks.
    Raises :class:`UnsafeArchive` / :class:`InvalidArchive` with a one-line reason.
    """
    limits = limits or Limits()
    raw = _Counting(src)
    decompressed, compression = open_decompressed(raw)  # type: ignore[arg-type]  # duck-typed stream
    # an uncompressed layer is hashed by the caller already (``raw_digest``)
    own_hash = raw_digest is None or compression is not None
    bg: BackgroundSink | None = None
    diff_id: Callable[[], Digest]
    if own_hash and threaded:
        hasher = hashlib.sha256()
        bg = BackgroundSink(hasher.update)
        hashed_sink = bg if sink is None else _both(sink, bg)
        tee = _Tee(decompressed, raw, hashed_sink, limits)

        def diff_id() -> Digest:
            assert bg is not None
            bg.close()
            return Digest("sha256:" + hasher.hexdigest())

    else:
        tee = _Tee(decompressed, raw, sink, limits)
    reader = tar.TarReader(tee, max_size=None, hash=own_hash and bg is None)  # type: ignore[arg-type]  # duck-typed stream
    if bg is None:
        if own_hash:
            diff_id = lambda: reader.diff_id  # noqa: E731
        else:
            assert raw_digest is not None
            diff_id = raw_digest
    try:
        return _scan_entries(reader, tee, limits, compression, diff_id)
    finally:
        if bg is not None:
            bg.close()


def _both(a: Callable[[bytes], object], b: Callable[[bytes], object]) -> Callable[[bytes], None]:
    def both(data: bytes) -> None:
        a(data)
        b(data)

    return both


def _scan_entries(
    reader: tar.TarReader,
    tee: _Tee,
    limits: Limits,
    compression: Compression | None,
    diff_id: Callable[[], Digest],
) -> LayerScan:
    checker = EntryChecker()
    size = entries = 0
    for e in reader:
        entries += 1
        checker.check(e)
        if e.type in tar.SIZED and not os.path.basename(e.name).startswith(_WHITEOUT):
            size += tar.disk_size(e)
    tee.trailing = 0
    # whatever TarReader had buffered past the end marker was already counted as tar;
    # the trailing allowance covers it (it reads at most one chunk ahead)
    tee.limits = _with_trailing(limits, limits.max_trailing + CHUNK)
    total = reader.finish()
    if entries == 0 and total == 0:
        raise InvalidArchive("empty layer: not a tar stream")
    return LayerScan(diff_id(), size, total, compression, entries)


def _with_trailing(limits: Limits, trailing: int) -> Limits:
    return Limits(limits.max_size, limits.max_ratio, limits.ratio_floor, trailing)
