"""Garbage collection: delete blobs that no manifest needs, safely while serving.

Mark: every manifest a repository keeps (all of them, or with
``delete_untagged`` the tagged ones plus their index children and referrers,
plus any younger than the grace period) marks itself, its config, layers and
child manifests. Sweep: an unmarked blob is a candidate unless it, or any link
to it, is younger than the grace period. Each candidate is first *moved* to a
trash area, the links are checked again, and only then is it deleted (or moved
back). The server refreshes a blob's link before it checks the blob exists
(manifest PUT, upload completion), so a push racing with GC either makes GC
keep the blob or sees it gone and fails cleanly -- never a manifest pointing at
a deleted blob. Uploads in progress live outside ``blobs/`` and are only
purged when older than ``upload_purge_age``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gantry.digest import Digest
from gantry.errors import InvalidDigest, InvalidManifest, RegistryError
from gantry.oci.manifest import Index, Manifest, parse_manifest

from . import layout
from .backend import Backend, ManifestRecord
from .storage.base import PathNotFound, StorageDriver

TRASH = "_gc/trash"


@dataclass
class GCReport:
    marked: int = 0
    blobs: list[str] = field(default_factory=list)
    bytes: int = 0
    manifests: list[str] = field(default_factory=list)  # "repo@digest"
    uploads: int = 0
    kept_young: int = 0


def _digest_from_parts(algorithm: str, hexpart: str) -> Digest | None:
    try:
        return Digest(f"{algorithm}:{hexpart}")
    except InvalidDigest:
        return None


def repositories(driver: StorageDriver) -> list[str]:
    """Every repository directory (with manifests, layers or uploads)."""
    found: list[str] = []

    def visit(path: str, prefix: str) -> None:
        try:
            children = driver.list(path)
        except PathNotFound:
            return
        if prefix and any(c in ("_manifests", "_layers", "_uploads") for c in children):
            found.append(prefix)
        for c in children:
            if not c.startswith("_"):
                visit(f"{path}/{c}", f"{prefix}/{c}" if prefix else c)

    visit(layout.REPOS, "")
    return sorted(found)


def _links(driver: StorageDriver, base: str) -> dict[Digest, float]:
    """``<base>/<alg>/<hex>/link`` files -> newest mtime."""
    out: dict[Digest, float] = {}
    for fi in driver.walk(base):
        parts = fi.path.split("/")
        if len(parts) < 3 or parts[-1] != "link":
            continue
        d = _digest_from_parts(parts[-3], parts[-2])
        if d is not None:
            out[d] = max(out.get(d, 0.0), fi.mtime)
    return out


def _references(body: bytes, media_type: str) -> tuple[list[Digest], list[Digest]]:
    """(blobs, child manifests) a manifest refers to; nothing if it does not parse."""
    try:
        m = parse_manifest(body, media_type)
    except InvalidManifest:
        return [], []
    if isinstance(m, Index):
        return [], [d.digest for d in m.manifests]
    assert isinstance(m, Manifest)
    return [m.config.digest, *(d.digest for d in m.layers)], []


def collect(
    driver: StorageDriver,
    *,
    dry_run: bool = False,
    delete_untagged: bool = False,
    grace_period: float = 3600.0,
    upload_purge_age: float = 7 * 24 * 3600.0,
    on_event: Callable[[str], None] | None = None,
    now: float | None = None,
) -> GCReport:
    emit = on_event or (lambda _msg: None)
    backend = Backend(driver)
    report = GCReport()
    t0 = time.time() if now is None else now
    young = t0 - grace_period
    _recover_trash(driver)

    marked: set[Digest] = set()
    repos = repositories(driver)
    for name in repos:
        revisions = _links(driver, layout.revisions_dir(name))
        records: dict[Digest, ManifestRecord] = {}
        for d in revisions:
            rec = backend._record(name, d)
            if rec is not None:
                records[d] = rec
        if delete_untagged:
            roots = {t for t in (backend.tag_target(name, tag) for tag in backend.tags(name)) if t}
            roots |= {d for d, mtime in revisions.items() if mtime > young}
        else:
            roots = set(records)
        keep: set[Digest] = set()
        todo = list(roots)
        while todo:
            d = todo.pop()
            if d in keep:
                continue
            keep.add(d)
            marked.add(d)
            rec = records.get(d)
            if rec is None:
                continue
            try:
                body = backend.manifest_body(rec)
            except RegistryError:  # a missing body keeps nothing more
                continue
            blobs, children = _references(body, rec.media_type)
            marked.update(blobs)
            todo.extend(children)
            if delete_untagged:  # referrers of what we keep stay with it
                try:
                    for e in driver.list(layout.referrers_dir(name, d)):
                        algo, _, hexpart = e.partition("-")
                        r = _digest_from_parts(algo, hexpart)
                        if r is not None:
                            todo.append(r)
                except PathNotFound:
                    pass
        for d, rec in records.items():
            if d in keep:
                continue
            report.manifests.append(f"{name}@{d}")
            emit(f"{'would delete' if dry_run else 'deleting'} manifest {name}@{d}")
            if not dry_run:
                _delete_manifest(driver, backend, name, rec, young)
        report.uploads += _purge_uploads(
            driver, backend, name, t0 - upload_purge_age, dry_run, emit
        )
    report.marked = len(marked)

    candidates: list[tuple[Digest, int, float]] = []
    for fi in driver.walk(layout.BLOBS):
        parts = fi.path.split("/")
        if len(parts) != 5 or parts[-1] != "data":
            continue
        cand = _digest_from_parts(parts[1], parts[3])
        if cand is None or cand in marked:
            continue
        candidates.append((cand, fi.size, fi.mtime))

    for d, size, mtime in candidates:
        if mtime > young:
            report.kept_young += 1
            continue
        if _young_link(driver, repositories(driver), d, young):
            report.kept_young += 1
            continue
        if dry_run:
            report.blobs.append(str(d))
            report.bytes += size
            emit(f"would delete blob {d}")
            continue
        trash = f"{TRASH}/{d.algorithm}-{d.hex}"
        try:
            driver.move(layout.blob_data(d), trash)
        except PathNotFound:
            continue
        if _young_link(driver, repositories(driver), d, young):
            driver.move(trash, layout.blob_data(d))  # a push needs it after all
            report.kept_young += 1
            continue
        driver.delete(trash)
        _delete_quietly(driver, layout.blob_dir(d))
        for name in repos:
            try:  # a link refreshed since the check belongs to a push in flight
                if driver.stat(layout.layer_link(name, d)).mtime <= young:
                    _delete_quietly(driver, layout.layer_dir_of(name, d))
            except PathNotFound:
                pass
        report.blobs.append(str(d))
        report.bytes += size
        emit(f"deleted blob {d}")
    return report


def _young_link(driver: StorageDriver, repos: Iterable[str], d: Digest, young: float) -> bool:
    for name in repos:
        for path in (layout.layer_link(name, d), layout.revision_link(name, d)):
            try:
                if driver.stat(path).mtime > young:
                    return True
            except PathNotFound:
                continue
    return False


def _delete_manifest(
    driver: StorageDriver, backend: Backend, name: str, rec: ManifestRecord, young: float
) -> None:
    try:
        if driver.stat(layout.revision_link(name, rec.digest)).mtime > young:
            return  # re-pushed meanwhile
    except PathNotFound:
        return
    for tag in backend.tags(name):
        if backend.tag_target(name, tag) == rec.digest:
            return  # tagged meanwhile
    try:
        body = backend.manifest_body(rec)
        m = parse_manifest(body, rec.media_type)
        if m.subject is not None:
            _delete_quietly(driver, layout.referrer_entry(name, m.subject.digest, rec.digest))
    except (RegistryError, InvalidManifest, PathNotFound):
        pass  # the referrer entry is best effort
    _delete_quietly(driver, layout.revision_dir_of(name, rec.digest))


def _purge_uploads(
    driver: StorageDriver,
    backend: Backend,
    name: str,
    older_than: float,
    dry_run: bool,
    emit: Callable[[str], None],
) -> int:
    try:
        ids = driver.list(layout.uploads_dir(name))
    except PathNotFound:
        return 0
    n = 0
    for upload_id in ids:
        started = backend.upload_started_at(name, upload_id)
        if not started:
            # being created right now, or torn: judge by whatever timestamp exists
            try:
                started = driver.stat(layout.upload_dir(name, upload_id)).mtime
            except PathNotFound:
                continue
            if not started:
                continue
        if started > older_than:
            continue
        n += 1
        emit(f"{'would purge' if dry_run else 'purging'} stale upload {name}/{upload_id}")
        if not dry_run:
            _delete_quietly(driver, layout.upload_dir(name, upload_id))
    return n


def _recover_trash(driver: StorageDriver) -> None:
    """A GC that died between move and delete: put its blobs back to be judged again."""
    try:
        entries = driver.list(TRASH)
    except PathNotFound:
        return
    for e in entries:
        algo, _, hexpart = e.partition("-")
        d = _digest_from_parts(algo, hexpart)
        if d is None:
            continue
        if driver.exists(layout.blob_data(d)):
            _delete_quietly(driver, f"{TRASH}/{e}")
        else:
            driver.move(f"{TRASH}/{e}", layout.blob_data(d))


def _delete_quietly(driver: StorageDriver, path: str) -> None:
    try:
        driver.delete(path)
    except PathNotFound:
        pass
