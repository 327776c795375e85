"""gantry.runtime.overlay with real overlayfs mounts on tmpfs (needs root).

Every mount is made under one per-module directory on /dev/shm; the module fixture fails
the run if anything is still mounted there at the end, and detaches it so nothing leaks.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.errors import ContainerError
from gantry.runtime import overlay as ov

pytestmark = [pytest.mark.root]

if os.geteuid() != 0:
    pytest.fail("overlay tests need root (mounts)", pytrace=False)


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="gantry-ovl-", dir="/dev/shm"))
    try:
        yield d
    finally:
        leaked = [m for m in ov.mountpoints() if m.startswith(str(d))]
        for m in reversed(leaked):
            ov.unmount(m, lazy=True)
        shutil.rmtree(d, ignore_errors=True)
        assert leaked == [], f"mounts left behind: {leaked}"


@pytest.fixture
def work(base: Path, request: pytest.FixtureRequest) -> Path:
    name: str = request.node.name
    d = base / name.replace("/", "_").replace("[", "_").replace("]", "")
    d.mkdir()
    return d


def _layers(root: Path, n: int, name_len: int = 60) -> list[Path]:
    """n lower dirs with long names; layer i holds file f<i> and shadows `shared`."""
    out = []
    for i in range(n):
        d = root / f"layer{i:03d}_{'x' * name_len}"
        d.mkdir(parents=True)
        (d / f"f{i}").write_text(str(i))
        (d / "shared").write_text(str(i))
        out.append(d)
    return out


def _upper_work(d: Path) -> tuple[Path, Path, Path]:
    up, wk, mnt = d / "upper", d / "work", d / "merged"
    for p in (up, wk, mnt):
        p.mkdir()
    return up, wk, mnt


def test_kernel_offers_a_method() -> None:
    # This kernel is 6.18: per-layer file descriptors are expected.
    assert ov.new_api_support() in ("fd", "path")


@pytest.mark.parametrize("method", ["auto", "fsopen-fd", "fsopen-path", "mount"])
def test_hundred_long_lowers(work: Path, method: str) -> None:
    lowers = _layers(work / "l", 100)
    # Top first: the layer listed first wins for `shared`.
    assert sum(len(str(p)) + 1 for p in lowers) > 4096, "the stack must exceed a mount data page"
    up, wk, mnt = _upper_work(work)
    with ov.overlay(mnt, lowers, up, wk, method=method) as m:
        assert ov.is_mountpoint(mnt)
        assert m.method != "auto"
        names = set(os.listdir(mnt))
        assert {f"f{i}" for i in range(100)} <= names
        assert (mnt / "shared").read_text() == "0"
        (mnt / "new").write_text("hello")
        (mnt / "f5").unlink()
    assert not ov.is_mountpoint(mnt)
    assert (up / "new").read_text() == "hello"
    assert ov.is_whiteout_path(up / "f5")
    assert (lowers[5] / "f5").exists(), "lower layers are never written"


def test_whiteouts_and_opaque_dirs_in_upper(work: Path) -> None:
    low = work / "low"
    (low / "dir").mkdir(parents=True)
    (low / "dir" / "a").write_text("a")
    (low / "gone").write_text("x")
    (low / "keep").mkdir()
    (low / "keep" / "k").write_text("k")
    up, wk, mnt = _upper_work(work)
    with ov.overlay(mnt, [low], up, wk):
        shutil.rmtree(mnt / "dir")
        (mnt / "dir").mkdir()  # recreated: must hide the lower contents
        (mnt / "dir" / "b").write_text("b")
        (mnt / "gone").unlink()
        (mnt / "keep" / "k2").write_text("k2")
        assert sorted(os.listdir(mnt / "dir")) == ["b"]
    assert ov.is_opaque(up / "dir")
    assert not ov.is_opaque(up / "keep")
    assert ov.is_whiteout(os.lstat(up / "gone"))
    assert not ov.is_whiteout(os.lstat(up / "keep" / "k2"))
    assert not ov.is_whiteout_path(up / "missing")


def test_made_whiteouts_and_opaque_dirs_are_honoured(work: Path) -> None:
    """What the layer engineer writes when unpacking `.wh.` entries works in a mount."""
    low, mid = work / "low", work / "mid"
    (low / "d").mkdir(parents=True)
    (low / "d" / "old").write_text("old")
    (low / "f").write_text("f")
    (mid / "d").mkdir(parents=True)
    (mid / "d" / "new").write_text("new")
    ov.make_opaque(mid / "d")
    ov.make_whiteout(mid / "f")
    st = os.lstat(mid / "f")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    mnt = work / "m"
    mnt.mkdir()
    with ov.overlay(mnt, [mid, low]) as m:  # read-only, two lowers
        assert m.readonly and m.upper is None
        assert sorted(os.listdir(mnt)) == ["d"]
        assert os.listdir(mnt / "d") == ["new"]
        with pytest.raises(OSError):
            (mnt / "x").write_text("no")


def test_single_lower_read_only_is_a_bind(work: Path) -> None:
    low = work / "low"
    low.mkdir()
    (low / "f").write_text("f")
    mnt = work / "m"
    mnt.mkdir()
    with ov.overlay(mnt, [low]) as m:
        assert m.method == "bind"
        assert (mnt / "f").read_text() == "f"
        with pytest.raises(OSError):
            (mnt / "g").write_text("no")
    assert not ov.is_mountpoint(mnt)


def test_unmounts_when_the_block_fails(work: Path) -> None:
    lowers = _layers(work / "l", 2)
    up, wk, mnt = _upper_work(work)
    with pytest.raises(RuntimeError), ov.overlay(mnt, lowers, up, wk):
        # Even with a file held open (busy), the lazy detach takes the mount away.
        f = open(mnt / "f0")  # noqa: SIM115
        try:
            raise RuntimeError("step failed")
        finally:
            f.close()
    assert not ov.is_mountpoint(mnt)


def test_busy_mount_is_detached(work: Path) -> None:
    lowers = _layers(work / "l", 2)
    up, wk, mnt = _upper_work(work)
    ov.mount_overlay(mnt, lowers, up, wk)
    fd = os.open(mnt / "f1", os.O_RDONLY)
    try:
        cwd = os.getcwd()
        os.chdir(mnt)
        try:
            ov.unmount(mnt)  # EBUSY -> lazy
        finally:
            os.chdir(cwd)
        assert not ov.is_mountpoint(mnt)
        assert os.read(fd, 10) == b"1"  # still readable through the open fd
    finally:
        os.close(fd)
    ov.unmount(mnt)  # not mounted any more: no error


def test_bad_arguments(work: Path) -> None:
    lowers = _layers(work / "l", 2)
    up, wk, mnt = _upper_work(work)
    with pytest.raises(ContainerError, match="at least one lower"):
        ov.mount_overlay(mnt, [], up, wk)
    with pytest.raises(ContainerError, match="together"):
        ov.mount_overlay(mnt, lowers, up, None)
    with pytest.raises(ContainerError, match="not a directory"):
        ov.mount_overlay(mnt, [work / "nope"], up, wk)
    with pytest.raises(ContainerError, match="exceed"):
        ov.mount_overlay(mnt, lowers * 251, up, wk)
    # A work dir on another filesystem: the kernel refuses, with its reason in the message.
    other_wk = Path(tempfile.mkdtemp(prefix="gantry-ovl-wk-", dir="/var/tmp"))
    try:
        with pytest.raises(ContainerError, match="overlay mount on"):
            ov.mount_overlay(mnt, lowers, up, other_wk)
    finally:
        shutil.rmtree(other_wk)
    assert not ov.is_mountpoint(mnt)


def test_paths_with_separators(work: Path) -> None:
    """Commas and colons in layer paths would split the legacy option string."""
    odd = work / "a,b:c"
    lowers = _layers(odd, 2, name_len=3)
    up, wk, mnt = _upper_work(work)
    for method in ("mount", "fsopen-path", "auto"):
        with ov.overlay(mnt, lowers, up, wk, method=method):
            assert (mnt / "f1").read_text() == "1"
