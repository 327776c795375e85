"""Container records in ``meta.db``: what :class:`~gantry.store.Store` offers ``gantry.containers``.

A container is two rows with the same ID: ``containers`` (what Docker keeps in a
container's ``config.v2.json``: name, image, state, times, exit code, PID, labels and
the settings as JSON) and ``container_status`` (what the supervisor maintains: restart
count, OOM kill, last error, the supervisor's PID and start time, whether the user
stopped it, health). The store reads and writes both in one transaction, so no reader
ever sees one without the other, and a state check and the change it guards happen
under the same lock (``expect=``).

A container holds its image's snapshot chain as owner ``container:<id>``:
:func:`add` takes the hold in the transaction that inserts the rows and :func:`remove`
drops it in the transaction that deletes them, so a process killed in between can
leave neither a container without its layers nor a hold without a container.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gantry.errors import Conflict, NotFound, UsageError

from . import schema
from .models import ContainerRecord

if TYPE_CHECKING:
    from .store import Store

#: columns of ``containers`` a caller may change (``settings`` is the ``config`` column)
BASE_FIELDS = ("state", "started", "finished", "exit_code", "pid", "name", "settings")
#: columns of ``container_status``
STATUS_FIELDS = (
    "restart_count",
    "oom_killed",
    "error",
    "supervisor_pid",
    "supervisor_start",
    "stop_requested",
    "health",
)

_SELECT = """
SELECT c.id, c.name, c.image_id, c.image_ref, c.chain_id, c.state, c.created, c.started,
       c.finished, c.exit_code, c.pid, c.labels, c.config,
       coalesce(s.restart_count, 0), coalesce(s.oom_killed, 0), coalesce(s.error, ''),
       coalesce(s.supervisor_pid, 0), coalesce(s.supervisor_start, 0),
       coalesce(s.stop_requested, 0), coalesce(s.health, '{}')
FROM containers c LEFT JOIN container_status s ON s.id = c.id
"""


def owner(cid: str) -> str:
    """The ``snapshot_refs``/``blob_refs`` owner name of container ``cid``."""
    return f"container:{cid}"


def _record(row: Sequence[Any]) -> ContainerRecord:
    return ContainerRecord(
        id=str(row[0]),
        name=str(row[1]),
        image_id=str(row[2]),
        image_ref=str(row[3]),
        chain_id=str(row[4]) if row[4] else None,
        state=str(row[5]),
        created=float(row[6]),
        started=None if row[7] is None else float(row[7]),
        finished=None if row[8] is None else float(row[8]),
        exit_code=None if row[9] is None else int(row[9]),
        pid=None if row[10] is None else int(row[10]),
        labels=dict(json.loads(row[11] or "{}")),
        settings=dict(json.loads(row[12] or "{}")),
        restart_count=int(row[13]),
        oom_killed=bool(row[14]),
        error=str(row[15]),
        supervisor_pid=int(row[16]),
        supervisor_start=int(row[17]),
        stop_requested=bool(row[18]),
        health=dict(json.loads(row[19] or "{}")),
    )


def _name_conflict(name: str, other: str) -> Conflict:
    return Conflict(
        f'Conflict. The container name "/{name}" is already in use by container "{other}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )


def add(
    store: Store,
    cid: str,
    *,
    name: str,
    image_id: str,
    image_ref: str,
    chain_id: str | None,
    state: str,
    created: float | None,
    labels: Mapping[str, str] | None,
    settings: Mapping[str, Any] | None,
) -> ContainerRecord:
    if not cid or not name:
        raise UsageError("a container record needs an ID and a name")
    with schema.write(store._conn) as c:
        row = c.execute("SELECT id FROM containers WHERE name = ?", (name,)).fetchone()
        if row is not None:
            raise _name_conflict(name, str(row[0]))
        if c.execute("SELECT 1 FROM containers WHERE id = ?", (cid,)).fetchone():
            raise Conflict(f"container {cid} already exists")
        c.execute(
            "INSERT INTO containers (id, name, image_id, image_ref, chain_id, state, created,"
            " labels, config) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                cid,
                name,
                image_id,
                image_ref,
                chain_id,
                state,
                time.time() if created is None else float(created),
                json.dumps(dict(labels or {})),
                json.dumps(dict(settings or {})),
            ),
        )
        c.execute("INSERT OR REPLACE INTO container_status (id) VALUES (?)", (cid,))
        if chain_id is not None:
            store._hold_chain(c, owner(cid), chain_id)  # NotFound rolls everything back
    record = get(store, cid)
    assert record is not None
    return record


def get(store: Store, cid: str) -> ContainerRecord | None:
    row = store._conn.execute(_SELECT + " WHERE c.id = ?", (cid,)).fetchone()
    return None if row is None else _record(row)


def lookup(store: Store, ref: str) -> ContainerRecord:
    """Docker's order: full ID, name (``/name`` too), then a unique ID prefix."""
    c = store._conn
    row = c.execute(_SELECT + " WHERE c.id = ?", (ref,)).fetchone()
    if row is None:
        name = ref[1:] if ref.startswith("/") else ref
        row = c.execute(_SELECT + " WHERE c.name = ?", (name,)).fetchone()
    if row is None and ref and all(ch in "0123456789abcdef" for ch in ref):
        rows = c.execute(
            _SELECT + " WHERE c.id >= ? AND c.id < ? LIMIT 2", (ref, ref + "g")
        ).fetchall()
        if len(rows) > 1:
            raise NotFound(f"Multiple IDs found with provided prefix: {ref}")
        row = rows[0] if rows else None
    if row is None:
        raise NotFound(f"No such container: {ref}")
    return _record(row)


def records(store: Store) -> list[ContainerRecord]:
    rows = store._conn.execute(_SELECT + " ORDER BY c.created DESC, c.rowid DESC").fetchall()
    return [_record(r) for r in rows]


def update(store: Store, cid: str, fields: Mapping[str, Any], expect: Iterable[str] | None) -> bool:
    base = {k: v for k, v in fields.items() if k in BASE_FIELDS}
    status = {k: v for k, v in fields.items() if k in STATUS_FIELDS}
    unknown = set(fields) - set(base) - set(status)
    if unknown:
        raise UsageError(f"unknown container fields: {', '.join(sorted(unknown))}")
    if "settings" in base:
        base["config"] = json.dumps(dict(base.pop("settings")))
    if "health" in status:
        status["health"] = json.dumps(dict(status["health"]))
    wanted = None if expect is None else tuple(expect)
    with schema.write(store._conn) as c:
        row = c.execute("SELECT state FROM containers WHERE id = ?", (cid,)).fetchone()
        if row is None or (wanted is not None and str(row[0]) not in wanted):
            return False
        if "name" in base:
            other = c.execute(
                "SELECT id FROM containers WHERE name = ? AND id != ?", (base["name"], cid)
            ).fetchone()
            if other is not None:
                raise _name_conflict(str(base["name"]), str(other[0]))
        if base:
            sets = ", ".join(f"{k} = ?" for k in base)
            c.execute(f"UPDATE containers SET {sets} WHERE id = ?", (*base.values(), cid))
        if status:
            c.execute("INSERT OR IGNORE INTO container_status (id) VALUES (?)", (cid,))
            sets = ", ".join(f"{k} = ?" for k in status)
            c.execute(f"UPDATE container_status SET {sets} WHERE id = ?", (*status.values(), cid))
    return True


def remove(store: Store, cid: str) -> bool:
    from .store import _Released  # at call time: store imports this module

    released = _Released()
    with schema.write(store._conn) as c:
        existed = c.execute("DELETE FROM containers WHERE id = ?", (cid,)).rowcount > 0
        c.execute("DELETE FROM container_status WHERE id = ?", (cid,))
        store._release_in(c, owner(cid), released)
    store._finish(released)
    return existed
