"""``Store.check()``: what ``gantry system check`` reports.

Every blob is re-hashed (``verify_blobs``), and every reference is followed:
tags and repo digests -> images -> manifest -> config and layers (present, and
agreeing with each other) -> snapshots; containers and the layers they hold.
Garbage (unreferenced blobs, old ingests) is not a problem; GC reclaims it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

from gantry.errors import GantryError
from gantry.oci import Manifest, chain_ids, parse_config

from .models import Problem

if TYPE_CHECKING:
    from .store import Store


def run_check(store: Store, *, verify_blobs: bool = True) -> list[Problem]:
    problems: list[Problem] = []
    add = problems.append
    content = store.content
    present = set(content.iter_digests())
    if verify_blobs:
        for d in sorted(present):
            if not content.verify(d):
                add(Problem("corrupt-blob", d, f"blob {d}: content does not match its digest"))

    c = store._conn
    image_rows = c.execute(
        "SELECT id, manifest_digest, manifest_media_type, parent FROM images ORDER BY id"
    ).fetchall()
    known = {str(r[0]) for r in image_rows}
    # every image's recorded chain, and every snapshot row, in one query each
    recorded_chains: dict[str, list[str]] = {}
    for image_id, chain in c.execute(
        "SELECT image_id, chain_id FROM image_layers ORDER BY image_id, idx"
    ):
        recorded_chains.setdefault(str(image_id), []).append(str(chain))
    snapshot_rows = {str(r[0]) for r in c.execute("SELECT chain_id FROM snapshots")}
    for table, what in (("tags", "tag"), ("repo_digests", "repo digest")):
        for name, image_id in c.execute(f"SELECT name, image_id FROM {table} ORDER BY name"):
            if image_id not in known:
                add(
                    Problem(
                        "dangling-tag", name, f"{what} {name} points at missing image {image_id}"
                    )
                )

    for image_id, manifest_digest, media_type, parent in image_rows:
        where = f"image {image_id}"
        if parent and parent not in known:
            add(Problem("missing-parent", image_id, f"{where}: parent image {parent} is missing"))
        if manifest_digest not in present:
            add(
                Problem(
                    "missing-blob",
                    manifest_digest,
                    f"{where}: manifest {manifest_digest} is missing",
                )
            )
            continue
        try:
            m = Manifest.parse(content.read(manifest_digest), media_type)
        except GantryError as err:
            add(Problem("bad-manifest", manifest_digest, f"{where}: manifest unreadable: {err}"))
            continue
        if m.config.digest != image_id:
            add(
                Problem(
                    "bad-manifest",
                    manifest_digest,
                    f"{where}: manifest names config {m.config.digest}",
                )
            )
        for desc in m.layers:
            if desc.digest not in present:
                add(
                    Problem("missing-blob", desc.digest, f"{where}: layer {desc.digest} is missing")
                )
        if image_id not in present:
            add(Problem("missing-blob", image_id, f"{where}: config {image_id} is missing"))
            continue
        try:
            config = parse_config(content.read(image_id))
        except GantryError as err:
            add(Problem("bad-config", image_id, f"{where}: config unreadable: {err}"))
            continue
        recorded = recorded_chains.get(str(image_id), [])
        if recorded != [str(x) for x in chain_ids(config.diff_ids)]:
            add(
                Problem(
                    "bad-layers", image_id, f"{where}: recorded layers disagree with its config"
                )
            )
        for chain in recorded:
            if chain not in snapshot_rows:
                add(
                    Problem(
                        "missing-snapshot", chain, f"{where}: snapshot record {chain} is missing"
                    )
                )

    for owner, digest in c.execute("SELECT owner, digest FROM blob_refs ORDER BY owner, digest"):
        if digest not in present and not str(owner).startswith("lease:"):
            add(Problem("missing-blob", digest, f"{owner}: references missing blob {digest}"))
    for owner, chain in c.execute(
        "SELECT r.owner, r.chain_id FROM snapshot_refs r LEFT JOIN snapshots s"
        " ON s.chain_id = r.chain_id WHERE s.chain_id IS NULL"
    ):
        add(Problem("missing-snapshot", chain, f"{owner}: references missing snapshot {chain}"))
    _check_containers(c, add)
    for snap in store.snapshots():
        if snap.ready and not snap.path.is_dir():
            add(
                Problem(
                    "missing-snapshot",
                    snap.chain_id,
                    f"snapshot {snap.chain_id}: directory {snap.path} is missing "
                    "(it will be unpacked again when needed)",
                )
            )
        if snap.layer_digest not in present and snap.refcount:
            add(
                Problem(
                    "missing-blob",
                    snap.layer_digest,
                    f"snapshot {snap.chain_id}: layer blob missing",
                )
            )
    return problems


def _check_containers(c: sqlite3.Connection, add: Callable[[Problem], None]) -> None:
    """A container holds its image's chain as ``container:<id>``; a hold without its
    container (a create killed between the two, with code that did not use
    ``Store.add_container``) keeps layers forever, a container without its hold may lose
    them to the next ``rmi``."""
    held: dict[str, set[str]] = {}
    for owner, chain in c.execute(
        "SELECT owner, chain_id FROM snapshot_refs WHERE owner GLOB 'container:*'"
    ):
        held.setdefault(str(owner)[len("container:") :], set()).add(str(chain))
    for (owner,) in c.execute(
        "SELECT DISTINCT owner FROM blob_refs WHERE owner GLOB 'container:*'"
    ):
        held.setdefault(str(owner)[len("container:") :], set())
    rows = c.execute("SELECT id, chain_id FROM containers ORDER BY id").fetchall()
    known = {str(r[0]) for r in rows}
    for cid in sorted(set(held) - known):
        add(
            Problem(
                "orphan-hold",
                cid,
                f"container:{cid} holds layers but there is no such container "
                "(a create killed half way, or one in progress)",
            )
        )
    for cid, chain in rows:
        if chain and str(chain) not in held.get(str(cid), set()):
            add(
                Problem(
                    "unheld-layers",
                    str(chain),
                    f"container {cid}: its image's snapshot {chain} is not held for it",
                )
            )
