"""``Store.prune``: leaves only, in rounds until nothing changes (moby's ImagesPrune filters).

Docker under ``-a`` untags an image that still has children (or whose other tags name
an image a container uses) without being able to delete it (docker/cli#3579,
moby#36295); gantry leaves such an image alone, tags included, and prunes it once
its children are gone, in the same call.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.store import Deleted, Store, Untagged
from test_store_support import layer, make_image

BASE = layer({"bin/sh": b"#!shell" * 100})
MID = layer({"lib/x.so": b"\x7fELF" * 50})
APP = layer({"app/main.py": b"print('hi')\n" * 10})


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


def chain(store: Store) -> tuple[str, str, str]:
    """base:1 <- mid:1 <- app:1 (build parents), created in that order."""
    base = make_image(store, [BASE], tags=["base:1"], created="2024-01-01T00:00:00Z")
    mid = make_image(
        store, [BASE, MID], tags=["mid:1"], parent=base, created="2024-02-01T00:00:00Z"
    )
    app = make_image(
        store, [BASE, MID, APP], tags=["app:1"], parent=mid, created="2024-03-01T00:00:00Z"
    )
    return base.id, mid.id, app.id


def test_parents_of_a_used_image_keep_their_tags(store: Store) -> None:
    *_, app = chain(store)
    add_container(store, "c" * 64, app, "running")
    report = store.prune(all=True)
    assert report.deleted == ()
    assert [t for t, _ in store.tags()] == [
        "docker.io/library/app:1",
        "docker.io/library/base:1",
        "docker.io/library/mid:1",
    ]


def test_parents_go_in_the_same_call_once_their_children_went(store: Store) -> None:
    base, mid, app = chain(store)
    report = store.prune(all=True)
    deleted = [e.id for e in report.deleted if isinstance(e, Deleted)]
    for image_id in (app, mid, base):
        assert image_id in deleted
    # children before parents, each untagged before it is deleted
    assert deleted.index(app) < deleted.index(mid) < deleted.index(base)
    assert report.deleted[0] == Untagged("app:1")
    assert store.images() == []
    assert store.prune(all=True).deleted == ()


def test_until_stops_at_a_young_child(store: Store) -> None:
    base, mid, app = chain(store)
    # app is younger than until: it stays, so mid and base (older) keep their tags too
    report = store.prune(all=True, filters={"until": ["2024-02-15T00:00:00Z"]})
    assert report.deleted == ()
    # once app is old enough, the whole chain goes
    report = store.prune(all=True, filters={"until": ["2024-03-15T00:00:00Z"]})
    assert {e.id for e in report.deleted if isinstance(e, Deleted)} >= {base, mid, app}


def test_label_filter_applies_to_every_round(store: Store) -> None:
    base = make_image(store, [BASE], tags=["base:1"], labels={"keep": "1"}, salt="b")
    app = make_image(store, [BASE, APP], tags=["app:1"], parent=base, salt="a")
    report = store.prune(all=True, filters={"label!": ["keep"]})
    assert Deleted(app.id) in report.deleted
    assert [i.id for i in store.images()] == [base.id]
    assert store.image(base.id).repo_tags == ("docker.io/library/base:1",)


def test_dangling_prune_takes_untagged_parents_with_digests_only(store: Store) -> None:
    """A parent known only by a repo digest is dangling once its last child is gone."""
    base = make_image(store, [BASE], salt="b")
    store.add_repo_digest(base, "base")
    app = make_image(store, [BASE, APP], parent=base, salt="a")
    report = store.prune()
    assert Deleted(app.id) in report.deleted
    assert Untagged(f"base@{base.manifest_digest}") in report.deleted
    assert Deleted(base.id) in report.deleted
    assert store.images() == []


def test_dangling_prune_never_touches_tags(store: Store) -> None:
    *_, app = chain(store)
    store.tag(app, "other:1")
    assert store.prune().deleted == ()
    assert len(store.images()) == 3


def test_image_used_by_stopped_container_keeps_every_tag(store: Store) -> None:
    img = make_image(store, [BASE], tags=["a:1", "b:1", "c:1"])
    add_container(store, "d" * 64, img.id, "exited")
    assert store.prune(all=True).deleted == ()
    assert len(store.image(img.id).repo_tags) == 3


def test_created_missing_is_kept_under_until(store: Store) -> None:
    img = make_image(store, [BASE], created=None, salt="nocreated")
    assert store.prune(filters={"until": ["1h"]}).deleted == ()
    assert store.prune().deleted == (Deleted(img.id), Deleted(BASE.diff_id))
