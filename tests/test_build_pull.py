"""Base images from a registry: pulled when missing, re-pulled with --pull (a real
``gantry registry`` app on 127.0.0.1, served from a thread)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gantry.build.builder import BuildOptions, build
from gantry.distribution import push
from gantry.errors import BuildError
from gantry.store import Store
from test_build_cache import Recorder
from test_build_dockerfiles import lookup, read
from test_build_support import add_busybox, need_root
from test_distribution_support import RegistryThread


@pytest.mark.slow
def test_missing_base_is_pulled_and_pull_flag_refreshes_it(tmp_path: Path) -> None:
    need_root()
    with RegistryThread(tmp_path / "registry") as reg:
        ref = f"{reg.addr}/lib/base:1"
        with Store(tmp_path / "publisher") as pub:
            add_busybox(pub, tmp_path, tag=ref)
            push(pub, ref)
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(f"FROM {ref}\nRUN echo built > /built\n")
        with Store(tmp_path / "root") as store:
            rec = Recorder()
            first = build(store, BuildOptions(context=ctx), rec)
            assert any(
                name.startswith("[internal] load metadata for") for name in rec.names.values()
            )
            assert read(store, first.image, "/built") == "built\n"
            # the registry's tag moves to a new image
            with Store(tmp_path / "publisher") as pub:
                other = tmp_path / "ctx2"
                other.mkdir()
                (other / "Dockerfile").write_text(f"FROM {ref}\nRUN echo v2 > /v2\n")
                build(pub, BuildOptions(context=other, tags=[ref]))
                push(pub, ref)
            again = build(store, BuildOptions(context=ctx))
            assert again.image.id == first.image.id  # the local copy, no pull
            fresh = build(store, BuildOptions(context=ctx, pull=True))
            assert fresh.image.id != first.image.id
            assert lookup(store, fresh.image, "/v2") is not None
            (ctx / "Dockerfile").write_text(f"FROM {reg.addr}/lib/none:1\n")
            with pytest.raises(
                BuildError, match=f"failed to resolve source metadata for {reg.addr}/lib/none:1"
            ):
                build(store, BuildOptions(context=ctx))
