"""The size a built layer is given (``docker history``, ``images``): Docker's measure.

Docker sizes a layer by what its tar holds: each regular file's bytes once per inode
(a hard link adds nothing) and each symlink's target length; directories and
whiteouts count nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gantry.build.builder import BuildOptions, build
from gantry.store import Store
from test_build_support import add_busybox, need_root


@pytest.fixture
def store(root: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    need_root()
    s = Store(root)
    add_busybox(s, tmp_path)
    yield s
    s.close()


def test_run_layer_size_counts_symlinks_and_each_inode_once(store: Store, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN mkdir /d && printf 1234567 > /d/f && ln /d/f /d/g && ln /d/f /h "
        "&& ln -s /some/where/else /s\n"
    )
    img = build(store, BuildOptions(context=ctx)).image
    want = 7 + len("/some/where/else")
    assert store.layers(img)[-1].unpacked_size == want
    assert store.history(img)[0].size == want


def test_copy_layer_size_matches_the_files(store: Store, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "src").mkdir(parents=True)
    (ctx / "src" / "a").write_bytes(b"x" * 1000)
    (ctx / "src" / "b").write_bytes(b"y" * 24)
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY src/ /src/\n")
    img = build(store, BuildOptions(context=ctx)).image
    assert store.layers(img)[-1].unpacked_size == 1024
