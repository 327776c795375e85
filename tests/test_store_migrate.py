"""Schema migration: a ``meta.db`` written by schema version 1 opens, upgraded in place.

``V1_DUMP`` is the ``.dump`` of a root made by the version-1 store (before
``images.last_tag_time``) from the images :func:`v1_blobs` writes again here
(the helpers are deterministic, so the digests agree).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gantry.errors import StoreError
from gantry.store import Store, schema
from test_store_support import layer, make_image

BASE = layer({"bin/sh": b"#!shell" * 100})
APP = layer({"app/main.py": b"print('hi')\n" * 10})
BASE_ID = "sha256:8c91cac5cf26a50d2dc859996ae0e8e67a591b3659ba007aa6b2f6cda8158883"
APP_ID = "sha256:b0f75c5f49cceb9cefa10101e2f099600aa528aa0da4b1c8499dd0788da5840f"

V1_DUMP = """
CREATE TABLE blob_refs (
    owner  TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (owner, digest)
);
INSERT INTO "blob_refs" VALUES('image:sha256:8c91cac5cf26a50d2dc859996ae0e8e67a591b3659ba007aa6b2f6cda8158883','sha256:22ff5b6a416416263bdb7974eea46b663aba55b55b1321a78431b9034b4f2fb5');
INSERT INTO "blob_refs" VALUES('image:sha256:8c91cac5cf26a50d2dc859996ae0e8e67a591b3659ba007aa6b2f6cda8158883','sha256:8c91cac5cf26a50d2dc859996ae0e8e67a591b3659ba007aa6b2f6cda8158883');
INSERT INTO "blob_refs" VALUES('image:sha256:8c91cac5cf26a50d2dc859996ae0e8e67a591b3659ba007aa6b2f6cda8158883','sha256:a56437356c5f1632d5bb990ed51c85b4c3b752c859f72f1f973911c99cf5a910');
INSERT INTO "blob_refs" VALUES('image:sha256:b0f75c5f49cceb9cefa10101e2f099600aa528aa0da4b1c8499dd0788da5840f','sha256:2a369f38100f22330026f419880192046b4b1bafb1e94b19a39f2ecdbe1fd865');
INSERT INTO "blob_refs" VALUES('image:sha256:b0f75c5f49cceb9cefa10101e2f099600aa528aa0da4b1c8499dd0788da5840f','sha256:b0f75c5f49cceb9cefa10101e2f099600aa528aa0da4b1c8499dd0788da5840f');
INSERT INTO "blob_refs" VALUES('image:sha256:b0f75c5f49cceb9cefa10101e2f099600aa528aa0da4b1c8499dd0788da5840f','sha256:a56437356c5f1632d5bb990ed51c85b4c3b752c859f72f1f973911c99cf5a910');
INSERT INTO "blob_refs" VALUES('image:sha256:b0f75c5f49cceb9cefa10101e2f099600aa528aa0da4b1c8499dd0788da5840f','sha256:1404811a2714ad73f550e185093c2b0ef9442c029b4cb567e898ebfffd408a05');
CREATE TABLE build_cache (
    key          TEXT PRIMARY KEY,
    parent       TEXT,
    kind         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    layer_digest TEXT,
    diff_id      TEXT,
    chain_id     TEXT,
    config       TEXT,
    size         INTEGER NOT NULL DEFAULT 0,
    shared       INTEGER NOT NULL DEFAULT 0,
    in_use       INTEGER NOT NULL DEFAULT 0,
    created      REAL NOT NULL,
    last_used    REAL,
    usage_count  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE containers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    image_id   TEXT NOT NULL,
    image_ref  TEXT NOT NULL,
    chain_id   TEXT,
    state      TEXT NOT NULL DEFAULT 'created',
    created    REAL NOT NULL,
    started    REAL,
    finished   REAL,
    exit_code  INTEGER,
    pid        INTEGER,
    labels     TEXT NOT NULL DEFAULT '{}',
    config     TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE image_layers (
    image_id   TEXT NOT NULL REFERENCES images(id),
    idx        INTEGER NOT NULL,
    digest     TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL,
    diff_id    TEXT NOT NULL,
    chain_id   TEXT NOT NULL,
    PRIMARY KEY (image_id, idx)
);
INSERT INTO "image_layers" VALUES('sha256:8c91cac5cf26a50d2dc859996ae0e8e67a591b3659ba007aa6b2f6cda8158883',0,'sha256:a56437356c5f1632d5bb990ed51c85b4c3b752c859f72f1f973911c99cf5a910','application/vnd.oci.image.layer.v1.tar+gzip',109,'sha256:563625ae3455ab33114a624f3081837c7e4aaf366ce8973cfe6c74eb1240940a','sha256:563625ae3455ab33114a624f3081837c7e4aaf366ce8973cfe6c74eb1240940a');
INSERT INTO "image_layers" VALUES('sha256:b0f75c5f49cceb9cefa10101e2f099600aa528aa0da4b1c8499dd0788da5840f',0,'sha256:a56437356c5f1632d5bb990ed51c85b4c3b752c859f72f1f973911c99cf5a910','application/vnd.oci.image.layer.v1.tar+gzip',109,'sha256:563625ae3455ab33114a624f3081837c7e4aaf366ce8973cfe6c74eb1240940a','sha256:563625ae3455ab33114a624f3081837c7e4aaf366ce8973cfe6c74eb1240940a');
INSERT INTO "image_layers" VALUES('sha256:b0f75c5f49cceb9cefa10101e2f099600aa528aa0da4b1c8499dd0788da5840f',1,'sha256:1404811a2714ad73f550e185093c2b0ef9442c029b4cb567e898ebfffd408a05','application/vnd.oci.image.layer.v1.tar+gzip',116,'sha256:121d3413914fc1866a4e8d68106edcb252eb10957a274583f18e61872b36a84d','sha256:c8c5d9bca8291559a69c6c8685ff690e4424fdac50ad7d487366bff3cc764708');
CREATE TABLE images (
    id                  TEXT PRIMARY KEY,
    manifest_digest     TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    created             REAL,
    added               REAL NOT NULL,
    size                INTEGER NOT NULL,
    parent              TEXT,
    os                  TEXT NOT NULL DEFAULT '',
    architecture        TEXT NOT NULL DEFAULT '',
    labels              TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO "images" VALUES('sha256:8c91cac5cf26a50d2dc859996ae0e8e67a591b3659ba007aa6b2f6cda8158883','sha256:22ff5b6a416416263bdb7974eea46b663aba55b55b1321a78431b9034b4f2fb5','application/vnd.oci.image.manifest.v1+json',1704067200.0,1.79543569298862433439e+09,700,NULL,'linux','amd64','{}');
INSERT INTO "images" VALUES('sha256:b0f75c5f49cceb9cefa10101e2f099600aa528aa0da4b1c8499dd0788da5840f','sha256:2a369f38100f22330026f419880192046b4b1bafb1e94b19a39f2ecdbe1fd865','application/vnd.oci.image.manifest.v1+json',1706745600.0,1.79543569304513549807e+09,820,'sha256:8c91cac5cf26a50d2dc859996ae0e8e67a591b3659ba007aa6b2f6cda8158883','linux','amd64','{}');
CREATE TABLE layer_sizes (
    digest  TEXT PRIMARY KEY,
    diff_id TEXT,
    size    INTEGER NOT NULL
);
INSERT INTO "layer_sizes" VALUES('sha256:a56437356c5f1632d5bb990ed51c85b4c3b752c859f72f1f973911c99cf5a910','sha256:563625ae3455ab33114a624f3081837c7e4aaf366ce8973cfe6c74eb1240940a',700);
INSERT INTO "layer_sizes" VALUES('sha256:1404811a2714ad73f550e185093c2b0ef9442c029b4cb567e898ebfffd408a05','sha256:121d3413914fc1866a4e8d68106edcb252eb10957a274583f18e61872b36a84d',120);
CREATE TABLE leases (
    id      TEXT PRIMARY KEY,
    expires REAL NOT NULL
);
CREATE TABLE repo_digests (
    name     TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id)
);
INSERT INTO "repo_digests" VALUES('docker.io/library/base@sha256:22ff5b6a416416263bdb7974eea46b663aba55b55b1321a78431b9034b4f2fb5','sha256:8c91cac5cf26a50d2dc859996ae0e8e67a591b3659ba007aa6b2f6cda8158883');
CREATE TABLE snapshot_refs (
    owner    TEXT NOT NULL,
    chain_id TEXT NOT NULL REFERENCES snapshots(chain_id),
    PRIMARY KEY (owner, chain_id)
);
INSERT INTO "snapshot_refs" VALUES('image:sha256:8c91cac5cf26a50d2dc859996ae0e8e67a591b3659ba007aa6b2f6cda8158883','sha256:563625ae3455ab33114a624f3081837c7e4aaf366ce8973cfe6c74eb1240940a');
INSERT INTO "snapshot_refs" VALUES('image:sha256:b0f75c5f49cceb9cefa10101e2f099600aa528aa0da4b1c8499dd0788da5840f','sha256:563625ae3455ab33114a624f3081837c7e4aaf366ce8973cfe6c74eb1240940a');
INSERT INTO "snapshot_refs" VALUES('image:sha256:b0f75c5f49cceb9cefa10101e2f099600aa528aa0da4b1c8499dd0788da5840f','sha256:c8c5d9bca8291559a69c6c8685ff690e4424fdac50ad7d487366bff3cc764708');
CREATE TABLE snapshots (
    n            INTEGER PRIMARY KEY AUTOINCREMENT,
    chain_id     TEXT NOT NULL UNIQUE,
    parent       TEXT,
    diff_id      TEXT NOT NULL,
    layer_digest TEXT NOT NULL,
    media_type   TEXT NOT NULL,
    size         INTEGER NOT NULL,
    ready        INTEGER NOT NULL DEFAULT 0,
    created      REAL NOT NULL
);
INSERT INTO "snapshots" VALUES(1,'sha256:563625ae3455ab33114a624f3081837c7e4aaf366ce8973cfe6c74eb1240940a',NULL,'sha256:563625ae3455ab33114a624f3081837c7e4aaf366ce8973cfe6c74eb1240940a','sha256:a56437356c5f1632d5bb990ed51c85b4c3b752c859f72f1f973911c99cf5a910','application/vnd.oci.image.layer.v1.tar+gzip',700,0,1.79543569298862433439e+09);
INSERT INTO "snapshots" VALUES(3,'sha256:c8c5d9bca8291559a69c6c8685ff690e4424fdac50ad7d487366bff3cc764708','sha256:563625ae3455ab33114a624f3081837c7e4aaf366ce8973cfe6c74eb1240940a','sha256:121d3413914fc1866a4e8d68106edcb252eb10957a274583f18e61872b36a84d','sha256:1404811a2714ad73f550e185093c2b0ef9442c029b4cb567e898ebfffd408a05','application/vnd.oci.image.layer.v1.tar+gzip',120,0,1.79543569304513549807e+09);
CREATE TABLE tags (
    name     TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id)
);
INSERT INTO "tags" VALUES('docker.io/library/base:1','sha256:8c91cac5cf26a50d2dc859996ae0e8e67a591b3659ba007aa6b2f6cda8158883');
INSERT INTO "tags" VALUES('docker.io/library/app:1','sha256:b0f75c5f49cceb9cefa10101e2f099600aa528aa0da4b1c8499dd0788da5840f');
INSERT INTO "tags" VALUES('docker.io/library/app:latest','sha256:b0f75c5f49cceb9cefa10101e2f099600aa528aa0da4b1c8499dd0788da5840f');
CREATE INDEX images_parent ON images(parent);
CREATE INDEX tags_image ON tags(image_id);
CREATE INDEX repo_digests_image ON repo_digests(image_id);
CREATE INDEX image_layers_chain ON image_layers(chain_id);
CREATE INDEX blob_refs_digest ON blob_refs(digest);
CREATE INDEX snapshots_parent ON snapshots(parent);
CREATE INDEX snapshot_refs_chain ON snapshot_refs(chain_id);
CREATE INDEX containers_image ON containers(image_id);
CREATE INDEX build_cache_parent ON build_cache(parent);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('snapshots',3);
"""


def v1_root(root: Path) -> Path:
    """A root as the version-1 store left it: its blobs, and its meta.db (user_version 1)."""
    scratch = root.parent / "scratch"
    with Store(scratch) as s:
        base = make_image(s, [BASE], tags=["base:1"], created="2024-01-01T00:00:00Z")
        make_image(
            s,
            [BASE, APP],
            tags=["app:1", "app:latest"],
            parent=base,
            created="2024-02-01T00:00:00Z",
        )
    (root / "content").parent.mkdir(parents=True, exist_ok=True)
    (scratch / "content").rename(root / "content")
    conn = sqlite3.connect(root / "meta.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript("BEGIN;" + V1_DUMP + "; PRAGMA user_version = 1; COMMIT;")
    conn.close()
    return root


def test_v1_root_is_migrated_in_place(root: Path) -> None:
    v1_root(root)
    with Store(root) as s:
        assert s._conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        base, app = s.resolve("base:1"), s.resolve("app:1")
        assert (base.id, app.id) == (BASE_ID, APP_ID)
        assert app.parent == BASE_ID
        assert base.repo_digests and base.repo_tags == ("docker.io/library/base:1",)
        assert base.last_tag_time is None and app.last_tag_time is None
        assert s.check() == []
        s.tag(base, "base:2")
        assert s.resolve("base:2").last_tag_time is not None
    # reopening does not migrate again, and keeps what was recorded
    with Store(root) as s:
        assert s.resolve("base:1").last_tag_time is not None


def test_racing_openers_migrate_once(root: Path) -> None:
    v1_root(root)
    code = "import sys; from gantry.store import Store; Store(sys.argv[1]).images()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(root)], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    with Store(root) as s:
        assert len(s.images()) == 2


def test_newer_schema_is_refused(root: Path) -> None:
    conn = sqlite3.connect(root / "meta.db")
    conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this gantry understands"):
        Store(root)


def test_tag_time_follows_docker(root: Path) -> None:
    """Tagging (tag, build -t, import) sets it; pull/load (tag_time=False) do not; rmi keeps it."""
    with Store(root) as s:
        pulled = make_image(s, [BASE], tags=["pulled:1"], salt="p", tag_time=False)
        assert pulled.last_tag_time is None
        built = make_image(s, [APP], tags=["built:1"], salt="b")
        assert built.last_tag_time is not None
        s.tag(pulled, "pulled:2")
        first = s.image(pulled.id).last_tag_time
        assert first is not None
        s.remove("pulled:2")
        assert s.image(pulled.id).last_tag_time == first
        # re-recording the image without tags keeps the time
        again = make_image(s, [BASE], salt="p")
        assert again.id == pulled.id and again.last_tag_time == first
