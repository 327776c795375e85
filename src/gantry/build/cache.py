"""The build cache as users see it: ``gantry builder prune`` and the ``system df`` row.

Records live in the store's ``build_cache`` table (see :mod:`gantry.build._storeglue`);
each holds its layer blob and snapshot chain. Pruning drops records; their layers
and snapshots go with them unless an image (or another record) still uses them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from gantry.build import _storeglue as glue
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
    recs = glue.cache_records(store)
    used = _image_chains(store)
    active = [r for r in recs if r.chain_id is not None and str(r.chain_id) in used]
    size = sum(r.size for r in recs)
    return CacheUsage(len(recs), len(active), size, size - sum(r.size for r in active))


def prune(store: Store, *, all: bool = False, until: float | None = None) -> PruneResult:
    """``builder prune``: records not used by an image (``all``: every record).

    ``until``: only records last used more than this many seconds ago.
    """
    recs = glue.cache_records(store)
    used = set() if all else _image_chains(store)
    cutoff = None if until is None else time.time() - until
    doomed = []
    for r in recs:
        if r.chain_id is not None and str(r.chain_id) in used:
            continue
        last = r.last_used if r.last_used is not None else r.created
        if cutoff is not None and last > cutoff:
            continue
        doomed.append(r.key)
    reclaimed = glue.cache_delete(store, doomed)
    return PruneResult(tuple(doomed), reclaimed)
