"""gantry.layers: layer tar <-> directory, whiteouts, compression.

* :func:`gantry.layers.extract.extract` -- safe extraction of a (compressed)
  layer into a snapshot directory
* :func:`gantry.layers.create.create` -- deterministic layer tar from a
  directory / overlay upperdir, diff ID and compressed digest in the same pass
* :mod:`gantry.layers.compression` -- ``detect``, ``decompressing_reader``,
  ``compressing_writer``
* :mod:`gantry.layers.tar` -- the tar reader and header writer

The functions are not re-exported here: ``gantry.layers.extract`` and
``gantry.layers.create`` name the modules. The few names below load on first use,
so importing one submodule does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gantry.layers.compression import compressing_writer as compressing_writer
    from gantry.layers.compression import decompressing_reader as decompressing_reader
    from gantry.layers.compression import detect as detect
    from gantry.layers.create import LayerInfo as LayerInfo
    from gantry.layers.extract import ExtractResult as ExtractResult

_LAZY = {
    "ExtractResult": "extract",
    "LayerInfo": "create",
    "compressing_writer": "compression",
    "decompressing_reader": "compression",
    "detect": "compression",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
