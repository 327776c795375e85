"""``gantry build -``: the context (or just the Dockerfile) read from standard input.

As ``docker build -``: a tar archive on stdin (plain, gzip, bzip2, xz or zstd; told by
its first header, as ADD tells archives) is the build context, extracted safely into a
private directory; anything else is the Dockerfile itself, with an empty context.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gantry.store import Store


@dataclass
class StdinContext:
    #: the directory to use as the build context
    context: Path
    #: the Dockerfile when stdin was one (not an archive)
    dockerfile_text: bytes | None
    work: Path

    def cleanup(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def read_stdin_context(store: Store, stream: BinaryIO) -> StdinContext:
    """Spool ``stream`` to the store's build scratch space and unpack it if it is a tar."""
    from gantry.build.sources import is_archive
    from gantry.layers.extract import extract

    work = store.scratch_dir("stdin")
    try:
        spool = work / "stdin"
        with open(spool, "wb") as f:
            shutil.copyfileobj(stream, f, 1 << 20)
        context = work / "context"
        context.mkdir()
        if is_archive(str(spool)):
            with open(spool, "rb") as f:
                extract(f, context, mode="apply")
            spool.unlink()
            return StdinContext(context, None, work)
        text = spool.read_bytes()
        spool.unlink()
        return StdinContext(context, text, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
