"""Progress events of pulls, pushes and copies, Docker's vocabulary.

A library caller passes ``progress=callback``; the callback receives
:class:`Event` objects, possibly from several threads at once (layers move
concurrently), so it must be thread-safe. ``id`` is the 12-hex short ID of the
layer Docker would show (compressed digest on pull, diff ID on push) or ``""``
for a line about the whole image (``latest: Pulling from library/x``,
``Digest: ...``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Event", "ProgressCallback", "emit_nothing"]

# Per-layer statuses, as Docker words them.
PULLING_FS_LAYER = "Pulling fs layer"
WAITING = "Waiting"
DOWNLOADING = "Downloading"
VERIFYING = "Verifying Checksum"
DOWNLOAD_COMPLETE = "Download complete"
PULL_COMPLETE = "Pull complete"
ALREADY_EXISTS = "Already exists"
RETRYING = "Retrying"
PREPARING = "Preparing"
PUSHING = "Pushing"
PUSHED = "Pushed"
LAYER_EXISTS = "Layer already exists"
MOUNTED_FROM = "Mounted from"


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    status: str
    current: int = 0
    total: int = 0

    @property
    def is_progress(self) -> bool:
        """A byte count update (Docker shows these only as bars on a terminal)."""
        return self.status in (DOWNLOADING, PUSHING)


ProgressCallback = Callable[[Event], None]


def emit_nothing(event: Event) -> None:
    """The default callback."""
