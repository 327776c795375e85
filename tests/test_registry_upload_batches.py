"""Streamed uploads cut into many small HTTP chunks, as docker push sends them.

The server hands the body to its worker thread in batches of about UPLOAD_BATCH
bytes, each hashed and written in one call: these tests make the pieces cross
several batch boundaries at odd offsets and check that the stored blob and its
digest are the bytes sent, in order.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from gantry.registry import RegistryConfig
from gantry.registry.app import UPLOAD_BATCH
from test_registry_support import in_process, sha


def cfg(tmp_path: Path) -> RegistryConfig:
    return RegistryConfig(data=tmp_path / "data", fsync=False, access_log=False)


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_streamed_patch_in_small_chunks_across_batches(tmp_path: Path) -> None:
    # two full batches and a tail, in 32 KiB + 7 byte pieces (never batch-aligned)
    data = os.urandom(2 * UPLOAD_BATCH + 123_457)
    d = sha(data)

    async def body(c: Any) -> None:
        r = await c.post("/v2/s/blobs/uploads/")
        loc = r.headers["Location"]
        r = await c.patch(loc, data=pieces(data, 32 * 1024 + 7))
        assert r.status == 202 and r.headers["Range"] == f"0-{len(data) - 1}"
        r = await c.put(f"{loc}?digest={sha(data[:-1] + b'x')}")
        assert r.status == 400
        r = await c.put(f"{loc}?digest={d}")
        assert r.status == 201, await r.text()
        r = await c.get(f"/v2/s/blobs/{d}")
        got = await r.read()
        assert hashlib.sha256(got).hexdigest() == str(d).split(":")[1] and got == data

    in_process(cfg(tmp_path), body)


def test_two_streamed_patches_then_put_with_last_chunk(tmp_path: Path) -> None:
    data = os.urandom(UPLOAD_BATCH + 5_000_001)
    cut1, cut2 = UPLOAD_BATCH - 3, UPLOAD_BATCH + 4_000_000
    d = sha(data)

    async def body(c: Any) -> None:
        r = await c.post("/v2/t/blobs/uploads/")
        loc = r.headers["Location"]
        r = await c.patch(loc, data=pieces(data[:cut1], 65_521))
        assert r.status == 202 and r.headers["Range"] == f"0-{cut1 - 1}"
        r = await c.patch(loc, data=pieces(data[cut1:cut2], 1 << 20))
        assert r.status == 202 and r.headers["Range"] == f"0-{cut2 - 1}"
        r = await c.put(
            f"{loc}?digest={d}",
            data=data[cut2:],
            headers={"Content-Range": f"{cut2}-{len(data) - 1}"},
        )
        assert r.status == 201, await r.text()
        r = await c.get(f"/v2/t/blobs/{d}")
        assert await r.read() == data

    in_process(cfg(tmp_path), body)
