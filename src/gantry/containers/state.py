"""Container records: the store's ``containers`` table plus gantry's ``container_status``.

The store's ``containers`` table (``gantry.store.schema``) holds what Docker keeps in a
container's ``config.v2.json``: ID, name, image, state, times, exit code, PID, labels, and
the container's settings as JSON (``{"Config": ..., "HostConfig": ..., "Path": ...,
"Args": [...]}``, in Docker's shapes). What it lacks is kept in ``container_status``, a
table of this package created next to it in the same database: restart count, OOM kill,
the last error, the supervisor's PID and start time, whether the user stopped the
container (restart policies must not bring it back) and the health status.

Every change is one short write transaction on the store's database, so any number of
gantry processes and supervisors may update containers at once.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantry.errors import Conflict, NotFound
from gantry.store import schema
from gantry.timeutil import human_duration

CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
RESTARTING = "restarting"
REMOVING = "removing"
EXITED = "exited"
DEAD = "dead"
STATES = (CREATED, RUNNING, PAUSED, RESTARTING, REMOVING, EXITED, DEAD)

_STATUS_DDL = """
CREATE TABLE IF NOT EXISTS container_status (
    id               TEXT PRIMARY KEY,
    restart_count    INTEGER NOT NULL DEFAULT 0,
    oom_killed       INTEGER NOT NULL DEFAULT 0,
    error            TEXT NOT NULL DEFAULT '',
    supervisor_pid   INTEGER NOT NULL DEFAULT 0,
    supervisor_start INTEGER NOT NULL DEFAULT 0,
    stop_requested   INTEGER NOT NULL DEFAULT 0,
    health           TEXT NOT NULL DEFAULT '{}'
)
"""

_COLUMNS = (
    "c.id, c.name, c.image_id, c.image_ref, c.chain_id, c.state, c.created, c.started,"
    " c.finished, c.exit_code, c.pid, c.labels, c.config, coalesce(s.restart_count, 0),"
    " coalesce(s.oom_killed, 0), coalesce(s.error, ''), coalesce(s.supervisor_pid, 0),"
    " coalesce(s.supervisor_start, 0), coalesce(s.stop_requested, 0), coalesce(s.health, '{}')"
)
_SELECT = f"SELECT {_COLUMNS} FROM containers c LEFT JOIN container_status s ON s.id = c.id"

_BASE_FIELDS = ("state", "started", "finished", "exit_code", "pid", "name")
_STATUS_FIELDS = (
    "restart_count",
    "oom_killed",
    "error",
    "supervisor_pid",
    "supervisor_start",
    "stop_requested",
    "health",
)


@dataclass
class Container:
    """One container as recorded. Times are Unix seconds (float)."""

    id: str
    name: str
    image_id: str
    image_ref: str
    chain_id: str | None
    state: str
    created: float
    started: float | None = None
    finished: float | None = None
    exit_code: int | None = None
    pid: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    #: Docker's ``Config``, ``HostConfig``, ``Path``, ``Args`` (and gantry's extras).
    settings: dict[str, Any] = field(default_factory=dict)
    restart_count: int = 0
    oom_killed: bool = False
    error: str = ""
    supervisor_pid: int = 0
    supervisor_start: int = 0
    stop_requested: bool = False
    health: dict[str, Any] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def config(self) -> dict[str, Any]:
        """Docker's ``Config`` object (container.Config)."""
        cfg = self.settings.setdefault("Config", {})
        assert isinstance(cfg, dict)
        return cfg

    @property
    def host_config(self) -> dict[str, Any]:
        """Docker's ``HostConfig`` object."""
        hc = self.settings.setdefault("HostConfig", {})
        assert isinstance(hc, dict)
        return hc

    @property
    def path(self) -> str:
        return str(self.settings.get("Path", ""))

    @property
    def args(self) -> list[str]:
        return [str(a) for a in self.settings.get("Args", [])]

    @property
    def command(self) -> list[str]:
        """Path and Args: the process the container runs."""
        return [self.path, *self.args] if self.path else self.args

    @property
    def running(self) -> bool:
        return self.state in (RUNNING, PAUSED, RESTARTING)

    @property
    def restart_policy(self) -> tuple[str, int]:
        rp = self.host_config.get("RestartPolicy") or {}
        return str(rp.get("Name") or "no"), int(rp.get("MaximumRetryCount") or 0)


def _row(row: tuple[Any, ...]) -> Container:
    return Container(
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


class ContainerDB:
    """Container rows in ``<root>/meta.db`` (one connection; one per thread)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.conn: sqlite3.Connection = schema.connect(self.root)
        if not self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'container_status'"
        ).fetchone():
            with schema.write(self.conn) as c:
                c.execute(_STATUS_DDL)

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------------ reads

    def all(self) -> list[Container]:
        rows = self.conn.execute(_SELECT + " ORDER BY c.created DESC, c.rowid DESC").fetchall()
        return [_row(r) for r in rows]

    def by_id(self, cid: str) -> Container | None:
        row = self.conn.execute(_SELECT + " WHERE c.id = ?", (cid,)).fetchone()
        return None if row is None else _row(row)

    def lookup(self, ref: str) -> Container:
        """Docker's lookup: full ID, then name (``/name`` too), then a unique ID prefix."""
        c = self.by_id(ref)
        if c is not None:
            return c
        name = ref[1:] if ref.startswith("/") else ref
        row = self.conn.execute(_SELECT + " WHERE c.name = ?", (name,)).fetchone()
        if row is not None:
            return _row(row)
        if ref and all(ch in "0123456789abcdef" for ch in ref):
            rows = self.conn.execute(
                _SELECT + " WHERE c.id >= ? AND c.id < ? LIMIT 2", (ref, ref + "g")
            ).fetchall()
            if len(rows) > 1:
                raise NotFound(f"Multiple IDs found with provided prefix: {ref}")
            if rows:
                return _row(rows[0])
        raise NotFound(f"No such container: {ref}")

    def name_taken(self, name: str) -> str | None:
        row = self.conn.execute("SELECT id FROM containers WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    # ------------------------------------------------------------------ writes

    def insert(self, c: Container) -> None:
        with schema.write(self.conn) as tx:
            if tx.execute("SELECT 1 FROM containers WHERE name = ?", (c.name,)).fetchone():
                other = self.name_taken(c.name) or ""
                raise Conflict(
                    f'Conflict. The container name "/{c.name}" is already in use by container '
                    f'"{other}". You have to remove (or rename) that container to be able to '
                    "reuse that name."
                )
            tx.execute(
                "INSERT INTO containers (id, name, image_id, image_ref, chain_id, state, created,"
                " labels, config) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    c.id,
                    c.name,
                    c.image_id,
                    c.image_ref,
                    c.chain_id,
                    c.state,
                    c.created,
                    json.dumps(c.labels),
                    json.dumps(c.settings),
                ),
            )
            tx.execute("INSERT OR REPLACE INTO container_status (id) VALUES (?)", (c.id,))

    def update(self, cid: str, **fields: Any) -> None:
        """Set columns of either table in one transaction (unknown names are a bug)."""
        base = {k: v for k, v in fields.items() if k in _BASE_FIELDS}
        status = {k: v for k, v in fields.items() if k in _STATUS_FIELDS}
        extra = set(fields) - set(base) - set(status) - {"settings"}
        if extra:
            raise KeyError(f"unknown container fields: {sorted(extra)}")
        if "health" in status:
            status["health"] = json.dumps(status["health"])
        if "settings" in fields:
            base["config"] = json.dumps(fields["settings"])
        with schema.write(self.conn) as tx:
            if base:
                sets = ", ".join(f"{k} = ?" for k in base)
                tx.execute(f"UPDATE containers SET {sets} WHERE id = ?", (*base.values(), cid))
            if status:
                tx.execute("INSERT OR IGNORE INTO container_status (id) VALUES (?)", (cid,))
                sets = ", ".join(f"{k} = ?" for k in status)
                tx.execute(
                    f"UPDATE container_status SET {sets} WHERE id = ?", (*status.values(), cid)
                )

    def transition(self, cid: str, expect: tuple[str, ...], **fields: Any) -> bool:
        """Update only if the state is one of ``expect`` (atomically); True if it was."""
        with schema.write(self.conn) as tx:
            row = tx.execute("SELECT state FROM containers WHERE id = ?", (cid,)).fetchone()
            if row is None or str(row[0]) not in expect:
                return False
        # a second transaction is fine: callers serialize per container through the supervisor
        self.update(cid, **fields)
        return True

    def delete(self, cid: str) -> None:
        with schema.write(self.conn) as tx:
            tx.execute("DELETE FROM containers WHERE id = ?", (cid,))
            tx.execute("DELETE FROM container_status WHERE id = ?", (cid,))


# ---------------------------------------------------------------------- status text


def status_text(c: Container, now: float | None = None) -> str:
    """Docker's ``State.String()``: ``Up 3 seconds``, ``Exited (0) 2 minutes ago``..."""
    now = time.time() if now is None else now
    if c.state in (RUNNING, PAUSED):
        up = human_duration(now - (c.started or now))
        health = str(c.health.get("Status") or "")
        if c.state == PAUSED:
            return f"Up {up} (Paused)"
        if health == "starting":
            return f"Up {up} (health: starting)"
        if health and health != "none":
            return f"Up {up} ({health})"
        return f"Up {up}"
    if c.state == RESTARTING:
        ago = human_duration(now - (c.finished or now))
        return f"Restarting ({c.exit_code or 0}) {ago} ago"
    if c.state == REMOVING:
        return "Removal In Progress"
    if c.state == DEAD:
        return "Dead"
    if c.state == CREATED or c.finished is None:
        return "Created"
    ago = human_duration(now - c.finished)
    return f"Exited ({c.exit_code if c.exit_code is not None else 0}) {ago} ago"


def iter_labels(labels: Mapping[str, str]) -> Iterator[str]:
    for k, v in sorted(labels.items()):
        yield f"{k}={v}"
