from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from gantry import digest
from gantry.errors import (
    BlobNotFound,
    DigestMismatch,
    ImageNotFound,
    InvalidManifest,
    InvalidReference,
    StoreError,
)
from gantry.store import Store
from test_store_support import image_docs, layer, make_image, put

BASE = layer({"bin/sh": b"#!shell", "etc/passwd": b"root:x:0:0::/root:/bin/sh\n"})
APP = layer({"app/main.py": b"print('hi')\n"})


@pytest.fixture
def store(root: Path) -> Store:
    with Store(root) as s:
        yield s  # type: ignore[misc]  # pytest fixture generator


def test_layout_and_schema(store: Store, root: Path) -> None:
    assert (root / "meta.db").is_file()
    assert (root / "content" / "blobs" / "sha256").is_dir()
    assert (root / "content" / "ingest").is_dir()
    assert (root / "snapshots").is_dir()
    conn = sqlite3.connect(root / "meta.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # 2 added images.last_tag_time, 3 build_cache.media_type, 4 container_status
    # (see test_store_migrate.py)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "images",
        "tags",
        "repo_digests",
        "snapshots",
        "containers",
        "container_status",
        "build_cache",
    } <= tables
    # reopening is fine; a newer schema is refused
    Store(root).close()
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store(root)


def test_add_image_records_everything(store: Store) -> None:
    img = make_image(store, [BASE, APP], tags=["app", "example.com/team/app:1"], labels={"a": "b"})
    config, manifest = image_docs([BASE, APP], labels={"a": "b"})
    assert img.id == "sha256:" + hashlib.sha256(config).hexdigest()
    assert img.manifest_digest == digest.of_bytes(manifest)
    assert img.repo_tags == ("docker.io/library/app:latest", "example.com/team/app:1")
    assert img.familiar_tags == ("app:latest", "example.com/team/app:1")
    store.add_repo_digest(img, "app")
    assert store.resolve("app").familiar_digests == (f"app@{img.manifest_digest}",)
    assert img.size == BASE.size + APP.size
    assert img.labels == {"a": "b"}
    assert img.os == "linux" and img.architecture == "amd64"
    assert img.created == pytest.approx(1704164645.123456)
    assert not img.dangling
    assert store.manifest_bytes(img) == manifest
    assert store.config_bytes(img) == config
    assert store.config(img).diff_ids == (BASE.diff_id, APP.diff_id)
    assert [la.diff_id for la in store.layers(img)] == [BASE.diff_id, APP.diff_id]
    assert [la.unpacked_size for la in store.layers(img)] == [BASE.size, APP.size]
    assert [i.id for i in store.images()] == [img.id]
    # adding the same image again is idempotent
    again = make_image(store, [BASE, APP], labels={"a": "b"})
    assert again.id == img.id and again.repo_tags == img.repo_tags
    assert again.repo_digests == (f"docker.io/library/app@{img.manifest_digest}",)
    assert len(store.images()) == 1


def test_add_image_requires_blobs(store: Store) -> None:
    config, manifest = image_docs([BASE])
    with pytest.raises(BlobNotFound):
        store.add_image(manifest)
    store.content.write(config)
    with pytest.raises(BlobNotFound):
        store.add_image(manifest)
    assert store.images() == []


def test_add_image_checks_diff_ids_and_counts(store: Store) -> None:
    config, manifest = image_docs([BASE])
    bad = json.loads(config)
    bad["rootfs"]["diff_ids"] = [APP.diff_id]
    bad_config = json.dumps(bad).encode()
    m = json.loads(manifest)
    m["config"]["digest"] = digest.of_bytes(bad_config)
    m["config"]["size"] = len(bad_config)
    put(store.content, [BASE], bad_config)
    with pytest.raises(DigestMismatch, match="diff ID"):
        store.add_image(json.dumps(m).encode())
    # layer count and diff ID count disagree
    bad["rootfs"]["diff_ids"] = []
    bad_config = json.dumps(bad).encode()
    store.content.write(bad_config)
    m["config"]["digest"] = digest.of_bytes(bad_config)
    m["config"]["size"] = len(bad_config)
    with pytest.raises(InvalidManifest, match="diff IDs"):
        store.add_image(json.dumps(m).encode())
    with pytest.raises(InvalidManifest):
        store.add_image(b"not json")
    assert store.images() == []


def test_resolve_rules(store: Store) -> None:
    a = make_image(store, [BASE], tags=["busybox", "busybox:1.36"], salt="a")
    b = make_image(store, [BASE, APP], tags=["localhost:5000/app:v1"], salt="b")
    store.add_repo_digest(b, "localhost:5000/app")
    assert store.resolve("busybox").id == a.id
    assert store.resolve("busybox:latest").id == a.id
    assert store.resolve("docker.io/library/busybox:1.36").id == a.id
    assert store.resolve("localhost:5000/app:v1").id == b.id
    assert store.resolve(f"localhost:5000/app@{b.manifest_digest}").id == b.id
    assert store.resolve(a.id).id == a.id
    assert store.resolve(a.id.hex).id == a.id
    assert store.resolve(a.id.hex[:12]).id == a.id
    assert store.resolve("sha256:" + a.id.hex[:8]).id == a.id
    with pytest.raises(ImageNotFound, match=r"^No such image: nothere:latest$"):
        store.resolve("nothere")
    with pytest.raises(ImageNotFound, match=r"^No such image: busybox:2$"):
        store.resolve("busybox:2")
    with pytest.raises(ImageNotFound, match="No such image: sha256:" + "0" * 64):
        store.resolve("0" * 64)
    with pytest.raises(InvalidReference):
        store.resolve("UPPER")
    # an ambiguous short ID is "No such image" (as Docker), with a hint
    ids = {a.id.hex[0], b.id.hex[0]}
    if len(ids) == 1:
        with pytest.raises(ImageNotFound) as err:
            store.resolve(ids.pop())
        assert err.value.hint and "several" in err.value.hint


def test_ambiguous_prefix(store: Store) -> None:
    found: dict[str, str] = {}
    salt = 0
    # make two images whose IDs share the first hex digit
    while True:
        img = make_image(store, [BASE], salt=str(salt))
        salt += 1
        first = img.id.hex[0]
        if first in found:
            break
        found[first] = img.id
    with pytest.raises(ImageNotFound, match=f"^No such image: {first}:latest$") as err:
        store.resolve(first)
    assert err.value.hint is not None


def test_tag_moves_and_leaves_dangling(store: Store) -> None:
    old = make_image(store, [BASE], tags=["app:1"], salt="old")
    new = make_image(store, [BASE, APP], salt="new")
    assert store.tag(new.id.hex[:10], "app:1") == "docker.io/library/app:1"
    assert store.tag("app:1", "registry.example/app") == "registry.example/app:latest"
    assert store.resolve("app:1").id == new.id
    assert store.image(old.id).dangling
    with pytest.raises(InvalidReference, match="digest"):
        store.tag(new, "app@" + new.manifest_digest)
    with pytest.raises(ImageNotFound):
        store.tag("missing", "x")
    assert [t for t, _ in store.tags(new)] == [
        "docker.io/library/app:1",
        "registry.example/app:latest",
    ]


def test_history(store: Store) -> None:
    hist = [
        {"created": "2024-01-01T00:00:00Z", "created_by": "ADD base /"},
        {"created": "2024-01-01T00:00:01Z", "created_by": "ENV A=1", "empty_layer": True},
        {"created": "2024-01-01T00:00:02Z", "created_by": "COPY app /app", "comment": "c"},
    ]
    base = make_image(store, [BASE], tags=["base"], history=hist[:1])
    child = make_image(store, [BASE, APP], tags=["app"], history=hist, parent=base)
    rows = store.history(child)
    assert [r.created_by for r in rows] == ["COPY app /app", "ENV A=1", "ADD base /"]
    assert [r.size for r in rows] == [APP.size, 0, BASE.size]
    assert rows[0].id == child.id and rows[0].tags == ("app:latest",)
    assert rows[1].id == base.id and rows[1].tags == ("base:latest",)
    assert rows[2].id is None  # <missing>
    assert rows[0].comment == "c" and rows[1].empty_layer
    assert rows[2].created == 1704067200.0


def test_images_listing_is_one_fast_query(store: Store) -> None:
    for i in range(50):
        make_image(
            store,
            [BASE],
            tags=[f"img{i}"],
            salt=str(i),
            created=f"2024-01-{i % 28 + 1:02d}T00:00:00Z",
        )
    imgs = store.images()
    assert len(imgs) == 50
    created = [i.created for i in imgs]
    assert created == sorted(created, reverse=True)  # newest first
