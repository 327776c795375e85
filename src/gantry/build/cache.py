"""The build cache as users see it: ``gantry builder prune`` and the ``system df`` row.

Records are the store's (:meth:`gantry.store.Store.put_cache_record` and friends); each
holds its layer blob and snapshot chain. Pruning drops records; their layers and
snapshots go with them unless an image (or another record) still uses them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from gantry.store import Store


@dataclass(frozen=True)
class CacheUsage:
    records: int
    #: records whose layer is part of an image
    active: int
    size: int
    reclaimable: int


@dataclass(frozen=True)
class PruneResult:
    deleted: tuple[str, ...]
    reclaimed: int


def _image_chains(store: Store) -> set[str]:
    chains: set[str] = set()
    for img in store.images():
        chains.update(str(layer.chain_id) for layer in store.layers(img))
    return chains


def usage(store: Store) -> CacheUsage:
    """Numbers for the Build Cache row of ``system df``."""
    recs = store.cache_records()
    used = _image_chains(store)
    active = [r for r in recs if r.chain_id is not None and str(r.chain_id) in used]
    size = sum(r.size for r in recs)
    return CacheUsage(len(recs), len(active), size, size - sum(r.size for r in active))


def prune(store: Store, *, all: bool = False, until: float | None = None) -> PruneResult:
    """``builder prune``: records not used by an image (``all``: every record).

    ``until``: only records last used more than this many seconds ago.
    """
    cutoff = None if until is None else time.time() - until
    report = store.prune_cache(all=all, until=cutoff)
    return PruneResult(tuple(report.deleted), report.reclaimed)
