"""The metadata database (``<root>/meta.db``): schema, connections, transactions.

SQLite in WAL mode so readers never wait for a writer. Every write runs in one
short ``BEGIN IMMEDIATE`` transaction (:func:`write`), so two gantry processes
on one root serialize their writes instead of failing with "database is locked"
half way through; ``busy_timeout`` makes the second one wait.

The schema is versioned with ``PRAGMA user_version`` and created on first use
under an exclusive ``flock`` on ``<root>/meta.lock``, so processes racing to
initialize a fresh root do not trip over each other. An older database is
migrated in place, in one transaction, under the same lock (``_MIGRATIONS``:
1 -> 2 adds ``images.last_tag_time``; 2 -> 3 adds ``build_cache.media_type``; 3 -> 4
adds ``container_status``, which gantry.containers used to create on its own).

Tables (all digests are ``algo:hex`` strings; times are Unix seconds, float):

``images``          one row per image; ``id`` is the config digest (Docker's image ID)
``tags``            full normalized ``docker.io/library/x:tag`` -> image
``repo_digests``    ``docker.io/library/x@sha256:...`` known from pull/push -> image
``image_layers``    the manifest's layers in order, with diff ID and chain ID
``blob_refs``       owner -> blob; a blob with no row here is garbage. Owners are
                    ``image:<id>``, ``lease:<id>``, ``cache:<key>`` (build cache), ...
``leases``          time-limited protection for blobs written before anything
                    references them (a pull in progress)
``snapshots``       unpacked layers keyed by chain ID, with parent chain, the
                    directory number ``n`` (``snapshots/<n>/fs``) and ``ready`` flag
``snapshot_refs``   owner -> chain ID; the refcount of a snapshot is its row count
``layer_sizes``     cache: layer blob digest -> unpacked size (sum of tar entry sizes)
``containers``      one row per container (``Store.add_container`` and friends)
``container_status`` what a container's supervisor maintains, same IDs as ``containers``
``build_cache``     cached build-step results (``Store.put_cache_record`` and friends)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from gantry.errors import StoreError

SCHEMA_VERSION = 4

#: per-container fields the supervisor maintains; gantry.containers created this table
#: itself before version 4, with these columns: IF NOT EXISTS keeps its rows
_CONTAINER_STATUS = """
CREATE TABLE IF NOT EXISTS container_status (
    id               TEXT PRIMARY KEY,
    restart_count    INTEGER NOT NULL DEFAULT 0,
    oom_killed       INTEGER NOT NULL DEFAULT 0,
    error            TEXT NOT NULL DEFAULT '',
    supervisor_pid   INTEGER NOT NULL DEFAULT 0,
    supervisor_start INTEGER NOT NULL DEFAULT 0,
    stop_requested   INTEGER NOT NULL DEFAULT 0,
    health           TEXT NOT NULL DEFAULT '{}'
)
"""

#: version -> statements that bring a database of that version to the next one
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: ("ALTER TABLE images ADD COLUMN last_tag_time REAL",),
    # the record's own layer media type: the chain's snapshot may come from another blob
    2: ("ALTER TABLE build_cache ADD COLUMN media_type TEXT",),
    3: (_CONTAINER_STATUS,),
}

BUSY_TIMEOUT_MS = 30_000

_DDL = """
CREATE TABLE images (
    id                  TEXT PRIMARY KEY,        -- config digest = image ID
    manifest_digest     TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    created             REAL,                    -- from the config; NULL if it has none
    added               REAL NOT NULL,           -- when this store recorded it
    size                INTEGER NOT NULL,        -- sum of unpacked layer sizes (Docker's Size)
    parent              TEXT,                    -- parent image ID (build children)
    os                  TEXT NOT NULL DEFAULT '',
    architecture        TEXT NOT NULL DEFAULT '',
    labels              TEXT NOT NULL DEFAULT '{}', -- JSON object from config.Labels
    last_tag_time       REAL                     -- Docker's Metadata.LastTagTime; NULL: never
);
CREATE INDEX images_parent ON images(parent);

CREATE TABLE tags (
    name     TEXT PRIMARY KEY,                   -- docker.io/library/x:tag
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX tags_image ON tags(image_id);

CREATE TABLE repo_digests (
    name     TEXT PRIMARY KEY,                   -- docker.io/library/x@sha256:...
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX repo_digests_image ON repo_digests(image_id);

CREATE TABLE image_layers (
    image_id   TEXT NOT NULL REFERENCES images(id),
    idx        INTEGER NOT NULL,
    digest     TEXT NOT NULL,                    -- the (compressed) blob
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL,                 -- blob size
    diff_id    TEXT NOT NULL,
    chain_id   TEXT NOT NULL,
    PRIMARY KEY (image_id, idx)
);
CREATE INDEX image_layers_chain ON image_layers(chain_id);

CREATE TABLE blob_refs (
    owner  TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (owner, digest)
);
CREATE INDEX blob_refs_digest ON blob_refs(digest);

CREATE TABLE leases (
    id      TEXT PRIMARY KEY,
    expires REAL NOT NULL
);

CREATE TABLE snapshots (
    n            INTEGER PRIMARY KEY AUTOINCREMENT,  -- directory snapshots/<n>, never reused
    chain_id     TEXT NOT NULL UNIQUE,
    parent       TEXT,                          -- parent chain ID
    diff_id      TEXT NOT NULL,
    layer_digest TEXT NOT NULL,                 -- blob to unpack it from
    media_type   TEXT NOT NULL,
    size         INTEGER NOT NULL,              -- unpacked size of this layer alone
    ready        INTEGER NOT NULL DEFAULT 0,    -- 1 once snapshots/<n>/fs is in place
    created      REAL NOT NULL
);
CREATE INDEX snapshots_parent ON snapshots(parent);

CREATE TABLE snapshot_refs (
    owner    TEXT NOT NULL,                     -- image:<id>, container:<id>, ...
    chain_id TEXT NOT NULL REFERENCES snapshots(chain_id),
    PRIMARY KEY (owner, chain_id)
);
CREATE INDEX snapshot_refs_chain ON snapshot_refs(chain_id);

CREATE TABLE layer_sizes (
    digest  TEXT PRIMARY KEY,                   -- layer blob
    diff_id TEXT,
    size    INTEGER NOT NULL                    -- unpacked: sum of tar entry sizes
);

-- Containers (gantry.containers, through the Store API): one row per container. The container's
-- snapshot chain is held through snapshot_refs with owner 'container:<id>'.
CREATE TABLE containers (
    id         TEXT PRIMARY KEY,                -- 64 hex
    name       TEXT NOT NULL UNIQUE,            -- without the leading '/'
    image_id   TEXT NOT NULL,                   -- config digest it was created from
    image_ref  TEXT NOT NULL,                   -- what the user typed (docker ps IMAGE)
    chain_id   TEXT,                            -- top of the image's snapshot chain
    state      TEXT NOT NULL DEFAULT 'created', -- created|running|paused|restarting|exited|dead
    created    REAL NOT NULL,
    started    REAL,
    finished   REAL,
    exit_code  INTEGER,
    pid        INTEGER,
    labels     TEXT NOT NULL DEFAULT '{}',      -- JSON
    config     TEXT NOT NULL DEFAULT '{}'       -- JSON: the container's full settings
);
CREATE INDEX containers_image ON containers(image_id);

-- Build cache (written by gantry.build through the Store API): one row per cached step result. Blobs
-- it keeps alive are in blob_refs with owner 'cache:<key>'; its snapshot
-- through snapshot_refs with the same owner.
CREATE TABLE build_cache (
    key          TEXT PRIMARY KEY,              -- the step's cache key (a digest)
    parent       TEXT,                          -- parent record's key
    kind         TEXT NOT NULL,                 -- regular|source.local|exec.cachemount|...
    description  TEXT NOT NULL DEFAULT '',      -- e.g. the instruction
    layer_digest TEXT,
    diff_id      TEXT,
    chain_id     TEXT,
    config       TEXT,                          -- JSON image config after the step, if any
    size         INTEGER NOT NULL DEFAULT 0,
    shared       INTEGER NOT NULL DEFAULT 0,
    in_use       INTEGER NOT NULL DEFAULT 0,
    created      REAL NOT NULL,
    last_used    REAL,
    usage_count  INTEGER NOT NULL DEFAULT 0,
    media_type   TEXT                           -- of layer_digest; NULL: as the snapshot's
);
CREATE INDEX build_cache_parent ON build_cache(parent);
"""


def connect(root: Path) -> sqlite3.Connection:
    """Open ``root/meta.db``, creating or checking the schema."""
    db = root / "meta.db"
    try:
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False, timeout=30)
    except sqlite3.Error as err:
        raise StoreError(f"cannot open {db}: {err}") from err
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        _initialize(root, conn)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


def _initialize(root: Path, conn: sqlite3.Connection) -> None:
    lock = os.open(root / "meta.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return  # another process won the race
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{root / 'meta.db'} has schema version {version}, newer than this gantry "
                f"understands ({SCHEMA_VERSION})",
                hint="upgrade gantry or use another --root",
            )
        if version != 0 and version not in _MIGRATIONS:
            raise StoreError(f"{root / 'meta.db'}: unknown schema version {version}")
        conn.execute("PRAGMA journal_mode = WAL")
        # One transaction: a process killed half way leaves the old version intact.
        with write(conn):
            if conn.execute("PRAGMA user_version").fetchone()[0] != version:
                return  # migrated by another process between our check and our lock
            if version == 0:
                ddl = re.sub(r"--[^\n]*", "", _DDL)
                for statement in ddl.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(_CONTAINER_STATUS)
            else:
                while version < SCHEMA_VERSION:
                    for statement in _MIGRATIONS[version]:
                        conn.execute(statement)
                    version += 1
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    finally:
        os.close(lock)


@contextlib.contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (``BEGIN IMMEDIATE``): commit on success, roll back on error."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as err:
        raise StoreError(f"the store is busy: {err}", hint="another gantry holds it") from err
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextlib.contextmanager
def read(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A consistent read snapshot over several statements."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")
