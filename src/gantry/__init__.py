"""gantry: a daemonless, Docker-compatible container image system.

The library is usable without the CLI, the way docker-py users expect::

    import gantry

    store = gantry.Store()                      # the default root, like the CLI's
    gantry.pull(store, "127.0.0.1:5000/app:1")
    image = store.resolve("127.0.0.1:5000/app:1")
    gantry.push(store, "127.0.0.1:5000/app:1")
    gantry.build_image(store, gantry.BuildOptions(context="."))

Names here are loaded lazily, so ``import gantry`` stays cheap; each room (package) is
importable on its own too. See ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> "module:attribute", imported on first use
_LAZY = {
    "Store": "gantry.store:Store",
    "pull": "gantry.distribution:pull",
    "push": "gantry.distribution:push",
    "copy": "gantry.distribution:copy",
    "build_image": "gantry.build.builder:build",
    "BuildOptions": "gantry.build.builder:BuildOptions",
    "import_image": "gantry.archive:import_image",
    "save": "gantry.archive:save",
    "load": "gantry.archive:load",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    spec = _LAZY.get(name)
    if spec is None:
        raise AttributeError(f"module 'gantry' has no attribute {name!r}")
    module, _, attr = spec.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
