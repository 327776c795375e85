"""``Store(root)``: images, tags, snapshots and garbage collection over one root.

The content store (``root/content``) holds the bytes; ``root/meta.db`` holds what
they mean. Every change of meaning is one SQLite transaction, made after the
blobs it refers to are safely in place, so a process killed at any point leaves
at worst unreferenced blobs (garbage) and never a tag pointing at nothing.

Garbage collection and concurrent writers
-----------------------------------------
A blob is live while a ``blob_refs`` row names it (an image, a build-cache
record, a lease). Blobs are unlinked only inside a ``BEGIN IMMEDIATE``
transaction, i.e. while holding the database's write lock, and after checking
that no row names them; recording a reference takes the same lock. So:

* a writer that adds a blob to a :class:`Lease` *before* writing it (a pull
  knows its digests up front) can never lose it;
* a writer without a lease is protected by the grace period: the sweep only
  removes an unreferenced blob whose mtime is older than ``grace`` seconds, and
  writing a blob that already exists refreshes its mtime;
* blobs released by ``rmi``/``prune`` are removed at once, unless their mtime is
  newer than the moment the removed image was recorded (someone wrote or
  re-wrote them since: left for the sweep).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from gantry.config import default_root
from gantry.content import ContentStore
from gantry.digest import Digest
from gantry.errors import (
    BlobNotFound,
    Conflict,
    DigestMismatch,
    ImageNotFound,
    InvalidManifest,
    NotFound,
    StoreError,
    UsageError,
)
from gantry.oci import ImageConfig, Manifest, chain_ids, parse_config
from gantry.oci.manifest import MAX_MANIFEST_SIZE

from . import _layers, buildcache, names, schema
from . import containers as _containers
from . import filters as _filters
from .models import (
    BuildCacheDiskUsage,
    BuildCacheUsage,
    CachePruneReport,
    CacheRecord,
    ContainerRecord,
    ContainersDiskUsage,
    ContainerUsage,
    DiskUsage,
    Event,
    GCReport,
    HistoryEntry,
    Image,
    ImageUsage,
    Layer,
    Problem,
    PruneReport,
    Snapshot,
    Untagged,
)
from .models import Deleted as DeletedEvent

#: configs are small JSON documents; refuse absurd ones like manifests
MAX_CONFIG_SIZE = 8 * 1024 * 1024
#: unreferenced blobs and snapshot directories younger than this are left alone
DEFAULT_GRACE = 3600.0
#: abandoned ingests (partial downloads) are kept this long for resuming
INGEST_GRACE = 24 * 3600.0

ImageLike = Image | str

#: above this many candidates, GC loads the referenced digests at once
_BULK = 64
#: prefix of a snapshot directory being removed (renamed out of its live name first)
_DOOMED = ".rm-"
#: ``<root>/tmp``: scratch directories (:meth:`Store.scratch_dir`)
_SCRATCH = "tmp"

_RUNNING = ("running", "paused", "restarting")

_IMAGE_SELECT = """
SELECT i.id, i.manifest_digest, i.manifest_media_type, i.created, i.added, i.size,
       i.parent, i.os, i.architecture, i.labels,
       (SELECT group_concat(name, char(10)) FROM tags t WHERE t.image_id = i.id),
       (SELECT group_concat(name, char(10)) FROM repo_digests r WHERE r.image_id = i.id),
       (SELECT COUNT(*) FROM images c WHERE c.parent = i.id),
       (SELECT COUNT(*) FROM containers k WHERE k.image_id = i.id),
       i.last_tag_time
FROM images i
"""


def _row_image(row: Sequence[object]) -> Image:
    tags = tuple(sorted(str(row[10]).split("\n"))) if row[10] else ()
    digests = tuple(sorted(str(row[11]).split("\n"))) if row[11] else ()
    return Image(
        id=Digest(str(row[0])),
        manifest_digest=Digest(str(row[1])),
        media_type=str(row[2]),
        created=None if row[3] is None else float(row[3]),  # type: ignore[arg-type]  # REAL
        added=float(row[4]),  # type: ignore[arg-type]  # REAL
        size=int(row[5]),  # type: ignore[call-overload]  # INTEGER
        parent=Digest(str(row[6])) if row[6] else None,
        os=str(row[7]),
        architecture=str(row[8]),
        labels=json.loads(str(row[9])),
        repo_tags=tags,
        repo_digests=digests,
        children=int(row[12]),  # type: ignore[call-overload]  # INTEGER
        containers=int(row[13]),  # type: ignore[call-overload]  # INTEGER
        last_tag_time=None if row[14] is None else float(row[14]),  # type: ignore[arg-type]  # REAL
    )


def parse_time(value: str | None) -> float | None:
    """An RFC 3339 time from a config (nanoseconds allowed) as Unix seconds."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class _Conflict:
    image_id: Digest
    message: str
    hard: bool
    used: bool = False

    def error(self) -> Conflict:
        force = "cannot be forced" if self.hard else "must be forced"
        return Conflict(
            f"conflict: unable to delete {self.image_id.short} ({force}) - {self.message}"
        )


_DEPENDENT_CHILD, _RUNNING_CONTAINER, _ACTIVE_REFERENCE, _STOPPED_CONTAINER = 1, 2, 4, 8
_HARD = _DEPENDENT_CHILD | _RUNNING_CONTAINER
_SOFT = _ACTIVE_REFERENCE | _STOPPED_CONTAINER


class Lease:
    """Keeps blobs alive while nothing else references them yet (a pull in progress).

    Add digests *before* writing them: ``lease.add(d); store.content.ingest(...)``.
    The lease ends on :meth:`release` (or leaving the ``with`` block) or when it
    expires; its blobs then become garbage unless an image references them.
    """

    def __init__(self, store: Store, ttl: float) -> None:
        self._store = store
        self.id = secrets.token_hex(16)
        self.expires = time.time() + ttl
        with schema.write(store._conn) as c:
            c.execute("INSERT INTO leases (id, expires) VALUES (?, ?)", (self.id, self.expires))

    @property
    def owner(self) -> str:
        return f"lease:{self.id}"

    def add(self, *digests: str) -> None:
        rows = [(self.owner, Digest(d)) for d in digests]
        with schema.write(self._store._conn) as c:
            if c.execute("SELECT 1 FROM leases WHERE id = ?", (self.id,)).fetchone() is None:
                raise StoreError(f"lease {self.id} has expired")
            c.executemany("INSERT OR IGNORE INTO blob_refs (owner, digest) VALUES (?, ?)", rows)

    def extend(self, ttl: float) -> None:
        self.expires = time.time() + ttl
        with schema.write(self._store._conn) as c:
            c.execute("UPDATE leases SET expires = ? WHERE id = ?", (self.expires, self.id))

    def release(self) -> None:
        with schema.write(self._store._conn) as c:
            c.execute("DELETE FROM blob_refs WHERE owner = ?", (self.owner,))
            c.execute("DELETE FROM leases WHERE id = ?", (self.id,))

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class Store:
    """Images, tags and snapshots under ``root`` (default: :func:`gantry.config.default_root`).

    One ``Store`` per thread; any number of processes may open the same root.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.content = ContentStore(self.root / "content")
        self.snapshots_dir = self.root / "snapshots"
        self.snapshots_dir.mkdir(exist_ok=True)
        self._conn = schema.connect(self.root)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ images

    def add_image(
        self,
        manifest: bytes,
        *,
        media_type: str | None = None,
        tags: Iterable[str] = (),
        repo_digests: Iterable[str] = (),
        parent: ImageLike | None = None,
        layer_sizes: Mapping[str, int] | None = None,
        blobs: Iterable[str] = (),
        tag_time: bool = True,
    ) -> Image:
        """Record an image whose config and layers are already in the content store.

        ``manifest`` is stored as is (its digest is the image's manifest digest).
        ``tags``: names to point at the image (``ubuntu``, ``x:1``...). ``repo_digests``:
        repository names (or ``name@digest``) the manifest is known under in a
        registry. ``layer_sizes``: unpacked size per layer blob digest when the
        caller measured it (pull/import); otherwise each new layer is read once to
        measure it and to check its diff ID. ``blobs``: more blobs to keep alive with
        the image (e.g. the index it was pulled through). ``tag_time``: whether
        ``tags`` count as tagging for :attr:`Image.last_tag_time` (Docker sets it
        when building, importing, committing and tagging; pull and load pass False).
        """
        if len(manifest) > MAX_MANIFEST_SIZE:
            raise InvalidManifest(f"manifest is {len(manifest)} bytes, over the 4 MiB limit")
        m = Manifest.parse(manifest, media_type)
        image_id = Digest(m.config.digest)
        config_raw = self.content.read(image_id, max_size=MAX_CONFIG_SIZE)
        if len(config_raw) != m.config.size:
            raise InvalidManifest(
                f"config {image_id} is {len(config_raw)} bytes, manifest says {m.config.size}"
            )
        config = parse_config(config_raw)
        diff_ids = config.diff_ids
        if len(diff_ids) != len(m.layers):
            raise InvalidManifest(
                f"manifest has {len(m.layers)} layers but the config lists {len(diff_ids)} diff IDs"
            )
        for desc in m.layers:
            if not self.content.has(desc.digest):
                raise BlobNotFound(f"blob {desc.digest} not found")
            if self.content.size(desc.digest) != desc.size:
                raise InvalidManifest(f"layer {desc.digest}: size does not match the manifest")
        extra = [Digest(d) for d in blobs]
        for d in extra:
            if not self.content.has(d):
                raise BlobNotFound(f"blob {d} not found")
        chains = chain_ids(diff_ids)
        sizes = [
            self._layer_size(Digest(desc.digest), diff, layer_sizes)
            for desc, diff in zip(m.layers, diff_ids, strict=True)
        ]
        tag_names = [names.tag_name(t) for t in tags]
        digest_names: list[str] = []
        manifest_digest = self.content.write(manifest)
        for name in repo_digests:
            repo, _, dg = name.partition("@")
            digest_names.append(names.repo_digest_name(repo, dg or manifest_digest))
        parent_id = self._image_of(parent).id if parent is not None else None
        cfg = config.container_config
        now = time.time()
        owner = f"image:{image_id}"
        with schema.write(self._conn) as c:
            # Inside the write lock the GC cannot run: check the blobs are still there.
            needed = [manifest_digest, image_id, *(ld.digest for ld in m.layers), *extra]
            for d in needed:
                if not self.content.has(d):
                    raise BlobNotFound(f"blob {d} not found")
            old = c.execute(
                "SELECT parent, last_tag_time FROM images WHERE id = ?", (image_id,)
            ).fetchone()
            if parent_id is None and old is not None:
                parent_id = old[0]
            last_tag_time = now if tag_names and tag_time else (old[1] if old else None)
            c.execute(
                "INSERT OR REPLACE INTO images (id, manifest_digest, manifest_media_type, created,"
                " added, size, parent, os, architecture, labels, last_tag_time)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    image_id,
                    manifest_digest,
                    m.media_type,
                    parse_time(config.created),
                    now,
                    sum(sizes),
                    parent_id,
                    config.os,
                    config.architecture,
                    json.dumps(dict(cfg.labels), sort_keys=True),
                    last_tag_time,
                ),
            )
            c.execute("DELETE FROM image_layers WHERE image_id = ?", (image_id,))
            c.executemany(
                "INSERT INTO image_layers (image_id, idx, digest, media_type, size, diff_id,"
                " chain_id) VALUES (?,?,?,?,?,?,?)",
                [
                    (image_id, i, d.digest, d.media_type, d.size, diff_ids[i], chains[i])
                    for i, d in enumerate(m.layers)
                ],
            )
            c.execute("DELETE FROM blob_refs WHERE owner = ?", (owner,))
            c.executemany(
                "INSERT OR IGNORE INTO blob_refs (owner, digest) VALUES (?, ?)",
                [(owner, d) for d in needed],
            )
            for i, desc in enumerate(m.layers):
                c.execute(
                    "INSERT OR IGNORE INTO snapshots (chain_id, parent, diff_id, layer_digest,"
                    " media_type, size, created) VALUES (?,?,?,?,?,?,?)",
                    (
                        chains[i],
                        chains[i - 1] if i else None,
                        diff_ids[i],
                        desc.digest,
                        desc.media_type,
                        sizes[i],
                        now,
                    ),
                )
            c.execute("DELETE FROM snapshot_refs WHERE owner = ?", (owner,))
            c.executemany(
                "INSERT INTO snapshot_refs (owner, chain_id) VALUES (?, ?)",
                [(owner, ch) for ch in dict.fromkeys(chains)],
            )
            c.executemany(
                "INSERT OR REPLACE INTO tags (name, image_id) VALUES (?, ?)",
                [(t, image_id) for t in tag_names],
            )
            c.executemany(
                "INSERT OR REPLACE INTO repo_digests (name, image_id) VALUES (?, ?)",
                [(n, image_id) for n in digest_names],
            )
        return self.image(image_id)

    def _layer_size(self, digest: Digest, diff_id: Digest, given: Mapping[str, int] | None) -> int:
        if given is not None and digest in given:
            size = int(given[digest])
        else:
            row = self._conn.execute(
                "SELECT size, diff_id FROM layer_sizes WHERE digest = ?", (digest,)
            ).fetchone()
            if row is not None:
                if row[1] and row[1] != diff_id:
                    raise InvalidManifest(
                        f"layer {digest} has diff ID {row[1]}, the config says {diff_id}"
                    )
                return int(row[0])
            with self.content.open(digest) as f:
                measured, size = _layers.scan(f)
            if measured != diff_id:
                raise DigestMismatch(
                    f"layer {digest}: diff ID mismatch: the config says {diff_id}, "
                    f"the layer is {measured}"
                )
        with schema.write(self._conn) as c:
            c.execute(
                "INSERT OR REPLACE INTO layer_sizes (digest, diff_id, size) VALUES (?, ?, ?)",
                (digest, diff_id, size),
            )
        return size

    def image(self, image_id: str) -> Image:
        """The image with exactly this ID (config digest)."""
        row = self._conn.execute(_IMAGE_SELECT + " WHERE i.id = ?", (image_id,)).fetchone()
        if row is None:
            raise ImageNotFound(f"No such image: {image_id}")
        return _row_image(row)

    def images(self) -> list[Image]:
        """Every image, newest first (one query)."""
        rows = self._conn.execute(
            _IMAGE_SELECT + " ORDER BY coalesce(i.created, 0) DESC, i.id"
        ).fetchall()
        return [_row_image(r) for r in rows]

    def resolve(self, spec: str) -> Image:
        """Find an image as Docker does: name[:tag], name@digest, full or short ID."""
        return self.image(self._resolve_id(spec))

    def _image_of(self, image: ImageLike) -> Image:
        return image if isinstance(image, Image) else self.resolve(image)

    def _resolve_id(self, spec: str) -> Digest:
        c = self._conn
        lk = names.lookup(spec)
        if lk.id is not None:
            if c.execute("SELECT 1 FROM images WHERE id = ?", (lk.id,)).fetchone():
                return lk.id
            raise ImageNotFound(f"No such image: {lk.familiar}")
        table = "repo_digests" if lk.digested else "tags"
        row = c.execute(f"SELECT image_id FROM {table} WHERE name = ?", (lk.ref,)).fetchone()
        if row is not None:
            return Digest(row[0])
        if lk.digested:
            # name@digest of an image we know by that manifest digest in that repository
            dg = lk.ref.rsplit("@", 1)[1] if lk.ref else ""
            row = c.execute(
                "SELECT i.id FROM images i WHERE i.manifest_digest = ? AND EXISTS ("
                " SELECT 1 FROM tags t WHERE t.image_id = i.id AND t.name GLOB ?)",
                (dg, f"{lk.repository}:*"),
            ).fetchone()
            if row is not None:
                return Digest(row[0])
        prefix = spec[7:] if spec.startswith("sha256:") else spec
        if prefix and all(ch in "0123456789abcdef" for ch in prefix) and len(prefix) <= 64:
            rows = c.execute(
                "SELECT id FROM images WHERE id GLOB ? LIMIT 2", (f"sha256:{prefix}*",)
            ).fetchall()
            if len(rows) == 1:
                return Digest(rows[0][0])
            if len(rows) > 1:
                raise ImageNotFound(
                    f"No such image: {lk.familiar}",
                    hint=f"the short ID {prefix} matches several images; give more of it",
                )
        raise ImageNotFound(f"No such image: {lk.familiar}")

    def tag(self, image: ImageLike, target: str) -> str:
        """Point ``target`` (``name[:tag]``) at ``image``; returns the full tag stored."""
        img = self._image_of(image)
        name = names.tag_name(target)
        with schema.write(self._conn) as c:
            if c.execute("SELECT 1 FROM images WHERE id = ?", (img.id,)).fetchone() is None:
                raise ImageNotFound(f"No such image: {img.id}")
            c.execute("INSERT OR REPLACE INTO tags (name, image_id) VALUES (?, ?)", (name, img.id))
            c.execute("UPDATE images SET last_tag_time = ? WHERE id = ?", (time.time(), img.id))
        return name

    def add_repo_digest(self, image: ImageLike, name: str, digest: str | None = None) -> str:
        """Record that ``image`` is known as ``name@digest`` in a registry (after a push)."""
        img = self._image_of(image)
        full = names.repo_digest_name(name, digest or img.manifest_digest)
        with schema.write(self._conn) as c:
            c.execute(
                "INSERT OR REPLACE INTO repo_digests (name, image_id) VALUES (?, ?)", (full, img.id)
            )
        return full

    def tags(self, image: ImageLike | None = None) -> list[tuple[str, Digest]]:
        """(full tag, image ID) pairs, optionally of one image."""
        if image is None:
            rows = self._conn.execute("SELECT name, image_id FROM tags ORDER BY name").fetchall()
        else:
            rows = self._conn.execute(
                "SELECT name, image_id FROM tags WHERE image_id = ? ORDER BY name",
                (self._image_of(image).id,),
            ).fetchall()
        return [(str(n), Digest(i)) for n, i in rows]

    # ------------------------------------------------------------- documents

    def manifest_bytes(self, image: ImageLike) -> bytes:
        return self.content.read(self._image_of(image).manifest_digest, max_size=MAX_MANIFEST_SIZE)

    def manifest(self, image: ImageLike) -> Manifest:
        img = self._image_of(image)
        return Manifest.parse(self.manifest_bytes(img), img.media_type)

    def config_bytes(self, image: ImageLike) -> bytes:
        return self.content.read(self._image_of(image).id, max_size=MAX_CONFIG_SIZE)

    def config(self, image: ImageLike) -> ImageConfig:
        return parse_config(self.config_bytes(image))

    def layers(self, image: ImageLike) -> list[Layer]:
        """The image's layers, bottom first."""
        rows = self._conn.execute(
            "SELECT l.digest, l.media_type, l.size, l.diff_id, l.chain_id, coalesce(s.size, 0)"
            " FROM image_layers l LEFT JOIN snapshots s ON s.chain_id = l.chain_id"
            " WHERE l.image_id = ? ORDER BY l.idx",
            (self._image_of(image).id,),
        ).fetchall()
        return [
            Layer(Digest(d), str(mt), int(sz), Digest(diff), Digest(ch), int(us))
            for d, mt, sz, diff, ch, us in rows
        ]

    def children(self, image: ImageLike) -> list[Digest]:
        rows = self._conn.execute(
            "SELECT id FROM images WHERE parent = ? ORDER BY id", (self._image_of(image).id,)
        ).fetchall()
        return [Digest(r[0]) for r in rows]

    def history(self, image: ImageLike) -> list[HistoryEntry]:
        """``docker history`` rows, newest first; IDs filled along the parent chain."""
        img = self._image_of(image)
        config = self.config(img)
        chain_sizes = dict(
            self._conn.execute(
                "SELECT l.chain_id, coalesce(s.size, 0) FROM image_layers l"
                " LEFT JOIN snapshots s ON s.chain_id = l.chain_id WHERE l.image_id = ?",
                (img.id,),
            ).fetchall()
        )
        chains = config.chain_ids()
        entries: list[HistoryEntry] = []
        n = 0
        for h in config.history:
            size = 0
            if not h.empty_layer:
                if n >= len(chains):
                    raise InvalidManifest("too many non-empty layers in History section")
                size = int(chain_sizes.get(chains[n], 0))
                n += 1
            entries.append(
                HistoryEntry(
                    id=None,
                    created=parse_time(h.created),
                    created_by=h.created_by or "",
                    size=size,
                    comment=h.comment or "",
                    empty_layer=h.empty_layer,
                )
            )
        entries.reverse()
        current: Image | None = img
        for i, e in enumerate(entries):
            if current is None:
                break
            tags = tuple(names.familiar(t) for t in current.repo_tags)
            entries[i] = HistoryEntry(
                current.id, e.created, e.created_by, e.size, e.comment, e.empty_layer, tags
            )
            try:
                current = self.image(current.parent) if current.parent else None
            except ImageNotFound:
                current = None
        return entries

    # ---------------------------------------------------------------- removal

    def remove(self, spec: str, *, force: bool = False, prune: bool = True) -> list[Event]:
        """``docker rmi``: Untagged/Deleted events, conflicts worded as Docker words them.

        ``prune=False`` is ``--no-prune`` (untagged parents are kept).
        """
        events, _ = self._remove(spec, force=force, prune=prune)
        return events

    def _remove(self, spec: str, *, force: bool, prune: bool) -> tuple[list[Event], int]:
        records: list[Event] = []
        released = _Released()
        with schema.write(self._conn) as c:
            image_id = self._resolve_id(spec)
            refs = self._refs(image_id)
            removed_repository_ref = False
            if not _is_id_prefix(image_id, spec):
                if not force and _is_single_reference(refs):
                    ctr = self._first_container(image_id, None)
                    if ctr is not None:
                        raise Conflict(
                            f'conflict: unable to remove repository reference "{spec}" '
                            f"(must force) - container {ctr[:12]} is using its referenced "
                            f"image {image_id.short}"
                        )
                lk = names.lookup(spec)
                assert lk.ref is not None and lk.repository is not None
                self._delete_ref(lk.ref)
                records.append(Untagged(lk.familiar))
                refs = self._refs(image_id)
                if not lk.digested and not any(
                    not dg and names.repository_of(r) == lk.repository for r, dg in refs
                ):
                    remaining = []
                    for r, dg in refs:
                        if dg and names.repository_of(r) == lk.repository:
                            self._delete_ref(r)
                            records.append(Untagged(names.familiar(r)))
                        else:
                            remaining.append((r, dg))
                    refs = remaining
                if refs:
                    return records, 0
                removed_repository_ref = True
            elif _is_single_reference(refs):
                mask = _HARD if force else _HARD | (_SOFT & ~_ACTIVE_REFERENCE)
                conflict = self._conflict(image_id, mask)
                if conflict is not None:
                    raise conflict.error()
                for r, _dg in refs:
                    self._delete_ref(r)
                    records.append(Untagged(names.familiar(r)))
            self._delete_helper(
                c,
                image_id,
                records,
                released,
                force=force,
                prune=prune,
                quiet=removed_repository_ref,
            )
        return records, self._finish(released)

    def _refs(self, image_id: str) -> list[tuple[str, bool]]:
        """(full name, is-digest-ref) of every tag and repo digest of the image."""
        c = self._conn
        tags = c.execute("SELECT name FROM tags WHERE image_id = ? ORDER BY name", (image_id,))
        out = [(str(r[0]), False) for r in tags.fetchall()]
        dgs = c.execute(
            "SELECT name FROM repo_digests WHERE image_id = ? ORDER BY name", (image_id,)
        )
        out += [(str(r[0]), True) for r in dgs.fetchall()]
        return out

    def _delete_ref(self, full: str) -> None:
        table = "repo_digests" if "@" in full else "tags"
        self._conn.execute(f"DELETE FROM {table} WHERE name = ?", (full,))

    def _first_container(self, image_id: str, states: Sequence[str] | None) -> str | None:
        sql = "SELECT id FROM containers WHERE image_id = ?"
        args: list[str] = [image_id]
        if states is not None:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args += states
        row = self._conn.execute(sql + " ORDER BY created LIMIT 1", args).fetchone()
        return None if row is None else str(row[0])

    def _stopped_container(self, image_id: str) -> str | None:
        row = self._conn.execute(
            "SELECT id FROM containers WHERE image_id = ? AND state NOT IN (?,?,?)"
            " ORDER BY created LIMIT 1",
            (image_id, *_RUNNING),
        ).fetchone()
        return None if row is None else str(row[0])

    def _conflict(self, image_id: Digest, mask: int) -> _Conflict | None:
        c = self._conn
        if (
            mask & _DEPENDENT_CHILD
            and c.execute("SELECT 1 FROM images WHERE parent = ? LIMIT 1", (image_id,)).fetchone()
        ):
            return _Conflict(image_id, "image has dependent child images", hard=True)
        if mask & _RUNNING_CONTAINER:
            ctr = self._first_container(image_id, _RUNNING)
            if ctr is not None:
                return _Conflict(
                    image_id,
                    f"image is being used by running container {ctr[:12]}",
                    hard=True,
                    used=True,
                )
        if mask & _ACTIVE_REFERENCE and self._refs(image_id):
            return _Conflict(image_id, "image is referenced in multiple repositories", hard=False)
        if mask & _STOPPED_CONTAINER:
            ctr = self._stopped_container(image_id)
            if ctr is not None:
                return _Conflict(
                    image_id,
                    f"image is being used by stopped container {ctr[:12]}",
                    hard=False,
                    used=True,
                )
        return None

    def _is_dangling(self, image_id: str) -> bool:
        c = self._conn
        has_child = c.execute("SELECT 1 FROM images WHERE parent = ? LIMIT 1", (image_id,))
        return not self._refs(image_id) and has_child.fetchone() is None

    def _delete_helper(
        self,
        c: sqlite3.Connection,
        image_id: Digest,
        records: list[Event],
        released: _Released,
        *,
        force: bool,
        prune: bool,
        quiet: bool,
    ) -> None:
        while True:
            conflict = self._conflict(image_id, _HARD if force else _HARD | _SOFT)
            if conflict is not None:
                if quiet and (not self._is_dangling(image_id) or conflict.used):
                    return
                raise conflict.error()
            row = c.execute("SELECT parent, added FROM images WHERE id = ?", (image_id,)).fetchone()
            parent, added = (row[0], float(row[1])) if row else (None, time.time())
            for r, _dg in self._refs(image_id):
                self._delete_ref(r)
                records.append(Untagged(names.familiar(r)))
            owner = f"image:{image_id}"
            for (d,) in c.execute("SELECT digest FROM blob_refs WHERE owner = ?", (owner,)):
                released.blobs[Digest(d)] = max(added, released.blobs.get(Digest(d), 0.0))
            chains = [
                str(r[0])
                for r in c.execute(
                    "SELECT chain_id FROM image_layers WHERE image_id = ? ORDER BY idx DESC",
                    (image_id,),
                ).fetchall()
            ]
            c.execute("DELETE FROM blob_refs WHERE owner = ?", (owner,))
            c.execute("DELETE FROM snapshot_refs WHERE owner = ?", (owner,))
            c.execute("DELETE FROM image_layers WHERE image_id = ?", (image_id,))
            c.execute("DELETE FROM images WHERE id = ?", (image_id,))
            records.append(DeletedEvent(image_id))
            for chain in dict.fromkeys(chains):
                if self._drop_snapshot_if_unused(c, chain, released):
                    records.append(DeletedEvent(chain))
            if not prune or not parent:
                return
            # prune the parent quietly, never forced
            image_id, force, quiet = Digest(parent), False, True

    def _drop_snapshot_if_unused(
        self, c: sqlite3.Connection, chain_id: str, released: _Released
    ) -> bool:
        if c.execute(
            "SELECT 1 FROM snapshot_refs WHERE chain_id = ? LIMIT 1", (chain_id,)
        ).fetchone():
            return False
        row = c.execute("SELECT n FROM snapshots WHERE chain_id = ?", (chain_id,)).fetchone()
        if row is None:
            return False
        c.execute("DELETE FROM snapshots WHERE chain_id = ?", (chain_id,))
        released.snapshot_dirs.append(self.snapshots_dir / str(row[0]))
        return True

    def _finish(self, released: _Released) -> int:
        """After a commit: remove released snapshot directories and blobs; bytes freed."""
        freed = 0
        for d in released.snapshot_dirs:
            freed += _remove_tree(d)
        if released.blobs:
            freed += self._collect(released.blobs).reclaimed
        return freed

    # ---------------------------------------------------------------- pruning

    def prune(
        self, *, all: bool = False, filters: Mapping[str, Iterable[str]] | None = None
    ) -> PruneReport:
        """``docker image prune``: dangling images, or with ``all`` every unused one.

        As moby's ``ImagesPrune`` (filters, messages, events, Conflicts skipped), except
        that only leaves are touched, in rounds until nothing changes: an image that
        still has children or is used by a container keeps its tags (Docker would untag
        it under ``-a`` without freeing anything: docker/cli#3579, moby#36295).

        ``filters``: ``until`` (timestamp or duration), ``label`` / ``label!``
        (``key`` or ``key=value``), ``dangling`` (``true``/``false``).
        """
        flt = {k: list(v) for k, v in (filters or {}).items()}
        _filters.check_keys(flt, ("until", "label", "label!", "dangling"))
        dangling_only = not all
        for v in flt.get("dangling", []):
            if v.lower() in ("false", "0"):
                dangling_only = False
            elif v.lower() in ("true", "1"):
                dangling_only = True
            else:
                raise UsageError(f"invalid filter 'dangling={v}'")
        until: float | None = None
        if flt.get("until"):
            if len(flt["until"]) > 1:
                raise UsageError("more than one until filter specified")
            try:
                until = _filters.parse_timestamp(flt["until"][0])
            except UsageError as err:
                raise UsageError(f"invalid value for 'until' filter: {err}") from None
        include, exclude = flt.get("label", []), flt.get("label!", [])

        events: list[Event] = []
        reclaimed = 0
        attempted: set[str] = set()
        # Rounds: removing a leaf can make its parent a leaf; repeat until nothing changes,
        # so one prune leaves nothing that a second one would remove.
        while True:
            progressed = False
            for img in self.images():
                if img.id in attempted or img.children or img.containers:
                    # Only leaves: an image with children stays, tags included. moby untags
                    # such images under -a without being able to delete them
                    # (docker/cli#3579); a container's image is never touched (moby#36295).
                    continue
                if until is not None and (img.created is None or img.created > until):
                    continue
                if not _filters.match_labels(img.labels, include, exclude):
                    continue
                attempted.add(img.id)
                if dangling_only and img.repo_tags:
                    continue
                refs = (*img.repo_tags, *img.repo_digests) or (img.id,)
                for ref in refs:
                    try:
                        ev, freed = self._remove(ref, force=False, prune=True)
                    except (Conflict, NotFound):
                        continue  # Docker skips images it cannot delete
                    events += ev
                    reclaimed += freed
                    progressed = True
            if not progressed:
                break
        reclaimed += self.gc().reclaimed
        return PruneReport(tuple(events), reclaimed)

    # --------------------------------------------------------- leases and GC

    def lease(self, ttl: float = 3600.0) -> Lease:
        """Protect blobs being written before an image references them."""
        return Lease(self, ttl)

    def add_blob_refs(self, owner: str, digests: Iterable[str]) -> None:
        """Keep blobs alive on behalf of ``owner`` (e.g. ``cache:<key>``)."""
        rows = [(owner, Digest(d)) for d in digests]
        with schema.write(self._conn) as c:
            c.executemany("INSERT OR IGNORE INTO blob_refs (owner, digest) VALUES (?, ?)", rows)

    def remove_blob_refs(self, owner: str) -> None:
        with schema.write(self._conn) as c:
            c.execute("DELETE FROM blob_refs WHERE owner = ?", (owner,))

    def _collect(self, candidates: Mapping[Digest, float]) -> GCReport:
        """Unlink candidates nobody references whose mtime is not after their bound."""
        removed: list[Digest] = []
        freed = 0
        with schema.write(self._conn) as c:
            _expire_leases(c)
            referenced: set[str] | None = None
            if len(candidates) > _BULK:
                # a sweep over every blob: one query, not one per blob
                referenced = {str(r[0]) for r in c.execute("SELECT DISTINCT digest FROM blob_refs")}
            for d, not_after in candidates.items():
                if referenced is not None:
                    if d in referenced:
                        continue
                elif c.execute("SELECT 1 FROM blob_refs WHERE digest = ? LIMIT 1", (d,)).fetchone():
                    continue
                path = self.content.path(d)
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                if st.st_mtime > not_after:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(d)
                    freed += st.st_size
        return GCReport(tuple(removed), (), freed)

    def gc(self, grace: float = DEFAULT_GRACE) -> GCReport:
        """Sweep: unreferenced blobs and orphan snapshot directories older than ``grace``."""
        cutoff = time.time() - grace
        blobs = self._collect({d: cutoff for d in self.content.iter_digests()})
        freed = blobs.reclaimed + self.content.clean_ingests(max(grace, INGEST_GRACE))
        known = {str(n) for (n,) in self._conn.execute("SELECT n FROM snapshots").fetchall()}
        dirs: list[str] = []
        for entry in os.scandir(self.snapshots_dir):
            if entry.name in known:
                continue
            if entry.name.startswith(_DOOMED):
                # a removal killed half way: never live, no grace needed
                freed += _remove_tree(Path(entry.path))
                dirs.append(entry.name)
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime > cutoff:
                    continue  # maybe being prepared right now
            except FileNotFoundError:
                continue
            # a row may have appeared since we listed them
            if (
                entry.name.isdigit()
                and self._conn.execute(
                    "SELECT 1 FROM snapshots WHERE n = ?", (int(entry.name),)
                ).fetchone()
            ):
                continue
            freed += _remove_tree(Path(entry.path))
            dirs.append(entry.name)
        freed += self._sweep_scratch(time.time() - max(grace, INGEST_GRACE))
        return GCReport(blobs.blobs, tuple(dirs), freed)

    def _sweep_scratch(self, cutoff: float) -> int:
        """Scratch directories (a build killed half way) untouched since ``cutoff``."""
        freed = 0
        try:
            entries = list(os.scandir(self.root / _SCRATCH))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_mtime > cutoff:
                    continue
            except FileNotFoundError:
                continue
            freed += _remove_tree(Path(entry.path))
        return freed

    # -------------------------------------------------------------- snapshots

    def snapshot(self, chain_id: str) -> Path:
        """The unpacked layer for ``chain_id`` (an overlay lowerdir), unpacking it if needed.

        Its parents are prepared too. Unpacking goes into a temp directory that
        is renamed into place, so a half-unpacked snapshot is never visible.
        """
        info = self.snapshot_info(chain_id)
        final = self.snapshots_dir / str(info.path.parent.name)
        if info.path.is_dir():
            if not info.ready:
                self._mark_ready(info.chain_id)
            return info.path
        if info.parent is not None:
            self.snapshot(info.parent)
        tmp = self.snapshots_dir / f"tmp-{final.name}-{secrets.token_hex(6)}"
        (tmp / "fs").mkdir(parents=True)
        try:
            with self.content.open(info.layer_digest) as f:
                diff_id, _size = _layers.unpack(f, tmp / "fs")
            if diff_id != info.diff_id:
                raise DigestMismatch(
                    f"layer {info.layer_digest}: diff ID mismatch: expected {info.diff_id}, "
                    f"got {diff_id}"
                )
            try:
                os.rename(tmp, final)
            except OSError:
                if not info.path.is_dir():
                    raise
                # another process finished the same snapshot first: use theirs
        finally:
            if tmp.exists():
                _remove_tree(tmp)
        self._mark_ready(info.chain_id)
        return info.path

    def adopt_snapshot(
        self,
        chain_id: str,
        *,
        parent: str | None,
        diff_id: str,
        layer_digest: str,
        media_type: str,
        size: int,
        directory: str | os.PathLike[str],
        hold: str | None = None,
    ) -> bool:
        """Make ``directory`` (an unpacked layer, e.g. a build step's overlay upperdir)
        the snapshot of ``chain_id``, moved into place, not copied.

        ``layer_digest`` must already be in the content store (it is what the snapshot
        would be unpacked from again); ``parent`` is the chain below (its snapshot must
        be recorded) and ``chain_id`` must be the chain ID of ``parent`` + ``diff_id``.
        ``size`` is the unpacked size of this layer alone. ``directory`` must be on the
        store's filesystem (see :meth:`scratch_dir`).

        One transaction records the snapshot and renames the directory into
        ``snapshots/<n>/fs``, so a kill at any point leaves either no record (and at
        worst an orphan directory the GC sweep takes) or a complete snapshot. If the
        chain already has its directory (another build or a pull was first),
        ``directory`` is discarded and False is returned; True when it was adopted.

        ``hold``: an owner (``cache:<key>``, ...) that holds the chain from the same
        transaction on, as :meth:`hold` does, so nothing can remove it in between.
        """
        chain = Digest(chain_id)
        diff = Digest(diff_id)
        blob = Digest(layer_digest)
        below = Digest(parent) if parent else None
        expected = chain_ids([diff])[0] if below is None else chain_ids([below, diff])[1]
        if expected != chain:
            raise DigestMismatch(
                f"snapshot {chain}: not the chain ID of parent {below or '(none)'} and "
                f"diff ID {diff} (that is {expected})"
            )
        if size < 0:
            raise UsageError(f"snapshot {chain}: negative size {size}")
        src = Path(directory)
        if not src.is_dir() or src.is_symlink():
            raise StoreError(f"cannot adopt {src} as snapshot {chain}: not a directory")
        adopted = False
        moved: Path | None = None
        leftover: Path | None = None
        try:
            with schema.write(self._conn) as c:
                if (
                    below is not None
                    and not c.execute(
                        "SELECT 1 FROM snapshots WHERE chain_id = ?", (below,)
                    ).fetchone()
                ):
                    raise NotFound(f"snapshot {below} not found (parent of {chain})")
                # checked under the write lock the GC sweep takes: present now, kept after
                if not self.content.has(blob):
                    raise BlobNotFound(f"snapshot {chain}: layer blob {blob} is not in the store")
                row = c.execute("SELECT n FROM snapshots WHERE chain_id = ?", (chain,)).fetchone()
                if row is None:
                    n = c.execute(
                        "INSERT INTO snapshots (chain_id, parent, diff_id, layer_digest,"
                        " media_type, size, ready, created) VALUES (?,?,?,?,?,?,1,?)",
                        (chain, below, diff, blob, media_type, size, time.time()),
                    ).lastrowid
                    final = self.snapshots_dir / str(n)
                    if os.path.lexists(final):
                        # a directory left by an adoption killed before its commit (the
                        # rolled-back row gave its number back): never live. Renamed
                        # aside now, removed after the commit (not under the lock).
                        leftover = final.with_name(f"{_DOOMED}{n}-{secrets.token_hex(4)}")
                        os.rename(final, leftover)
                else:
                    final = self.snapshots_dir / str(row[0])
                if hold is not None:
                    self._hold_chain(c, hold, chain)
                if not (final / "fs").is_dir():
                    # new, or recorded (a pulled image) but never unpacked: ours will do
                    final.mkdir(exist_ok=True)
                    try:
                        os.rename(src, final / "fs")
                    except OSError as err:
                        if row is None:
                            with contextlib.suppress(OSError):
                                final.rmdir()
                            raise _rename_error(src, final, err) from err
                        # an unpack of the same chain finished first: use it
                    else:
                        moved = final / "fs"
                        adopted = True
                        if row is not None:
                            c.execute("UPDATE snapshots SET ready = 1 WHERE chain_id = ?", (chain,))
        except BaseException:
            if moved is not None:
                # the record was rolled back: give the caller its directory back
                with contextlib.suppress(OSError):
                    os.rename(moved, src)
                    moved.parent.rmdir()
            raise
        if leftover is not None:
            _remove_tree(leftover)
        if not adopted:
            _remove_tree(src)
        return adopted

    def scratch_dir(self, prefix: str = "tmp") -> Path:
        """A fresh private directory on the store's filesystem, for work whose result
        :meth:`adopt_snapshot` takes (``<root>/tmp/<prefix>-<random>``). The caller
        removes it; :meth:`gc` sweeps ones left for a day (a killed build)."""
        base = self.root / _SCRATCH
        base.mkdir(exist_ok=True)
        path = base / f"{prefix}-{secrets.token_hex(8)}"
        path.mkdir()
        return path

    def _mark_ready(self, chain_id: str) -> None:
        with schema.write(self._conn) as c:
            cur = c.execute("UPDATE snapshots SET ready = 1 WHERE chain_id = ?", (chain_id,))
            if cur.rowcount == 0:
                raise NotFound(f"snapshot {chain_id} was removed while being prepared")

    def lowerdirs(self, chain_id: str) -> list[Path]:
        """Every snapshot of the chain ending at ``chain_id``, top first (overlay order)."""
        out: list[Path] = []
        current: str | None = chain_id
        while current is not None:
            info = self.snapshot_info(current)
            out.append(self.snapshot(current))
            current = info.parent
        return out

    def snapshot_info(self, chain_id: str) -> Snapshot:
        row = self._conn.execute(
            "SELECT s.chain_id, s.parent, s.diff_id, s.layer_digest, s.media_type, s.size,"
            " (SELECT COUNT(*) FROM snapshot_refs r WHERE r.chain_id = s.chain_id), s.ready, s.n"
            " FROM snapshots s WHERE s.chain_id = ?",
            (chain_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"snapshot {chain_id} not found")
        return self._row_snapshot(row)

    def snapshots(self) -> list[Snapshot]:
        rows = self._conn.execute(
            "SELECT s.chain_id, s.parent, s.diff_id, s.layer_digest, s.media_type, s.size,"
            " (SELECT COUNT(*) FROM snapshot_refs r WHERE r.chain_id = s.chain_id), s.ready, s.n"
            " FROM snapshots s ORDER BY s.n"
        ).fetchall()
        return [self._row_snapshot(r) for r in rows]

    def _row_snapshot(self, row: Sequence[object]) -> Snapshot:
        return Snapshot(
            chain_id=Digest(str(row[0])),
            parent=Digest(str(row[1])) if row[1] else None,
            diff_id=Digest(str(row[2])),
            layer_digest=Digest(str(row[3])),
            media_type=str(row[4]),
            size=int(row[5]),  # type: ignore[call-overload]  # INTEGER
            refcount=int(row[6]),  # type: ignore[call-overload]  # INTEGER
            ready=bool(row[7]),
            path=self.snapshots_dir / str(row[8]) / "fs",
        )

    def hold(self, owner: str, chain_id: str) -> None:
        """Count ``owner`` (e.g. ``container:<id>``) as a user of the whole chain.

        The chain's snapshots and their layer blobs stay until :meth:`release`.
        """
        with schema.write(self._conn) as c:
            self._hold_chain(c, owner, chain_id)

    def _hold_chain(self, c: sqlite3.Connection, owner: str, chain_id: str) -> None:
        """:meth:`hold` inside the caller's write transaction."""
        current: str | None = chain_id
        while current is not None:
            row = c.execute(
                "SELECT parent, layer_digest FROM snapshots WHERE chain_id = ?", (current,)
            ).fetchone()
            if row is None:
                raise NotFound(f"snapshot {current} not found")
            c.execute(
                "INSERT OR IGNORE INTO snapshot_refs (owner, chain_id) VALUES (?, ?)",
                (owner, current),
            )
            # keep the layer blob too, so the snapshot can be unpacked (again) later
            c.execute(
                "INSERT OR IGNORE INTO blob_refs (owner, digest) VALUES (?, ?)",
                (owner, row[1]),
            )
            current = row[0]

    def release(self, owner: str) -> list[str]:
        """Drop ``owner``'s holds; snapshots and blobs nobody uses any more are removed."""
        released = _Released()
        with schema.write(self._conn) as c:
            dropped = self._release_in(c, owner, released)
        self._finish(released)
        return dropped

    def _release_in(self, c: sqlite3.Connection, owner: str, released: _Released) -> list[str]:
        """:meth:`release` inside the caller's write transaction; the caller then calls
        :meth:`_finish` with ``released`` after the commit."""
        dropped: list[str] = []
        chains = [
            str(r[0])
            for r in c.execute(
                "SELECT chain_id FROM snapshot_refs WHERE owner = ?", (owner,)
            ).fetchall()
        ]
        c.execute("DELETE FROM snapshot_refs WHERE owner = ?", (owner,))
        now = time.time()
        for (d,) in c.execute("SELECT digest FROM blob_refs WHERE owner = ?", (owner,)):
            released.blobs[Digest(d)] = now
        c.execute("DELETE FROM blob_refs WHERE owner = ?", (owner,))
        for ch in chains:
            if self._drop_snapshot_if_unused(c, ch, released):
                dropped.append(ch)
        return dropped

    # ------------------------------------------------------------ build cache

    def put_cache_record(
        self,
        key: str,
        *,
        kind: str = "regular",
        description: str = "",
        parent: str | None = None,
        layer_digest: str | None = None,
        media_type: str = "",
        diff_id: str | None = None,
        chain_id: str | None = None,
        config: str | None = None,
        size: int = 0,
        created: float | None = None,
        blobs: Iterable[str] = (),
    ) -> CacheRecord:
        """Record a build step's result under ``key`` (replacing any record there).

        In one transaction the record holds, as owner ``cache:<key>``, its layer blob,
        the extra ``blobs`` (all must be in the content store: :class:`BlobNotFound`)
        and the snapshot chain ``chain_id`` (must be recorded: :class:`NotFound`), so
        GC keeps them. What a replaced record held and nothing else uses is freed.
        ``created`` defaults to now (a build with ``SOURCE_DATE_EPOCH`` passes its own).
        """
        return buildcache.put(
            self,
            key,
            kind=kind,
            description=description,
            parent=parent,
            layer_digest=layer_digest,
            media_type=media_type,
            diff_id=diff_id,
            chain_id=chain_id,
            config=config,
            size=size,
            created=created,
            blobs=blobs,
        )

    def get_cache_record(self, key: str) -> CacheRecord | None:
        """The record for ``key``, or None (also when its layer blob has gone missing)."""
        return buildcache.get(self, key)

    def cache_records(self) -> list[CacheRecord]:
        """Every build-cache record, oldest first."""
        return buildcache.records(self)

    def mark_cache_used(self, keys: Iterable[str], *, when: float | None = None) -> None:
        """Count a cache hit for each key (``last_used``, ``usage_count``); unknown keys
        are ignored. One transaction for all of them."""
        buildcache.mark_used(self, keys, when)

    def remove_cache_records(self, keys: Iterable[str]) -> int:
        """Drop records in one transaction; their blobs and snapshots go unless something
        else uses them. Returns the removed records' total size (unknown keys count 0)."""
        return buildcache.remove(self, keys)

    def prune_cache(self, *, all: bool = False, until: float | None = None) -> CachePruneReport:
        """``builder prune``: records not in use whose snapshot no image shares
        (``all``: those too), last used at or before ``until`` (Unix seconds) if given."""
        return buildcache.prune(self, all=all, until=until)

    # ------------------------------------------------------------- containers

    def add_container(
        self,
        container_id: str,
        *,
        name: str,
        image_id: str,
        image_ref: str,
        chain_id: str | None = None,
        state: str = "created",
        created: float | None = None,
        labels: Mapping[str, str] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> ContainerRecord:
        """Record a container (both its rows) and hold ``chain_id`` for it, in one
        transaction: a taken name is Docker's ``Conflict`` (the container name "/x" is
        already in use ...), an unknown chain :class:`NotFound`, and either leaves nothing.
        ``settings``: Docker's ``Config``/``HostConfig``/``Path``/``Args``... as JSON."""
        return _containers.add(
            self,
            container_id,
            name=name,
            image_id=image_id,
            image_ref=image_ref,
            chain_id=chain_id,
            state=state,
            created=created,
            labels=labels,
            settings=settings,
        )

    def container(self, container_id: str) -> ContainerRecord | None:
        """The container with exactly this ID, or None."""
        return _containers.get(self, container_id)

    def find_container(self, ref: str) -> ContainerRecord:
        """Docker's lookup: full ID, name (``/name`` too), unique ID prefix; NotFound
        ("No such container: x", or "Multiple IDs found with provided prefix: x")."""
        return _containers.lookup(self, ref)

    def containers(self) -> list[ContainerRecord]:
        """Every container, newest first (one query)."""
        return _containers.records(self)

    def update_container(
        self, container_id: str, *, expect: Iterable[str] | None = None, **fields: Any
    ) -> bool:
        """Change columns of either table in one transaction: ``state``, ``started``,
        ``finished``, ``exit_code``, ``pid``, ``name``, ``settings``, ``restart_count``,
        ``oom_killed``, ``error``, ``supervisor_pid``, ``supervisor_start``,
        ``stop_requested``, ``health`` (others: :class:`UsageError`). With ``expect``,
        only when the state is one of those, checked under the same lock. False when the
        container is gone or its state did not match."""
        return _containers.update(self, container_id, fields, expect)

    def remove_container(self, container_id: str) -> bool:
        """Delete the container's rows and its holds in one transaction; snapshots and
        blobs nobody else uses go after it. False when there was no such container."""
        return _containers.remove(self, container_id)

    # ------------------------------------------------------------- reporting

    def df(self) -> DiskUsage:
        """``system df``: images (layers counted once across images), containers, build cache.

        A handful of queries and one directory listing of the blobs, whatever the
        number of images; only containers' writable layers are walked.
        """
        with schema.read(self._conn) as c:
            images = [_row_image(r) for r in c.execute(_IMAGE_SELECT).fetchall()]
            layer_rows = c.execute(
                "SELECT l.image_id, l.chain_id, coalesce(s.size, 0) FROM image_layers l"
                " LEFT JOIN snapshots s ON s.chain_id = l.chain_id"
            ).fetchall()
            container_rows = c.execute(
                "SELECT id, name, image_ref, image_id, state, created FROM containers"
                " ORDER BY created DESC, id"
            ).fetchall()
            cache_rows = c.execute(
                "SELECT b.key, b.kind, b.description, b.size, b.created, b.last_used,"
                " b.usage_count, b.in_use, " + buildcache.SHARED + " FROM build_cache b"
                " ORDER BY b.created, b.key"
            ).fetchall()
        users: dict[str, set[str]] = {}
        chain_size: dict[str, int] = {}
        per_image: dict[str, set[str]] = {}
        for image_id, chain, size in layer_rows:
            users.setdefault(chain, set()).add(image_id)
            chain_size[chain] = int(size)
            per_image.setdefault(image_id, set()).add(chain)
        usage = []
        for img in images:
            chains = per_image.get(img.id, set())
            shared = sum(chain_size[ch] for ch in chains if len(users[ch]) > 1)
            usage.append(
                ImageUsage(
                    img.id,
                    img.repo_tags,
                    img.created,
                    img.size,
                    shared,
                    img.size - shared,
                    img.containers,
                )
            )
        total = sum(chain_size.values())
        active_chains: set[str] = set()
        for img in images:
            if img.containers:
                active_chains |= per_image.get(img.id, set())
        return DiskUsage(
            images=tuple(usage),
            total=len(images),
            active=sum(1 for i in images if i.containers),
            size=total,
            reclaimable=total - sum(chain_size[ch] for ch in active_chains),
            blobs_size=self.content.total_size(),
            containers=self._containers_usage(container_rows),
            build_cache=_build_cache_usage(cache_rows),
        )

    def _containers_usage(self, rows: Sequence[Sequence[object]]) -> ContainersDiskUsage:
        """Docker's ``Containers`` line: writable layers measured under ``containers/<id>``."""
        out = []
        for cid, name, image_ref, image_id, state, created in rows:
            out.append(
                ContainerUsage(
                    id=str(cid),
                    name=str(name),
                    image=str(image_ref),
                    image_id=str(image_id),
                    state=str(state),
                    created=float(created),  # type: ignore[arg-type]  # REAL
                    size_rw=_tree_size(self.root / "containers" / str(cid) / "upper"),
                )
            )
        size = sum(c.size_rw for c in out)
        active = [c for c in out if c.state in _RUNNING]
        return ContainersDiskUsage(
            containers=tuple(out),
            total=len(out),
            active=len(active),
            size=size,
            reclaimable=size - sum(c.size_rw for c in active),
        )

    def check(self, *, verify_blobs: bool = True) -> list[Problem]:
        """``system check``: every blob digest and every reference, problems listed.

        Unreferenced blobs and leftover ingests are garbage, not problems.
        """
        from .check import run_check

        return run_check(self, verify_blobs=verify_blobs)


@dataclass
class _Released:
    blobs: dict[Digest, float]
    snapshot_dirs: list[Path]

    def __init__(self) -> None:
        self.blobs = {}
        self.snapshot_dirs = []


def _build_cache_usage(rows: Sequence[Sequence[object]]) -> BuildCacheDiskUsage:
    """docker/cli's arithmetic: SIZE skips shared records, RECLAIMABLE is SIZE minus in-use."""
    records = tuple(
        BuildCacheUsage(
            id=str(key),
            kind=str(kind),
            description=str(description),
            size=int(size),  # type: ignore[call-overload]  # INTEGER
            created=float(created),  # type: ignore[arg-type]  # REAL
            last_used=None if last_used is None else float(last_used),  # type: ignore[arg-type]  # REAL
            usage_count=int(usage_count),  # type: ignore[call-overload]  # INTEGER
            in_use=bool(in_use),
            shared=bool(shared),
        )
        for key, kind, description, size, created, last_used, usage_count, in_use, shared in rows
    )
    size = sum(r.size for r in records if not r.shared)
    in_use = sum(r.size for r in records if r.in_use and not r.shared)
    return BuildCacheDiskUsage(
        records=records,
        total=len(records),
        active=sum(1 for r in records if r.in_use),
        size=size,
        reclaimable=size - in_use,
    )


def _tree_size(path: Path) -> int:
    """Bytes of the files under ``path`` (hard links once, symlinks not followed); 0 if none."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [str(path)]
    while stack:
        try:
            it = os.scandir(stack.pop())
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        with it:
            for entry in it:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                        continue
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _rename_error(src: Path, final: Path, err: OSError) -> StoreError:
    if err.errno == errno.EXDEV:
        return StoreError(
            f"cannot adopt {src} as a snapshot: it is on another filesystem than {final.parent}",
            hint="prepare it under Store.scratch_dir()",
        )
    return StoreError(f"cannot move {src} to {final / 'fs'}: {err.strerror or err}")


def _expire_leases(c: sqlite3.Connection) -> None:
    now = time.time()
    expired = [r[0] for r in c.execute("SELECT id FROM leases WHERE expires < ?", (now,))]
    for lease_id in expired:
        c.execute("DELETE FROM blob_refs WHERE owner = ?", (f"lease:{lease_id}",))
        c.execute("DELETE FROM leases WHERE id = ?", (lease_id,))


def _remove_tree(path: Path) -> int:
    """Remove a directory tree (or file); the bytes it held."""
    size = 0
    try:
        if path.is_dir() and not path.is_symlink():
            for dirpath, _dirs, files in os.walk(path):
                for name in files:
                    with contextlib.suppress(OSError):
                        size += os.lstat(os.path.join(dirpath, name)).st_size
            # rename first so a half-removed tree never sits under a live name
            doomed = path.with_name(f"{_DOOMED}{path.name}-{secrets.token_hex(4)}")
            try:
                os.rename(path, doomed)
            except OSError:
                doomed = path
            shutil.rmtree(doomed, ignore_errors=True)
        else:
            size = path.lstat().st_size
            path.unlink()
    except FileNotFoundError:
        pass
    return size


def _is_id_prefix(image_id: str, spec: str) -> bool:
    return image_id.startswith(spec) or image_id.split(":", 1)[-1].startswith(spec)


def _is_single_reference(refs: Sequence[tuple[str, bool]]) -> bool:
    """All refs in one repository with at most one tag (moby's isSingleReference)."""
    if len(refs) <= 1:
        return len(refs) == 1
    single: str | None = None
    canonical_repos: set[str] = set()
    for r, digested in refs:
        if digested:
            canonical_repos.add(names.repository_of(r))
        elif single is None:
            single = r
        else:
            return False
    if single is None:
        single = refs[0][0]
    return len(canonical_repos) == 1 and names.repository_of(single) in canonical_repos


__all__ = ["DEFAULT_GRACE", "ImageLike", "Lease", "Store", "parse_time"]
