"""Build outputs (``-o``/``--output``), as buildx parses and BuildKit's exporters write them.

- ``type=image`` (the default): the image in the local store, tagged with ``-t``;
- ``type=docker,dest=x.tar`` and ``type=oci,dest=x.tar``: an image archive, written by
  :mod:`gantry.archive.save` (the Docker >= 25 layout: an OCI image layout that also
  carries ``manifest.json``, so both ``docker load`` and OCI tools read it);
- ``type=local,dest=DIR``: the final filesystem, written into ``DIR``;
- ``type=tar,dest=x.tar``: the same filesystem as one tar.

``dest=-`` writes a tar output to standard output. A bare ``-o DIR`` means
``type=local,dest=DIR`` and ``-o -`` means ``type=tar,dest=-``. The built image is in the store
either way; ``-t`` names it there for the image and archive outputs (the archive takes
its names from the store), not for the filesystem ones.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gantry.errors import UsageError
from gantry.store import Image, Store

TYPES = ("image", "docker", "oci", "local", "tar")


@dataclass(frozen=True)
class Output:
    type: str
    dest: str | None = None

    @property
    def to_stdout(self) -> bool:
        return self.dest == "-"


def parse_output(value: str) -> Output:
    """One ``-o`` value. Raises :class:`UsageError` like buildx does for bad ones."""
    if "=" not in value and "," not in value:
        return Output("tar", "-") if value == "-" else Output("local", value)
    fields: dict[str, str] = {}
    for item in value.split(","):
        key, eq, val = item.partition("=")
        if not eq:
            raise UsageError(f"invalid value {item!r} in output {value!r}: not key=value")
        fields[key.strip().lower()] = val
    kind = fields.pop("type", "")
    if not kind:
        raise UsageError(f"invalid output {value!r}: type is required")
    if kind == "registry":
        raise UsageError("type=registry outputs are not supported yet; build, then gantry push")
    if kind not in TYPES:
        raise UsageError(f'unsupported output type "{kind}": {", ".join(TYPES)}')
    dest = fields.pop("dest", None)
    fields.pop("name", None)  # image names come from -t
    if fields:
        raise UsageError(f"unsupported output option(s) {', '.join(sorted(fields))} for {kind}")
    if kind == "docker" and not dest:
        return Output("image")  # "load into the engine": here, the local store
    if kind in ("local", "tar", "oci") and not dest:
        raise UsageError(f"output type={kind} needs dest=")
    if kind == "local" and dest == "-":
        raise UsageError("output type=local needs a directory, not -")
    return Output(kind, dest)


def export(
    store: Store,
    image: Image,
    output: Output,
    *,
    names: Sequence[str] = (),
    stdout: BinaryIO | None = None,
) -> None:
    """Write ``image`` (already in ``store``) as ``output`` asks."""
    if output.type == "image":
        return
    if output.type in ("docker", "oci"):
        from gantry.archive.save import save, save_to_path

        refs = list(names) or [str(image.id)]
        if output.dest in (None, "-"):
            if stdout is None:
                raise UsageError(f"output type={output.type} to stdout needs a stream")
            save(store, refs, stdout)
        else:
            save_to_path(store, refs, output.dest)
        return
    if output.type == "local":
        assert output.dest is not None
        dest = Path(output.dest)
        dest.mkdir(parents=True, exist_ok=True)
        _flatten(store, image, dest)
        return
    # tar: the flattened filesystem, as one uncompressed tar
    from gantry.layers.create import create

    scratch = store.scratch_dir("export")
    try:
        _flatten(store, image, scratch)
        if output.to_stdout:
            if stdout is None:
                raise UsageError("output type=tar to stdout needs a stream")
            create(scratch, stdout, compression=None)
            stdout.flush()
        else:
            assert output.dest is not None
            target = Path(output.dest)
            tmp = target.with_name(f".{target.name}.tmp-{secrets.token_hex(4)}")
            try:
                with open(tmp, "wb") as f:
                    create(scratch, f, compression=None)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
    finally:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)


def _flatten(store: Store, image: Image, dest: Path) -> None:
    """Apply the image's layers bottom first (whiteouts delete) into ``dest``."""
    from gantry.layers.extract import extract

    for layer in store.layers(image):
        with store.content.open(layer.digest) as f:
            extract(f, dest, mode="apply")
