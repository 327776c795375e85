"""The build context: which ignore file applies, and a fast filtered walk of the files.

``find_dockerignore`` follows BuildKit: ``<Dockerfile>.dockerignore`` next to the
Dockerfile wins over ``.dockerignore`` at the root of the context.

``walk_context`` yields the entries of a context that survive the ignore patterns, in
the lexical, depth-first order BuildKit's file walker uses, with '/'-separated relative
paths. A path is excluded exactly when ``PatternMatcher.matches`` says so (BuildKit's
walker can differ in one corner: an inclusion pattern repeated after a ``!`` exception,
as in ``a``, ``!**/c.log``, ``a``, does not exclude ``a/c.log`` there). Excluded directories are skipped whole unless a ``!`` exception could re-include
something below them; a directory that is itself excluded but holds re-included entries
is still yielded (just before the first of them), as BuildKit sends it. Symlinks are not
followed. Each entry carries its ``lstat`` result; :meth:`Entry.stat_key` is the tuple a
file-hash cache can be keyed on.
"""

from __future__ import annotations

import os
import stat as statmod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from gantry.errors import NotFound

if TYPE_CHECKING:  # imported when used: a context without an ignore file needs no regexps
    from gantry.dockerfile.ignore import PatternMatcher

__all__ = [
    "Entry",
    "StatKey",
    "context_matcher",
    "find_dockerignore",
    "walk_context",
]


class StatKey(NamedTuple):
    """What must be unchanged for a cached content digest of a file to stay valid."""

    ino: int
    size: int
    mtime_ns: int
    mode: int
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class Entry:
    """One file, directory, symlink or special file of the context."""

    relpath: str
    stat: os.stat_result

    @property
    def is_dir(self) -> bool:
        return statmod.S_ISDIR(self.stat.st_mode)

    @property
    def is_symlink(self) -> bool:
        return statmod.S_ISLNK(self.stat.st_mode)

    @property
    def is_file(self) -> bool:
        return statmod.S_ISREG(self.stat.st_mode)

    def stat_key(self) -> StatKey:
        st = self.stat
        return StatKey(st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode, st.st_uid, st.st_gid)


def find_dockerignore(
    context_dir: str | os.PathLike[str], dockerfile_path: str | os.PathLike[str] | None = None
) -> Path | None:
    """The ignore file for a build, or None.

    ``<dockerfile_path>.dockerignore`` (e.g. ``app.Dockerfile.dockerignore`` beside
    ``app.Dockerfile``) is used when it exists; otherwise ``<context>/.dockerignore``.
    ``dockerfile_path`` defaults to ``<context>/Dockerfile``.
    """
    context = Path(context_dir)
    dockerfile = Path(dockerfile_path) if dockerfile_path is not None else context / "Dockerfile"
    specific = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if specific.is_file():
        return specific
    generic = context / ".dockerignore"
    if generic.is_file():
        return generic
    return None


def context_matcher(
    context_dir: str | os.PathLike[str], dockerfile_path: str | os.PathLike[str] | None = None
) -> PatternMatcher:
    """The compiled ignore patterns for a build (empty when there is no ignore file)."""
    from gantry.dockerfile.ignore import PatternMatcher, read_dockerignore

    path = find_dockerignore(context_dir, dockerfile_path)
    if path is None:
        return PatternMatcher([])
    return PatternMatcher(read_dockerignore(path))


class _Frame:
    __slots__ = ("dir_path", "entries", "index", "info", "pending", "prefix")

    def __init__(
        self,
        dir_path: str,
        prefix: str,
        entries: list[os.DirEntry[str]],
        info: tuple[bool, ...],
        pending: Entry | None,
    ) -> None:
        self.dir_path = dir_path
        self.prefix = prefix
        self.entries = entries
        self.index = 0
        self.info = info
        self.pending = pending


def _scan(path: str) -> list[os.DirEntry[str]]:
    with os.scandir(path) as it:
        entries = list(it)
    entries.sort(key=lambda e: e.name)
    return entries


def walk_context(
    root: str | os.PathLike[str], matcher: PatternMatcher | None = None
) -> Iterator[Entry]:
    """Yield the entries of the context at ``root`` that ``matcher`` does not exclude.

    Paths are relative to ``root`` with '/' separators (``src/app.py``); the root itself
    is not yielded. Raises :class:`NotFound` when ``root`` is not a directory.
    """
    top = os.fspath(root)
    if not os.path.isdir(top):
        raise NotFound(f"unable to prepare context: path {top!r} not found")
    pm = matcher if matcher is not None and matcher.patterns else None
    patterns = pm.patterns if pm is not None else []
    npat = len(patterns)
    root_info = (False,) * npat
    stack: list[_Frame] = [_Frame(top, "", _scan(top), root_info, None)]
    pending_count = 0

    while stack:
        frame = stack[-1]
        if frame.index >= len(frame.entries):
            stack.pop()
            if frame.pending is not None:
                pending_count -= 1
            continue
        de = frame.entries[frame.index]
        frame.index += 1
        rel = frame.prefix + de.name
        is_dir = de.is_dir(follow_symlinks=False)

        excluded = False
        info = root_info
        if pm is not None:
            # flags[i]: pattern i matches this path or one of its parents. Unlike
            # patternmatcher's MatchesUsingParentResults (BuildKit's walker), a pattern
            # skipped for the parent is still recorded, so the result always equals
            # PatternMatcher.matches (MatchesOrParentMatches).
            parent = frame.info
            matched = False
            flags = []
            for idx in range(npat):
                pat = patterns[idx]
                hit = parent[idx] or pat.match(rel)
                flags.append(hit)
                if hit and pat.exclusion == matched:
                    matched = not matched
            excluded = matched
            info = tuple(flags)

        if excluded:
            if not is_dir or pm is None or not pm.can_reinclude_below(rel):
                continue
            entry = Entry(rel, de.stat(follow_symlinks=False))
            stack.append(_Frame(de.path, rel + "/", _scan(de.path), info, entry))
            pending_count += 1
            continue

        if pending_count:
            for f in stack:
                if f.pending is not None:
                    yield f.pending
                    f.pending = None
            pending_count = 0
        yield Entry(rel, de.stat(follow_symlinks=False))
        if is_dir:
            stack.append(_Frame(de.path, rel + "/", _scan(de.path), info, None))
