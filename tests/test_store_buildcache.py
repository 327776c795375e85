"""Build-cache records through the Store API: refs that GC honours, replace, prune, migrate."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from gantry.errors import BlobNotFound, NotFound, UsageError
from gantry.oci import mediatypes as mt
from gantry.store import Store, schema
from test_store_support import BuiltLayer, layer, make_image


@pytest.fixture
def store(root: Path) -> Store:
    return Store(root)


def step(store: Store, files: dict[str, bytes], parent: str | None = None) -> BuiltLayer:
    """A build step's layer: blob written, upperdir adopted as the snapshot."""
    lay = layer(files)
    store.content.write(lay.blob)
    d = store.scratch_dir("upper")
    for name, data in files.items():
        (d / name).write_bytes(data)
    store.adopt_snapshot(
        lay.diff_id,
        parent=parent,
        diff_id=lay.diff_id,
        layer_digest=lay.digest,
        media_type=mt.OCI_LAYER_GZIP,
        size=lay.size,
        directory=d,
    )
    return lay


def put_layer(store: Store, key: str, lay: BuiltLayer, created: float | None = None) -> None:
    store.put_cache_record(
        key,
        kind="regular",
        description=f"RUN {key}",
        layer_digest=lay.digest,
        media_type=mt.OCI_LAYER_GZIP,
        diff_id=lay.diff_id,
        chain_id=lay.diff_id,
        size=lay.size,
        created=created,
    )


def test_put_get_and_list(store: Store) -> None:
    lay = step(store, {"f": b"x" * 30})
    config = json.dumps({"Env": ["A=1"]})
    cfg = store.content.write(config.encode())
    rec = store.put_cache_record(
        "sha256:" + "1" * 64,
        kind="regular",
        description="RUN make",
        parent="sha256:" + "0" * 64,
        layer_digest=lay.digest,
        media_type=mt.DOCKER_LAYER,
        diff_id=lay.diff_id,
        chain_id=lay.diff_id,
        config=config,
        size=30,
        created=1000.0,
        blobs=[cfg],
    )
    assert rec == store.get_cache_record("sha256:" + "1" * 64)
    assert rec.media_type == mt.DOCKER_LAYER  # its own, not the snapshot's
    assert (rec.kind, rec.description, rec.parent) == ("regular", "RUN make", "sha256:" + "0" * 64)
    assert (rec.layer_digest, rec.diff_id, rec.chain_id) == (lay.digest, lay.diff_id, lay.diff_id)
    assert (rec.config, rec.size, rec.created, rec.last_used) == (config, 30, 1000.0, 1000.0)
    assert (rec.usage_count, rec.in_use, rec.shared) == (0, False, False)
    # a step that changed no files: no layer, no chain
    empty = store.put_cache_record("k-empty", kind="regular", description="WORKDIR /x")
    assert empty.layer_digest is None and empty.chain_id is None and empty.size == 0
    assert time.time() - empty.created < 60
    assert store.get_cache_record("nope") is None
    assert [r.key for r in store.cache_records()] == ["sha256:" + "1" * 64, "k-empty"]
    # df's build-cache line sees the records
    assert store.df().build_cache.total == 2
    assert store.check() == []


def test_media_type_falls_back_to_the_snapshot_of_the_same_blob(store: Store) -> None:
    lay = step(store, {"f": b"y"})
    rec = store.put_cache_record(
        "k", layer_digest=lay.digest, diff_id=lay.diff_id, chain_id=lay.diff_id
    )
    assert rec.media_type == mt.OCI_LAYER_GZIP


def test_records_keep_their_blobs_and_snapshots_through_gc(store: Store) -> None:
    base = step(store, {"a": b"a" * 40})
    app_files = {"b": b"b" * 40}
    app = layer(app_files)
    store.content.write(app.blob)
    d = store.scratch_dir("upper")
    (d / "b").write_bytes(app_files["b"])
    from gantry.oci import chain_ids

    top = chain_ids([base.diff_id, app.diff_id])[1]
    store.adopt_snapshot(
        top,
        parent=base.diff_id,
        diff_id=app.diff_id,
        layer_digest=app.digest,
        media_type=mt.OCI_LAYER_GZIP,
        size=40,
        directory=d,
    )
    extra = store.content.write(b"a cache mount's metadata")
    store.put_cache_record(
        "k",
        layer_digest=app.digest,
        diff_id=app.diff_id,
        chain_id=top,
        size=40,
        blobs=[extra],
    )
    store.gc(grace=-1)
    for dg in (base.digest, app.digest, extra):
        assert store.content.has(dg)
    assert store.snapshot_info(base.diff_id).refcount == 1
    assert store.lowerdirs(top)[0].joinpath("b").read_bytes() == b"b" * 40
    assert store.check() == []
    # removing the record frees the chain, its blobs and the extra blob at once
    assert store.remove_cache_records(["k", "unknown"]) == 40
    assert store.cache_records() == [] and store.snapshots() == []
    for dg in (base.digest, app.digest, extra):
        assert not store.content.has(dg)
    assert list(store.snapshots_dir.iterdir()) == []
    assert store.check() == []


def test_an_image_sharing_the_snapshot_keeps_it(store: Store) -> None:
    lay = step(store, {"f": b"shared" * 10})
    put_layer(store, "k", lay)
    img = make_image(store, [lay], tags=["app"])
    snap = store.snapshot_info(lay.diff_id)
    assert snap.refcount == 2
    # shared: its bytes count under Images, not in the build cache's SIZE
    rec = store.get_cache_record("k")
    assert rec is not None and rec.shared
    bc = store.df().build_cache
    assert (bc.total, bc.size, bc.records[0].shared) == (1, 0, True)
    store.remove_cache_records(["k"])
    assert store.snapshot_info(lay.diff_id).path == snap.path and snap.path.is_dir()
    assert store.content.has(lay.digest)
    store.remove(img.id)
    assert store.snapshots() == [] and not store.content.has(lay.digest)


def test_an_unshared_record_counts_in_df(store: Store) -> None:
    lay = step(store, {"f": b"mine" * 10})
    put_layer(store, "k", lay)
    bc = store.df().build_cache
    assert (bc.total, bc.size, bc.reclaimable, bc.records[0].shared) == (1, 40, 40, False)


def test_refused_records_change_nothing(store: Store) -> None:
    lay = step(store, {"f": b"z"})
    missing = layer({"g": b"never written"})
    with pytest.raises(BlobNotFound):
        store.put_cache_record("k", layer_digest=missing.digest, diff_id=missing.diff_id)
    with pytest.raises(BlobNotFound):
        store.put_cache_record("k", blobs=[missing.digest])
    with pytest.raises(NotFound, match="snapshot"):
        store.put_cache_record(
            "k", layer_digest=lay.digest, diff_id=lay.diff_id, chain_id=missing.diff_id
        )
    with pytest.raises(UsageError):
        store.put_cache_record("k", layer_digest=lay.digest)  # no diff ID
    with pytest.raises(UsageError):
        store.put_cache_record("", kind="regular")
    with pytest.raises(UsageError):
        store.put_cache_record("k", size=-1)
    assert store.cache_records() == []
    assert store.snapshot_info(lay.diff_id).refcount == 0
    refs = store._conn.execute("SELECT COUNT(*) FROM blob_refs").fetchone()[0]
    assert refs == 0


def test_putting_a_key_again_replaces_and_frees_the_old_result(store: Store) -> None:
    old = step(store, {"f": b"old" * 10})
    new = step(store, {"f": b"new" * 10})
    put_layer(store, "k", old)
    store.mark_cache_used(["k"])
    put_layer(store, "k", new)
    rec = store.get_cache_record("k")
    assert rec is not None and rec.layer_digest == new.digest and rec.usage_count == 0
    # nothing else held the old layer: its snapshot and blob are gone
    assert [s.chain_id for s in store.snapshots()] == [new.diff_id]
    assert not store.content.has(old.digest) and store.content.has(new.digest)
    # the same result again keeps what it already held
    put_layer(store, "k", new)
    assert store.snapshot_info(new.diff_id).refcount == 1 and store.content.has(new.digest)
    assert store.check() == []


def test_mark_used_counts_hits(store: Store) -> None:
    store.put_cache_record("a", created=100.0)
    store.put_cache_record("b", created=100.0)
    store.mark_cache_used(["a", "a", "zzz"], when=500.0)
    store.mark_cache_used(["a", "b"], when=600.0)
    store.mark_cache_used([])
    a, b = store.get_cache_record("a"), store.get_cache_record("b")
    assert a is not None and b is not None
    assert (a.usage_count, a.last_used) == (2, 600.0)
    assert (b.usage_count, b.last_used, b.created) == (1, 600.0, 100.0)


def test_a_record_whose_layer_blob_vanished_is_not_served(store: Store) -> None:
    lay = step(store, {"f": b"gone"})
    put_layer(store, "k", lay)
    store.content.path(lay.digest).unlink()  # a damaged store
    assert store.get_cache_record("k") is None
    assert [r.key for r in store.cache_records()] == ["k"]
    assert any(p.kind == "missing-blob" for p in store.check())


def test_prune_follows_builder_prune(store: Store) -> None:
    in_image = step(store, {"i": b"image"})
    free = step(store, {"f": b"free"})
    put_layer(store, "used", in_image, created=100.0)
    put_layer(store, "old", free, created=100.0)
    store.put_cache_record("new", created=time.time())
    make_image(store, [in_image], tags=["keep"])
    # until: only what was last used at or before it
    rep = store.prune_cache(until=time.time() - 3600)
    assert rep.deleted == ("old",) and rep.reclaimed == free.size
    assert not store.content.has(free.digest)
    # default: what no image shares; all: everything
    assert store.prune_cache().deleted == ("new",)
    rep = store.prune_cache(all=True)
    assert rep.deleted == ("used",) and rep.reclaimed == in_image.size
    assert store.cache_records() == []
    # the image still has its layer
    assert store.snapshot_info(in_image.diff_id).refcount == 1
    assert store.content.has(in_image.digest)
    assert store.check() == []


def test_a_version_2_database_gets_media_type(root: Path) -> None:
    lay = layer({"f": b"v2"})
    with Store(root) as s:
        s.content.write(lay.blob)
        d = s.scratch_dir("u")
        (d / "f").write_bytes(b"v2")
        s.adopt_snapshot(
            lay.diff_id,
            parent=None,
            diff_id=lay.diff_id,
            layer_digest=lay.digest,
            media_type=mt.DOCKER_LAYER,
            size=2,
            directory=d,
        )
    # make it what schema version 2 wrote, with a record as the builder glue wrote it
    conn = sqlite3.connect(root / "meta.db", isolation_level=None)
    conn.execute("ALTER TABLE build_cache DROP COLUMN media_type")
    conn.execute(
        "INSERT INTO build_cache (key, kind, description, layer_digest, diff_id, chain_id,"
        " size, created, last_used) VALUES ('k', 'regular', 'RUN x', ?, ?, ?, 2, 5.0, 5.0)",
        (lay.digest, lay.diff_id, lay.diff_id),
    )
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    with Store(root) as s:
        assert s._conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION == 4
        rec = s.get_cache_record("k")
        assert rec is not None and rec.media_type == mt.DOCKER_LAYER and rec.created == 5.0
        new = s.put_cache_record(
            "k2", layer_digest=lay.digest, diff_id=lay.diff_id, media_type="x/y"
        )
        assert new.media_type == "x/y"
