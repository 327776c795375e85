"""Diff ID and unpacked size of a layer measured while it downloads.

``Store.add_image`` needs each new layer's diff ID (checked against the config)
and unpacked size; without them it reads every new layer blob once more after
the download (a second decompression pass over the whole image). A
:class:`LayerScan` takes the compressed bytes as they arrive: they go through a
bounded queue (the downloaded chunks themselves, no copy) to a thread that
decompresses them and walks the tar with the store's own scanner, so
decompression overlaps the network and the result is ready when the last byte is
written. The queue's bound keeps memory flat.

If the scanner fails (not a tar, corrupt gzip) it keeps draining the queue so the
downloader never blocks, and :meth:`LayerScan.result` raises the error.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import BinaryIO, cast

from gantry.digest import Digest
from gantry.errors import GantryError
from gantry.store import scan_layer  # the store's own measure: same size rule, same diff ID

__all__ = ["LayerScan"]

_CHUNK = 1 << 20
#: chunks in flight between the download and the scan (each as big as a network read,
#: ~1 MiB): enough to ride out a slow moment of either side, and memory stays flat
_QUEUE_CHUNKS = 8


class _Chunks:
    """The scan thread's side of the hand-over: ``read(n)`` over the queued ``bytes``.

    Chunks are passed by reference, not through an OS pipe: a pipe copied every byte
    twice more (into the kernel and out again), which measured here as more CPU than
    the scan itself (about 1.1 s of system time per GiB).
    """

    __slots__ = ("_buf", "_eof", "_pos", "_q")

    def __init__(self, q: queue.Queue[bytes | None]) -> None:
        self._q = q
        self._buf = b""
        self._pos = 0
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        while self._pos >= len(self._buf):
            if self._eof:
                return b""
            item = self._q.get()
            if item is None:
                self._eof = True
                return b""
            self._buf, self._pos = item, 0
        if self._pos == 0 and (n < 0 or n >= len(self._buf)):
            out, self._buf = self._buf, b""  # the common case: the whole chunk, no copy
            return out
        end = len(self._buf) if n < 0 else min(len(self._buf), self._pos + n)
        out = self._buf[self._pos : end]
        self._pos = end
        return out

    def drain(self) -> None:
        """Take what is left, to the end mark, so the writer never blocks."""
        while not self._eof:
            if self._q.get() is None:
                self._eof = True
        self._buf = b""


class LayerScan:
    """Feed a layer blob's bytes in order with :meth:`write`; :meth:`result` gives
    ``(diff ID, unpacked size)``. ``prefix``: a file whose first ``offset`` bytes
    were downloaded earlier (a resumed ingest) and are fed first."""

    def __init__(self, prefix: Path | None = None, offset: int = 0) -> None:
        self._q: queue.Queue[bytes | None] = queue.Queue(_QUEUE_CHUNKS)
        self._ended = False
        self._result: tuple[Digest, int] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="layer-scan", daemon=True)
        self._thread.start()
        if prefix is not None and offset:
            with open(prefix, "rb") as f:
                left = offset
                while left:
                    chunk = f.read(min(_CHUNK, left))
                    if not chunk:
                        self.close()
                        raise GantryError(f"{prefix}: shorter than the {offset} bytes resumed")
                    self.write(chunk)
                    left -= len(chunk)

    def _run(self) -> None:
        reader = _Chunks(self._q)
        try:
            self._result = scan_layer(cast(BinaryIO, reader))  # read(n) is all it uses
        except BaseException as err:  # reported by result(); keep the writer unblocked
            self._error = err
        finally:
            reader.drain()  # bytes after the end of the compressed stream, or after an error

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        # bytes are immutable: handed over as they are; anything else may be reused by
        # the caller, so it is copied
        self._q.put(data if isinstance(data, bytes) else bytes(data))

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._q.put(None)

    def result(self) -> tuple[Digest, int]:
        """Signal the end of the blob and wait for the scan."""
        self._end()
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def close(self) -> None:
        """Stop without a result (download abandoned)."""
        self._end()
        self._thread.join()
