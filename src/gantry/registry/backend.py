"""The registry's data model over a storage driver: blobs, uploads, manifests, tags.

Synchronous and stateless: every answer comes from the driver, so several
servers over the same storage behave as one registry. The HTTP layer
(:mod:`gantry.registry.app`) maps the :class:`~gantry.errors.RegistryError`
raised here to the spec's error bodies.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gantry import digest as _digest
from gantry.digest import Digest
from gantry.errors import InvalidDigest, InvalidManifest, RegistryError
from gantry.oci import mediatypes as mt
from gantry.oci.manifest import MAX_MANIFEST_SIZE, Index, Manifest, parse_manifest

from . import layout
from .errcodes import api_error
from .names import is_tag, new_upload_id, validate_tag, validate_upload_id
from .storage.base import FileInfo, FileWriter, PathNotFound, StorageDriver

READ_CHUNK = 1 << 20
#: referrers per page, and the JSON size a page stays under: the whole index
#: must remain a manifest a client accepts (4 MiB)
REFERRERS_PAGE = 1000
REFERRERS_PAGE_BYTES = 1 << 20


def parse_digest(value: str, code: str = "DIGEST_INVALID", status: int = 400) -> Digest:
    """A digest from a URL; malformed or unsupported ones are the client's error."""
    try:
        return Digest(value)
    except InvalidDigest as e:
        raise api_error(code, f"invalid digest: {e}", status=status) from None


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: Digest
    size: int
    path: str  # storage path of the data


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    digest: Digest
    media_type: str
    size: int

    def to_json(self) -> bytes:
        return json.dumps(
            {"digest": str(self.digest), "mediaType": self.media_type, "size": self.size}
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ManifestRecord:
        o = json.loads(data)
        return cls(Digest(o["digest"]), str(o["mediaType"]), int(o["size"]))


@dataclass(slots=True)
class PutResult:
    digest: Digest
    media_type: str
    size: int
    subject: Digest | None = None
    tags: list[str] = field(default_factory=list)


class Backend:
    """Registry operations over one :class:`StorageDriver`."""

    def __init__(self, driver: StorageDriver, *, delete_enabled: bool = True) -> None:
        self.driver = driver
        self.delete_enabled = delete_enabled

    # ---------------------------------------------------------------- repositories
    def repo_exists(self, name: str) -> bool:
        return self.driver.exists(layout.repo(name))

    def require_repo(self, name: str) -> None:
        if not self.repo_exists(name):
            raise api_error("NAME_UNKNOWN", {"name": name})

    def catalog(self) -> list[str]:
        """Every repository that holds at least one manifest, sorted."""
        found: list[str] = []

        def visit(path: str, prefix: str) -> None:
            try:
                children = self.driver.list(path)
            except PathNotFound:
                return
            if "_manifests" in children and prefix:
                found.append(prefix)
            for c in children:
                if not c.startswith("_"):
                    visit(f"{path}/{c}", f"{prefix}/{c}" if prefix else c)

        visit(layout.REPOS, "")
        return sorted(found)

    # ---------------------------------------------------------------------- blobs
    def blob_global(self, d: Digest) -> FileInfo | None:
        """The stored blob ``d`` regardless of repository, or None."""
        try:
            return self.driver.stat(layout.blob_data(d))
        except PathNotFound:
            return None

    def stat_blob(self, name: str, d: Digest) -> BlobInfo:
        """A blob linked into ``name`` (layers, configs, and its manifests)."""
        linked = self.driver.exists(layout.layer_link(name, d)) or self.driver.exists(
            layout.revision_link(name, d)
        )
        info = self.blob_global(d) if linked else None
        if info is None:  # distribution answers so in an unknown repository too
            raise api_error("BLOB_UNKNOWN", str(d))
        return BlobInfo(d, info.size, layout.blob_data(d))

    def link_blob(self, name: str, d: Digest) -> None:
        """Link (or refresh the link of) ``d`` into ``name``; refreshing protects from GC."""
        self.driver.put_content(layout.layer_link(name, d), str(d).encode())

    def delete_blob(self, name: str, d: Digest) -> None:
        """Unlink ``d`` from ``name``; the bytes go when GC finds nobody else needs them."""
        self._require_delete()
        try:
            self.driver.delete(layout.layer_dir_of(name, d))
        except PathNotFound:
            raise api_error("BLOB_UNKNOWN", str(d)) from None

    def mount(self, name: str, d: Digest, source: str) -> BlobInfo | None:
        """Link ``d`` from ``source`` into ``name``; None when ``source`` lacks it."""
        if not self.driver.exists(layout.layer_link(source, d)):
            return None
        info = self.blob_global(d)
        if info is None:
            return None
        self.link_blob(name, d)
        return BlobInfo(d, info.size, layout.blob_data(d))

    # -------------------------------------------------------------------- uploads
    def start_upload(self, name: str) -> str:
        upload_id = new_upload_id()
        self.driver.put_content(
            layout.upload_started(name, upload_id), f"{time.time():.6f}".encode()
        )
        self.driver.put_content(layout.upload_data(name, upload_id), b"")
        return upload_id

    def upload_size(self, name: str, upload_id: str) -> int:
        validate_upload_id(upload_id)
        try:
            self.driver.stat(layout.upload_started(name, upload_id))
            return self.driver.stat(layout.upload_data(name, upload_id)).size
        except PathNotFound:
            raise api_error("BLOB_UPLOAD_UNKNOWN") from None

    def upload_writer(self, name: str, upload_id: str) -> FileWriter:
        self.upload_size(name, upload_id)
        return self.driver.writer(layout.upload_data(name, upload_id), append=True)

    def cancel_upload(self, name: str, upload_id: str) -> None:
        self.upload_size(name, upload_id)
        try:
            self.driver.delete(layout.upload_dir(name, upload_id))
        except PathNotFound:
            raise api_error("BLOB_UPLOAD_UNKNOWN") from None

    def hash_upload(self, name: str, upload_id: str, algorithm: str) -> tuple[Digest, int]:
        """Re-read an upload to digest it (after a restart or on another replica)."""
        h = _digest.new_hasher(algorithm)
        size = 0
        with self.driver.reader(layout.upload_data(name, upload_id)) as f:
            while chunk := f.read(READ_CHUNK):
                h.update(chunk)
                size += len(chunk)
        return _digest.from_hasher(h), size

    def finish_upload(
        self, name: str, upload_id: str, expected: Digest, computed: Digest | None = None
    ) -> BlobInfo:
        """Verify the upload against ``expected`` and move it into the blob store."""
        size = self.upload_size(name, upload_id)
        if computed is None or computed.algorithm != expected.algorithm:
            computed, size = self.hash_upload(name, upload_id, expected.algorithm)
        if computed != expected:
            raise api_error("DIGEST_INVALID", f"expected {expected}, got {computed}")
        data = layout.upload_data(name, upload_id)
        # Link first, then look: a concurrent GC either sees the fresh link and keeps
        # the blob, or has already moved it away and we put ours in its place.
        self.link_blob(name, expected)
        if self.blob_global(expected) is None:
            self.driver.move(data, layout.blob_data(expected))
        try:
            self.driver.delete(layout.upload_dir(name, upload_id))
        except PathNotFound:
            pass
        return BlobInfo(expected, size, layout.blob_data(expected))

    def put_blob(self, name: str, data: bytes) -> Digest:
        """Store small content directly (tests, the empty config)."""
        d = _digest.of_bytes(data)
        if self.blob_global(d) is None:
            self.driver.put_content(layout.blob_data(d), data)
        self.link_blob(name, d)
        return d

    def upload_started_at(self, name: str, upload_id: str) -> float:
        try:
            return float(self.driver.get_content(layout.upload_started(name, upload_id)))
        except (PathNotFound, ValueError):
            return 0.0

    # ------------------------------------------------------------------ manifests
    def _record(self, name: str, d: Digest) -> ManifestRecord | None:
        try:
            return ManifestRecord.from_json(self.driver.get_content(layout.revision_link(name, d)))
        except PathNotFound:
            return None
        except (ValueError, KeyError, InvalidDigest):
            return None

    def tag_target(self, name: str, tag: str) -> Digest | None:
        try:
            return Digest(self.driver.get_content(layout.tag_link(name, tag)).decode().strip())
        except PathNotFound:
            return None
        except (InvalidDigest, UnicodeDecodeError):
            return None

    def resolve(self, name: str, reference: str) -> ManifestRecord:
        """The manifest a tag or digest names in ``name``."""
        if is_tag(reference) or ":" not in reference:
            d = self.tag_target(name, reference) if is_tag(reference) else None
            detail: dict[str, str] = {"Tag": reference}
        else:
            d = parse_digest(reference)
            detail = {"Name": name, "Revision": str(d)}
        rec = self._record(name, d) if d is not None else None
        if rec is None:
            # MANIFEST_UNKNOWN in an unknown repository too: distribution answers so
            # and clients show it as "manifest unknown", whatever the reason
            raise api_error("MANIFEST_UNKNOWN", detail)
        return rec

    def manifest_body(self, rec: ManifestRecord) -> bytes:
        try:
            return self.driver.get_content(layout.blob_data(rec.digest))
        except PathNotFound:
            raise api_error("MANIFEST_UNKNOWN", str(rec.digest)) from None

    def put_manifest(
        self,
        name: str,
        reference: str,
        body: bytes,
        content_type: str | None,
        extra_tags: Iterable[str] = (),
    ) -> PutResult:
        if len(body) > MAX_MANIFEST_SIZE:
            raise api_error(
                "MANIFEST_INVALID",
                f"manifest too large: {len(body)} bytes, the limit is {MAX_MANIFEST_SIZE}",
                status=413,
            )
        tags = [validate_tag(t) for t in extra_tags]
        if is_tag(reference):
            algorithm = "sha256"
            tags.insert(0, reference)
            want: Digest | None = None
        else:
            want = parse_digest(reference)
            algorithm = want.algorithm
        d = _digest.of_bytes(body, algorithm)
        if want is not None and d != want:
            raise api_error("DIGEST_INVALID", f"manifest digest {d} does not match {want}")
        try:
            m = parse_manifest(body, content_type)
        except InvalidManifest as e:
            raise api_error("MANIFEST_INVALID", str(e)) from None
        self._verify_references(name, m)
        if self.blob_global(d) is None:
            self.driver.put_content(layout.blob_data(d), body)
        rec = ManifestRecord(d, m.media_type, len(body))
        self.driver.put_content(layout.revision_link(name, d), rec.to_json())
        if self.blob_global(d) is None:  # a concurrent GC took it before the link existed
            self.driver.put_content(layout.blob_data(d), body)
        for tag in dict.fromkeys(tags):
            self.driver.put_content(layout.tag_link(name, tag), str(d).encode())
        subject = None
        if m.subject is not None:
            subject = m.subject.digest
            self.driver.put_content(
                layout.referrer_entry(name, subject, d), json.dumps(_referrer(m, rec)).encode()
            )
        return PutResult(d, m.media_type, len(body), subject, list(dict.fromkeys(tags)))

    def _verify_references(self, name: str, m: Manifest | Index) -> None:
        if isinstance(m, Index):
            for child in m.manifests:
                try:  # young revision links are kept by GC's grace period
                    self.driver.touch(layout.revision_link(name, child.digest))
                except PathNotFound:
                    pass
                if self._record(name, child.digest) is None:
                    raise api_error("MANIFEST_BLOB_UNKNOWN", str(child.digest))
            return
        for desc in (m.config, *m.layers):
            linked = self.driver.exists(layout.layer_link(name, desc.digest))
            if linked:
                # refresh the link before looking at the blob: GC keeps blobs with
                # young links, so either it sees this or we see its deletion
                self.link_blob(name, desc.digest)
            info = self.blob_global(desc.digest) if linked else None
            if info is None:
                if mt.is_nondistributable(desc.media_type) and desc.urls:
                    continue  # foreign layers are fetched from their URLs, never pushed
                if desc.data is not None:
                    # embedded content (the empty config): store it, nobody pushes it
                    self.put_blob(name, desc.data)
                    continue
                raise api_error("MANIFEST_BLOB_UNKNOWN", str(desc.digest))
            if info.size != desc.size:
                raise api_error(
                    "MANIFEST_INVALID",
                    f"descriptor of {desc.digest} says {desc.size} bytes, the blob has {info.size}",
                )

    def delete_manifest(self, name: str, reference: str) -> ManifestRecord | None:
        """Delete a tag (reference is a tag) or a manifest and its tags (a digest)."""
        self._require_delete()
        if is_tag(reference):
            target = self.tag_target(name, reference)
            if target is None:
                raise api_error("MANIFEST_UNKNOWN", {"Tag": reference})
            try:
                self.driver.delete(layout.tag_dir(name, reference))
            except PathNotFound:
                raise api_error("MANIFEST_UNKNOWN", {"Tag": reference}) from None
            return None
        rec = self.resolve(name, reference)
        for tag in self.tags(name):
            if self.tag_target(name, tag) == rec.digest:
                try:
                    self.driver.delete(layout.tag_dir(name, tag))
                except PathNotFound:
                    pass
        try:
            body = self.manifest_body(rec)
            m = parse_manifest(body, rec.media_type)
            if m.subject is not None:
                self.driver.delete(layout.referrer_entry(name, m.subject.digest, rec.digest))
        except (RegistryError, InvalidManifest, PathNotFound):
            pass
        try:
            self.driver.delete(layout.revision_dir_of(name, rec.digest))
        except PathNotFound:
            raise api_error(
                "MANIFEST_UNKNOWN", {"Name": name, "Revision": str(rec.digest)}
            ) from None
        return rec

    def _require_delete(self) -> None:
        if not self.delete_enabled:
            raise api_error("UNSUPPORTED", "deletion is disabled on this registry")

    # ----------------------------------------------------------------- discovery
    def tags(self, name: str) -> list[str]:
        try:
            names = self.driver.list(layout.tags_dir(name))
        except PathNotFound:
            self.require_repo(name)
            return []
        return sorted(t for t in names if is_tag(t))

    def referrers(
        self, name: str, subject: Digest, artifact_type: str | None
    ) -> list[dict[str, Any]]:
        """Every referrer of ``subject`` (of ``artifact_type`` when given)."""
        entries, _ = self.referrers_page(name, subject, artifact_type, limit=None, max_bytes=None)
        return entries

    def referrers_page(
        self,
        name: str,
        subject: Digest,
        artifact_type: str | None,
        *,
        last: Digest | None = None,
        limit: int | None = REFERRERS_PAGE,
        max_bytes: int | None = REFERRERS_PAGE_BYTES,
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of referrers, in digest order after ``last``: at most ``limit``
        descriptors and about ``max_bytes`` of JSON (at least one, so a client always
        gets on). Returns the descriptors and whether more follow."""
        self.require_repo(name)
        where = layout.referrers_dir(name, subject)
        try:
            names = sorted(self.driver.list(where))
        except PathNotFound:
            return [], False
        if last is not None:
            after = f"{last.algorithm}-{last.hex}"
            names = [e for e in names if e > after]
        out: list[dict[str, Any]] = []
        size = 0
        for e in names:
            try:
                raw = self.driver.get_content(f"{where}/{e}")
                desc = json.loads(raw)
            except (PathNotFound, ValueError):
                continue
            if not isinstance(desc, dict):
                continue
            if artifact_type is not None and desc.get("artifactType") != artifact_type:
                continue
            full = (limit is not None and len(out) >= limit) or (
                max_bytes is not None and out and size + len(raw) + 2 > max_bytes
            )
            if full:
                return out, True
            out.append(desc)
            size += len(raw) + 2
        return out, False


def _referrer(m: Manifest | Index, rec: ManifestRecord) -> dict[str, Any]:
    d: dict[str, Any] = {"mediaType": rec.media_type, "digest": str(rec.digest), "size": rec.size}
    artifact_type = m.artifact_type
    if artifact_type is None and isinstance(m, Manifest):
        artifact_type = m.config.media_type
    if artifact_type:
        d["artifactType"] = artifact_type
    if m.annotations:
        d["annotations"] = dict(sorted(m.annotations.items()))
    return d
