"""Layer compression: detect by magic, stream-decompress safely, compress reproducibly.

Reading accepts gzip (multi-member), zstd (multi-frame, skippable frames), xz
and bzip2, and plain tar. Every decoder hands out at most the number of bytes
asked for, so memory stays flat whatever the compression ratio (a decompression
bomb costs time, never RAM). A stream that ends inside a gzip member or a zstd
frame is refused as truncated; bytes after the last member are refused, except
trailing zero bytes after gzip, which GNU gzip tolerates too.

Writing is pinned so that the same tar always gives the same bytes:

* gzip: ``isal_zlib.compressobj(level, DEFLATED, 31)`` single stream, header
  mtime 0, OS byte 255. Level is isal's 1..3 (default 2: measured here as fast
  as 1 and slightly smaller). Level 0 is refused: it grows incompressible data.
* zstd: ``zstandard`` level 3 with ``threads=1`` (multi-threaded mode gives
  the same bytes for any thread count >= 1, unlike ``threads=0``), no checksum,
  no content size.

Both compressors are fed fixed 1 MiB pieces of the tar stream whatever the
caller's write pattern (isal's output depends on how its input is split).
Changing any of these changes compressed digests; they are part of gantry's
on-disk contract.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO, Any, BinaryIO, Literal, Protocol, cast

from gantry.errors import InvalidArchive

Compression = Literal["gzip", "zstd", "xz", "bzip2"]
Writable = Literal["gzip", "zstd"]

CHUNK = 1 << 20

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
BZIP2_MAGIC = b"BZh"

#: Pinned writer settings (see the module docstring).
GZIP_LEVEL = 2
ZSTD_LEVEL = 3
ZSTD_THREADS = 1


def detect(prefix: bytes) -> Compression | None:
    """The compression of a stream starting with ``prefix`` (6 bytes suffice), by magic."""
    if prefix.startswith(GZIP_MAGIC):
        return "gzip"
    if prefix.startswith(ZSTD_MAGIC):
        return "zstd"
    if prefix.startswith(XZ_MAGIC):
        return "xz"
    if prefix.startswith(BZIP2_MAGIC) and len(prefix) >= 4 and prefix[3:4] in b"123456789":
        return "bzip2"
    return None


# --------------------------------------------------------------------------- reading


class _Prefixed:
    """``f`` with some already-read bytes put back in front of it."""

    __slots__ = ("_f", "_head")

    def __init__(self, head: bytes, f: BinaryIO) -> None:
        self._head = head
        self._f = f

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0 or n >= len(self._head):
                head, self._head = self._head, b""
                return head
            head, self._head = self._head[:n], self._head[n:]
            return head
        return self._f.read(n)


def _read_prefix(f: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = f.read(n - len(data))
        if not more:
            break
        data += more
    return data


class _Reader(io.RawIOBase):
    """Base: a readable raw stream whose subclasses fill ``_produce(n)``."""

    def __init__(self, src: _Prefixed) -> None:
        super().__init__()
        self._src = src

    def readable(self) -> bool:
        return True

    def _produce(self, n: int) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._produce(len(view))
        n = len(data)
        view[:n] = data
        return n

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return self._produce(size)

    def readall(self) -> bytes:
        parts = []
        while chunk := self._produce(CHUNK):
            parts.append(chunk)
        return b"".join(parts)


class _Plain(_Reader):
    def _produce(self, n: int) -> bytes:
        return self._src.read(n)


class _Gzip(_Reader):
    """Multi-member gzip through isal (stdlib zlib if isal is missing)."""

    def __init__(self, src: _Prefixed) -> None:
        super().__init__(src)
        zlib_mod: Any
        try:
            from isal import isal_zlib as zlib_mod
        except ImportError:  # pragma: no cover - the wheel is pinned
            import zlib as zlib_mod
        self._zlib = zlib_mod
        self._dec: Any = zlib_mod.decompressobj(31)
        self._tail = b""
        self._done = False

    def _produce(self, n: int) -> bytes:
        if n <= 0:
            return b""
        zlib_error = self._zlib.error
        while not self._done:
            if self._dec.eof:
                self._next_member()
                continue
            data = self._tail
            if not data:
                # Pending output inside the decoder comes out with empty input.
                try:
                    out = self._dec.decompress(b"", n)
                except zlib_error as err:
                    raise InvalidArchive(f"invalid gzip data: {err}") from err
                if out:
                    return bytes(out)
                if self._dec.eof:
                    continue
                data = self._src.read(CHUNK)
                if not data:
                    raise InvalidArchive("unexpected EOF: gzip stream is truncated")
            try:
                out = self._dec.decompress(data, n)
            except zlib_error as err:
                raise InvalidArchive(f"invalid gzip data: {err}") from err
            self._tail = self._dec.unconsumed_tail
            if out:
                return bytes(out)
        return b""

    def _next_member(self) -> None:
        rest = self._dec.unused_data
        while len(rest) < 2:
            more = self._src.read(CHUNK)
            if not more:
                break
            rest += more
        if not rest:
            self._done = True
            return
        if rest.startswith(GZIP_MAGIC):
            self._dec = self._zlib.decompressobj(31)
            self._tail = rest
            return
        # GNU gzip accepts zero padding after the last member (tape blocking).
        while rest:
            if rest.count(0) != len(rest):
                raise InvalidArchive("invalid gzip data: trailing garbage after the last member")
            rest = self._src.read(CHUNK)
        self._done = True


class _Stdlib(_Reader):
    """xz or bzip2 (possibly several concatenated streams) through the stdlib."""

    def __init__(self, src: _Prefixed, factory: Callable[[], Any], name: str) -> None:
        super().__init__(src)
        self._factory = factory
        self._name = name
        self._dec: Any = factory()
        self._done = False
        import lzma

        self._errors: tuple[type[BaseException], ...] = (lzma.LZMAError, OSError, EOFError)

    def _produce(self, n: int) -> bytes:
        if n <= 0:
            return b""
        while not self._done:
            if self._dec.eof:
                rest = self._dec.unused_data or self._src.read(CHUNK)
                if not rest:
                    self._done = True
                    break
                self._dec = self._factory()
                data = rest
            elif self._dec.needs_input:
                data = self._src.read(CHUNK)
                if not data:
                    raise InvalidArchive(f"unexpected EOF: {self._name} stream is truncated")
            else:
                data = b""
            try:
                out = self._dec.decompress(data, n)
            except self._errors as err:
                raise InvalidArchive(f"invalid {self._name} data: {err}") from err
            if out:
                return bytes(out)
        return b""


class _ZstdFrames:
    """Follows zstd frame structure over the compressed bytes, to tell a complete
    stream from a truncated one (the zstandard stream reader cannot)."""

    __slots__ = ("checksum", "frames", "hdr", "need", "skip", "state")

    _MAGIC, _FHD, _BLOCK, _SKIPSIZE = range(4)

    def __init__(self) -> None:
        self.state = self._MAGIC
        self.need = 4
        self.hdr = b""
        self.skip = 0
        self.frames = 0
        self.checksum = False

    def feed(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i < n:
            if self.skip:
                k = min(self.skip, n - i)
                self.skip -= k
                i += k
                continue
            take = min(self.need - len(self.hdr), n - i)
            self.hdr += data[i : i + take]
            i += take
            if len(self.hdr) == self.need:
                hdr, self.hdr = self.hdr, b""
                self._advance(hdr)

    def _advance(self, hdr: bytes) -> None:
        if self.state == self._MAGIC:
            magic = int.from_bytes(hdr, "little")
            if hdr == ZSTD_MAGIC:
                self.state, self.need = self._FHD, 1
            elif magic & 0xFFFFFFF0 == 0x184D2A50:
                self.state, self.need = self._SKIPSIZE, 4
            else:
                raise InvalidArchive("invalid zstd data: unknown frame magic")
        elif self.state == self._FHD:
            fhd = hdr[0]
            if fhd & 0x08:
                raise InvalidArchive("invalid zstd data: reserved frame header bit set")
            single = (fhd >> 5) & 1
            self.checksum = bool((fhd >> 2) & 1)
            fcs = (1 if single else 0, 2, 4, 8)[fhd >> 6]
            self.skip = (0 if single else 1) + (0, 1, 2, 4)[fhd & 3] + fcs
            self.state, self.need = self._BLOCK, 3
        elif self.state == self._BLOCK:
            value = int.from_bytes(hdr, "little")
            last, btype, bsize = value & 1, (value >> 1) & 3, value >> 3
            if btype == 3:
                raise InvalidArchive("invalid zstd data: reserved block type")
            self.skip = 1 if btype == 1 else bsize
            if last:
                self.skip += 4 if self.checksum else 0
                self.frames += 1
                self.state, self.need = self._MAGIC, 4
        else:  # skippable frame size
            self.skip = int.from_bytes(hdr, "little")
            self.frames += 1
            self.state, self.need = self._MAGIC, 4

    def complete(self) -> bool:
        return self.state == self._MAGIC and not self.hdr and not self.skip and self.frames > 0


class _TrackedSource:
    """Source for the zstd reader that feeds every byte to a :class:`_ZstdFrames`."""

    def __init__(self, src: _Prefixed, frames: _ZstdFrames) -> None:
        self._src = src
        self._frames = frames

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        if data:
            self._frames.feed(data)
        elif not self._frames.complete():
            raise InvalidArchive("unexpected EOF: zstd stream is truncated")
        return data


class _Zstd(_Reader):
    def __init__(self, src: _Prefixed) -> None:
        super().__init__(src)
        import zstandard

        self._error: type[BaseException] = zstandard.ZstdError
        self._frames = _ZstdFrames()
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            cast(IO[bytes], _TrackedSource(src, self._frames)),
            read_size=CHUNK,
            read_across_frames=True,
        )

    def _produce(self, n: int) -> bytes:
        if n <= 0:
            return b""
        try:
            data = self._reader.read(n)
        except self._error as err:
            raise InvalidArchive(f"invalid zstd data: {err}") from err
        if not data and not self._frames.complete():
            raise InvalidArchive("unexpected EOF: zstd stream is truncated")
        return data


def decompressing_reader(f: BinaryIO, compression: Compression | str | None = "auto") -> BinaryIO:
    """A binary stream of the decompressed content of ``f``.

    ``compression="auto"`` detects by magic (plain data passes through). Errors in
    the compressed data raise :class:`InvalidArchive` from ``read()``.
    """
    head = _read_prefix(f, 6)
    if compression == "auto":
        compression = detect(head)
    return _decoder(_Prefixed(head, f), compression)


def open_decompressed(f: BinaryIO) -> tuple[BinaryIO, Compression | None]:
    """``(decompressed stream, compression detected by magic)`` for ``f``."""
    head = _read_prefix(f, 6)
    compression = detect(head)
    return _decoder(_Prefixed(head, f), compression), compression


def _decoder(src: _Prefixed, compression: str | None) -> BinaryIO:
    reader: _Reader
    if compression is None:
        reader = _Plain(src)
    elif compression == "gzip":
        reader = _Gzip(src)
    elif compression == "zstd":
        reader = _Zstd(src)
    elif compression == "xz":
        import lzma  # xz and bzip2 are rare: their modules load only when met

        reader = _Stdlib(src, lzma.LZMADecompressor, "xz")
    elif compression == "bzip2":
        import bz2

        reader = _Stdlib(src, bz2.BZ2Decompressor, "bzip2")
    else:
        raise InvalidArchive(f"unsupported compression: {compression}")
    return cast(BinaryIO, reader)


# --------------------------------------------------------------------------- writing


class Sink(Protocol):
    """Anything with ``write(bytes)``: a file, a socket wrapper, a content-store writer."""

    def write(self, data: bytes | bytearray | memoryview, /) -> object: ...


class CompressingWriter:
    """Compresses what is written into ``out`` (which is not closed by :meth:`close`).

    ``close()`` ends the compressed stream; the object is then spent.
    """

    def __init__(self, out: Sink, compression: Writable | None, level: int | None = None) -> None:
        self._out = out
        self._closed = False
        self._pending = bytearray()
        self._compress: Callable[[bytes | bytearray | memoryview], bytes]
        self._finish: Callable[[], bytes]
        if compression is None:
            self._compress = bytes
            self._finish = bytes
        elif compression == "gzip":
            lvl = GZIP_LEVEL if level is None else level
            if not 1 <= lvl <= 3:
                raise ValueError("gzip level must be 1..3 (isal levels)")
            from isal import isal_zlib

            obj = isal_zlib.compressobj(lvl, isal_zlib.DEFLATED, 31)
            self._compress, self._finish = obj.compress, obj.flush
        elif compression == "zstd":
            import zstandard

            lvl = ZSTD_LEVEL if level is None else level
            cobj = zstandard.ZstdCompressor(
                level=lvl, threads=ZSTD_THREADS, write_checksum=False, write_content_size=False
            ).compressobj()
            self._compress, self._finish = cobj.compress, cobj.flush
        else:
            raise ValueError(f"unsupported compression for writing: {compression}")
        self._plain = compression is None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = len(data)
        if self._plain:
            self._out.write(data)
            return n
        # The compressor sees fixed CHUNK-sized pieces whatever the caller's write
        # pattern: isal's output depends on how its input was split.
        view = memoryview(data).cast("B")
        if self._pending:
            need = CHUNK - len(self._pending)
            self._pending += view[:need]
            view = view[need:]
            if len(self._pending) < CHUNK:
                return n
            self._feed(self._pending)
            self._pending = bytearray()
        while len(view) >= CHUNK:
            self._feed(view[:CHUNK])
            view = view[CHUNK:]
        if len(view):
            self._pending += view
        return n

    def _feed(self, piece: bytes | bytearray | memoryview) -> None:
        out = self._compress(piece)
        if out:
            self._out.write(out)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pending:
            self._feed(self._pending)
            self._pending = bytearray()
        tail = self._finish()
        if tail:
            self._out.write(tail)

    def __enter__(self) -> CompressingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def compressing_writer(
    out: Sink, compression: Writable | None, *, level: int | None = None
) -> CompressingWriter:
    """A writer compressing into ``out`` with gantry's pinned settings."""
    return CompressingWriter(out, compression, level)
