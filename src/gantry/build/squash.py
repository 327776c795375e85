"""``--squash``: several overlay upper directories merged into one, as one layer.

Each snapshot of a built step is an overlay *upper* directory: files it added or
changed, whiteouts (0/0 character devices) for what it deleted and an opaque xattr on
directories it replaced. Merging uppers bottom first gives the upper of all those steps
together, relative to the same base:

- a directory merges into the one already there (an opaque one first empties it, and
  stays marked opaque so the base's contents stay hidden);
- anything else replaces what is there (a whiteout included: the base may have had
  the path);

so the cost is proportional to what the squashed steps wrote, never to the image.
Regular files are hard-linked from the snapshots (they are never written in place).
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

_OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")
_OPAQUE = ("trusted.overlay.opaque", "user.overlay.opaque")


def _is_opaque(path: str) -> bool:
    for name in _OPAQUE:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _copy_meta(src: str, dst: str, st: os.stat_result) -> None:
    """Owner, mode, xattrs (overlay's own left out, the opaque mark kept) and times."""
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        names = []
    for name in names:
        if name.startswith(_OVERLAY_XATTRS) and name not in _OPAQUE:
            continue
        try:
            value = os.getxattr(src, name, follow_symlinks=False)
            os.setxattr(dst, name, value, follow_symlinks=False)
        except OSError:
            continue
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _place(src: str, dst: str, st: os.stat_result) -> None:
    """A copy of the non-directory ``src`` at ``dst`` (which no longer exists)."""
    mode = st.st_mode
    if stat.S_ISREG(mode):
        try:
            os.link(src, dst)
            return
        except OSError:
            shutil.copyfile(src, dst, follow_symlinks=False)
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        os.mknod(dst, mode, st.st_rdev)
    elif stat.S_ISSOCK(mode):
        return  # sockets never go into layers
    _copy_meta(src, dst, st)


def merge_uppers(uppers: Sequence[Path], dest: Path) -> None:
    """Merge overlay upper directories (bottom first) into the new directory ``dest``."""
    dest.mkdir()
    #: directory -> the (source, stat) of the topmost upper that has it
    dirs: dict[str, tuple[str, os.stat_result]] = {}
    for upper in uppers:
        top = os.fspath(upper)
        for dirpath, dirnames, filenames in os.walk(top):
            rel = os.path.relpath(dirpath, top)
            out_dir = os.path.join(dest, rel) if rel != "." else os.fspath(dest)
            names = list(filenames)
            for name in list(dirnames):
                src = os.path.join(dirpath, name)
                st = os.lstat(src)
                if stat.S_ISLNK(st.st_mode):  # a symlink to a directory: not walked
                    dirnames.remove(name)
                    names.append(name)
                    continue
                dst = os.path.join(out_dir, name)
                existing = os.path.lexists(dst)
                if existing and (_is_opaque(src) or os.path.islink(dst) or not os.path.isdir(dst)):
                    _remove(dst)
                    existing = False
                if not existing:
                    os.mkdir(dst, 0o700)
                dirs[dst] = (src, st)
            for name in names:
                src = os.path.join(dirpath, name)
                dst = os.path.join(out_dir, name)
                _remove(dst)
                _place(src, dst, os.lstat(src))
    # directory metadata last (children change their times), deepest first
    for dst in sorted(dirs, key=lambda d: d.count("/"), reverse=True):
        src, st = dirs[dst]
        _copy_meta(src, dst, st)
    if uppers:
        os.chmod(dest, stat.S_IMODE(os.lstat(uppers[-1]).st_mode))
