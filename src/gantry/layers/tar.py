"""The tar format, by hand: a strict streaming reader and a deterministic header writer.

Reader: ustar, GNU (``L``/``K`` long names, base-256 numbers) and PAX (``x``
records: path, linkpath, size, uid, gid, mtime, ``SCHILY.xattr.*``; ``g``
global headers are read and ignored, as Docker does). Every byte read is
hashed, so the caller gets the diff ID of the whole uncompressed stream. It
refuses: bad checksums, malformed numbers, a stream ending inside a header or
an entry's data (an entry whose header size disagrees with its data), sparse and
multi-volume entries, extended headers over 1 MiB, and streams over a cap.

Writer: one header (plus a PAX extended header when a field does not fit ustar
or the entry has xattrs) as bytes, with fixed field formatting, empty
uname/gname and a fixed PAX header name, so equal input gives equal bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import BinaryIO

from gantry.digest import Digest
from gantry.errors import InvalidArchive

BLOCK = 512
CHUNK = 1 << 20
ZERO_BLOCK = bytes(BLOCK)
#: Largest PAX extended header / GNU long name accepted (each).
MAX_EXTENDED = 1 << 20

REG, AREG, CONTREG = b"0", b"\x00", b"7"
LNK, SYM, CHR, BLK, DIR, FIFO = b"1", b"2", b"3", b"4", b"5", b"6"
PAX, PAX_GLOBAL, GNU_LONGNAME, GNU_LONGLINK = b"x", b"g", b"L", b"K"
GNU_SPARSE, GNU_MULTIVOL, GNU_VOLHDR, GNU_DUMPDIR = b"S", b"M", b"V", b"D"
#: Types whose data, whatever the size field says, is empty (as Go's archive/tar).
HEADER_ONLY = frozenset({LNK, SYM, CHR, BLK, DIR, FIFO})
REGULAR = frozenset({REG, AREG, CONTREG})
#: Types that count in Docker's layer size (see :func:`disk_size`).
SIZED = REGULAR | {SYM}

XATTR_PREFIX = "SCHILY.xattr."


class Entry:
    """One archive member, after long-name and PAX records are applied."""

    __slots__ = (
        "devmajor",
        "devminor",
        "gid",
        "linkname",
        "mode",
        "mtime_ns",
        "name",
        "size",
        "type",
        "uid",
        "xattrs",
    )

    def __init__(self) -> None:
        self.name = b""
        self.type = REG
        self.mode = 0
        self.uid = 0
        self.gid = 0
        self.size = 0
        self.mtime_ns = 0
        self.linkname = b""
        self.devmajor = 0
        self.devminor = 0
        self.xattrs: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"Entry({self.name!r}, type={self.type!r}, size={self.size})"


def _cstr(field: bytes) -> bytes:
    end = field.find(b"\x00")
    return field if end < 0 else field[:end]


def _number(field: bytes, what: str) -> int:
    if field and field[0] & 0x80:
        # base-256 (GNU): big-endian two's complement, first byte's top bit is the marker
        value = int.from_bytes(field, "big")
        if field[0] == 0xFF:
            return value - (1 << (8 * len(field)))
        return value & ~(1 << (8 * len(field) - 1))
    text = _cstr(field).strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise InvalidArchive(f"invalid tar header: bad {what} field {field!r}") from None


def _parse_pax(data: bytes) -> dict[str, bytes]:
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # NUL padding after the records
            break
        space = data.find(b" ", pos)
        if space < 0:
            raise InvalidArchive("invalid tar header: malformed PAX record")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise InvalidArchive("invalid tar header: malformed PAX record length") from None
        end = pos + length
        if length <= 0 or end > len(data) or data[end - 1] != 0x0A:
            raise InvalidArchive("invalid tar header: malformed PAX record")
        keyvalue = data[space + 1 : end - 1]
        eq = keyvalue.find(b"=")
        if eq <= 0:
            raise InvalidArchive("invalid tar header: malformed PAX record")
        records[keyvalue[:eq].decode("utf-8", "surrogateescape")] = keyvalue[eq + 1 :]
        pos = end
    return records


def _pax_int(value: bytes, what: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InvalidArchive(f"invalid tar header: bad PAX {what} {value!r}") from None
    if number < 0:
        raise InvalidArchive(f"invalid tar header: negative PAX {what}")
    return number


def _pax_time_ns(value: bytes) -> int:
    text = value.decode("ascii", "replace")
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("-")
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise InvalidArchive(f"invalid tar header: bad PAX mtime {value!r}")
    return sign * (int(whole) * 1_000_000_000 + int((frac + "000000000")[:9] or 0))


class TarReader:
    """Streams entries out of an uncompressed tar, hashing every byte it reads.

    Iterate for entries; while positioned on an entry, :meth:`data` yields its
    content (call it at most once; unread content is skipped on the next step).
    After iteration, :meth:`finish` reads the rest of the stream so that
    :attr:`hasher` covers all of it, and returns the byte count.

    ``hash=False`` skips the sha256 (an outer archive, or a stream the caller
    already hashes): :attr:`diff_id` then raises.
    """

    def __init__(self, f: BinaryIO, *, max_size: int | None = None, hash: bool = True) -> None:
        self._f = f
        self.hasher = hashlib.sha256()
        self._hash = hash
        self.count = 0
        self._max = max_size
        self._buf = b""
        self._pos = 0
        self._remaining = 0  # data bytes of the current entry not yet consumed
        self._padding = 0
        self._done = False

    # -- low-level reads ------------------------------------------------------
    def _fill(self) -> bool:
        data = self._f.read(CHUNK)
        if not data:
            return False
        self.count += len(data)
        if self._max is not None and self.count > self._max:
            raise InvalidArchive(
                f"layer is larger than the {self._max} bytes allowed uncompressed; refusing it "
                "(possible decompression bomb)"
            )
        if self._hash:
            self.hasher.update(data)
        if self._pos < len(self._buf):
            self._buf = self._buf[self._pos :] + data
        else:
            self._buf = data
        self._pos = 0
        return True

    def _take(self, n: int) -> bytes | None:
        """Exactly ``n`` bytes; ``None`` at a clean EOF (nothing left); raises if cut short."""
        while len(self._buf) - self._pos < n:
            if not self._fill():
                if self._pos == len(self._buf):
                    return None
                raise InvalidArchive("unexpected EOF: tar stream is truncated")
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out

    def _chunks(self, n: int) -> Iterator[memoryview]:
        while n > 0:
            if self._pos >= len(self._buf) and not self._fill():
                raise InvalidArchive("unexpected EOF: tar entry data is truncated")
            k = min(n, len(self._buf) - self._pos)
            yield memoryview(self._buf)[self._pos : self._pos + k]
            self._pos += k
            n -= k
            self._remaining -= k

    def _skip(self, n: int) -> None:
        for _ in self._chunks(n):
            pass

    def _skip_current(self) -> None:
        if self._remaining:
            self._skip(self._remaining)
        if self._padding:
            pad, self._padding = self._padding, 0
            if self._take(pad) is None:
                raise InvalidArchive("unexpected EOF: tar stream is truncated")

    def _extended(self, size: int, what: str) -> bytes:
        if size > MAX_EXTENDED:
            raise InvalidArchive(f"invalid tar header: {what} of {size} bytes is too large")
        data = self._take(size) if size else b""
        if data is None:
            raise InvalidArchive("unexpected EOF: tar stream is truncated")
        pad = -size % BLOCK
        if pad and self._take(pad) is None:
            raise InvalidArchive("unexpected EOF: tar stream is truncated")
        return data

    # -- entries --------------------------------------------------------------
    def __iter__(self) -> Iterator[Entry]:
        return self

    def __next__(self) -> Entry:
        if self._done:
            raise StopIteration
        self._skip_current()
        pax: dict[str, bytes] = {}
        longname: bytes | None = None
        longlink: bytes | None = None
        while True:
            block = self._take(BLOCK)
            if block is None or block == ZERO_BLOCK:
                # A zero block (or a clean EOF, as Go accepts) ends the archive.
                self._done = True
                raise StopIteration
            self._check_sum(block)
            typeflag = block[156:157]
            size = _number(block[124:136], "size")
            if size < 0:
                raise InvalidArchive("invalid tar header: negative size")
            if typeflag == PAX:
                pax.update(_parse_pax(self._extended(size, "PAX header")))
                continue
            if typeflag == PAX_GLOBAL:
                self._extended(size, "PAX global header")
                continue
            if typeflag == GNU_LONGNAME:
                longname = _cstr(self._extended(size, "GNU long name"))
                continue
            if typeflag == GNU_LONGLINK:
                longlink = _cstr(self._extended(size, "GNU long link name"))
                continue
            return self._entry(block, typeflag, size, pax, longname, longlink)

    def _check_sum(self, block: bytes) -> None:
        stored = _number(block[148:156], "checksum")
        unsigned = sum(block) - sum(block[148:156]) + 8 * 0x20
        if stored == unsigned:
            return
        high = sum(1 for b in block if b > 127) - sum(1 for b in block[148:156] if b > 127)
        signed = unsigned - 256 * high
        if stored != signed:
            raise InvalidArchive("invalid tar header: checksum mismatch (not a tar stream?)")

    def _entry(
        self,
        block: bytes,
        typeflag: bytes,
        size: int,
        pax: dict[str, bytes],
        longname: bytes | None,
        longlink: bytes | None,
    ) -> Entry:
        if typeflag in (GNU_SPARSE, GNU_MULTIVOL) or any(k.startswith("GNU.sparse.") for k in pax):
            raise InvalidArchive("unsupported tar entry: sparse or multi-volume files")
        e = Entry()
        e.type = typeflag
        name = _cstr(block[0:100])
        if block[257:263] == b"ustar\x00":
            prefix = _cstr(block[345:500])
            if prefix:
                name = prefix + b"/" + name
        e.name = longname if longname is not None else name
        e.linkname = longlink if longlink is not None else _cstr(block[157:257])
        e.mode = _number(block[100:108], "mode") & 0o7777
        e.uid = _number(block[108:116], "uid")
        e.gid = _number(block[116:124], "gid")
        e.mtime_ns = _number(block[136:148], "mtime") * 1_000_000_000
        if typeflag in (CHR, BLK):
            e.devmajor = _number(block[329:337], "devmajor")
            e.devminor = _number(block[337:345], "devminor")
        e.size = size
        if pax:
            self._apply_pax(e, pax)
        if e.type == AREG and e.name.endswith(b"/"):
            e.type = DIR  # pre-POSIX tars mark directories by the trailing slash only
        if e.uid < 0 or e.gid < 0:
            raise InvalidArchive("invalid tar header: negative uid/gid")
        data = 0 if e.type in HEADER_ONLY else e.size
        if e.type in HEADER_ONLY:
            e.size = 0
        self._remaining = data
        self._padding = -data % BLOCK
        if e.type == GNU_VOLHDR:
            self._skip_current()
            return next(self)
        return e

    @staticmethod
    def _apply_pax(e: Entry, pax: dict[str, bytes]) -> None:
        for key, value in pax.items():
            if key == "path":
                e.name = value
            elif key == "linkpath":
                e.linkname = value
            elif key == "size":
                e.size = _pax_int(value, "size")
            elif key == "uid":
                e.uid = _pax_int(value, "uid")
            elif key == "gid":
                e.gid = _pax_int(value, "gid")
            elif key == "mtime":
                e.mtime_ns = _pax_time_ns(value)
            elif key.startswith(XATTR_PREFIX):
                e.xattrs[key[len(XATTR_PREFIX) :]] = value

    def data(self) -> Iterator[memoryview]:
        """The current entry's content in chunks (views valid until the next chunk)."""
        return self._chunks(self._remaining)

    @property
    def diff_id(self) -> Digest:
        """sha256 of every byte read so far (the diff ID once :meth:`finish` returned)."""
        if not self._hash:
            raise ValueError("this TarReader was made with hash=False")
        return Digest("sha256:" + self.hasher.hexdigest())

    def finish(self) -> int:
        """Read (and hash) whatever follows the end of the archive; return total bytes."""
        if not self._done:
            for _ in self:
                pass
        while self._fill():
            self._pos = len(self._buf)
        return self.count


# --------------------------------------------------------------------------- writing

_USTAR_MAX = 0o77777777777  # 11 octal digits: size and mtime
_ID_MAX = 0o7777777  # 7 octal digits: uid, gid, devmajor, devminor


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\x00" % (width - 1, value)


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    """(prefix, name) fitting ustar's 155/100 fields, or None."""
    if len(name) <= 100:
        return b"", name
    if len(name) > 256:
        return None
    # the name part must be at most 100 bytes: split at a slash at or after len-101
    start = len(name) - 101
    slash = name.find(b"/", max(start, 0))
    while slash != -1:
        if slash <= 155 and 0 < len(name) - slash - 1 <= 100:
            return name[:slash], name[slash + 1 :]
        if slash > 155:
            break
        slash = name.find(b"/", slash + 1)
    return None


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def _block(
    name: bytes,
    prefix: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    typeflag: bytes,
    linkname: bytes,
    devmajor: int,
    devminor: int,
) -> bytes:
    head = b"".join(
        (
            name.ljust(100, b"\x00"),
            _octal(mode, 8),
            _octal(uid, 8),
            _octal(gid, 8),
            _octal(size, 12),
            _octal(mtime, 12),
            b"        ",
            typeflag,
            linkname.ljust(100, b"\x00"),
            b"ustar\x0000",
            bytes(64),  # uname, gname: empty
            _octal(devmajor, 8),
            _octal(devminor, 8),
            prefix.ljust(155, b"\x00"),
            bytes(12),
        )
    )
    checksum = b"%06o\x00 " % sum(head)
    return head[:148] + checksum + head[156:]


def header(
    name: bytes,
    typeflag: bytes,
    *,
    mode: int,
    uid: int,
    gid: int,
    mtime: int,
    size: int = 0,
    linkname: bytes = b"",
    devmajor: int = 0,
    devminor: int = 0,
    xattrs: dict[str, bytes] | None = None,
) -> bytes:
    """The header block(s) for one entry (data and its padding are the caller's).

    Fields that do not fit ustar go to a PAX extended header written just before;
    numbers are clamped to 0 in the ustar block when PAX carries them.
    """
    records: list[tuple[bytes, bytes]] = []
    split = _split_ustar(name)
    if split is None:
        records.append((b"path", name))
        prefix, short = b"", name.rsplit(b"/", 1)[-1][:100]
    else:
        prefix, short = split
    if len(linkname) > 100:
        records.append((b"linkpath", linkname))
        linkname = b""
    if size > _USTAR_MAX:
        records.append((b"size", b"%d" % size))
    if not 0 <= mtime <= _USTAR_MAX:
        records.append((b"mtime", b"%d" % mtime))
    if uid > _ID_MAX:
        records.append((b"uid", b"%d" % uid))
    if gid > _ID_MAX:
        records.append((b"gid", b"%d" % gid))
    if devmajor > _ID_MAX or devminor > _ID_MAX:
        raise InvalidArchive("device numbers too large for a tar header")
    if xattrs:
        for key in sorted(xattrs):
            records.append(
                (XATTR_PREFIX.encode() + key.encode("utf-8", "surrogateescape"), xattrs[key])
            )
    block = _block(
        short,
        prefix,
        mode & 0o7777,
        uid if uid <= _ID_MAX else 0,
        gid if gid <= _ID_MAX else 0,
        size if size <= _USTAR_MAX else 0,
        mtime if 0 <= mtime <= _USTAR_MAX else 0,
        typeflag,
        linkname,
        devmajor,
        devminor,
    )
    if not records:
        return block
    records.sort()
    payload = b"".join(_pax_record(k, v) for k, v in records)
    pax_name = (b"PaxHeaders/" + name.rstrip(b"/").rsplit(b"/", 1)[-1])[:100]
    pax_block = _block(pax_name, b"", 0o644, 0, 0, len(payload), 0, PAX, b"", 0, 0)
    return pax_block + payload + bytes(-len(payload) % BLOCK) + block


def end_of_archive() -> bytes:
    """Two zero blocks, as every tar writer ends with."""
    return ZERO_BLOCK * 2


def disk_size(e: Entry) -> int:
    """What an entry adds to Docker's layer size (overlay2 walks the unpacked layer and sums
    ``lstat`` sizes): a regular file's length, a symlink's target length; nothing for
    directories, devices, FIFOs and hard links (the first name counted the bytes).
    Callers leave out whiteouts."""
    if e.type in REGULAR:
        return e.size
    if e.type == SYM:
        return len(e.linkname)
    return 0
