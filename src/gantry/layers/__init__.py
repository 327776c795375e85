"""gantry.layers: layer tar <-> directory, whiteouts, compression.

* :func:`gantry.layers.extract.extract` -- safe extraction of a (compressed)
  layer into a snapshot directory
* :func:`gantry.layers.create.create` -- deterministic layer tar from a
  directory / overlay upperdir, diff ID and compressed digest in the same pass
* :mod:`gantry.layers.compression` -- ``detect``, ``decompressing_reader``,
  ``compressing_writer``

The functions are not re-exported here: ``gantry.layers.extract`` and
``gantry.layers.create`` name the modules.
"""

from gantry.layers.compression import compressing_writer, decompressing_reader, detect
from gantry.layers.create import LayerInfo
from gantry.layers.extract import ExtractResult

__all__ = [
    "ExtractResult",
    "LayerInfo",
    "compressing_writer",
    "decompressing_reader",
    "detect",
]
