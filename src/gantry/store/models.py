"""What the store hands out: small immutable records the CLI renders."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantry.digest import Digest


@dataclass(frozen=True, slots=True)
class Image:
    """One image as recorded in the store. ``id`` is the config digest (Docker's image ID)."""

    id: Digest
    manifest_digest: Digest
    media_type: str  #: of the manifest
    created: float | None  #: from the config (Unix seconds); None if the config has none
    added: float  #: when this store recorded the image
    size: int  #: sum of the unpacked layer sizes (Docker's ``Size``)
    parent: Digest | None = None
    repo_tags: tuple[str, ...] = ()  #: full names: ``docker.io/library/x:tag``, sorted
    repo_digests: tuple[str, ...] = ()  #: ``docker.io/library/x@sha256:...``, sorted
    os: str = ""
    architecture: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    children: int = 0  #: images whose parent this is
    containers: int = 0  #: containers created from it
    #: when a tag was last pointed at it (Docker's ``Metadata.LastTagTime``); None: never
    last_tag_time: float | None = None

    @property
    def config_digest(self) -> Digest:
        return self.id

    @property
    def short_id(self) -> str:
        """12 hex characters, as ``docker images`` shows."""
        return self.id.short

    @property
    def familiar_tags(self) -> tuple[str, ...]:
        """``ubuntu:latest`` forms of :attr:`repo_tags`, as ``docker images`` shows them."""
        from gantry import reference

        return tuple(reference.parse(t).familiar() for t in self.repo_tags)

    @property
    def familiar_digests(self) -> tuple[str, ...]:
        """``ubuntu@sha256:...`` forms of :attr:`repo_digests` (Docker's ``RepoDigests``)."""
        from gantry import reference

        return tuple(reference.parse(t).familiar() for t in self.repo_digests)

    @property
    def dangling(self) -> bool:
        """No tag points at it (``<none>:<none>``)."""
        return not self.repo_tags

    @property
    def intermediate(self) -> bool:
        """Untagged and the parent of another image: hidden by ``images`` without ``-a``."""
        return not self.repo_tags and self.children > 0


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer of an image, bottom first."""

    digest: Digest  #: the blob (compressed as stored)
    media_type: str
    size: int  #: blob size
    diff_id: Digest
    chain_id: Digest
    unpacked_size: int


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One row of ``docker history``, newest first. ``id`` is None for ``<missing>``."""

    id: Digest | None
    created: float | None
    created_by: str
    size: int
    comment: str
    empty_layer: bool
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Untagged:
    """``Untagged: <ref>``: ``ref`` is the familiar form (``ubuntu:latest``)."""

    ref: str

    def __str__(self) -> str:
        return f"Untagged: {self.ref}"


@dataclass(frozen=True, slots=True)
class Deleted:
    """``Deleted: <id>``: an image ID or a layer's chain ID."""

    id: str

    def __str__(self) -> str:
        return f"Deleted: {self.id}"


Event = Untagged | Deleted


@dataclass(frozen=True, slots=True)
class PruneReport:
    deleted: tuple[Event, ...]
    reclaimed: int  #: bytes freed on disk (blobs and unpacked snapshots)


@dataclass(frozen=True, slots=True)
class GCReport:
    blobs: tuple[Digest, ...]  #: removed
    snapshots: tuple[str, ...]  #: chain IDs (or directory names for orphans) removed
    reclaimed: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An unpacked layer, keyed by chain ID."""

    chain_id: Digest
    parent: Digest | None
    diff_id: Digest
    layer_digest: Digest
    media_type: str
    size: int  #: unpacked size of this layer alone
    refcount: int
    ready: bool
    path: Path  #: ``snapshots/<n>/fs`` (exists only when ready)


@dataclass(frozen=True, slots=True)
class ImageUsage:
    """One image row of ``system df -v``."""

    id: Digest
    repo_tags: tuple[str, ...]
    created: float | None
    size: int
    shared_size: int  #: bytes of layers this image shares with other images
    unique_size: int  #: ``size - shared_size``
    containers: int


@dataclass(frozen=True, slots=True)
class ContainerRecord:
    """One container as the store keeps it (``containers`` + ``container_status``).

    Times are Unix seconds. ``settings`` is Docker's ``Config``, ``HostConfig``,
    ``Path``, ``Args``... (the ``containers.config`` JSON column).
    """

    id: str
    name: str
    image_id: str
    image_ref: str  #: what the user typed (``docker ps`` IMAGE)
    chain_id: str | None  #: top of the image's snapshot chain, held as ``container:<id>``
    state: str  #: created|running|paused|restarting|removing|exited|dead
    created: float
    started: float | None = None
    finished: float | None = None
    exit_code: int | None = None
    pid: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    restart_count: int = 0
    oom_killed: bool = False
    error: str = ""
    supervisor_pid: int = 0
    supervisor_start: int = 0  #: the supervisor's start time (``/proc/<pid>/stat`` ticks)
    stop_requested: bool = False
    health: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContainerUsage:
    """One container row of ``system df -v``."""

    id: str
    name: str
    image: str  #: what the user typed (``docker ps`` IMAGE)
    image_id: str
    state: str
    created: float
    size_rw: int  #: bytes in its writable layer (``containers/<id>/upper``)


@dataclass(frozen=True, slots=True)
class ContainersDiskUsage:
    """The ``Containers`` line of ``system df``."""

    containers: tuple[ContainerUsage, ...] = ()
    total: int = 0
    active: int = 0  #: running, paused or restarting
    size: int = 0  #: sum of the writable layers
    reclaimable: int = 0  #: writable layers of containers that are not active


@dataclass(frozen=True, slots=True)
class CacheRecord:
    """One build-cache record: a build step's result, kept by its cache key.

    The record holds (as owner ``cache:<key>``) its layer blob, any extra blobs
    given to :meth:`Store.put_cache_record`, and the snapshot chain ``chain_id``.
    """

    key: str
    kind: str  #: Docker's CACHE TYPE: regular, source.local, exec.cachemount...
    description: str
    parent: str | None  #: parent record's key
    layer_digest: Digest | None  #: the step's layer blob; None if the step changed no files
    media_type: str  #: of ``layer_digest`` ("" if unknown)
    diff_id: Digest | None
    chain_id: Digest | None  #: the snapshot chain after the step
    config: str | None  #: JSON image config after the step, if recorded
    size: int
    created: float
    last_used: float | None
    usage_count: int
    in_use: bool = False
    shared: bool = False


@dataclass(frozen=True, slots=True)
class CachePruneReport:
    """What :meth:`Store.prune_cache` removed: keys, and the records' total size."""

    deleted: tuple[str, ...]
    reclaimed: int


@dataclass(frozen=True, slots=True)
class BuildCacheUsage:
    """One build-cache record of ``system df -v``."""

    id: str  #: the cache key
    kind: str  #: Docker's CACHE TYPE: regular, source.local, exec.cachemount...
    description: str
    size: int
    created: float
    last_used: float | None
    usage_count: int
    in_use: bool
    shared: bool


@dataclass(frozen=True, slots=True)
class BuildCacheDiskUsage:
    """The ``Build Cache`` line of ``system df`` (docker/cli's arithmetic)."""

    records: tuple[BuildCacheUsage, ...] = ()
    total: int = 0
    active: int = 0  #: records in use
    size: int = 0  #: records not shared with anything else
    reclaimable: int = 0  #: ``size`` minus what is in use


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """``system df`` data: images (TOTAL, ACTIVE, SIZE, RECLAIMABLE + per image),
    containers and build cache."""

    images: tuple[ImageUsage, ...]
    total: int
    active: int  #: images used by at least one container
    size: int  #: every layer counted once
    reclaimable: int  #: bytes of layers no active image uses
    blobs_size: int  #: bytes under content/blobs (compressed, as stored)
    containers: ContainersDiskUsage = field(default_factory=ContainersDiskUsage)
    build_cache: BuildCacheDiskUsage = field(default_factory=BuildCacheDiskUsage)


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of :meth:`Store.check`. ``kind`` is a stable machine word."""

    kind: str  #: corrupt-blob | missing-blob | dangling-tag | missing-snapshot | ...
    subject: str
    message: str

    def __str__(self) -> str:
        return self.message
