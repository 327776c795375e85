"""``import``: a root filesystem (tar, compressed tar, directory) becomes a one-layer image.

This is how base images come to exist without a registry. A tar is streamed
once: decompressed, every entry checked as :mod:`gantry.archive.layer`
describes, hashed (the diff ID) and compressed again with gantry's pinned gzip
into the content store, so memory stays flat for any size. The tar bytes are
kept exactly as given (Docker does the same), so the diff ID is the sha256 of
the uncompressed input. A directory is turned into a layer by
:func:`gantry.layers.create.create`.

The config follows moby's ``ImportImage``: the platform (default: the host's),
the ``--change`` instructions, ``created`` now, and one history entry whose
comment is ``Imported from -`` (or ``-m``).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from gantry import reference
from gantry.errors import InvalidReference, UsageError
from gantry.layers.compression import CompressingWriter
from gantry.layers.create import create
from gantry.oci import (
    ContainerConfig,
    Descriptor,
    History,
    ImageConfig,
    Manifest,
    Platform,
    RootFS,
    host_platform,
    mediatypes,
    rfc3339,
)
from gantry.store import Image, Store

from .changes import apply_changes
from .layer import BackgroundSink, Limits, scan, spare_core


def _target(name: str | None) -> str | None:
    if not name:
        return None
    ref = reference.parse(name)
    if ref.digest is not None:
        raise InvalidReference("refusing to create a tag with a digest reference")
    return str(ref.tagged_or_latest())


def import_image(
    store: Store,
    source: str | os.PathLike[str] | BinaryIO,
    target: str | None = None,
    *,
    changes: Sequence[str] = (),
    message: str | None = None,
    platform: str | Platform | None = None,
    limits: Limits | None = None,
    source_name: str = "-",
) -> Image:
    """Import ``source`` (a tar path, a directory, or a readable binary stream) as an image.

    ``target``: ``name[:tag]`` to tag it with. ``source_name`` is what the history
    comment says it was imported from (Docker says ``-`` for a local file too).
    Returns the stored image; its ``id`` is what ``docker import`` prints.
    """
    tag = _target(target)
    plat = _platform(platform)
    container_config = apply_changes(ContainerConfig(), changes)
    content = store.content
    sizes: dict[str, int] | None = None
    if isinstance(source, str | os.PathLike) and Path(source).is_dir():
        with content.writer() as w:
            info = create(Path(source), w, compression="gzip")
        layer_digest, layer_size, diff_id = info.digest, info.size, info.diff_id
    else:
        with contextlib.ExitStack() as stack:
            f: BinaryIO
            if isinstance(source, str | os.PathLike):
                f = stack.enter_context(open(source, "rb"))
            else:
                f = source
            with content.writer() as w:
                gz = CompressingWriter(w, "gzip")
                # compressing, hashing and writing the layer happen on a second thread
                # while this one reads, checks and hashes the tar: two cores, not one
                sink = BackgroundSink(gz.write) if spare_core() else None
                try:
                    result = scan(f, sink=sink or gz.write, limits=limits)
                except BaseException:
                    if sink is not None:
                        with contextlib.suppress(Exception):  # the scan's error is the one to tell
                            sink.close()
                    raise
                if sink is not None:
                    sink.close()
                gz.close()
        layer_digest, layer_size, diff_id = w.digest, w.size, result.diff_id
        sizes = {layer_digest: result.size}
    created = rfc3339(datetime.datetime.now(datetime.UTC))
    comment = message or f"Imported from {source_name}"
    config = ImageConfig(
        architecture=plat.architecture,
        os=plat.os,
        variant=plat.variant,
        rootfs=RootFS(diff_ids=(diff_id,)),
        config=container_config,
        history=(History(created=created, comment=comment),),
        created=created,
        extra={"comment": comment},
    )
    config_bytes = config.to_json()
    manifest = Manifest(
        config=Descriptor.of(config_bytes, mediatypes.OCI_CONFIG),
        layers=(Descriptor(mediatypes.OCI_LAYER_GZIP, layer_digest, layer_size),),
    )
    content.write(config_bytes)
    return store.add_image(
        manifest.to_json(),
        media_type=manifest.media_type,
        tags=[tag] if tag else [],
        layer_sizes=sizes,
    )


def _platform(platform: str | Platform | None) -> Platform:
    if platform is None or platform == "":
        return host_platform()
    if isinstance(platform, Platform):
        return platform.normalized()
    try:
        return Platform.parse(platform).normalized()
    except UsageError:
        raise
