"""COPY of a directory: its cache key comes from a digest remembered by the tree's stats.

An unchanged tree must hit without reading a file; any change the key covers (content,
even at the same size and mtime, mode, an xattr, a new or removed entry) must miss.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gantry.build.builder import BuildOptions, build
from gantry.build.sources import HashCache, entry_record, tree_digest
from gantry.store import Store
from test_build_support import add_busybox, need_root


def _tree(d: Path) -> list[tuple[str, str, os.stat_result]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(d):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            out.append((os.path.relpath(p, d), p, os.lstat(p)))
    out.sort()
    return out


def _digest(d: Path, hashes: HashCache) -> str:
    return tree_digest(str(d), os.stat(d), _tree(d), hashes, "t")


def test_tree_digest_is_the_digest_of_the_entry_lines(tmp_path: Path) -> None:
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "a").write_text("a\n")
    (d / "sub" / "b").write_text("b\n")
    hashes = HashCache(tmp_path / "h.json")
    import hashlib

    lines = [entry_record(str(d), "", os.stat(d), None)]
    lines += [entry_record(p, r, s, hashes) for r, p, s in _tree(d)]
    want = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    assert _digest(d, hashes) == want


def test_remembered_digest_is_used_only_while_the_stats_match(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    f = d / "a"
    f.write_text("one\n")
    hashes = HashCache(tmp_path / "h.json")
    first = _digest(d, hashes)
    hashes.save()
    again = HashCache(tmp_path / "h.json")  # as the next build loads it
    assert again.tree("t", "not the signature") is None
    assert _digest(d, again) == first
    # same size, mtime put back: ctime still moves, and the content is read again
    st = f.stat()
    f.write_text("two\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    changed = _digest(d, again)
    assert changed != first
    os.chmod(f, 0o600)
    assert _digest(d, again) != changed
    before_xattr = _digest(d, again)
    try:
        os.setxattr(f, "user.k", b"v")
    except OSError:
        pytest.skip("no user xattrs on this filesystem")
    assert _digest(d, again) != before_xattr


def test_copy_dir_reruns_when_a_file_changes_at_same_size_and_mtime(
    root: Path, tmp_path: Path
) -> None:
    need_root()
    store = Store(root)
    try:
        add_busybox(store, tmp_path)
        ctx = tmp_path / "ctx"
        (ctx / "dir" / "sub").mkdir(parents=True)
        (ctx / "dir" / "sub" / "x").write_text("one\n")
        (ctx / "Dockerfile").write_text("FROM busybox\nCOPY dir /dir\nRUN cat /dir/sub/x\n")
        opts = BuildOptions(context=ctx, tags=["tree:1"])
        first = build(store, opts)
        assert first.cached == 0
        hit = build(store, BuildOptions(context=ctx, tags=["tree:1"], lint=False))
        assert hit.cached == hit.steps
        x = ctx / "dir" / "sub" / "x"
        st = x.stat()
        x.write_text("two\n")
        os.utime(x, ns=(st.st_atime_ns, st.st_mtime_ns))
        miss = build(store, BuildOptions(context=ctx, tags=["tree:1"], lint=False))
        assert miss.cached == 0
        assert miss.image.id != first.image.id
        (ctx / "dir" / "new").write_text("n\n")
        added = build(store, BuildOptions(context=ctx, tags=["tree:1"], lint=False))
        assert added.cached == 0
        (ctx / "dir" / "new").unlink()
        back = build(store, BuildOptions(context=ctx, tags=["tree:1"], lint=False))
        assert back.cached == back.steps  # the tree as it was: the same key again
        assert back.image.id == miss.image.id
    finally:
        store.close()
