"""Process-wide settings that every room may read: where the store lives."""

from __future__ import annotations

import os
from pathlib import Path


def default_root() -> Path:
    """``$GANTRY_ROOT``, else ``/var/lib/gantry`` as root, else ``$XDG_DATA_HOME/gantry``."""
    env = os.environ.get("GANTRY_ROOT")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/gantry")
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(xdg) / "gantry"
