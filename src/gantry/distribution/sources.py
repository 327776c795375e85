"""What the client remembers between runs: where blobs were seen, open upload sessions.

``<root>/distribution.db`` (SQLite, WAL), separate from the store's metadata:

* ``blob_sources(digest, registry, repository)``: a blob was pulled from or
  pushed to that repository, so a push to another repository of the same
  registry can mount it instead of uploading it (Docker's V2 metadata).
* ``uploads(registry, repository, digest, location, updated)``: an upload
  session in progress, so a push killed half-way resumes where the registry's
  session ends instead of starting again.

Losing this file costs only speed, never correctness.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

__all__ = ["Sources"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blob_sources (
    digest TEXT NOT NULL, registry TEXT NOT NULL, repository TEXT NOT NULL,
    seen REAL NOT NULL, PRIMARY KEY (digest, registry, repository));
CREATE TABLE IF NOT EXISTS uploads (
    registry TEXT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL,
    location TEXT NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (registry, repository, digest));
"""


class Sources:
    def __init__(self, root: Path) -> None:
        self._conn = sqlite3.connect(
            root / "distribution.db", timeout=30, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def _exec(self, sql: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, args).fetchall())

    def close(self) -> None:
        self._conn.close()

    def seen(self, digest: str, registry: str, repository: str) -> None:
        self._exec(
            "INSERT OR REPLACE INTO blob_sources VALUES (?, ?, ?, ?)",
            (digest, registry, repository, time.time()),
        )

    def repositories(self, digest: str, registry: str) -> list[str]:
        """Repositories of ``registry`` known to hold ``digest``, most recent first."""
        rows = self._exec(
            "SELECT repository FROM blob_sources WHERE digest = ? AND registry = ?"
            " ORDER BY seen DESC LIMIT 5",
            (digest, registry),
        )
        return [str(r[0]) for r in rows]

    def upload(self, registry: str, repository: str, digest: str) -> str | None:
        rows = self._exec(
            "SELECT location FROM uploads WHERE registry = ? AND repository = ? AND digest = ?",
            (registry, repository, digest),
        )
        return str(rows[0][0]) if rows else None

    def set_upload(self, registry: str, repository: str, digest: str, location: str | None) -> None:
        if location is None:
            self._exec(
                "DELETE FROM uploads WHERE registry = ? AND repository = ? AND digest = ?",
                (registry, repository, digest),
            )
        else:
            self._exec(
                "INSERT OR REPLACE INTO uploads VALUES (?, ?, ?, ?, ?)",
                (registry, repository, digest, location, time.time()),
            )
