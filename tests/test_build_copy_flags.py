"""COPY --parents (paths kept, ``/./`` pivot) and COPY --link (layers independent of the base)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gantry.build.builder import BuildOptions, BuildResult, _parents_path, build
from gantry.store import Store
from test_build_cache import Recorder
from test_build_dockerfiles import lookup, read
from test_build_support import add_busybox, need_root


@pytest.fixture
def store(root: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    need_root()
    s = Store(root)
    add_busybox(s, tmp_path)
    yield s
    s.close()


def write(ctx: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return ctx


def do(store: Store, ctx: Path, **kw: object) -> tuple[BuildResult, Recorder]:
    rec = Recorder()
    return build(store, BuildOptions(context=ctx, **kw), rec), rec  # type: ignore[arg-type]


def test_copy_parents_keeps_paths_and_honours_the_pivot(store: Store, tmp_path: Path) -> None:
    ctx = write(
        tmp_path / "ctx",
        {
            "x/a.txt": "xa\n",
            "y/a.txt": "ya\n",
            "src/pkg/m.txt": "m\n",
            "src/pkg/sub/n.txt": "n\n",
            "Dockerfile": (
                "FROM busybox AS files\n"
                "COPY --parents x/a.txt y/*.txt /p/\n"
                "COPY --parents ./src/./pkg /q/\n"
                "COPY --parents src/pkg/m.txt /r/\n"
                "COPY x/a.txt /flat/\n"
                "FROM busybox\n"
                "COPY --parents --from=files /p/x/a.txt /s/\n"
            ),
        },
    )
    files, _ = do(store, ctx, target="files")
    img = files.image
    assert read(store, img, "/p/x/a.txt") == "xa\n"
    assert read(store, img, "/p/y/a.txt") == "ya\n"
    assert read(store, img, "/q/pkg/m.txt") == "m\n"
    assert read(store, img, "/q/pkg/sub/n.txt") == "n\n"
    assert lookup(store, img, "/q/src") is None
    assert read(store, img, "/r/src/pkg/m.txt") == "m\n"
    assert read(store, img, "/flat/a.txt") == "xa\n"
    final, _ = do(store, ctx)
    assert read(store, final.image, "/s/p/x/a.txt") == "xa\n"


def test_parents_path() -> None:
    assert _parents_path("x/*.txt", "x/a.txt") == "x/a.txt"
    assert _parents_path("./a/./b/c", "a/b/c") == "b/c"
    assert _parents_path("/a/b/./c/*", "a/b/c/d") == "c/d"
    assert _parents_path("./a/./b", "a/b") == "b"


def test_copy_link_layer_is_reused_on_a_new_base(store: Store, tmp_path: Path) -> None:
    other = write(tmp_path / "other", {"Dockerfile": "FROM busybox\nRUN echo x > /other\n"})
    build(store, BuildOptions(context=other, tags=["otherbase:1"]))
    ctx = write(
        tmp_path / "ctx",
        {
            "f.txt": "linked\n",
            "Dockerfile": (
                "ARG BASE=busybox\n"
                "FROM ${BASE}\n"
                "COPY --link --chown=1234:5 f.txt /data/f.txt\n"
                "RUN cat /data/f.txt > /seen\n"
            ),
        },
    )
    first, rec1 = do(store, ctx)
    assert rec1.hits == []
    second, rec2 = do(store, ctx, build_args={"BASE": "otherbase:1"})
    # the linked COPY is a cache hit on the new base; the RUN below it is not
    assert rec2.hits == ["COPY --link --chown=1234:5 f.txt /data/f.txt"]
    assert rec2.ran == ["RUN cat /data/f.txt > /seen"]
    l1, l2 = store.layers(first.image), store.layers(second.image)
    assert l1[1].digest == l2[2].digest  # the same layer blob, rebased
    assert l1[1].chain_id != l2[2].chain_id
    img = second.image
    assert read(store, img, "/seen") == "linked\n"
    assert read(store, img, "/other") == "x\n"
    f = lookup(store, img, "/data/f.txt")
    assert f is not None and (f.stat().st_uid, f.stat().st_gid) == (1234, 5)
    # the rebased snapshot is a real one: a third build on that base hits everything
    _, rec3 = do(store, ctx, build_args={"BASE": "otherbase:1"})
    assert rec3.ran == []
