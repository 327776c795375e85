"""``df()`` over containers and build cache, constant query counts on listing paths,
and what a removal killed half way leaves behind."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gantry.store import Store
from test_store_support import layer, make_image

SHARED = layer({"shared": b"s" * 1000})


@pytest.fixture
def store(root: Path) -> Iterator[Store]:
    with Store(root) as s:
        yield s


def add_container(s: Store, cid: str, image_id: str, state: str, upper: dict[str, bytes]) -> None:
    s._conn.execute(
        "INSERT INTO containers (id, name, image_id, image_ref, state, created)"
        " VALUES (?, ?, ?, 'app', ?, ?)",
        (cid, f"c-{cid[-6:]}", image_id, state, time.time()),
    )
    for name, data in upper.items():
        p = s.root / "containers" / cid / "upper" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def add_cache(s: Store, key: str, size: int, *, in_use: bool = False, shared: bool = False) -> None:
    s._conn.execute(
        "INSERT INTO build_cache (key, kind, description, size, shared, in_use, created,"
        " last_used, usage_count) VALUES (?, 'regular', ?, ?, ?, ?, ?, NULL, 2)",
        (key, f"RUN make {key}", size, int(shared), int(in_use), time.time()),
    )


def test_df_without_containers_or_cache(store: Store) -> None:
    make_image(store, [SHARED], tags=["a"])
    df = store.df()
    assert (df.containers.total, df.containers.size, df.containers.containers) == (0, 0, ())
    assert (df.build_cache.total, df.build_cache.size, df.build_cache.records) == (0, 0, ())


def test_df_containers(store: Store) -> None:
    img = make_image(store, [SHARED], tags=["a"])
    add_container(store, "a" * 64, img.id, "running", {"etc/app.conf": b"x" * 300})
    add_container(store, "b" * 64, img.id, "exited", {"tmp/out": b"y" * 1000, "log": b"z" * 24})
    add_container(store, "c" * 64, img.id, "paused", {})
    add_container(store, "d" * 64, img.id, "created", {})
    upper = store.root / "containers" / ("b" * 64) / "upper"
    os.link(upper / "tmp" / "out", upper / "hardlink")  # counted once
    os.symlink("/etc/passwd", upper / "link")  # not followed
    df = store.df().containers
    assert (df.total, df.active) == (4, 2)
    assert df.size == 300 + 1024 + len("/etc/passwd")
    assert df.reclaimable == 1024 + len("/etc/passwd")
    by_id = {c.id: c for c in df.containers}
    assert by_id["a" * 64].size_rw == 300 and by_id["a" * 64].image_id == img.id
    assert by_id["c" * 64].size_rw == 0 and by_id["c" * 64].state == "paused"


def test_df_build_cache_like_docker(store: Store) -> None:
    add_cache(store, "k1", 1000)
    add_cache(store, "k2", 500, in_use=True)
    add_cache(store, "k3", 700, shared=True)
    add_cache(store, "k4", 300, in_use=True, shared=True)
    bc = store.df().build_cache
    assert (bc.total, bc.active) == (4, 2)
    assert bc.size == 1500  # shared records are counted where they are shared from
    assert bc.reclaimable == 1000  # minus what is in use
    assert [r.id for r in bc.records] == ["k1", "k2", "k3", "k4"]
    assert bc.records[0].description == "RUN make k1" and bc.records[0].usage_count == 2


def _statements(s: Store, call: Callable[[], object]) -> int:
    count = 0

    def trace(_sql: str) -> None:
        nonlocal count
        count += 1

    s._conn.set_trace_callback(trace)
    try:
        call()
    finally:
        s._conn.set_trace_callback(None)
    return count


def test_listing_paths_do_not_query_per_row(store: Store) -> None:
    """images(), df(), check() and a GC sweep issue as many statements for 40 images as for 80."""

    def add(n: int, start: int) -> None:
        for i in range(start, start + n):
            img = make_image(store, [SHARED, layer({"f": str(i).encode()})], tags=[f"r:{i}"])
            if i % 10 == 0:
                add_container(store, f"{i:064x}", img.id, "exited", {})

    calls: dict[str, Callable[[], object]] = {
        "images": store.images,
        "df": store.df,
        "check": lambda: store.check(verify_blobs=False),
        "gc": lambda: store.gc(grace=3600),
    }
    add(40, 0)
    small = {name: _statements(store, call) for name, call in calls.items()}
    add(40, 40)
    large = {name: _statements(store, call) for name, call in calls.items()}
    assert large == small


def test_gc_sweep_keeps_referenced_blobs_in_bulk(store: Store) -> None:
    kept = [make_image(store, [layer({"k": str(i).encode()})], tags=[f"k:{i}"]) for i in range(40)]
    garbage = [store.content.write(f"garbage {i}".encode()) for i in range(80)]
    old = time.time() - 7200
    for d in store.content.iter_digests():
        os.utime(store.content.path(d), (old, old))
    report = store.gc()
    assert sorted(report.blobs) == sorted(garbage)
    assert store.check() == []
    assert len(store.images()) == len(kept)


def test_a_removal_killed_half_way_is_swept_at_once(store: Store) -> None:
    """``_remove_tree`` renames a snapshot out of its live name first; a kill then leaves
    ``.rm-*``, which is never live: the next sweep takes it whatever its age."""
    img = make_image(store, [SHARED], tags=["a"])
    store.snapshot(store.layers(img)[0].chain_id)
    doomed = store.snapshots_dir / ".rm-99-0badc0de"
    (doomed / "fs" / "usr").mkdir(parents=True)
    (doomed / "fs" / "usr" / "half").write_bytes(b"h" * 4096)
    young = store.snapshots_dir / "tmp-98-0123abcd"  # an unpack in progress: left alone
    (young / "fs").mkdir(parents=True)
    report = store.gc()
    assert ".rm-99-0badc0de" in report.snapshots and not doomed.exists()
    assert young.exists() and "tmp-98-0123abcd" not in report.snapshots
    assert report.reclaimed >= 4096
    assert store.check() == []
    assert (store.snapshots_dir / "1" / "fs" / "shared").is_file()
