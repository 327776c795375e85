"""RUN --mount options and local-archive/--chmod details, built with the real thing.

What the build saw is written by the RUN steps into files of the image, then read
back from the image's snapshots; cache hits are proven by the image ID staying the
same while what the RUN would print has changed.
"""

from __future__ import annotations

import bz2
import os
import subprocess
from pathlib import Path

import pytest

from gantry.build.builder import BuildOptions, BuildResult, StepFailed, build
from gantry.store import Image, Store
from test_build_support import add_busybox, gantry, need_root


@pytest.fixture
def store(root: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    need_root()
    s = Store(root)
    add_busybox(s, tmp_path)
    yield s
    s.close()


def run_build(store: Store, ctx: Path, dockerfile: str | None = None, **kw: object) -> BuildResult:
    ctx.mkdir(parents=True, exist_ok=True)
    if dockerfile is not None:
        (ctx / "Dockerfile").write_text(dockerfile)
    return build(store, BuildOptions(context=ctx, **kw))  # type: ignore[arg-type]


def file_in(store: Store, image: Image, path: str) -> Path | None:
    layers = store.layers(image)
    for d in store.lowerdirs(layers[-1].chain_id):
        p = d / path.lstrip("/")
        if os.path.lexists(p):
            return p
    return None


def text(store: Store, image: Image, path: str) -> str:
    p = file_in(store, image, path)
    assert p is not None, f"{path} not in image"
    return p.read_text()


def test_cache_id_shared_between_dockerfiles_with_different_targets(
    store: Store, tmp_path: Path
) -> None:
    run_build(
        store,
        tmp_path / "w",
        "FROM busybox\nRUN --mount=type=cache,id=shared-x,target=/var/cache/one "
        "echo from-writer > /var/cache/one/note\n",
    )
    img = run_build(
        store,
        tmp_path / "r",
        "FROM busybox\nRUN --mount=type=cache,id=shared-x,target=/mnt/two "
        "cat /mnt/two/note > /seen; ls /mnt/two > /ls\n",
    ).image
    assert text(store, img, "/seen") == "from-writer\n"
    # without id= the target is the id: another target is another cache
    other = run_build(
        store,
        tmp_path / "o",
        "FROM busybox\nRUN --mount=type=cache,target=/var/cache/one ls /var/cache/one > /ls\n",
    ).image
    assert text(store, other, "/ls") == ""


def test_cache_id_shared_between_build_targets(store: Store, tmp_path: Path) -> None:
    ctx = tmp_path / "t"
    run_build(
        store,
        ctx,
        "FROM busybox AS fill\n"
        "RUN --mount=type=cache,id=by-target,target=/cache echo filled > /cache/f\n"
        "FROM busybox AS use\n"
        "RUN --mount=type=cache,id=by-target,target=/elsewhere,sharing=locked "
        "cat /elsewhere/f > /got 2>&1 || echo missing > /got\n",
        target="fill",
    )
    img = run_build(store, ctx, target="use").image
    assert text(store, img, "/got") == "filled\n"


def test_cache_uid_gid_mode_visible_in_stat(store: Store, tmp_path: Path) -> None:
    img = run_build(
        store,
        tmp_path / "st",
        "FROM busybox\n"
        "RUN --mount=type=cache,id=perm,target=/c,uid=1234,gid=4321,mode=0750 "
        "stat -c '%u %g %a' /c > /st\n"
        "RUN --mount=type=cache,id=perm-default,target=/d stat -c '%u %g %a' /d > /st-default\n",
    ).image
    assert text(store, img, "/st") == "1234 4321 750\n"
    assert text(store, img, "/st-default") == "0 0 755\n"  # BuildKit's defaults


# Each stage writes its own mark into the cache, waits, then lists the cache; the
# host's uptime (busybox date has no %N) brackets the step so the test knows whether
# the two actually overlapped.
_PARALLEL = """\
FROM busybox AS a
RUN --mount=type=cache,id={id},target=/c,sharing={sharing}{extra} \
 cut -d' ' -f1 /proc/uptime > /start && touch /c/a && sleep 1.5 && ls /c > /seen && \
 stat -c '%u %a' /c > /st && cut -d' ' -f1 /proc/uptime > /end
FROM busybox AS b
RUN --mount=type=cache,id={id},target=/c,sharing={sharing}{extra} \
 cut -d' ' -f1 /proc/uptime > /start && touch /c/b && sleep 1.5 && ls /c > /seen && \
 stat -c '%u %a' /c > /st && cut -d' ' -f1 /proc/uptime > /end
FROM busybox
COPY --from=a /start /end /seen /st /out/a/
COPY --from=b /start /end /seen /st /out/b/
"""


def parallel(store: Store, ctx: Path, sharing: str, cid: str, extra: str = "") -> dict[str, str]:
    img = run_build(
        store, ctx, _PARALLEL.format(id=cid, sharing=sharing, extra=extra), no_cache=True
    ).image
    got = {}
    for stage in ("a", "b"):
        for f in ("start", "end", "seen", "st"):
            got[f"{stage}.{f}"] = text(store, img, f"/out/{stage}/{f}").strip()
    return got


def overlapped(got: dict[str, str]) -> bool:
    a = (float(got["a.start"]), float(got["a.end"]))
    b = (float(got["b.start"]), float(got["b.end"]))
    return a[0] < b[1] and b[0] < a[1]


@pytest.mark.slow
def test_sharing_shared_parallel_stages_see_each_other(store: Store, tmp_path: Path) -> None:
    got = parallel(store, tmp_path / "sh", "shared", "par-shared")
    assert overlapped(got), "independent stages did not run in parallel"
    assert got["a.seen"].split() == ["a", "b"] and got["b.seen"].split() == ["a", "b"]


@pytest.mark.slow
def test_sharing_locked_serialises_the_writers(store: Store, tmp_path: Path) -> None:
    got = parallel(store, tmp_path / "lk", "locked", "par-locked")
    assert not overlapped(got), "a locked cache mount was used by two steps at once"
    first, second = ("a", "b") if float(got["a.start"]) < float(got["b.start"]) else ("b", "a")
    assert got[f"{first}.seen"].split() == [first]
    assert got[f"{second}.seen"].split() == ["a", "b"]  # the same directory, after release


@pytest.mark.slow
def test_sharing_private_parallel_stages_get_separate_dirs(store: Store, tmp_path: Path) -> None:
    got = parallel(store, tmp_path / "pv", "private", "par-private")
    assert overlapped(got), "independent stages did not run in parallel"
    assert got["a.seen"].split() == ["a"] and got["b.seen"].split() == ["b"]


@pytest.mark.slow
def test_sharing_private_second_dir_keeps_uid_and_mode(store: Store, tmp_path: Path) -> None:
    got = parallel(store, tmp_path / "pm", "private", "par-private-mode", ",uid=1234,mode=0700")
    assert overlapped(got), "independent stages did not run in parallel"
    assert got["a.st"] == "1234 700" and got["b.st"] == "1234 700"


@pytest.mark.slow
def test_cache_mount_contents_never_enter_the_key(store: Store, root: Path, tmp_path: Path) -> None:
    lister = (
        "FROM busybox\nRUN --mount=type=cache,id=keyless,target=/c "
        "ls /c > /listing; echo run >> /c/runs\n"
    )
    first = run_build(store, tmp_path / "x", lister)
    assert text(store, first.image, "/listing") == ""
    # another Dockerfile changes what is in the cache directory
    run_build(
        store,
        tmp_path / "y",
        "FROM busybox\nRUN --mount=type=cache,id=keyless,target=/c echo new > /c/new-file\n",
    )
    again = run_build(store, tmp_path / "x")
    assert again.image.id == first.image.id  # a re-run would list runs and new-file
    assert again.cached == again.steps
    # the CLI (with its no-change memo) gives the same answer
    r = gantry(root, "build", "-q", str(tmp_path / "x"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == first.image.id
    # and the cache still holds what the other Dockerfile wrote
    probe = run_build(
        store,
        tmp_path / "z",
        "FROM busybox\nRUN --mount=type=cache,id=keyless,target=/c ls /c > /probe\n",
    ).image
    assert text(store, probe, "/probe").split() == ["new-file", "runs"]


def test_bind_mount_without_rw_refuses_writes(store: Store, tmp_path: Path) -> None:
    ctx = tmp_path / "ro"
    (ctx / "data").mkdir(parents=True)
    (ctx / "data" / "in.txt").write_text("in\n")
    img = run_build(
        store,
        ctx,
        "FROM busybox\n"
        "RUN --mount=type=bind,source=data,target=/data "
        "sh -c 'echo x > /data/out' 2> /err; echo $? > /rc\n",
    ).image
    assert text(store, img, "/rc") == "1\n"
    assert "Read-only file system" in text(store, img, "/err")
    # the same write as the step's command fails the build
    with pytest.raises(StepFailed) as info:
        run_build(
            store,
            ctx,
            "FROM busybox\nRUN --mount=type=bind,target=/ctx touch /ctx/new\n",
        )
    assert "Read-only file system" in "\n".join(info.value.tail)
    assert not (ctx / "new").exists() and not (ctx / "data" / "out").exists()


def test_add_bzip2_and_zstd_archives_are_extracted(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "payload"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "README").write_text("r\n")
    (src / "pkg" / "tool").write_text("#!/bin/sh\n")
    os.chmod(src / "pkg" / "tool", 0o751)
    ctx = tmp_path / "arch"
    ctx.mkdir()
    subprocess.run(["tar", "-C", str(src), "-cjf", str(ctx / "pkg.tar.bz2"), "pkg"], check=True)
    subprocess.run(
        ["tar", "-C", str(src), "--zstd", "-cf", str(ctx / "pkg.tar.zst"), "pkg"], check=True
    )
    # detection is by content, not by name (as in Docker)
    (ctx / "blob.bin").write_bytes((ctx / "pkg.tar.bz2").read_bytes())
    # a compressed file that is not a tar is copied as it is
    (ctx / "notes.bz2").write_bytes(bz2.compress(b"just text\n"))
    img = run_build(
        store,
        ctx,
        "FROM busybox\n"
        "ADD pkg.tar.bz2 /opt/bz/\n"
        "ADD pkg.tar.zst /opt/zst/\n"
        "ADD blob.bin /opt/blob/\n"
        "ADD notes.bz2 /opt/notes/\n",
    ).image
    for base in ("/opt/bz", "/opt/zst", "/opt/blob"):
        assert text(store, img, f"{base}/pkg/README") == "r\n", base
        tool = file_in(store, img, f"{base}/pkg/tool")
        assert tool is not None and tool.stat().st_mode & 0o7777 == 0o751, base
    notes = file_in(store, img, "/opt/notes/notes.bz2")
    assert notes is not None and bz2.decompress(notes.read_bytes()) == b"just text\n"


def test_copy_chmod_symbolic_modes(store: Store, tmp_path: Path) -> None:
    ctx = tmp_path / "chmod"
    ctx.mkdir()
    for name in ("f1", "f2", "f3", "f4"):
        (ctx / name).write_text(name)
        os.chmod(ctx / name, 0o664)
    img = run_build(
        store,
        ctx,
        "FROM busybox\n"
        "COPY --chmod=u+x f1 /m/\n"
        "COPY --chmod=go-w f2 /m/\n"
        "COPY --chmod=a=r f3 /m/\n"
        "COPY --chmod=u=rwx,g=rx,o= f4 /m/\n",
    ).image
    modes = {}
    for name in ("f1", "f2", "f3", "f4"):
        p = file_in(store, img, f"/m/{name}")
        assert p is not None
        modes[name] = p.stat().st_mode & 0o7777
    # applied to the source's mode, as chmod(1) does (0664 -> ...)
    assert modes == {"f1": 0o764, "f2": 0o644, "f3": 0o444, "f4": 0o750}


def test_cache_mount_ro_refuses_writes(store: Store, tmp_path: Path) -> None:
    img = run_build(
        store,
        tmp_path / "cro",
        "FROM busybox\n"
        "RUN --mount=type=cache,id=ro-cache,target=/c,ro "
        "sh -c 'touch /c/x' 2> /err; echo $? > /rc\n",
    ).image
    assert text(store, img, "/rc") == "1\n"
    assert "Read-only file system" in text(store, img, "/err")


def test_cache_mount_seeded_from_a_stage(store: Store, tmp_path: Path) -> None:
    img = run_build(
        store,
        tmp_path / "seed",
        "FROM busybox AS seed\n"
        "RUN mkdir /seed && echo seeded > /seed/s\n"
        "FROM busybox\n"
        "RUN --mount=type=cache,id=seeded-cache,target=/c,from=seed,source=/seed "
        "cat /c/s > /got 2>&1; true\n",
    ).image
    assert text(store, img, "/got") == "seeded\n"


def _seeded(seed: str, run: str) -> str:
    return (
        f"FROM busybox AS seed\nRUN mkdir /seed && echo {seed} > /seed/s && chown 7:8 /seed/s\n"
        "FROM busybox\n"
        f"RUN --mount=type=cache,id=seeded-twice,target=/c,from=seed,source=/seed {run}\n"
    )


def test_seeded_cache_persists_and_another_base_is_another_cache(
    store: Store, tmp_path: Path
) -> None:
    first = run_build(
        store, tmp_path / "s1", _seeded("one", "stat -c '%u:%g' /c/s > /own; echo w > /c/w")
    ).image
    assert text(store, first, "/own") == "7:8\n"  # the seed keeps owners
    # same id and same base: the same cache, with what the first build wrote
    again = run_build(store, tmp_path / "s2", _seeded("one", "ls /c > /list")).image
    assert text(store, again, "/list").split() == ["s", "w"]
    # another base (the seed stage changed): a new cache seeded from it
    other = run_build(store, tmp_path / "s3", _seeded("two", "ls /c > /list; cat /c/s >> /list"))
    assert text(store, other.image, "/list").split() == ["s", "two"]
