"""gantry.archive: ``import``, ``save`` and ``load``.

* :func:`import_image` -- a root filesystem (tar, compressed tar, directory,
  stream) becomes a one-layer image (``docker import``);
* :func:`save` / :func:`save_to_path` -- images to the archive Docker >= 25
  writes (OCI layout + manifest.json + repositories);
* :func:`load` -- docker-archive or OCI layout, plain or gzip/zstd/xz/bzip2,
  verified completely before any image is recorded.
"""

from .changes import apply_changes
from .importer import import_image
from .layer import EntryChecker, LayerScan, Limits, scan
from .load import Loaded, load
from .save import SavedImage, resolve_images, save, save_to_path

__all__ = [
    "EntryChecker",
    "LayerScan",
    "Limits",
    "Loaded",
    "SavedImage",
    "apply_changes",
    "import_image",
    "load",
    "resolve_images",
    "save",
    "save_to_path",
    "scan",
]
