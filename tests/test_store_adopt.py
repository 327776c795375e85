"""Store.adopt_snapshot: a directory the builder holds becomes a chain's snapshot.

Real directories, real layer blobs, real processes killed with SIGKILL.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gantry.errors import BlobNotFound, DigestMismatch, NotFound, StoreError
from gantry.oci import chain_ids
from gantry.store import Store
from test_store_support import BuiltLayer, layer, make_image

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def store(root: Path) -> Store:
    return Store(root)


def unpacked(store: Store, files: dict[str, bytes]) -> Path:
    """What a build step leaves in its upperdir: the files, in a scratch directory."""
    d = store.scratch_dir("upper")
    for name, data in files.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return d


def built(store: Store, files: dict[str, bytes]) -> tuple[BuiltLayer, Path]:
    lay = layer(files)
    store.content.write(lay.blob)
    return lay, unpacked(store, files)


def adopt(store: Store, lay: BuiltLayer, d: Path, parent: str | None = None, **kw: str) -> bool:
    chain = chain_ids([parent, lay.diff_id])[1] if parent else lay.diff_id
    return store.adopt_snapshot(
        chain,
        parent=parent,
        diff_id=lay.diff_id,
        layer_digest=lay.digest,
        media_type="application/vnd.oci.image.layer.v1.tar+gzip",
        size=lay.size,
        directory=d,
        **kw,
    )


def test_adopt_moves_the_directory_into_place(store: Store) -> None:
    base, d1 = built(store, {"bin/sh": b"shell" * 100})
    ino = (d1 / "bin" / "sh").stat().st_ino
    assert adopt(store, base, d1) is True
    assert not d1.exists()
    snap = store.snapshot_info(base.diff_id)
    assert snap.ready and snap.parent is None and snap.size == base.size
    assert snap.layer_digest == base.digest
    assert (snap.path / "bin" / "sh").read_bytes() == b"shell" * 100
    # moved, not copied (nor unpacked again from the blob)
    assert (snap.path / "bin" / "sh").stat().st_ino == ino
    assert store.snapshot(base.diff_id) == snap.path

    app, d2 = built(store, {"app/main": b"x" * 10})
    assert adopt(store, app, d2, parent=base.diff_id) is True
    top = chain_ids([base.diff_id, app.diff_id])[1]
    info = store.snapshot_info(top)
    assert info.parent == base.diff_id and info.size == 10
    assert store.lowerdirs(top) == [info.path, snap.path]
    assert store.check() == []


def test_a_chain_that_exists_already_keeps_its_directory(store: Store) -> None:
    lay, d1 = built(store, {"f": b"first"})
    assert adopt(store, lay, d1)
    path = store.snapshot_info(lay.diff_id).path
    ino = (path / "f").stat().st_ino
    d2 = unpacked(store, {"f": b"first"})
    assert adopt(store, lay, d2) is False
    assert not d2.exists()  # discarded
    assert (path / "f").stat().st_ino == ino
    assert len(store.snapshots()) == 1


def test_a_recorded_but_never_unpacked_chain_takes_the_directory(store: Store) -> None:
    lay = layer({"etc/os-release": b"ID=test\n"})
    img = make_image(store, [lay], tags=["pulled"])
    info = store.snapshot_info(lay.diff_id)
    assert not info.ready and not info.path.exists()
    d = unpacked(store, {"etc/os-release": b"ID=test\n"})
    ino = (d / "etc" / "os-release").stat().st_ino
    assert adopt(store, lay, d) is True
    info = store.snapshot_info(lay.diff_id)
    assert info.ready and (info.path / "etc" / "os-release").stat().st_ino == ino
    assert info.refcount == 1  # still the image's
    store.remove(img.id)
    assert store.snapshots() == []
    assert not info.path.exists()


def test_refusals_record_nothing_and_leave_the_directory(store: Store) -> None:
    lay, d = built(store, {"f": b"data"})
    other = layer({"g": b"other"})
    with pytest.raises(DigestMismatch, match="not the chain ID"):
        store.adopt_snapshot(
            other.diff_id,
            parent=None,
            diff_id=lay.diff_id,
            layer_digest=lay.digest,
            media_type="m",
            size=4,
            directory=d,
        )
    with pytest.raises(NotFound, match="parent of"):
        adopt(store, lay, d, parent=other.diff_id)
    with pytest.raises(BlobNotFound, match="not in the store"):
        adopt(store, other, d)  # other's blob was never written
    with pytest.raises(StoreError, match="not a directory"):
        adopt(store, lay, d / "f")
    assert (d / "f").read_bytes() == b"data"
    assert store.snapshots() == []
    assert os.listdir(store.snapshots_dir) == []


def test_hold_takes_the_chain_in_the_same_transaction(store: Store) -> None:
    base, d1 = built(store, {"a": b"a" * 50})
    assert adopt(store, base, d1, hold="cache:k1")
    app, d2 = built(store, {"b": b"b" * 50})
    assert adopt(store, app, d2, parent=base.diff_id, hold="cache:k2")
    top = chain_ids([base.diff_id, app.diff_id])[1]
    assert store.snapshot_info(base.diff_id).refcount == 2  # k1 and k2 (the whole chain)
    assert store.snapshot_info(top).refcount == 1
    # held: GC with no grace keeps the blobs (and the directories)
    store.gc(grace=-1)
    assert store.content.has(base.digest) and store.content.has(app.digest)
    assert store.check() == []
    # a second adoption of an existing chain still holds it for its owner
    d3 = unpacked(store, {"b": b"b" * 50})
    assert adopt(store, app, d3, parent=base.diff_id, hold="cache:k3") is False
    assert store.snapshot_info(top).refcount == 2
    store.release("cache:k2")
    store.release("cache:k3")
    assert [s.chain_id for s in store.snapshots()] == [base.diff_id]
    assert not store.content.has(app.digest)
    store.release("cache:k1")
    assert store.snapshots() == [] and not store.content.has(base.digest)
    assert os.listdir(store.snapshots_dir) == []


@pytest.mark.skipif(
    os.stat("/dev/shm").st_dev == os.stat(Path(__file__)).st_dev, reason="one filesystem"
)
def test_another_filesystem_is_refused_with_a_hint(tmp_path: Path) -> None:
    import tempfile

    with Store(tmp_path / "root") as store:
        lay = layer({"f": b"x"})
        store.content.write(lay.blob)
        if os.stat(store.root).st_dev == os.stat("/dev/shm").st_dev:
            pytest.skip("store on /dev/shm")
        d = Path(tempfile.mkdtemp(dir="/dev/shm"))
        try:
            (d / "f").write_bytes(b"x")
            with pytest.raises(StoreError, match="another filesystem") as err:
                adopt(store, lay, d)
            assert "scratch_dir" in (err.value.hint or "")
            assert (d / "f").exists()
            assert store.snapshots() == [] and os.listdir(store.snapshots_dir) == []
        finally:
            import shutil

            shutil.rmtree(d)


def test_scratch_dirs_are_private_and_swept_when_abandoned(store: Store) -> None:
    a, b = store.scratch_dir("step"), store.scratch_dir("step")
    assert a != b and a.parent == b.parent == store.root / "tmp"
    assert a.name.startswith("step-")
    (a / "file").write_bytes(b"z" * 100)
    old = time.time() - 2 * 86400
    os.utime(a, (old, old))
    store.gc()
    assert not a.exists() and b.exists()


# A child that adopts new layers in a loop, each held as cache:<i>. With
# KILL_AFTER_RENAME it SIGKILLs itself right after the directory was renamed into
# snapshots/ and before the transaction commits: the worst moment.
ADOPTER = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from gantry.store import Store
from test_store_support import layer
s = Store({root!r})
real_rename = os.rename
if {kill_after_rename!r}:
    def rename(src, dst):
        real_rename(src, dst)
        if "snapshots" in str(dst):
            os.kill(os.getpid(), signal.SIGKILL)
    os.rename = rename
parent = None
for i in range({rounds}):
    files = {{"data": os.urandom(64), "marker": b"complete"}}
    lay = layer(files)
    s.content.write(lay.blob)
    d = s.scratch_dir("step")
    (d / "data").write_bytes(files["data"])
    (d / "marker").write_bytes(b"complete")
    chain = lay.diff_id
    if parent is not None:
        import hashlib
        chain = "sha256:" + hashlib.sha256(f"{{parent}} {{lay.diff_id}}".encode()).hexdigest()
    s.adopt_snapshot(chain, parent=parent, diff_id=lay.diff_id, layer_digest=lay.digest,
                     media_type="application/vnd.oci.image.layer.v1.tar+gzip", size=lay.size,
                     directory=d, hold=f"cache:{{i}}")
    parent = chain if i % 5 else None
    print(i, flush=True)
"""


def _adopter(root: Path, *, rounds: int = 10**9, kill_after_rename: bool = False) -> list[str]:
    code = ADOPTER.format(
        tests=str(TESTS), root=str(root), rounds=rounds, kill_after_rename=kill_after_rename
    )
    return [sys.executable, "-c", code]


def _assert_valid(root: Path) -> None:
    with Store(root) as s:
        assert s.check() == []
        for snap in s.snapshots():
            assert snap.ready
            assert (snap.path / "marker").read_bytes() == b"complete"
            assert s.lowerdirs(snap.chain_id)[0] == snap.path


def test_kill_between_rename_and_commit_leaves_a_valid_store(shm_tmp: Path) -> None:
    root = shm_tmp / "root"
    Store(root).close()
    p = subprocess.run(_adopter(root, kill_after_rename=True), capture_output=True, text=True)
    assert p.returncode == -signal.SIGKILL, p.stderr
    with Store(root) as s:
        # the record rolled back; the directory it had moved is an orphan
        assert s.snapshots() == []
        orphans = os.listdir(s.snapshots_dir)
        assert orphans == ["1"]
        assert s.check() == []
        # the next adoption gets the number back and clears the leftover first
        lay = layer({"marker": b"complete"})
        s.content.write(lay.blob)
        d = unpacked(s, {"marker": b"complete"})
        assert adopt(s, lay, d)
        assert s.snapshot_info(lay.diff_id).path == s.snapshots_dir / "1" / "fs"
        assert sorted(os.listdir(s.snapshots_dir / "1" / "fs")) == ["marker"]
    _assert_valid(root)


@pytest.mark.slow
def test_sigkill_at_random_points_during_adopt(shm_tmp: Path) -> None:
    root = shm_tmp / "root"
    rng = random.Random(99)
    for _ in range(10):
        child = subprocess.Popen(_adopter(root), stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        child.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.2))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        _assert_valid(root)
    with Store(root) as s:
        s.gc(grace=-1)
        known = {str(snap.path.parent.name) for snap in s.snapshots()}
        assert set(os.listdir(s.snapshots_dir)) == known
        assert s.check() == []


# Several processes adopt the same chains, in the same order, starting together.
RACER = """
import os, sys, time
sys.path.insert(0, {tests!r})
from gantry.store import Store
from test_store_support import layer
s = Store({root!r})
layers = [layer({{"n": str(i).encode() * 100}}) for i in range({chains})]
dirs = []
for i, lay in enumerate(layers):
    s.content.write(lay.blob)
    d = s.scratch_dir("race")
    (d / "n").write_bytes(str(i).encode() * 100)
    (d / "who").write_text({me!r})
    dirs.append(d)
open({go!r} + "." + {me!r}, "w").close()
while not os.path.exists({go!r}):
    time.sleep(0.001)
for lay, d in zip(layers, dirs):
    won = s.adopt_snapshot(lay.diff_id, parent=None, diff_id=lay.diff_id,
                           layer_digest=lay.digest, media_type="m", size=lay.size,
                           directory=d, hold="cache:" + {me!r})
    assert not d.exists()  # adopted or discarded
    print(int(won), flush=True)
"""


@pytest.mark.slow
def test_concurrent_adopt_of_one_chain_from_processes(shm_tmp: Path) -> None:
    root = shm_tmp / "root"
    Store(root).close()
    go = shm_tmp / "go"
    chains = 20
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                RACER.format(
                    tests=str(TESTS), root=str(root), chains=chains, me=f"p{n}", go=str(go)
                ),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    deadline = time.monotonic() + 60
    while not all(Path(f"{go}.p{n}").exists() for n in range(3)):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    go.touch()  # all ready: they start adopting together
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append([int(x) for x in out.split()])
    # for every chain exactly one process won
    assert [sum(col) for col in zip(*results, strict=True)] == [1] * chains
    with Store(root) as s:
        snaps = s.snapshots()
        assert len(snaps) == chains
        for i, snap in enumerate(sorted(snaps, key=lambda x: int(x.path.parent.name))):
            assert (snap.path / "n").read_bytes() == str(i).encode() * 100
            assert snap.refcount == 3  # every process holds it
            winner = (snap.path / "who").read_text()
            assert results[int(winner[1:])][i] == 1
        assert sorted(os.listdir(s.snapshots_dir)) == sorted(
            snap.path.parent.name for snap in snaps
        )
        assert os.listdir(s.root / "tmp") == []  # losers' directories discarded
        assert s.check() == []
