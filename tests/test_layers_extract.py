"""gantry.layers.extract: safe extraction, whiteouts, metadata, refusal of malicious tars."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard

from conftest import need
from gantry.errors import InvalidArchive, UnsafeArchive
from gantry.layers import extract

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root")


# ----------------------------------------------------------------------------- helpers


def tree(root: Path, *, mtimes: bool = True) -> dict[str, tuple[Any, ...]]:
    """Everything observable about a tree (no atime/ctime), keyed by relative path."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            content: Any = None
            xattrs: dict[str, bytes] = {}
            if stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(Path(p).read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                content = st.st_rdev
            if not stat.S_ISLNK(st.st_mode):
                xattrs = {k: os.getxattr(p, k) for k in os.listxattr(p) if k != "security.selinux"}
            mtime = st.st_mtime_ns // 10**9 if mtimes else None
            out[os.path.relpath(p, root)] = (
                kind,
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                st.st_gid,
                content,
                mtime,
                xattrs,
                st.st_nlink if not stat.S_ISDIR(st.st_mode) else None,
            )
    return out


def member(
    name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **kw: Any
) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    ti.mode = kw.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
    ti.mtime = kw.pop("mtime", 1_600_000_000)
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti, data


def mktar(*members: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    return buf.getvalue()


@pytest.fixture
def box(shm_tmp: Path) -> Iterator[tuple[Path, Path]]:
    """(dest, outside): dest is empty; outside is a sentinel directory that must never change."""
    dest = shm_tmp / "dest"
    outside = shm_tmp / "outside"
    dest.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("do not touch")
    (outside / "dir").mkdir()
    before = tree(shm_tmp / "outside")
    yield dest, outside
    assert tree(shm_tmp / "outside") == before, "something was written outside dest"
    assert sorted(p.name for p in shm_tmp.iterdir()) == ["dest", "outside"]


def run(blob: bytes, dest: Path, **kw: Any) -> extract.ExtractResult:
    return extract.extract(io.BytesIO(blob), dest, **kw)


# ----------------------------------------------------------------------------- escapes


def _escapes(outside: Path) -> dict[str, bytes]:
    o = str(outside)
    return {
        "dotdot": mktar(member("../outside/evil", data=b"x")),
        "dotdot-inner": mktar(member("a/../../outside/evil", data=b"x")),
        "absolute": mktar(member(f"{o}/evil", data=b"x")),
        "symlink-parent-relative": mktar(
            member("link", tarfile.SYMTYPE, linkname="../outside"), member("link/evil", data=b"x")
        ),
        "symlink-parent-absolute": mktar(
            member("link", tarfile.SYMTYPE, linkname=o), member("link/dir/evil", data=b"x")
        ),
        "symlink-parent-dir-entry": mktar(
            member("link", tarfile.SYMTYPE, linkname=o), member("link/newdir", tarfile.DIRTYPE)
        ),
        "symlink-parent-symlink-entry": mktar(
            member("link", tarfile.SYMTYPE, linkname=o),
            member("link/newlink", tarfile.SYMTYPE, linkname="/etc/passwd"),
        ),
        "hardlink-dotdot": mktar(member("hl", tarfile.LNKTYPE, linkname="../outside/secret")),
        "hardlink-absolute": mktar(member("hl", tarfile.LNKTYPE, linkname=f"{o}/secret")),
        "hardlink-through-symlink": mktar(
            member("link", tarfile.SYMTYPE, linkname=o),
            member("hl", tarfile.LNKTYPE, linkname="link/secret"),
        ),
        "dir-replaced-by-symlink": mktar(
            member("d", tarfile.DIRTYPE),
            member("d/ok", data=b"fine"),
            member("d", tarfile.SYMTYPE, linkname=o),
            member("d/secret", data=b"overwritten"),
        ),
        "whiteout-through-symlink": mktar(
            member("link", tarfile.SYMTYPE, linkname=o), member("link/.wh.secret")
        ),
        "opaque-through-symlink": mktar(
            member("link", tarfile.SYMTYPE, linkname=o), member("link/.wh..wh..opq")
        ),
        "whiteout-dotdot": mktar(member(".wh..."), member("x")),
        "gnu-longname-dotdot": mktar(
            member("../" * 40 + "outside/evil", data=b"x"), fmt=tarfile.GNU_FORMAT
        ),
    }


ESCAPES = sorted(_escapes(Path("/x")))


@pytest.mark.parametrize("case", ESCAPES)
@pytest.mark.parametrize("mode", ["overlay", "apply"])
def test_escapes_are_refused_and_nothing_outside_changes(
    case: str, mode: extract.Mode, box: tuple[Path, Path]
) -> None:
    dest, outside = box
    blob = _escapes(outside)[case]
    with pytest.raises(UnsafeArchive) as info:
        run(gzip.compress(blob), dest, mode=mode)
    assert "\n" not in str(info.value)
    assert "refusing" in str(info.value)


@pytest.mark.parametrize("mode", ["overlay", "apply"])
def test_replacing_a_symlink_never_writes_through_it(
    mode: extract.Mode, box: tuple[Path, Path]
) -> None:
    dest, outside = box
    o = str(outside)
    blob = mktar(
        member("f", tarfile.SYMTYPE, linkname=f"{o}/secret"),
        member("f", data=b"replaced"),
        member("d", tarfile.SYMTYPE, linkname=f"{o}/dir"),
        member("d", tarfile.DIRTYPE, mode=0o700),
        member("d/inside", data=b"in"),
        member("l2", tarfile.SYMTYPE, linkname=f"{o}/secret"),
        member("hl", tarfile.LNKTYPE, linkname="l2"),  # links the symlink itself
        member("hl", data=b"replaced too"),
        member("fifo", tarfile.SYMTYPE, linkname=f"{o}/secret"),
        member("fifo", tarfile.FIFOTYPE),
    )
    run(blob, dest, mode=mode)
    assert (dest / "f").read_bytes() == b"replaced" and not (dest / "f").is_symlink()
    assert (dest / "d").is_dir() and not (dest / "d").is_symlink()
    assert (dest / "d" / "inside").read_bytes() == b"in"
    assert os.readlink(dest / "l2") == f"{o}/secret"
    assert (dest / "hl").read_bytes() == b"replaced too"
    assert stat.S_ISFIFO(os.lstat(dest / "fifo").st_mode)


def test_absolute_and_dangling_symlinks_are_stored_as_they_are(box: tuple[Path, Path]) -> None:
    dest, _ = box
    blob = mktar(
        member("bin", tarfile.DIRTYPE),
        member("bin/busybox", data=b"\x7fELF", mode=0o755),
        member("bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox"),
        member("dangling", tarfile.SYMTYPE, linkname="../../../../nowhere"),
    )
    run(blob, dest)
    assert os.readlink(dest / "bin/sh") == "/bin/busybox"
    assert os.readlink(dest / "dangling") == "../../../../nowhere"


# ----------------------------------------------------------------------------- malformed input


def test_garbage_truncation_and_bad_checksums_are_invalid(box: tuple[Path, Path]) -> None:
    dest, _ = box
    good = mktar(member("a", data=b"x" * 5000), member("b", data=b"y" * 100))
    with pytest.raises(InvalidArchive, match="checksum"):
        run(os.urandom(4096), dest / "1")
    with pytest.raises(InvalidArchive, match="truncated"):
        run(good[:1024], dest / "2")  # header says 5000 bytes; stream ends inside the data
    with pytest.raises(InvalidArchive, match="truncated"):
        run(good[:700], dest / "3")  # ends inside a header
    bad = bytearray(good)
    bad[0] ^= 1
    with pytest.raises(InvalidArchive, match="checksum"):
        run(bytes(bad), dest / "4")
    with pytest.raises(InvalidArchive, match="truncated"):
        run(gzip.compress(good)[:-9], dest / "5")
    with pytest.raises(InvalidArchive):
        run(zstandard.ZstdCompressor().compress(good)[:-3], dest / "6")


def test_size_cap_refuses_a_bomb_early(box: tuple[Path, Path]) -> None:
    dest, _ = box
    bomb = gzip.compress(mktar(member("zeros", data=bytes(64 << 20))), compresslevel=1)
    assert len(bomb) < 1 << 20
    with pytest.raises(InvalidArchive, match="decompression bomb"):
        run(bomb, dest, max_size=8 << 20)
    assert os.path.getsize(dest / "zeros") <= 9 << 20


def test_oversized_pax_header_is_refused(box: tuple[Path, Path]) -> None:
    dest, _ = box
    ti, data = member("f", data=b"x")
    ti.pax_headers = {"comment": "z" * (2 << 20)}
    with pytest.raises(InvalidArchive, match="too large"):
        run(mktar((ti, data)), dest)


def test_clean_eof_without_end_blocks_is_accepted(box: tuple[Path, Path]) -> None:
    dest, _ = box
    blob = mktar(member("a", data=b"hello"))
    blob = blob[:1024]  # header + one data block, no zero blocks
    res = run(blob, dest)
    assert (dest / "a").read_bytes() == b"hello"
    assert res.diff_id == "sha256:" + hashlib.sha256(blob).hexdigest()


# ----------------------------------------------------------------------------- content and metadata


def test_diff_id_covers_the_whole_stream_and_size_is_dockers(box: tuple[Path, Path]) -> None:
    dest, _ = box
    blob = mktar(
        member("d", tarfile.DIRTYPE),
        member("d/a", data=b"1" * 1000),
        member("d/b", data=b"2" * 24),
        member("d/.wh.gone"),
    )
    blob += bytes(10240)  # tape-record padding after the end blocks is part of the diff ID
    for compress in (lambda b: b, gzip.compress, zstandard.ZstdCompressor().compress):
        out = dest / str(len(list(dest.iterdir())))
        res = run(compress(blob), out)
        assert res.diff_id == "sha256:" + hashlib.sha256(blob).hexdigest()
        assert res.tar_size == len(blob)
        assert res.size == 1024
        assert res.entries == 4


def test_modes_owners_times_and_special_bits(box: tuple[Path, Path]) -> None:
    dest, _ = box
    blob = mktar(
        member("ro", tarfile.DIRTYPE, mode=0o555, mtime=1000),
        member("ro/suid", data=b"s", mode=0o4755, uid=0, gid=0, mtime=2000),
        member("ro/sgid", data=b"g", mode=0o2711, uid=1234, gid=5678, mtime=3000),
        member("tmp", tarfile.DIRTYPE, mode=0o1777, mtime=4000),
        member("owned", tarfile.DIRTYPE, mode=0o750, uid=1000, gid=1000, mtime=5000),
        member("owned/l", tarfile.SYMTYPE, linkname="x", uid=1000, gid=1001, mtime=6000),
    )
    run(blob, dest)
    t = tree(dest)
    assert t["ro"][1:6] == (0o555, 0, 0, None, 1000)
    assert t["ro/suid"][1] == 0o4755
    assert t["ro/sgid"][1] == 0o2711
    assert t["tmp"][1] == 0o1777
    assert t["tmp"][5] == 4000
    assert t["ro/suid"][5] == 2000
    assert t["owned/l"][5] == 6000
    if ROOT:
        assert t["ro/sgid"][2:4] == (1234, 5678)
        assert t["owned"][2:4] == (1000, 1000)
        assert t["owned/l"][2:4] == (1000, 1001)


def test_duplicates_last_wins_and_type_changes(box: tuple[Path, Path]) -> None:
    dest, _ = box
    blob = mktar(
        member("f", data=b"first"),
        member("f", data=b"second"),
        member("d", tarfile.DIRTYPE),
        member("d/x", data=b"x"),
        member("d", data=b"now a file"),
        member("g", data=b"file"),
        member("g", tarfile.DIRTYPE, mode=0o711),
        member("g/y", data=b"y"),
        member("m", tarfile.DIRTYPE, mode=0o700),
        member("m/a", data=b"a"),
        member("m", tarfile.DIRTYPE, mode=0o755),  # dir over dir: merged
        member("m/b", data=b"b"),
        member("orig", data=b"shared"),
        member("link", tarfile.LNKTYPE, linkname="orig"),
        member("orig", data=b"new"),  # replacing the name keeps the old inode for the link
    )
    run(blob, dest)
    assert (dest / "f").read_bytes() == b"second"
    assert (dest / "d").read_bytes() == b"now a file"
    assert (dest / "g/y").read_bytes() == b"y" and stat.S_IMODE(
        os.stat(dest / "g").st_mode
    ) == 0o711
    assert sorted(os.listdir(dest / "m")) == ["a", "b"]
    assert stat.S_IMODE(os.stat(dest / "m").st_mode) == 0o755
    assert (dest / "link").read_bytes() == b"shared"
    assert (dest / "orig").read_bytes() == b"new"


def test_hardlinks_share_an_inode_and_missing_targets_fail(box: tuple[Path, Path]) -> None:
    dest, _ = box
    blob = mktar(
        member("a", tarfile.DIRTYPE),
        member("a/f", data=b"data"),
        member("b/hl", tarfile.LNKTYPE, linkname="a/f"),
        member("./c", tarfile.LNKTYPE, linkname="./a/f"),
    )
    run(blob, dest / "ok")
    ino = os.stat(dest / "ok/a/f").st_ino
    assert os.stat(dest / "ok/b/hl").st_ino == ino == os.stat(dest / "ok/c").st_ino
    assert os.stat(dest / "ok/a/f").st_nlink == 3
    with pytest.raises(InvalidArchive, match="not found"):
        run(mktar(member("hl", tarfile.LNKTYPE, linkname="nope")), dest / "bad")
    with pytest.raises(InvalidArchive, match="directory"):
        run(
            mktar(member("a", tarfile.DIRTYPE), member("hl", tarfile.LNKTYPE, linkname="a")),
            dest / "bad2",
        )


def test_long_names_in_gnu_and_pax_formats(box: tuple[Path, Path]) -> None:
    dest, _ = box
    deep = "/".join(["segment" * 9] * 6) + "/file-with-a-long-name-" + "é" * 30
    target = "/" + "t" * 200
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        out = dest / str(fmt)
        run(
            mktar(
                member(deep, data=b"deep"), member("sl", tarfile.SYMTYPE, linkname=target), fmt=fmt
            ),
            out,
        )
        assert (out / deep).read_bytes() == b"deep"
        assert os.readlink(out / "sl") == target


def test_xattrs_applied_and_overlay_ones_dropped(box: tuple[Path, Path]) -> None:
    dest, _ = box
    cap = bytes.fromhex("0100000200200000000000000000000000000000")
    ti, data = member("ping", data=b"\x7fELF", mode=0o755)
    ti.pax_headers = {
        "SCHILY.xattr.user.note": "hello",
        "SCHILY.xattr.security.capability": cap.decode("utf-8", "surrogateescape"),
        "SCHILY.xattr.trusted.overlay.opaque": "y",
        "SCHILY.xattr.user.overlay.redirect": "/etc",
    }
    res = run(mktar((ti, data)), dest)
    got = {k: os.getxattr(dest / "ping", k) for k in os.listxattr(dest / "ping")}
    assert got.get("user.note") == b"hello"
    assert not any(k.endswith(("overlay.opaque", "overlay.redirect")) for k in got)
    assert any("overlay" in w for w in res.warnings)
    if ROOT:
        assert got["security.capability"] == cap


@pytest.mark.root
@needs_root
def test_devices_as_root(box: tuple[Path, Path]) -> None:
    dest, _ = box
    blob = mktar(
        member("dev", tarfile.DIRTYPE),
        member("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
        member("dev/loop9", tarfile.BLKTYPE, mode=0o660, devmajor=7, devminor=9, gid=6),
        member("dev/pipe", tarfile.FIFOTYPE, mode=0o620),
    )
    run(blob, dest)
    st = os.lstat(dest / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert stat.S_IMODE(st.st_mode) == 0o666
    st = os.lstat(dest / "dev/loop9")
    assert stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev(7, 9) and st.st_gid == 6
    assert stat.S_IMODE(os.lstat(dest / "dev/pipe").st_mode) == 0o620


def test_gnu_tar_archives_extract_to_the_same_tree(box: tuple[Path, Path], shm_tmp: Path) -> None:
    dest, _ = box
    src = dest / "src"
    (src / "usr/bin").mkdir(parents=True)
    (src / "usr/bin/tool").write_bytes(os.urandom(70_000))
    os.chmod(src / "usr/bin/tool", 0o4755)
    os.link(src / "usr/bin/tool", src / "usr/bin/tool2")
    os.symlink("/usr/bin/tool", src / "usr/bin/abs")
    (src / ("n" * 120)).mkdir()
    (src / ("n" * 120) / ("m" * 120)).write_text("long")
    os.setxattr(src / "usr/bin/tool", "user.k", b"v")
    os.utime(src / "usr/bin", (1, 1_500_000_000))
    os.utime(src, (1, 1_500_000_000))
    for fmt in ("gnu", "posix"):
        archive = dest / f"{fmt}.tar"
        subprocess.run(
            [
                need("tar"),
                f"--format={fmt}",
                "--xattrs",
                "--xattrs-include=*",
                "-C",
                str(src),
                "-cf",
                str(archive),
                ".",
            ],
            check=True,
        )
        out = dest / f"out-{fmt}"
        with archive.open("rb") as f:
            res = extract.extract(f, out)
        assert res.diff_id == "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
        assert tree(out) == tree(src)  # (GNU tar writes xattrs as PAX records in both formats)


# ----------------------------------------------------------------------------- whiteouts


def _layer_with_whiteouts() -> bytes:
    return mktar(
        member(".wh.gone"),
        member("d", tarfile.DIRTYPE),
        member("d/.wh..wh..opq"),
        member("d/new", data=b"new"),
        member("keep", tarfile.DIRTYPE),
        member("keep/.wh.old"),
        member("same", data=b"same layer"),
        member(".wh.same"),  # must not hide an entry of its own layer
        member(".wh..wh.plnk", tarfile.DIRTYPE),  # AUFS bookkeeping: ignored
        member(".wh..wh.plnk/123.456", data=b"aufs"),
    )


@pytest.mark.root
@needs_root
def test_overlay_mode_writes_overlay_whiteouts(box: tuple[Path, Path]) -> None:
    dest, _ = box
    run(_layer_with_whiteouts(), dest, mode="overlay")
    st = os.lstat(dest / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert stat.S_ISCHR(os.lstat(dest / "keep/old").st_mode)
    assert os.getxattr(dest / "d", "trusted.overlay.opaque") == b"y"
    assert (dest / "d/new").read_bytes() == b"new"
    assert (dest / "same").read_bytes() == b"same layer"
    assert sorted(os.listdir(dest)) == ["d", "gone", "keep", "same"]


def test_apply_mode_deletes(box: tuple[Path, Path]) -> None:
    dest, _ = box
    lower = mktar(
        member("gone", tarfile.DIRTYPE),
        member("gone/deep", data=b"x"),
        member("d", tarfile.DIRTYPE),
        member("d/old1", data=b"1"),
        member("d/sub", tarfile.DIRTYPE),
        member("d/sub/old2", data=b"2"),
        member("keep", tarfile.DIRTYPE),
        member("keep/old", data=b"o"),
        member("keep/other", data=b"stays"),
    )
    run(lower, dest, mode="apply")
    run(_layer_with_whiteouts(), dest, mode="apply")
    assert sorted(os.listdir(dest)) == ["d", "keep", "same"]
    assert sorted(os.listdir(dest / "d")) == ["new"]
    assert sorted(os.listdir(dest / "keep")) == ["other"]
    assert (dest / "same").read_bytes() == b"same layer"


@pytest.mark.root
@needs_root
def test_overlay_snapshots_mount_as_the_merged_image(shm_tmp: Path) -> None:
    lower, upper, work, merged = (shm_tmp / n for n in ("lower", "upper", "work", "merged"))
    for p in (work, merged):
        p.mkdir()
    run(
        mktar(
            member("gone", data=b"x"),
            member("d", tarfile.DIRTYPE),
            member("d/old1", data=b"1"),
            member("keep", tarfile.DIRTYPE),
            member("keep/old", data=b"o"),
            member("keep/other", data=b"stays"),
        ),
        lower,
    )
    run(_layer_with_whiteouts(), upper)
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={upper}:{lower}", str(merged)],
        check=True,
    )
    try:
        assert sorted(os.listdir(merged)) == ["d", "keep", "same"]
        assert sorted(os.listdir(merged / "d")) == ["new"]
        assert sorted(os.listdir(merged / "keep")) == ["other"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)


@pytest.mark.root
@needs_root
def test_unprivileged_extraction_skips_devices_and_trusted_xattrs(shm_tmp: Path) -> None:
    """Rootless: devices and trusted.* are skipped with warnings, the rest extracts."""
    import sys

    shm_tmp.chmod(0o755)
    dest = shm_tmp / "dest"
    dest.mkdir()
    os.chown(dest, 65534, 65534)
    ti, data = member("ro/f", data=b"hi", uid=5)
    ti.pax_headers = {"SCHILY.xattr.trusted.x": "1", "SCHILY.xattr.user.y": "2"}
    layer = shm_tmp / "layer.tar"
    layer.write_bytes(
        mktar(
            member("null", tarfile.CHRTYPE, devmajor=1, devminor=3),
            member("ro", tarfile.DIRTYPE, mode=0o555),
            (ti, data),
        )
    )
    code = (
        "import sys; from pathlib import Path; from gantry.layers.extract import extract\n"
        "r = extract(open(sys.argv[1], 'rb'), Path(sys.argv[2]))\n"
        "print('\\n'.join(r.warnings))\n"
    )
    proc = subprocess.run(
        [
            need("setpriv"),
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-c",
            code,
            str(layer),
            str(dest),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert proc.stdout.splitlines() == [
        "null: skipped device node (needs root)",
        "ro/f: skipped trusted.x (needs root)",
    ]
    assert sorted(os.listdir(dest)) == ["ro"]
    assert (dest / "ro/f").read_bytes() == b"hi"
    assert stat.S_IMODE(os.stat(dest / "ro").st_mode) == 0o555
    assert os.stat(dest / "ro/f").st_uid == 65534  # no chown without privileges


def test_old_style_directory_entry(box: tuple[Path, Path]) -> None:
    dest, _ = box
    blob = mktar(
        member("olddir/", tarfile.AREGTYPE), member("olddir/f", data=b"f"), fmt=tarfile.USTAR_FORMAT
    )
    run(blob, dest)
    assert (dest / "olddir").is_dir() and (dest / "olddir/f").read_bytes() == b"f"
