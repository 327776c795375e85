"""gantry.store: image metadata (SQLite) and snapshots over the content store.

``Store(root)`` is the entry point; see :mod:`gantry.store.store` for the
guarantees and ``docs/store.md`` for the on-disk layout.
"""

from gantry.store._layers import scan as scan_layer
from gantry.store.models import (
    BuildCacheDiskUsage,
    BuildCacheUsage,
    CachePruneReport,
    CacheRecord,
    ContainerRecord,
    ContainersDiskUsage,
    ContainerUsage,
    Deleted,
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
from gantry.store.store import DEFAULT_GRACE, ImageLike, Lease, Store

__all__ = [
    "DEFAULT_GRACE",
    "BuildCacheDiskUsage",
    "BuildCacheUsage",
    "CachePruneReport",
    "CacheRecord",
    "ContainerRecord",
    "ContainerUsage",
    "ContainersDiskUsage",
    "Deleted",
    "DiskUsage",
    "Event",
    "GCReport",
    "HistoryEntry",
    "Image",
    "ImageLike",
    "ImageUsage",
    "Layer",
    "Lease",
    "Problem",
    "PruneReport",
    "Snapshot",
    "Store",
    "Untagged",
    "scan_layer",
]
