"""Containers as ``gantry.containers`` works with them: :class:`Container`, a mutable view
of the store's :class:`~gantry.store.ContainerRecord` (``containers`` + ``container_status``
rows, read and written only through the store's container-records API), with Docker's
shapes for its settings (``{"Config": ..., "HostConfig": ..., "Path": ..., "Args": [...]}``)
and Docker's status strings.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gantry.timeutil import human_duration

if TYPE_CHECKING:
    from gantry.store import ContainerRecord, Store

CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
RESTARTING = "restarting"
REMOVING = "removing"
EXITED = "exited"
DEAD = "dead"
STATES = (CREATED, RUNNING, PAUSED, RESTARTING, REMOVING, EXITED, DEAD)


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


def from_record(rec: ContainerRecord) -> Container:
    """A :class:`Container` (its own copies of labels, settings and health) of ``rec``."""
    import copy

    return Container(
        id=rec.id,
        name=rec.name,
        image_id=rec.image_id,
        image_ref=rec.image_ref,
        chain_id=rec.chain_id,
        state=rec.state,
        created=rec.created,
        started=rec.started,
        finished=rec.finished,
        exit_code=rec.exit_code,
        pid=rec.pid,
        labels=dict(rec.labels),
        settings=copy.deepcopy(dict(rec.settings)),
        restart_count=rec.restart_count,
        oom_killed=rec.oom_killed,
        error=rec.error,
        supervisor_pid=rec.supervisor_pid,
        supervisor_start=rec.supervisor_start,
        stop_requested=rec.stop_requested,
        health=copy.deepcopy(dict(rec.health)),
    )


class ContainerDB:
    """The records of ``root`` as :class:`Container` objects, through a :class:`Store` it
    opens: for callers written before the store's container-records API (gantry's own
    code uses ``Containers`` and the store directly)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        from gantry.store import Store

        self.store: Store = Store(root)

    def close(self) -> None:
        self.store.close()

    def all(self) -> list[Container]:
        return [from_record(r) for r in self.store.containers()]

    def by_id(self, cid: str) -> Container | None:
        rec = self.store.container(cid)
        return None if rec is None else from_record(rec)

    def lookup(self, ref: str) -> Container:
        return from_record(self.store.find_container(ref))

    def update(self, cid: str, **fields: Any) -> None:
        self.store.update_container(cid, **fields)


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
