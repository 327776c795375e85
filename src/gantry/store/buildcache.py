"""Build-cache records in ``meta.db``: what :class:`~gantry.store.Store` offers the builder.

A record is one build step's result under its cache key. It holds what it needs
the way images do, as owner ``cache:<key>``: its layer blob and any extra blobs
in ``blob_refs``, its snapshot chain (and the chain's layer blobs) in
``snapshot_refs``. So garbage collection keeps exactly what the cache can still
serve, and removing a record frees what nothing else uses.

Every change is one ``BEGIN IMMEDIATE`` transaction. Blobs a record names are
checked inside that transaction, i.e. under the lock the GC sweep takes, so a
blob seen present is referenced before any sweep can unlink it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from gantry.digest import Digest
from gantry.errors import BlobNotFound, UsageError

from . import schema
from .models import CachePruneReport, CacheRecord

if TYPE_CHECKING:
    from .store import Store, _Released

#: a record is shared when marked so or when an image uses its snapshot chain (its
#: bytes are counted under Images, and ``builder prune`` without ``--all`` keeps it)
SHARED = "(b.shared OR EXISTS (SELECT 1 FROM image_layers l WHERE l.chain_id = b.chain_id))"

_SELECT = (
    """
SELECT b.key, b.kind, b.description, b.parent, b.layer_digest,
       coalesce(nullif(b.media_type, ''),
                (SELECT s.media_type FROM snapshots s
                 WHERE s.chain_id = b.chain_id AND s.layer_digest = b.layer_digest), ''),
       b.diff_id, b.chain_id, b.config, b.size, b.created, b.last_used, b.usage_count,
       b.in_use, """
    + SHARED
    + """
FROM build_cache b
"""
)


def owner(key: str) -> str:
    """The ``blob_refs``/``snapshot_refs`` owner name of the record ``key``."""
    return f"cache:{key}"


def _record(row: Sequence[object]) -> CacheRecord:
    (
        key,
        kind,
        description,
        parent,
        layer_digest,
        media_type,
        diff_id,
        chain_id,
        config,
        size,
        created,
        last_used,
        usage_count,
        in_use,
        shared,
    ) = row
    return CacheRecord(
        key=str(key),
        kind=str(kind),
        description=str(description),
        parent=None if parent is None else str(parent),
        layer_digest=Digest(str(layer_digest)) if layer_digest else None,
        media_type=str(media_type or ""),
        diff_id=Digest(str(diff_id)) if diff_id else None,
        chain_id=Digest(str(chain_id)) if chain_id else None,
        config=None if config is None else str(config),
        size=int(size),  # type: ignore[call-overload]  # INTEGER
        created=float(created),  # type: ignore[arg-type]  # REAL
        last_used=None if last_used is None else float(last_used),  # type: ignore[arg-type]  # REAL
        usage_count=int(usage_count),  # type: ignore[call-overload]  # INTEGER
        in_use=bool(in_use),
        shared=bool(shared),
    )


def put(
    store: Store,
    key: str,
    *,
    kind: str,
    description: str,
    parent: str | None,
    layer_digest: str | None,
    media_type: str,
    diff_id: str | None,
    chain_id: str | None,
    config: str | None,
    size: int,
    created: float | None,
    blobs: Iterable[str],
) -> CacheRecord:
    if not key:
        raise UsageError("a build-cache record needs a key")
    if not kind:
        raise UsageError(f"build-cache record {key}: kind must not be empty")
    if size < 0:
        raise UsageError(f"build-cache record {key}: negative size {size}")
    layer = Digest(layer_digest) if layer_digest else None
    diff = Digest(diff_id) if diff_id else None
    chain = Digest(chain_id) if chain_id else None
    if layer is not None and diff is None:
        raise UsageError(f"build-cache record {key}: a layer needs its diff ID")
    extra = [Digest(d) for d in blobs]
    when = time.time() if created is None else float(created)
    me = owner(key)
    released = _new_released()
    with schema.write(store._conn) as c:
        for d in ([layer] if layer is not None else []) + extra:
            if not store.content.has(d):
                raise BlobNotFound(f"build-cache record {key}: blob {d} is not in the store")
        # a record put again replaces the old one: its holds go, then the new ones come
        old_chains = [
            str(r[0])
            for r in c.execute("SELECT chain_id FROM snapshot_refs WHERE owner = ?", (me,))
        ]
        now = time.time()
        for (d,) in c.execute("SELECT digest FROM blob_refs WHERE owner = ?", (me,)).fetchall():
            released.blobs[Digest(d)] = now
        c.execute("DELETE FROM snapshot_refs WHERE owner = ?", (me,))
        c.execute("DELETE FROM blob_refs WHERE owner = ?", (me,))
        c.execute(
            "INSERT OR REPLACE INTO build_cache (key, parent, kind, description, layer_digest,"
            " media_type, diff_id, chain_id, config, size, created, last_used, usage_count)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,0)",
            (key, parent, kind, description, layer, media_type or None, diff, chain, config,
             size, when, when),
        )  # fmt: skip
        c.executemany(
            "INSERT OR IGNORE INTO blob_refs (owner, digest) VALUES (?, ?)",
            [(me, d) for d in ([layer] if layer is not None else []) + extra],
        )
        if chain is not None:
            store._hold_chain(c, me, chain)
        for ch in old_chains:
            store._drop_snapshot_if_unused(c, ch, released)
        row = c.execute(_SELECT + " WHERE b.key = ?", (key,)).fetchone()
    store._finish(released)
    return _record(row)


def get(store: Store, key: str) -> CacheRecord | None:
    row = store._conn.execute(_SELECT + " WHERE b.key = ?", (key,)).fetchone()
    if row is None:
        return None
    rec = _record(row)
    if rec.layer_digest is not None and not store.content.has(rec.layer_digest):
        return None  # a broken record cannot be served (check() reports the missing blob)
    return rec


def records(store: Store) -> list[CacheRecord]:
    rows = store._conn.execute(_SELECT + " ORDER BY b.created, b.key").fetchall()
    return [_record(r) for r in rows]


def mark_used(store: Store, keys: Iterable[str], when: float | None) -> None:
    now = time.time() if when is None else float(when)
    rows = [(now, k) for k in dict.fromkeys(keys)]
    if not rows:
        return
    with schema.write(store._conn) as c:
        c.executemany(
            "UPDATE build_cache SET last_used = ?, usage_count = usage_count + 1 WHERE key = ?",
            rows,
        )


def remove(store: Store, keys: Iterable[str]) -> int:
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return 0
    released = _new_released()
    with schema.write(store._conn) as c:
        total = _remove_in(store, c, wanted, released)
    store._finish(released)
    return total


def _remove_in(
    store: Store, c: sqlite3.Connection, keys: Sequence[str], released: _Released
) -> int:
    total = 0
    now = time.time()
    for key in keys:
        me = owner(key)
        row = c.execute("SELECT size FROM build_cache WHERE key = ?", (key,)).fetchone()
        if row is not None:
            total += int(row[0])
        c.execute("DELETE FROM build_cache WHERE key = ?", (key,))
        chains = [
            str(r[0])
            for r in c.execute("SELECT chain_id FROM snapshot_refs WHERE owner = ?", (me,))
        ]
        for (d,) in c.execute("SELECT digest FROM blob_refs WHERE owner = ?", (me,)).fetchall():
            released.blobs[Digest(d)] = now
        c.execute("DELETE FROM snapshot_refs WHERE owner = ?", (me,))
        c.execute("DELETE FROM blob_refs WHERE owner = ?", (me,))
        for ch in chains:
            store._drop_snapshot_if_unused(c, ch, released)
    return total


def prune(store: Store, *, all: bool, until: float | None) -> CachePruneReport:
    released = _new_released()
    with schema.write(store._conn) as c:
        rows = c.execute(
            "SELECT b.key, coalesce(b.last_used, b.created), b.in_use, "
            + SHARED
            + " FROM build_cache b ORDER BY b.created, b.key"
        ).fetchall()
        doomed = [
            str(key)
            for key, last, in_use, shared in rows
            if not in_use and (all or not shared) and (until is None or float(last) <= until)
        ]
        total = _remove_in(store, c, doomed, released)
    store._finish(released)
    return CachePruneReport(tuple(doomed), total)


def _new_released() -> _Released:
    from .store import _Released  # at call time: store imports this module

    return _Released()
