"""Diff ID and unpacked size of a layer measured while it downloads.

``Store.add_image`` needs each new layer's diff ID (checked against the config)
and unpacked size; without them it reads every new layer blob once more after
the download (a second decompression pass over the whole image). A
:class:`LayerScan` takes the compressed bytes as they arrive: they go through a
pipe to a thread that decompresses them and walks the tar with the store's own
scanner, so decompression overlaps the network and the result is ready when the
last byte is written. The pipe's bounded buffer keeps memory flat.

If the scanner fails (not a tar, corrupt gzip) it keeps draining the pipe so the
downloader never blocks, and :meth:`LayerScan.result` raises the error.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import threading
from pathlib import Path

from gantry.digest import Digest
from gantry.errors import GantryError
from gantry.store import scan_layer  # the store's own measure: same size rule, same diff ID

__all__ = ["LayerScan"]

_F_SETPIPE_SZ = 1031  # Linux fcntl; absent from Python's fcntl module before 3.10 on some builds
_PIPE_SIZE = 1 << 20


def _drain(f: io.FileIO) -> None:
    while f.read(_PIPE_SIZE):
        pass


class LayerScan:
    """Feed a layer blob's bytes in order with :meth:`write`; :meth:`result` gives
    ``(diff ID, unpacked size)``. ``prefix``: a file whose first ``offset`` bytes
    were downloaded earlier (a resumed ingest) and are fed first."""

    def __init__(self, prefix: Path | None = None, offset: int = 0) -> None:
        self._rfd, self._wfd = os.pipe()
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._wfd, _F_SETPIPE_SZ, _PIPE_SIZE)
        self._result: tuple[Digest, int] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="layer-scan", daemon=True)
        self._thread.start()
        if prefix is not None and offset:
            with open(prefix, "rb") as f:
                left = offset
                while left:
                    chunk = f.read(min(_PIPE_SIZE, left))
                    if not chunk:
                        raise GantryError(f"{prefix}: shorter than the {offset} bytes resumed")
                    self.write(chunk)
                    left -= len(chunk)

    def _run(self) -> None:
        reader = io.FileIO(self._rfd, "rb", closefd=True)
        try:
            self._result = scan_layer(reader)
            _drain(reader)  # bytes after the end of the compressed stream
        except BaseException as err:  # reported by result(); keep the writer unblocked
            self._error = err
            with contextlib.suppress(OSError):
                _drain(reader)
        finally:
            reader.close()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._wfd, view)
            except BrokenPipeError:
                return  # the scanner stopped early; result() says why
            view = view[n:]

    def _close_writer(self) -> None:
        if self._wfd >= 0:
            os.close(self._wfd)
            self._wfd = -1

    def result(self) -> tuple[Digest, int]:
        """Signal the end of the blob and wait for the scan."""
        self._close_writer()
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def close(self) -> None:
        """Stop without a result (download abandoned)."""
        self._close_writer()
        self._thread.join()
