"""gantry.layers: layer tar <-> directory, whiteouts, compression.

* :func:`extract` -- safe extraction of a (compressed) layer into a snapshot dir
* :func:`create` -- deterministic layer tar from a directory / overlay upperdir,
  diff ID and compressed digest computed in the same pass
* :mod:`gantry.layers.compression` -- ``detect``, ``decompressing_reader``,
  ``compressing_writer``
"""

from gantry.layers.compression import compressing_writer, decompressing_reader, detect
from gantry.layers.create import LayerInfo, create
from gantry.layers.extract import ExtractResult, extract

__all__ = [
    "ExtractResult",
    "LayerInfo",
    "compressing_writer",
    "create",
    "decompressing_reader",
    "detect",
    "extract",
]
