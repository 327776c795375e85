"""HEALTHCHECK: the supervisor probes a running container as Docker's daemon does.

The test (``CMD-SHELL cmd`` -> ``/bin/sh -c cmd``, ``CMD args...``) runs with ``runc exec``
every ``Interval`` (default 30 s), may take ``Timeout`` (30 s), and ``Retries`` (3)
failures in a row make the container ``unhealthy``; failures during ``StartPeriod`` do not
count while it is still ``starting``. The state (``Status``, ``FailingStreak`` and the last
five results) is ``State.Health`` in ``inspect`` and the ``(healthy)`` of ``ps``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
MAX_LOG = 5
MAX_OUTPUT = 4096


def test_command(healthcheck: Mapping[str, Any] | None) -> list[str] | None:
    """The probe's argv, or None when there is no (or a ``NONE``) health check."""
    if not healthcheck:
        return None
    test = [str(t) for t in healthcheck.get("Test") or []]
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    if test[0] == "CMD":
        return test[1:] or None
    return test


def _seconds(ns: Any, default: float) -> float:
    try:
        v = int(ns)
    except (TypeError, ValueError):
        return default
    return v / 1e9 if v > 0 else default


class HealthMonitor(threading.Thread):
    """Probes one container until :meth:`stop`; its own database connection."""

    def __init__(self, root: Path, container_id: str, healthcheck: Mapping[str, Any]) -> None:
        super().__init__(name=f"health-{container_id[:12]}", daemon=True)
        self.root = root
        self.id = container_id
        self.cmd = test_command(healthcheck) or []
        self.interval = _seconds(healthcheck.get("Interval"), DEFAULT_INTERVAL)
        self.timeout = _seconds(healthcheck.get("Timeout"), DEFAULT_TIMEOUT)
        self.start_period = _seconds(healthcheck.get("StartPeriod"), 0.0)
        self.retries = int(healthcheck.get("Retries") or DEFAULT_RETRIES)
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        from gantry.containers.exec import exec_process
        from gantry.containers.inspect import go_time
        from gantry.containers.lifecycle import Containers
        from gantry.errors import GantryError

        mgr = Containers(self.root)
        began = time.monotonic()
        health: dict[str, Any] = {"Status": "starting", "FailingStreak": 0, "Log": []}
        try:
            mgr.store.update_container(self.id, health=health)
            while not self._stop.wait(self.interval):
                start = time.time()
                out: list[str] = []
                try:
                    code = exec_process(mgr, self.id, self.cmd, capture=out, timeout=self.timeout)
                except GantryError as err:
                    code, out = -1, [str(err)]
                if self._stop.is_set():
                    return
                output = out[0] if out else ""
                if code == -1 and not output:
                    output = f"Health check exceeded timeout ({self.timeout:g}s)"
                entry = {"Start": go_time(start), "End": go_time(time.time()),
                         "ExitCode": code, "Output": output[:MAX_OUTPUT]}  # fmt: skip
                in_start = time.monotonic() - began < self.start_period
                if code == 0:
                    health["Status"] = "healthy"
                    health["FailingStreak"] = 0
                elif not (in_start and health["Status"] == "starting"):
                    health["FailingStreak"] += 1
                    if health["FailingStreak"] >= self.retries:
                        health["Status"] = "unhealthy"
                health["Log"] = [*health["Log"], entry][-MAX_LOG:]
                mgr.store.update_container(self.id, health=health)
        finally:
            mgr.close()
