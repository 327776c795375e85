"""COPY/ADD sources: selecting files, hashing exactly what was selected, copying it.

The build context is walked once per build (``.dockerignore`` applied by
:func:`gantry.dockerfile.context.walk_context`); each COPY then selects from that
index with Go's ``filepath.Match`` wildcards, as BuildKit does. The cache key of a
COPY covers, for every selected entry: its path below the source, type, mode,
uid/gid, xattrs, symlink target and content digest -- never its mtime.

Content digests come from a stat cache, one file per build context
(``<root>/build/context-hashes/<digest of the context's path>.json``, so a build
reads and rewrites only its own context's entries), keyed by path and (device,
inode, size, mtime_ns, ctime_ns): a file whose stat is unchanged is not read again,
one that changed in any of these is re-hashed (so a touched file with the same
content still hits).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from gantry.errors import BuildError

_CHUNK = 1 << 20
_WILDCARD = re.compile(r"[*?\[\\]")


# --------------------------------------------------------------------- wildcards


@lru_cache(maxsize=256)
def _match_regex(pattern: str) -> re.Pattern[str]:
    """Go's ``path.Match`` for one '/'-free component, as a regex."""
    out = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            j = i + 1
            neg = False
            if j < n and pattern[j] == "^":
                neg = True
                j += 1
            cls = []
            while j < n and pattern[j] != "]":
                c = pattern[j]
                if c == "\\" and j + 1 < n:
                    j += 1
                    c = pattern[j]
                    cls.append(re.escape(c))
                elif c == "-":
                    cls.append("-")
                else:
                    cls.append(re.escape(c))
                j += 1
            if j >= n:
                raise BuildError(f"syntax error in pattern: {pattern}")
            out.append("[" + ("^" if neg else "") + "".join(cls) + "]")
            i = j
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def has_wildcard(pattern: str) -> bool:
    return bool(_WILDCARD.search(pattern))


def go_match(pattern: str, name: str) -> bool:
    return _match_regex(pattern).match(name) is not None


def clean(path: str) -> str:
    """Go's ``path.Clean`` of a source path, made relative ('' for the root)."""
    parts: list[str] = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    return "/".join(parts)


# --------------------------------------------------------------------- hashing


def hash_cache_path(root: Path, context: Path) -> Path:
    """Where the stat cache of the build context ``context`` lives in the store ``root``."""
    name = hashlib.sha256(os.path.abspath(context).encode()).hexdigest()[:32]
    return root / "build" / "context-hashes" / f"{name}.json"


class HashCache:
    """Content digests of files keyed by their stat; persisted between builds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, list[object]] | None = None
        self._dirty = False

    def _load(self) -> dict[str, list[object]]:
        if self._data is None:
            try:
                with open(self.path, encoding="utf-8") as f:
                    data = json.load(f)
                self._data = data if isinstance(data, dict) else {}
            except (OSError, ValueError):
                self._data = {}
        return self._data

    def digest(self, path: str, st: os.stat_result) -> str:
        data = self._load()
        key = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        hit = data.get(path)
        if hit is not None and hit[:5] == key:
            return str(hit[5])
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        value = h.hexdigest()
        data[path] = [*key, value]
        self._dirty = True
        return value

    def tree(self, name: str, signature: str) -> str | None:
        """The digest remembered for the tree ``name`` when its stats read ``signature``."""
        hit = self._load().get("tree\0" + name)
        if hit is not None and len(hit) == 2 and hit[0] == signature:
            return str(hit[1])
        return None

    def set_tree(self, name: str, signature: str, digest: str) -> None:
        """Remember ``digest`` for the tree ``name`` (one per name: the latest)."""
        self._load()["tree\0" + name] = [signature, digest]
        self._dirty = True

    def save(self) -> None:
        if not self._dirty or self._data is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
        # dumps, not dump: dump streams through the pure-Python encoder (10x slower)
        text = json.dumps(self._data, separators=(",", ":"))
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.path)
        self._dirty = False


def _xattrs(path: str) -> list[tuple[str, str]]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []
    out = []
    for name in sorted(names):
        if name.startswith(("trusted.overlay.", "user.overlay.", "security.selinux")):
            continue
        with contextlib.suppress(OSError):
            out.append((name, os.getxattr(path, name, follow_symlinks=False).hex()))
    return out


def entry_record(path: str, rel: str, st: os.stat_result, hashes: HashCache | None) -> str:
    """One line of a source's cache key: everything about the entry except its mtime."""
    mode = st.st_mode
    if stat.S_ISREG(mode):
        kind, extra = "f", hashes.digest(path, st) if hashes else _sha256_file(path)
    elif stat.S_ISDIR(mode):
        kind, extra = "d", ""
    elif stat.S_ISLNK(mode):
        kind, extra = "l", os.readlink(path)
    else:
        kind, extra = "s", f"{st.st_rdev}"
    xa = _xattrs(path)
    return json.dumps(
        [rel, kind, stat.S_IMODE(mode), st.st_uid, st.st_gid, extra, xa], separators=(",", ":")
    )


def tree_digest(
    top: str,
    top_stat: os.stat_result,
    entries: list[tuple[str, str, os.stat_result]],
    hashes: HashCache,
    name: str,
) -> str:
    """The digest of a directory's :func:`entry_record` lines (``top`` first, then each
    ``(rel, path, lstat)`` of ``entries``), remembered in ``hashes`` under ``name`` by a
    signature of the stats: a rebuild whose tree did not change reads no file, no xattr.

    The signature holds what :class:`HashCache` trusts for contents (device, inode, size,
    mtime, ctime: a changed xattr or owner moves ctime) plus mode, owner and rdev.
    """
    sig = hashlib.sha256()
    for rel, s in (("", top_stat), *((r, s) for r, _p, s in entries)):
        sig.update(
            f"{rel}\0{s.st_mode} {s.st_uid} {s.st_gid} {s.st_size} {s.st_dev} {s.st_ino} "
            f"{s.st_mtime_ns} {s.st_ctime_ns} {s.st_rdev}\n".encode("utf-8", "surrogateescape")
        )
    signature = sig.hexdigest()
    known = hashes.tree(name, signature)
    if known is not None:
        return known
    h = hashlib.sha256()
    h.update(entry_record(top, "", top_stat, None).encode())
    for rel, path, s in entries:
        h.update(b"\n" + entry_record(path, rel, s, hashes).encode())
    digest = h.hexdigest()
    hashes.set_tree(name, signature, digest)
    return digest


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------- context index


@dataclass(frozen=True)
class Selected:
    """One matched source: ``rel`` inside the source root, and its (followed) host path."""

    rel: str
    path: str
    is_dir: bool


class ContextIndex:
    """The entries of a build context that survive ``.dockerignore``, walked once."""

    def __init__(self, root: Path, entries: dict[str, os.stat_result]) -> None:
        self.root = root
        self.entries = entries
        self._children: dict[str, list[str]] | None = None

    @classmethod
    def walk(cls, root: Path, matcher: object) -> ContextIndex:
        from gantry.dockerfile.context import walk_context

        entries = {e.relpath: e.stat for e in walk_context(root, matcher)}  # type: ignore[arg-type]  # PatternMatcher
        return cls(root, entries)

    def children(self) -> dict[str, list[str]]:
        if self._children is None:
            ch: dict[str, list[str]] = {"": []}
            for rel in self.entries:  # lexical, parents before children
                parent, _, _ = rel.rpartition("/")
                ch.setdefault(parent, []).append(rel)
            self._children = ch
        return self._children

    def below(self, top: str) -> Iterator[str]:
        """Every indexed path under ``top`` (not ``top`` itself), depth first, sorted."""
        ch = self.children()
        stack = list(reversed(ch.get(top, [])))
        while stack:
            rel = stack.pop()
            yield rel
            stack.extend(reversed(ch.get(rel, [])))

    def select(self, source: str) -> list[Selected]:
        """The entries a COPY source names; raises BuildError like BuildKit when none."""
        want = clean(source)
        if not has_wildcard(want):
            if want == "":
                return [Selected("", str(self.root), True)]
            st = self.entries.get(want)
            if st is None:
                raise BuildError(f'failed to compute cache key: "/{want}": not found')
            return [self._follow(want, st)]
        parts = want.split("/")
        current = [""]
        for part in parts:
            nxt: list[str] = []
            for base in current:
                for rel in self.children().get(base, []):
                    name = rel.rpartition("/")[2]
                    if go_match(part, name):
                        nxt.append(rel)
            current = nxt
        return [self._follow(rel, self.entries[rel]) for rel in current]

    def _follow(self, rel: str, st: os.stat_result) -> Selected:
        path = os.path.join(self.root, rel)
        if stat.S_ISLNK(st.st_mode):
            from gantry.runtime.rootfs import resolve_in_root

            try:
                real = resolve_in_root(self.root, rel)
            except (FileNotFoundError, NotADirectoryError):
                raise BuildError(f'failed to compute cache key: "/{rel}": not found') from None
            return Selected(rel, str(real), real.is_dir())
        return Selected(rel, path, stat.S_ISDIR(st.st_mode))


# --------------------------------------------------------------------- copying


Chmod = Callable[[int, bool], int]


def parse_chmod(value: str) -> Chmod:
    """``--chmod``: octal (``755``) or symbolic (``u+x,go-w``); returns mode(old, is_dir)."""
    if re.fullmatch(r"[0-7]+", value):
        mode = int(value, 8)
        if mode > 0o7777:
            raise BuildError(f"invalid chmod parameter {value!r}")
        return lambda _old, _d: mode
    clauses = value.split(",")

    def apply(old: int, is_dir: bool) -> int:
        mode = old & 0o7777
        for clause in clauses:
            m = re.fullmatch(r"([ugoa]*)([-+=])([rwxXst]*)", clause)
            if m is None:
                raise BuildError(f"invalid chmod parameter {value!r}")
            who, op, perms = m.groups()
            if not who or "a" in who:
                who = "ugo"
            bits = 0
            for p in perms:
                for w in who:
                    shift = {"u": 6, "g": 3, "o": 0}[w]
                    if p == "r":
                        bits |= 4 << shift
                    elif p == "w":
                        bits |= 2 << shift
                    elif p == "x" or (p == "X" and (is_dir or old & 0o111)):
                        bits |= 1 << shift
                    elif p == "s" and w in "ug":
                        bits |= 0o4000 if w == "u" else 0o2000
                    elif p == "t":
                        bits |= 0o1000
            if op == "+":
                mode |= bits
            elif op == "-":
                mode &= ~bits
            else:
                mask = 0
                for w in who:
                    mask |= 0o7 << {"u": 6, "g": 3, "o": 0}[w]
                mode = (mode & ~mask) | bits
        return mode

    apply(0o644, False)  # validate now, not half way through a copy
    return apply


@dataclass
class CopyOptions:
    chown: tuple[int, int] | None = None  # None: 0:0 from the context, kept from a stage
    keep_owner: bool = False
    chmod: Chmod | None = None
    #: (relative path below the selected source) -> excluded?
    exclude: Callable[[str], bool] | None = None
    #: ADD: local tar archives (plain, gzip, bzip2, xz, zstd) are extracted
    unpack: bool = False


def is_archive(path: str) -> bool:
    """A (possibly compressed) tar, judged by its first header, as ADD decides."""
    from gantry.errors import InvalidArchive
    from gantry.layers.compression import decompressing_reader

    try:
        with open(path, "rb") as f:
            head = decompressing_reader(f).read(512)
    except (OSError, InvalidArchive, EOFError):
        return False
    if len(head) < 512 or head[257:262] != b"ustar":
        return False
    try:
        stored = int(head[148:156].split(b"\0", 1)[0].strip() or b"0", 8)
    except ValueError:
        return False
    return stored == sum(head[:148]) + 8 * 32 + sum(head[156:])


def _copy_user_xattrs(src: str, dst: str) -> None:
    """The source's ``user.*`` extended attributes onto the copy, as BuildKit's copy keeps
    them (overlayfs' own ``user.overlay.*`` aside). Nothing when either side has none."""
    try:
        names = os.listxattr(src)
    except OSError:
        return
    for name in names:
        if not name.startswith("user.") or name.startswith("user.overlay."):
            continue
        try:
            os.setxattr(dst, name, os.getxattr(src, name))
        except OSError as exc:
            if exc.errno not in (errno.ENOTSUP, errno.ENODATA):
                raise


def _set_meta(
    path: str,
    st: os.stat_result,
    opts: CopyOptions,
    *,
    is_dir: bool,
    is_link: bool,
    src: str | None = None,
) -> None:
    if opts.chown is not None:
        uid, gid = opts.chown
    elif opts.keep_owner:
        uid, gid = st.st_uid, st.st_gid
    else:
        uid, gid = 0, 0
    os.chown(path, uid, gid, follow_symlinks=False)
    if src is not None and not is_link:  # Linux keeps no user.* xattr on a symlink
        _copy_user_xattrs(src, path)
    if not is_link:
        mode = stat.S_IMODE(st.st_mode)
        if opts.chmod is not None:
            mode = opts.chmod(mode, is_dir)
        os.chmod(path, mode)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _replace_target(dst: str, want_dir: bool) -> None:
    """Clear ``dst`` for a new entry: a dir stays when a dir is wanted."""
    try:
        st = os.lstat(dst)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if want_dir:
            return
        import shutil

        shutil.rmtree(dst)
    else:
        os.unlink(dst)


def copy_file(src: str, dst: str, st: os.stat_result, opts: CopyOptions) -> None:
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        existed = os.path.isdir(dst) and not os.path.islink(dst)
        _replace_target(dst, True)
        if not existed:
            os.mkdir(dst, 0o700)
            _set_meta(dst, st, opts, is_dir=True, is_link=False, src=src)
        return
    _replace_target(dst, False)
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
        _set_meta(dst, st, opts, is_dir=False, is_link=True)
    elif stat.S_ISREG(mode):
        fin = os.open(src, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                _copy_bytes(fin, fout, st.st_size)
            finally:
                os.close(fout)
        finally:
            os.close(fin)
        _set_meta(dst, st, opts, is_dir=False, is_link=False, src=src)
    elif stat.S_ISFIFO(mode):
        os.mkfifo(dst, 0o600)
        _set_meta(dst, st, opts, is_dir=False, is_link=False, src=src)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        os.mknod(dst, mode, st.st_rdev)
        _set_meta(dst, st, opts, is_dir=False, is_link=False, src=src)
    # sockets are not copied


def _copy_bytes(fin: int, fout: int, size: int) -> None:
    """Kernel-side copy: sendfile works across filesystems (overlay included)."""
    offset = 0
    while offset < size:
        n = os.sendfile(fout, fin, offset, min(size - offset, 1 << 30))
        if n == 0:
            break
        offset += n


def copy_dir_finish(dst: str, st: os.stat_result, opts: CopyOptions, created: bool) -> None:
    """Directory mtimes are set after their contents are written."""
    if created:
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
