from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.errors import Conflict, ImageNotFound, StoreError, UsageError
from gantry.oci import chain_ids
from gantry.store import Deleted, Store, Untagged
from test_store_support import image_docs, layer, make_image, put

BASE = layer({"bin/sh": b"#!shell" * 100})
APP = layer({"app/main.py": b"print('hi')\n" * 10})
OTHER = layer({"other": b"x" * 5000})


@pytest.fixture
def store(root: Path) -> Iterator[Store]:
    with Store(root) as s:
        yield s


def add_container(store: Store, cid: str, image_id: str, state: str) -> None:
    store._conn.execute(
        "INSERT INTO containers (id, name, image_id, image_ref, state, created)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (cid, f"c-{cid[:4]}", image_id, "x", state, time.time()),
    )


def test_untag_only_when_other_tags_remain(store: Store) -> None:
    img = make_image(store, [BASE], tags=["a:1", "a:2"])
    assert store.remove("a:1") == [Untagged("a:1")]
    assert store.image(img.id).repo_tags == ("docker.io/library/a:2",)
    assert store.content.has(BASE.digest)


def test_remove_by_tag_deletes_image_and_layers(store: Store) -> None:
    img = make_image(store, [BASE, APP], tags=["app"])
    chains = chain_ids([BASE.diff_id, APP.diff_id])
    events = store.remove("app")
    assert events == [
        Untagged("app:latest"),
        Deleted(img.id),
        Deleted(chains[1]),
        Deleted(chains[0]),
    ]
    assert [str(e) for e in events][:2] == ["Untagged: app:latest", f"Deleted: {img.id}"]
    assert store.images() == [] and store.snapshots() == []
    # every blob is gone: layers, config, manifest
    assert list(store.content.iter_digests()) == []
    with pytest.raises(ImageNotFound, match="No such image: app:latest"):
        store.remove("app")


def test_multiple_repositories_need_force(store: Store) -> None:
    img = make_image(store, [BASE], tags=["one", "two"])
    with pytest.raises(Conflict) as err:
        store.remove(img.id.hex[:12])
    assert str(err.value) == (
        f"conflict: unable to delete {img.id.short} (must be forced) - "
        "image is referenced in multiple repositories"
    )
    events = store.remove(img.id.hex[:12], force=True)
    assert events == [
        Untagged("one:latest"),
        Untagged("two:latest"),
        Deleted(img.id),
        Deleted(BASE.diff_id),
    ]


def test_single_repository_with_digest_removed_by_id(store: Store) -> None:
    img = make_image(store, [BASE], tags=["busybox"])
    store.add_repo_digest(img, "busybox")
    events = store.remove(img.id)
    assert events[:2] == [
        Untagged("busybox:latest"),
        Untagged(f"busybox@{img.manifest_digest}"),
    ]
    assert Deleted(img.id) in events


def test_untag_cleans_digest_refs_of_same_repository(store: Store) -> None:
    img = make_image(store, [BASE], tags=["busybox", "mirror/busybox:x"])
    store.add_repo_digest(img, "busybox")
    events = store.remove("busybox")
    assert events == [Untagged("busybox:latest"), Untagged(f"busybox@{img.manifest_digest}")]
    assert store.image(img.id).repo_tags == ("docker.io/mirror/busybox:x",)
    assert store.image(img.id).repo_digests == ()


def test_children_and_prune_of_parents(store: Store) -> None:
    base = make_image(store, [BASE], tags=["base"])
    mid = make_image(store, [BASE, APP], parent=base, salt="mid")  # untagged intermediate
    top = make_image(store, [BASE, APP, OTHER], tags=["top"], parent=mid)
    assert store.image(mid.id).intermediate and store.children(mid) == [top.id]
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image has dependent child images"):
        store.remove(base.id.hex, force=True)
    # untagging a parent does not delete it: it still has children
    assert store.remove("base") == [Untagged("base:latest")]
    # removing the top prunes the untagged parents, down the chain
    events = store.remove("top")
    deleted = [e.id for e in events if isinstance(e, Deleted)]
    assert top.id in deleted and mid.id in deleted and base.id in deleted
    assert store.images() == []
    assert list(store.content.iter_digests()) == []


def test_no_prune_keeps_parents(store: Store) -> None:
    base = make_image(store, [BASE])
    top = make_image(store, [BASE, APP], tags=["top"], parent=base)
    events = store.remove("top", prune=False)
    assert Deleted(top.id) in events and Deleted(base.id) not in events
    assert [i.id for i in store.images()] == [base.id]
    assert store.content.has(BASE.digest) and not store.content.has(APP.digest)


def test_shared_layers_stay_while_used(store: Store) -> None:
    a = make_image(store, [BASE, APP], tags=["a"])
    b = make_image(store, [BASE, OTHER], tags=["b"])
    events = store.remove("a")
    chains_a = chain_ids([BASE.diff_id, APP.diff_id])
    assert events == [Untagged("a:latest"), Deleted(a.id), Deleted(chains_a[1])]
    assert store.content.has(BASE.digest) and store.content.has(OTHER.digest)
    assert not store.content.has(APP.digest)
    assert {s.chain_id for s in store.snapshots()} == set(chain_ids([BASE.diff_id, OTHER.diff_id]))
    assert store.check() == []
    store.remove("b")
    assert list(store.content.iter_digests()) == []
    assert store.resolve  # store still usable
    assert b.id not in [i.id for i in store.images()]


def test_container_conflicts(store: Store) -> None:
    img = make_image(store, [BASE], tags=["web"])
    add_container(store, "c" * 64, img.id, "exited")
    with pytest.raises(Conflict) as err:
        store.remove("web")
    assert str(err.value) == (
        'conflict: unable to remove repository reference "web" (must force) - '
        f"container {'c' * 12} is using its referenced image {img.id.short}"
    )
    with pytest.raises(
        Conflict,
        match=r"\(must be forced\) - image is being used by stopped container cccccccccccc",
    ):
        store.remove(img.id.hex)
    add_container(store, "d" * 64, img.id, "running")
    with pytest.raises(
        Conflict,
        match=r"\(cannot be forced\) - image is being used by running container dddddddddddd",
    ):
        store.remove(img.id.hex, force=True)
    # forcing the tag away leaves the image (a running container uses it)
    assert store.remove("web", force=True) == [Untagged("web:latest")]
    assert store.image(img.id).dangling


def test_blob_rewritten_after_image_survives_rmi(store: Store) -> None:
    """A concurrent writer that just (re)wrote a blob keeps it even if rmi releases it."""
    make_image(store, [BASE, APP], tags=["a"])
    time.sleep(0.02)
    store.content.write(APP.blob)  # someone else is importing the same layer right now
    store.remove("a")
    assert store.content.has(APP.digest)
    assert not store.content.has(BASE.digest)
    # the sweep takes it once the grace period has passed
    assert store.gc(grace=3600).blobs == ()
    assert store.gc(grace=-1).blobs == (APP.digest,)


def test_lease_protects_blobs(store: Store) -> None:
    config, _manifest = image_docs([BASE])
    with store.lease() as lease:
        lease.add(BASE.digest)
        put(store.content, [BASE], config)
        os.utime(store.content.path(BASE.digest), (1, 1))
        os.utime(store.content.path(digest_of(config)), (1, 1))
        report = store.gc(grace=0)
        assert report.blobs == (digest_of(config),)  # not leased: collected
        assert store.content.has(BASE.digest)
    assert store.gc(grace=-1).blobs == (BASE.digest,)


def digest_of(data: bytes) -> str:
    from gantry import digest

    return digest.of_bytes(data)


def test_expired_lease_stops_protecting(store: Store) -> None:
    lease = store.lease(ttl=-1)
    store.content.write(b"blob")
    with pytest.raises(StoreError, match="expired"):
        store.gc(grace=-1)
        lease.add(digest_of(b"blob"))
    assert not store.content.has(digest_of(b"blob"))


def test_prune_dangling_and_all(store: Store) -> None:
    old = make_image(store, [BASE], tags=["x"], salt="old")
    kept = make_image(store, [BASE, APP], tags=["keep"], salt="keep")
    store.tag(make_image(store, [OTHER], salt="new"), "x")  # old becomes dangling
    report = store.prune()
    assert report.deleted == (Deleted(old.id),)
    assert report.reclaimed > 0
    assert {i.id for i in store.images()} >= {kept.id}
    report = store.prune(all=True)
    assert Untagged("keep:latest") in report.deleted and Untagged("x:latest") in report.deleted
    assert store.images() == []
    assert list(store.content.iter_digests()) == []
    assert report.reclaimed >= len(APP.blob) + len(OTHER.blob)


def test_prune_skips_used_images_and_filters(store: Store) -> None:
    used = make_image(store, [BASE], salt="used")
    add_container(store, "e" * 64, used.id, "exited")
    labelled = make_image(store, [APP], labels={"keep": "yes"}, salt="l")
    recent = make_image(store, [OTHER], created="2999-01-01T00:00:00Z", salt="r")
    report = store.prune(filters={"label!": ["keep=yes"], "until": ["24h"]})
    assert report.deleted == ()
    assert {i.id for i in store.images()} == {used.id, labelled.id, recent.id}
    report = store.prune(filters={"label": ["keep"]})
    assert report.deleted == (Deleted(labelled.id), Deleted(APP.diff_id))
    report = store.prune(filters={"until": ["2998-01-01T00:00:00Z"]})
    assert report.deleted == ()
    with pytest.raises(UsageError, match="invalid filter 'bogus'"):
        store.prune(filters={"bogus": ["1"]})
    with pytest.raises(UsageError, match="failed to parse"):
        store.prune(filters={"until": ["yesterday"]})
