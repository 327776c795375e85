"""gantry.layers.create: deterministic layer tars, one-pass digests, overlay upperdirs."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from conftest import need
from gantry.errors import InvalidArchive
from gantry.layers import create, extract
from test_layers_extract import ROOT, needs_root, tree

CAP = bytes.fromhex("0100000200200000000000000000000000000000")


def populate(root: Path, *, reverse: bool = False) -> None:
    """A tree with every kind of entry; ``reverse`` creates it in the opposite order."""
    steps = [
        lambda: (root / "etc").mkdir(),
        lambda: (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n"),
        lambda: (root / "bin").mkdir(),
        lambda: (root / "bin/busybox").write_bytes(os.urandom(1) * 0 + b"\x7fELF" + bytes(200_000)),
        lambda: os.symlink("/bin/busybox", root / "bin/sh"),
        lambda: os.symlink("busybox", root / "bin/ls"),
        lambda: os.link(root / "bin/busybox", root / "bin/hardlinked"),
        lambda: (root / "tmp").mkdir(),
        lambda: (root / ("long-" + "x" * 200)).mkdir(),
        lambda: (root / ("long-" + "x" * 200) / ("y" * 120)).write_text("deep"),
        lambda: (root / "bin/ping").write_bytes(b"ping"),
        lambda: os.mkfifo(root / "tmp/fifo"),
        lambda: (root / "big").write_bytes(bytes(range(256)) * 20_000),
        lambda: (root / "empty").write_bytes(b""),
    ]
    if reverse:
        # same tree, other creation order (so other inode and dirent order)
        order = [0, 2, 7, 8, 1, 3, 6, 4, 5, 9, 10, 11, 12, 13][::-1]
        done: set[int] = set()
        deps = {1: 0, 3: 2, 4: 3, 5: 3, 6: 3, 9: 8, 10: 2, 11: 7}

        def do(i: int) -> None:
            if i in done:
                return
            if i in deps:
                do(deps[i])
            steps[i]()
            done.add(i)

        for i in order:
            do(i)
    else:
        for step in steps:
            step()
    os.chmod(root / "bin/busybox", 0o4755)
    os.chmod(root / "tmp", 0o1777)
    os.chmod(root / "bin/ping", 0o2711)
    os.setxattr(root / "bin/ping", "user.comment", b"\x00\xffbinary")
    if ROOT:
        os.setxattr(root / "bin/ping", "security.capability", CAP)
        os.chown(root / "etc/passwd", 1000, 3_000_000)  # gid beyond ustar's 7 octal digits
        os.lchown(root / "bin/ls", 12, 34)
        os.mknod(root / "null", 0o20666, os.makedev(1, 3))
        os.chmod(root / "null", 0o666)
    paths = sorted(
        (os.path.join(d, n) for d, dirs, files in os.walk(root) for n in dirs + files),
        key=lambda p: (-p.count("/"), p),  # children first: touching them changes the parents
    )
    for i, path in enumerate(paths):
        stamp = (1_700_000_000 + 7 * i) * 10**9
        os.utime(path, ns=(stamp + 123, stamp + 456), follow_symlinks=False)


@pytest.mark.parametrize("compression", ["gzip", "zstd", None])
def test_round_trip_gives_the_same_tree(compression: str | None, shm_tmp: Path) -> None:
    src, out = shm_tmp / "src", shm_tmp / "out"
    src.mkdir()
    populate(src)
    buf = io.BytesIO()
    info = create.create(src, buf, compression=compression)  # type: ignore[arg-type]  # parametrized
    blob = buf.getvalue()
    assert info.size == len(blob)
    assert info.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    raw = {
        "gzip": gzip.decompress,
        "zstd": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b),
    }.get(compression or "", lambda b: b)(blob)
    assert info.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert info.uncompressed_size == len(raw)
    assert info.media_type.endswith(
        {"gzip": "tar+gzip", "zstd": "tar+zstd", None: "v1.tar"}[compression]
    )
    res = extract.extract(io.BytesIO(blob), out)
    assert res.diff_id == info.diff_id
    assert tree(out) == tree(src)


def test_same_tree_gives_the_same_bytes(shm_tmp: Path) -> None:
    a, b = shm_tmp / "a", shm_tmp / "b"
    a.mkdir()
    b.mkdir()
    populate(a)
    populate(b, reverse=True)
    os.utime(
        b / "etc/passwd", ns=(5, os.lstat(b / "etc/passwd").st_mtime_ns)
    )  # atime must not leak
    (b / "etc/passwd").chmod(0o644)  # ctime changes, nothing else
    for compression in ("gzip", "zstd", None):
        outs = []
        for root in (a, b):
            buf = io.BytesIO()
            outs.append((create.create(root, buf, compression=compression), buf.getvalue()))  # type: ignore[arg-type]
        assert outs[0][1] == outs[1][1]
        assert outs[0][0] == outs[1][0]
    os.utime(b / "etc/passwd", (1, 1))
    assert create.create(a, io.BytesIO()).digest != create.create(b, io.BytesIO()).digest


def test_source_date_epoch_clamps_mtimes(shm_tmp: Path) -> None:
    src = shm_tmp / "src"
    src.mkdir()
    (src / "new").write_text("n")
    (src / "old").write_text("o")
    os.utime(src / "old", (100, 100))
    buf = io.BytesIO()
    create.create(src, buf, compression=None, source_date_epoch=1000)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        assert {m.name: m.mtime for m in tf} == {"new": 1000, "old": 100}


def test_output_is_readable_by_gnu_tar_gzip_and_python(shm_tmp: Path) -> None:
    src = shm_tmp / "src"
    src.mkdir()
    populate(src)
    layer = shm_tmp / "layer.tar.gz"
    with layer.open("wb") as f:
        create.create(src, f)
    subprocess.run([need("gzip"), "-t", str(layer)], check=True)
    listing = subprocess.run(
        [need("tar"), "-tvzf", str(layer)], check=True, capture_output=True, text=True
    )
    assert "bin/sh -> /bin/busybox" in listing.stdout
    assert "bin/hardlinked link to bin/busybox" in listing.stdout
    out = shm_tmp / "gnu"
    out.mkdir()
    subprocess.run(
        [
            need("tar"),
            "--xattrs",
            "--xattrs-include=*",
            "--same-owner",
            "-xpzf",
            str(layer),
            "-C",
            str(out),
        ],
        check=True,
    )
    assert tree(out) == tree(src)
    with tarfile.open(layer) as tf:
        members = {m.name: m for m in tf}
    assert members["bin"].isdir() and members["bin/sh"].issym()
    assert members["bin/ping"].pax_headers["SCHILY.xattr.user.comment"].encode(
        "utf-8", "surrogateescape"
    ) == (b"\x00\xffbinary")
    assert all(m.uname == "" and m.gname == "" for m in members.values())
    assert gzip.decompress(layer.read_bytes())[-1024:] == bytes(1024)


def test_filter_leaves_out_entries_and_subtrees(shm_tmp: Path) -> None:
    src = shm_tmp / "src"
    (src / "keep/sub").mkdir(parents=True)
    (src / "skip/sub").mkdir(parents=True)
    (src / "keep/sub/f").write_text("f")
    (src / "skip/sub/f").write_text("f")
    (src / "skipfile").write_text("f")
    (src / "skip2").write_text("f")  # shares a prefix with "skip" but is not under it
    buf = io.BytesIO()
    create.create(src, buf, compression=None, filter=lambda p: p not in ("skip", "skipfile"))
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        assert tf.getnames() == ["keep", "keep/sub", "keep/sub/f", "skip2"]


def test_refuses_a_non_directory(shm_tmp: Path) -> None:
    (shm_tmp / "f").write_text("x")
    with pytest.raises(InvalidArchive):
        create.create(shm_tmp / "f", io.BytesIO())


@pytest.mark.root
@needs_root
def test_overlay_upperdir_becomes_whiteouts_and_back(shm_tmp: Path) -> None:
    lower, upper, work, merged = (shm_tmp / n for n in ("lower", "upper", "work", "merged"))
    for p in (lower, upper, work, merged):
        p.mkdir()
    (lower / "gone").write_text("delete me")
    (lower / "d").mkdir()
    (lower / "d/old").write_text("old")
    (lower / "keep").mkdir()
    (lower / "keep/stays").write_text("stays")
    opts = (
        f"lowerdir={lower},upperdir={upper},workdir={work},redirect_dir=off,metacopy=off,index=off"
    )
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)
    try:
        (merged / "gone").unlink()
        subprocess.run(["rm", "-rf", str(merged / "d")], check=True)
        (merged / "d").mkdir()  # recreated over a deleted lower dir: opaque
        (merged / "d/new").write_text("new")
        (merged / "keep/added").write_text("added")
        want = tree(merged, mtimes=False)
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    buf = io.BytesIO()
    create.create(upper, buf, overlay=True, compression="gzip")
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        members = tf.getmembers()
    names = [m.name for m in members]
    assert ".wh.gone" in names
    assert "d/.wh..wh..opq" in names
    assert names.index("d/.wh..wh..opq") == names.index("d") + 1
    assert not any("trusted.overlay" in k for m in members for k in m.pax_headers)
    assert "keep/added" in names and "keep/stays" not in names
    # extract the layer as a fresh snapshot and stack it on the lower: same view again
    snap = shm_tmp / "snap"
    buf.seek(0)
    extract.extract(buf, snap, mode="overlay")
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={snap}:{lower}", str(merged)],
        check=True,
    )
    try:
        assert tree(merged, mtimes=False) == want
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    # and flattened with apply mode
    flat = shm_tmp / "flat"
    subprocess.run(["cp", "-a", str(lower), str(flat)], check=True)
    buf.seek(0)
    extract.extract(buf, flat, mode="apply")
    assert tree(flat, mtimes=False) == want


@pytest.mark.root
@needs_root
def test_upperdir_with_redirects_is_refused(shm_tmp: Path) -> None:
    upper = shm_tmp / "upper"
    (upper / "moved").mkdir(parents=True)
    os.setxattr(upper / "moved", "trusted.overlay.redirect", b"/orig")
    with pytest.raises(InvalidArchive, match="redirect"):
        create.create(upper, io.BytesIO(), overlay=True)


def test_non_utf8_and_very_long_names_round_trip(shm_tmp: Path) -> None:
    src, out = shm_tmp / "src", shm_tmp / "out"
    src.mkdir()
    odd = os.fsencode(str(src)) + b"/caf\xe9-latin1"
    with open(odd, "wb") as f:
        f.write(b"latin")
    deep = src / "/".join(["p" * 150] * 3)
    deep.mkdir(parents=True)
    (deep / (b"\xff" * 10 + b"q" * 200).decode("utf-8", "surrogateescape")).write_text("long")
    os.symlink("t" * 300, src / "longlink")
    buf = io.BytesIO()
    create.create(src, buf, compression="zstd")
    buf.seek(0)
    extract.extract(buf, out)
    assert tree(out) == tree(src)
