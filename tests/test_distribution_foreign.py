"""Foreign (non-distributable) layers: pulled from their URLs, skipped by push and copy."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.digest import Digest
from gantry.distribution import RegistryClient, RetryPolicy, pull
from gantry.distribution.copy import copy
from gantry.distribution.push import upload_blob
from gantry.errors import RegistryError
from gantry.oci import mediatypes as mt
from gantry.oci.descriptor import Descriptor
from gantry.oci.manifest import Manifest
from gantry.store import Store
from test_distribution_support import RegistryThread, image_blobs, random_layer, sha

FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05)


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain HTTP file server on 127.0.0.1 (the foreign layers' URL host)."""
    root = tmp_path / "www"
    root.mkdir()
    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", root
    finally:
        srv.shutdown()
        srv.server_close()


def foreign_image(tmp_path: Path, addr: str, urls: list[str]) -> tuple[bytes, bytes, bytes]:
    """Push a 2-layer Docker image whose base layer is foreign (only its URLs hold it)."""
    base, top = random_layer(40_000, seed=80), random_layer(20_000, seed=81)
    config, _, m = image_blobs([base, top], docker=True)
    m = Manifest(
        config=m.config,
        layers=(
            Descriptor(mt.DOCKER_FOREIGN_LAYER, Digest(sha(base)), len(base), urls=tuple(urls)),
            m.layers[1],
        ),
        media_type=mt.DOCKER_MANIFEST,
    )
    c = RegistryClient(addr, retry=FAST)
    for blob in (config, top):
        p = tmp_path / "upload"
        p.write_bytes(blob)
        upload_blob(c, "win/app", Digest(sha(blob)), len(blob), p)
    body = m.to_json()
    c.put_manifest("win/app", "1", body, m.media_type)
    return base, config, body


def test_foreign_layer_comes_from_its_url(tmp_path: Path, web: tuple[str, Path]):
    url, root = web
    with RegistryThread(tmp_path / "registry") as reg:
        base, config, body = foreign_image(
            tmp_path, reg.addr, ["ftp://nowhere.invalid/x", f"{url}/missing", f"{url}/base.tgz"]
        )
        (root / "base.tgz").write_bytes(base)
        client = RegistryClient(reg.addr, retry=FAST)
        with Store(tmp_path / "dst") as store:
            r = pull(store, f"{reg.addr}/win/app:1", client=client)
            assert r.image.id == sha(config)
            assert store.content.has(sha(base))
            assert store.check() == []
        # copy leaves it out (its URLs stay in the manifest) and the manifest is unchanged
        out = copy(f"{reg.addr}/win/app:1", f"oci:{tmp_path / 'o'}:1", clients={reg.addr: client})
        assert out.digest == sha(body)
        assert sha(base) not in out.copied
        assert not (tmp_path / "o" / "blobs" / "sha256" / sha(base)[7:]).exists()
        # no URL serves it: one clear error, nothing stored
        (root / "base.tgz").unlink()
        with Store(tmp_path / "dst2") as store:
            with pytest.raises(RegistryError, match="no URL served it"):
                pull(store, f"{reg.addr}/win/app:1", client=client)
            assert not store.content.has(sha(base))
