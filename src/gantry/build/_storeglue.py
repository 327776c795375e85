"""What the builder needs from the store that ``Store`` has no public method for yet.

Two things, both on the store's own tables (``docs/store.md``):

* :func:`adopt_snapshot` records a directory the builder already holds (a step's
  overlay upperdir, which *is* the unpacked layer) as the snapshot of a chain ID
  and moves it into ``snapshots/<n>/fs``, so the next step mounts it directly
  instead of unpacking the blob it was just tarred into;
* the ``build_cache`` table: records, lookups, usage bookkeeping and pruning.

This is glue written against ``gantry.store.schema`` until the store offers
``Store.adopt_snapshot`` and a build-cache API of its own; nothing here changes
the meaning of the tables.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gantry.digest import Digest
from gantry.store import Store, schema


@dataclass(frozen=True)
class CacheRecord:
    key: str
    kind: str
    description: str
    layer_digest: Digest | None
    diff_id: Digest | None
    chain_id: Digest | None
    media_type: str
    size: int
    created: float
    last_used: float | None
    usage_count: int


def _conn(store: Store):  # type: ignore[no-untyped-def]  # sqlite3.Connection, private to the store
    return store._conn


def adopt_snapshot(
    store: Store,
    *,
    chain_id: str,
    parent: str | None,
    diff_id: str,
    layer_digest: str,
    media_type: str,
    size: int,
    directory: Path,
) -> bool:
    """Make ``directory`` the snapshot of ``chain_id`` (moved, not copied).

    Returns False (and leaves ``directory`` alone) when the chain already has a
    snapshot row: someone built or pulled the same layer stack first.
    """
    conn = _conn(store)
    with schema.write(conn) as c:
        if c.execute("SELECT 1 FROM snapshots WHERE chain_id = ?", (chain_id,)).fetchone():
            return False
        cur = c.execute(
            "INSERT INTO snapshots (chain_id, parent, diff_id, layer_digest, media_type, size,"
            " ready, created) VALUES (?,?,?,?,?,?,0,?)",
            (chain_id, parent, diff_id, layer_digest, media_type, size, time.time()),
        )
        n = cur.lastrowid
    final = store.snapshots_dir / str(n)
    final.mkdir(parents=True, exist_ok=True)
    os.rename(directory, final / "fs")
    with schema.write(conn) as c:
        c.execute("UPDATE snapshots SET ready = 1 WHERE chain_id = ?", (chain_id,))
    return True


_SELECT = (
    "SELECT b.key, b.kind, b.description, b.layer_digest, b.diff_id, b.chain_id,"
    " (SELECT s.media_type FROM snapshots s WHERE s.chain_id = b.chain_id), b.size, b.created,"
    " b.last_used, b.usage_count FROM build_cache b"
)


def _record(row: tuple[object, ...]) -> CacheRecord:
    return CacheRecord(
        key=str(row[0]),
        kind=str(row[1]),
        description=str(row[2]),
        layer_digest=Digest(str(row[3])) if row[3] else None,
        diff_id=Digest(str(row[4])) if row[4] else None,
        chain_id=Digest(str(row[5])) if row[5] else None,
        media_type=str(row[6] or ""),
        size=int(row[7]),  # type: ignore[call-overload]  # INTEGER
        created=float(row[8]),  # type: ignore[arg-type]  # REAL
        last_used=None if row[9] is None else float(row[9]),  # type: ignore[arg-type]  # REAL
        usage_count=int(row[10]),  # type: ignore[call-overload]  # INTEGER
    )


def cache_get(store: Store, key: str) -> CacheRecord | None:
    """The record for ``key`` if it is still usable (its layer blob is present)."""
    row = _conn(store).execute(_SELECT + " WHERE b.key = ?", (key,)).fetchone()
    if row is None:
        return None
    rec = _record(row)
    if rec.layer_digest is not None and not store.content.has(rec.layer_digest):
        return None
    return rec


def cache_used(store: Store, keys: Iterable[str]) -> None:
    """Count a hit for each key (``last_used``, ``usage_count``)."""
    now = time.time()
    rows = [(now, k) for k in keys]
    if not rows:
        return
    with schema.write(_conn(store)) as c:
        c.executemany(
            "UPDATE build_cache SET last_used = ?, usage_count = usage_count + 1 WHERE key = ?",
            rows,
        )


def cache_put(
    store: Store,
    *,
    key: str,
    parent: str | None,
    kind: str,
    description: str,
    layer_digest: str | None,
    diff_id: str | None,
    chain_id: str | None,
    size: int,
    created: float,
) -> None:
    """Record a step's result; its layer blob and snapshot chain are held as ``cache:<key>``."""
    owner = f"cache:{key}"
    with schema.write(_conn(store)) as c:
        c.execute(
            "INSERT OR REPLACE INTO build_cache (key, parent, kind, description, layer_digest,"
            " diff_id, chain_id, config, size, created, last_used, usage_count)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,0)",
            (
                key,
                parent,
                kind,
                description,
                layer_digest,
                diff_id,
                chain_id,
                None,
                size,
                created,
                created,
            ),
        )
        if layer_digest is not None:
            c.execute(
                "INSERT OR IGNORE INTO blob_refs (owner, digest) VALUES (?, ?)",
                (owner, layer_digest),
            )
    if chain_id is not None:
        store.hold(owner, chain_id)


def cache_records(store: Store) -> list[CacheRecord]:
    rows = _conn(store).execute(_SELECT + " ORDER BY b.created").fetchall()
    return [_record(r) for r in rows]


def cache_delete(store: Store, keys: Iterable[str]) -> int:
    """Drop records (their holds released; unused snapshots and blobs go); bytes freed."""
    freed = 0
    for key in keys:
        with schema.write(_conn(store)) as c:
            row = c.execute("SELECT size FROM build_cache WHERE key = ?", (key,)).fetchone()
            c.execute("DELETE FROM build_cache WHERE key = ?", (key,))
        if row is not None:
            freed += int(row[0])
        store.release(f"cache:{key}")
    return freed


def scratch_dir(store: Store, name: str) -> Path:
    """A fresh private directory under ``<root>/build/tmp`` (same filesystem as snapshots)."""
    base = store.root / "build" / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    d = base / f"{name}-{secrets.token_hex(6)}"
    d.mkdir()
    return d


def remove_dir(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)
