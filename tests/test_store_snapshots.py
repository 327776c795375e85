from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.errors import DigestMismatch, NotFound
from gantry.oci import chain_ids
from gantry.store import Deleted, Store
from test_store_support import layer, make_image

BASE = layer({"bin/sh": b"#!shell" * 100})
APP = layer({"app/main.py": b"print('hi')\n" * 10})
OTHER = layer({"other": b"x" * 5000})


@pytest.fixture
def store(root: Path) -> Iterator[Store]:
    with Store(root) as s:
        yield s


def test_snapshots_keyed_by_chain_with_refcounts(store: Store) -> None:
    a = make_image(store, [BASE, APP], tags=["a"])
    make_image(store, [BASE, OTHER], tags=["b"])
    base_chain, app_chain = chain_ids([BASE.diff_id, APP.diff_id])
    other_chain = chain_ids([BASE.diff_id, OTHER.diff_id])[1]
    snaps = {s.chain_id: s for s in store.snapshots()}
    assert set(snaps) == {base_chain, app_chain, other_chain}
    assert snaps[base_chain].refcount == 2 and snaps[app_chain].refcount == 1
    assert snaps[app_chain].parent == base_chain and snaps[base_chain].parent is None
    assert snaps[app_chain].size == APP.size and snaps[app_chain].diff_id == APP.diff_id
    assert snaps[app_chain].layer_digest == APP.digest
    assert not snaps[app_chain].ready
    assert snaps[app_chain].path.parent.parent == store.root / "snapshots"
    assert [la.chain_id for la in store.layers(a)] == [base_chain, app_chain]
    with pytest.raises(NotFound):
        store.snapshot_info("sha256:" + "0" * 64)


def test_container_hold_keeps_snapshots_after_rmi(store: Store) -> None:
    make_image(store, [BASE, APP], tags=["a"])
    base_chain, app_chain = chain_ids([BASE.diff_id, APP.diff_id])
    store.hold("container:" + "c" * 64, app_chain)
    assert store.snapshot_info(base_chain).refcount == 2
    events = store.remove("a", force=True)
    # the layers are still used by the container: not deleted
    assert not any(isinstance(e, Deleted) and e.id in (base_chain, app_chain) for e in events)
    assert {s.chain_id for s in store.snapshots()} == {base_chain, app_chain}
    # nothing is missing; the hold has no container record (Store.add_container makes both)
    assert [p.kind for p in store.check()] == ["orphan-hold"]
    assert sorted(store.release("container:" + "c" * 64)) == sorted([base_chain, app_chain])
    assert store.snapshots() == []
    assert list(store.content.iter_digests()) == []  # the layer blobs went with the hold
    with pytest.raises(NotFound):
        store.hold("container:x", app_chain)


def test_orphan_snapshot_dirs_are_swept(store: Store) -> None:
    make_image(store, [BASE], tags=["a"])
    n = store.snapshot_info(BASE.diff_id).path.parent.name
    live = store.root / "snapshots" / n / "fs"
    live.mkdir(parents=True)
    orphan = store.root / "snapshots" / "tmp-99-abc" / "fs"
    orphan.mkdir(parents=True)
    (orphan / "file").write_bytes(b"x" * 100)
    assert store.gc(grace=3600).snapshots == ()  # too young: maybe being prepared
    report = store.gc(grace=-1)
    assert report.snapshots == ("tmp-99-abc",) and report.reclaimed >= 100
    assert live.is_dir() and not orphan.exists()


def test_lowerdirs_order_and_ready_marking(store: Store) -> None:
    """Snapshots already in place (renamed in by an earlier unpack) are used as they are."""
    make_image(store, [BASE, APP, OTHER], tags=["a"])
    chains = chain_ids([BASE.diff_id, APP.diff_id, OTHER.diff_id])
    for ch in chains:
        store.snapshot_info(ch).path.mkdir(parents=True)
    dirs = store.lowerdirs(chains[2])
    assert dirs == [store.snapshot_info(ch).path for ch in reversed(chains)]
    assert all(store.snapshot_info(ch).ready for ch in chains)
    assert store.snapshot(chains[0]) == dirs[-1]
    # a ready snapshot whose directory vanished is reported (it would be unpacked again)
    dirs[0].rmdir()
    assert [p.kind for p in store.check()] == ["missing-snapshot"]


def test_snapshot_unpacks_on_demand_through_gantry_layers(store: Store) -> None:
    base = layer({"bin/sh": b"#!shell", "etc/motd": b"hello"})
    top = layer({"app/main.py": b"print(1)"}, whiteouts=["etc/.wh.motd"])
    make_image(store, [base, top], tags=["a"])
    chains = chain_ids([base.diff_id, top.diff_id])
    upper, lower = store.lowerdirs(chains[1])
    assert (lower / "bin" / "sh").read_bytes() == b"#!shell"
    assert (upper / "app" / "main.py").read_bytes() == b"print(1)"
    assert not (upper / "bin").exists()  # each snapshot holds only its own layer
    assert os.path.lexists(upper / "etc" / "motd")  # the whiteout, overlay style
    assert all(store.snapshot_info(ch).ready for ch in chains)
    assert not [p for p in (store.root / "snapshots").iterdir() if p.name.startswith("tmp-")]
    assert store.check() == []
    # removing the image removes the unpacked directories too, and counts their bytes
    report = store.prune(all=True)
    assert report.reclaimed >= len(b"#!shellhelloprint(1)")
    assert list((store.root / "snapshots").iterdir()) == []


def test_snapshot_refuses_a_layer_whose_diff_id_lies(store: Store) -> None:
    make_image(store, [BASE], tags=["a"])
    # tamper with the record: the layer no longer hashes to the recorded diff ID
    store._conn.execute(
        "UPDATE snapshots SET diff_id = ? WHERE chain_id = ?", ("sha256:" + "1" * 64, BASE.diff_id)
    )
    with pytest.raises(DigestMismatch, match="diff ID mismatch"):
        store.snapshot(BASE.diff_id)
    assert not store.snapshot_info(BASE.diff_id).ready
    assert list((store.root / "snapshots").iterdir()) == []
