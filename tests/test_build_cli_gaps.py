"""``gantry build`` and ``gantry builder prune`` from the command line, in a subprocess.

What a build produced is read back through the store (or the CLI); cache hits are
proven by ``BuildResult.cached`` and by the image ID staying the same.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gantry.build.builder import BuildOptions, build
from gantry.errors import NotFound
from gantry.store import Image, Store
from test_build_support import add_busybox, gantry, need_root


@pytest.fixture
def store(root: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    need_root()
    s = Store(root)
    add_busybox(s, tmp_path)
    yield s
    s.close()


def context(ctx: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body)
    return ctx


def text(store: Store, image: Image, path: str) -> str:
    layers = store.layers(image)
    for d in store.lowerdirs(layers[-1].chain_id):
        p = d / path.lstrip("/")
        if os.path.lexists(p):
            return p.read_text()
    raise AssertionError(f"{path} not in image")


def out(r) -> str:  # type: ignore[no-untyped-def]
    return str(r.stdout.decode())


def err(r) -> str:  # type: ignore[no-untyped-def]
    return str(r.stderr.decode())


def test_platform_other_than_host_is_one_line_exit_1(
    store: Store, root: Path, tmp_path: Path
) -> None:
    ctx = context(tmp_path / "p", {"Dockerfile": "FROM busybox\nRUN touch /x\n"})
    r = gantry(root, "build", "--platform", "linux/arm64", "-t", "arm:1", str(ctx))
    assert r.returncode == 1
    lines = err(r).strip().splitlines()
    assert len(lines) == 1, lines
    assert "linux/arm64" in lines[0] and "not supported" in lines[0]
    assert out(r) == ""
    assert [i.id for i in store.images()] == [store.resolve("busybox").id]  # nothing built
    # the host's own platform is accepted
    r = gantry(root, "build", "-q", "--platform", "linux/amd64", str(ctx))
    assert r.returncode == 0, err(r)


def test_network_none_from_the_cli(store: Store, root: Path, tmp_path: Path) -> None:
    ctx = context(
        tmp_path / "n",
        {"Dockerfile": "FROM busybox\nRUN ls /sys/class/net > /nets; cat /etc/hosts > /hosts\n"},
    )
    r = gantry(root, "build", "-q", "--network", "none", "-t", "net:none", str(ctx))
    assert r.returncode == 0, err(r)
    img = store.resolve("net:none")
    assert text(store, img, "/nets").split() == ["lo"]
    r = gantry(root, "build", "-q", "--network", "host", "-t", "net:host", str(ctx))
    assert r.returncode == 0, err(r)
    assert len(text(store, store.resolve("net:host"), "/nets").split()) > 1
    r = gantry(root, "build", "--network", "bogus", str(ctx))
    assert r.returncode != 0 and "bogus" in err(r)


@pytest.mark.slow
def test_builder_prune_filter_until_from_the_cli(store: Store, root: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path / "u", {"Dockerfile": "FROM busybox\nRUN echo 1 > /one\n"})
    first = build(store, BuildOptions(context=ctx))
    # everything was used just now: nothing is older than an hour
    r = gantry(root, "builder", "prune", "-a", "-f", "--filter", "until=1h")
    assert r.returncode == 0, err(r)
    assert "Deleted build cache objects" not in out(r)
    assert "Total reclaimed space: 0B" in out(r)
    again = build(store, BuildOptions(context=ctx))
    assert again.cached == again.steps and again.image.id == first.image.id
    time.sleep(2.2)
    r = gantry(root, "builder", "prune", "-a", "-f", "--filter", "until=2s")
    assert r.returncode == 0, err(r)
    assert out(r).startswith("Deleted build cache objects:\n")
    assert "Total reclaimed space: 0B" not in out(r)
    cold = build(store, BuildOptions(context=ctx))
    assert cold.cached < cold.steps  # the RUN ran again
    r = gantry(root, "builder", "prune", "-f", "--filter", "until=yesterday")
    assert r.returncode != 0 and "yesterday" in err(r)
    r = gantry(root, "builder", "prune", "-f", "--filter", "label=x")
    assert r.returncode != 0 and 'invalid filter "label"' in err(r)


def _images_digest(root: Path, ref: str) -> str:
    with Store(root) as s:
        return str(s.resolve(ref).manifest_digest)


@pytest.mark.slow
def test_source_date_epoch_cli_two_fresh_roots_same_manifest(tmp_path: Path) -> None:
    need_root()
    ctx = context(
        tmp_path / "repro",
        {
            "Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN echo built > /built\nLABEL v=1\n",
            "a.txt": "a\n",
        },
    )
    ids, digests = [], []
    for n in (1, 2):
        root = tmp_path / f"root{n}"
        with Store(root) as s:
            add_busybox(s, tmp_path)
        os.utime(ctx / "a.txt", (2_000_000_000 + n, 2_000_000_000 + n))
        time.sleep(1.1)  # a clock leaking into the image would differ
        r = _build_with_env(root, ctx, "1700000000", "-t", "repro:1")
        assert r.returncode == 0, err(r)
        ids.append(out(r).strip())
        digests.append(_images_digest(root, "repro:1"))
    assert ids[0] == ids[1]
    assert digests[0] == digests[1] and digests[0].startswith("sha256:")
    with Store(tmp_path / "root1") as s:
        cfg = s.config(s.resolve("repro:1"))
        assert cfg.created == "2023-11-14T22:13:20Z"


def test_non_numeric_source_date_epoch_is_an_error(
    store: Store, root: Path, tmp_path: Path
) -> None:
    ctx = context(tmp_path / "bad", {"Dockerfile": "FROM busybox\nLABEL a=b\n"})
    r = _build_with_env(root, ctx, "yesterday")
    assert r.returncode == 1
    assert "SOURCE_DATE_EPOCH" in err(r) and "yesterday" in err(r)
    assert (
        'invalid SOURCE_DATE_EPOCH: yesterday: strconv.ParseInt: parsing "yesterday": '
        "invalid syntax" in err(r)
    )
    # the same from --build-arg; an empty value is unset, as in BuildKit
    r = _build_with_env(root, ctx, None, "--build-arg", "SOURCE_DATE_EPOCH=1e9")
    assert r.returncode == 1 and "invalid SOURCE_DATE_EPOCH: 1e9" in err(r)
    r = _build_with_env(root, ctx, "")
    assert r.returncode == 0, err(r)


def _mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(root))]


def test_failing_run_leaves_only_the_earlier_cache(
    store: Store, root: Path, tmp_path: Path
) -> None:
    ctx = context(
        tmp_path / "f",
        {
            "Dockerfile": (
                "FROM busybox\nRUN echo ok > /ok\nCOPY a.txt /a.txt\n"
                "RUN echo partial > /partial; echo boom >&2; exit 3\nRUN echo never > /never\n"
            ),
            "a.txt": "a\n",
        },
    )
    before_images = {i.id for i in store.images()}
    records_before = len(store.cache_records())
    snaps_before = {sn.chain_id for sn in store.snapshots()}
    r = gantry(root, "build", "--progress", "plain", "-t", "fail:1", str(ctx))
    assert r.returncode == 1
    e = err(r)
    assert "exit code: 3" in e and "boom" in e
    assert "Dockerfile:4" in e
    # no image, no tag, the two steps that succeeded are cached, and nothing else
    assert {i.id for i in store.images()} == before_images
    with pytest.raises(NotFound):
        store.resolve("fail:1")
    assert len(store.cache_records()) - records_before == 2
    new_snaps = [sn for sn in store.snapshots() if sn.chain_id not in snaps_before]
    assert len(new_snaps) == 2 and all(sn.ready for sn in new_snaps)
    assert len(os.listdir(root / "snapshots")) == len(store.snapshots())
    assert not any((sn.path / "partial").exists() for sn in store.snapshots())
    scratch = root / "tmp"
    assert not scratch.exists() or os.listdir(scratch) == []
    assert _mounts_under(root) == []
    runc_state = root / "runtime" / "runc"  # no container of the failed step is left
    assert not runc_state.exists() or os.listdir(runc_state) == []
    r = gantry(root, "system", "check")
    assert r.returncode == 0, out(r) + err(r)
    assert "No problems found" in out(r)
    # the steps before the failure are hits on the next build
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nRUN echo ok > /ok\nCOPY a.txt /a.txt\nRUN echo fixed > /fixed\n"
    )
    res = build(store, BuildOptions(context=ctx))
    assert res.cached == 2
    assert text(store, res.image, "/fixed") == "fixed\n"


COPY_DF = "FROM busybox\nCOPY src/ /src/\nRUN ls -l /src > /listing\n"


def plain_build(root: Path, ctx: Path) -> tuple[list[str], str]:
    """(names of the steps the CLI marked CACHED, image ID) of ``build --progress plain``."""
    r = gantry(root, "build", "--progress", "plain", str(ctx))
    assert r.returncode == 0, err(r)
    names: dict[str, str] = {}
    cached, image = [], ""
    for line in err(r).splitlines():
        num, _, rest = line.partition(" ")
        if rest.startswith("[") and "] " in rest:
            names[num] = rest.split("] ", 1)[1]
        elif rest == "CACHED":
            cached.append(names[num])
        elif rest.startswith("writing image "):
            image = rest.split()[2]
    assert image.startswith("sha256:"), err(r)
    return cached, image


@pytest.mark.slow
def test_copy_source_xattr_change_misses(store: Store, root: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path / "x", {"Dockerfile": COPY_DF, "src/f": "same\n"})
    os.setxattr(ctx / "src" / "f", "user.tag", b"one")
    _, first = plain_build(root, ctx)
    cached, again = plain_build(root, ctx)  # unchanged: all hits (the no-change memo)
    assert cached == ["COPY src/ /src/", "RUN ls -l /src > /listing"] and again == first
    os.setxattr(ctx / "src" / "f", "user.tag", b"two")  # mtime and size unchanged
    cached, _ = plain_build(root, ctx)
    assert "COPY src/ /src/" not in cached
    # the same through the library
    os.setxattr(ctx / "src" / "f", "user.tag", b"three")
    res = build(store, BuildOptions(context=ctx))
    assert res.cached < res.steps


def test_copy_keeps_user_xattrs(store: Store, tmp_path: Path) -> None:
    ctx = context(tmp_path / "xk", {"Dockerfile": "FROM busybox\nCOPY f /f\n", "f": "x\n"})
    os.setxattr(ctx / "f", "user.tag", b"kept")
    img = build(store, BuildOptions(context=ctx)).image
    p = None
    for d in store.lowerdirs(store.layers(img)[-1].chain_id):
        if (d / "f").exists():
            p = d / "f"
            break
    assert p is not None
    assert "user.tag" in os.listxattr(p)


def test_copy_keeps_user_xattrs_of_a_tree_and_through_a_stage(store: Store, tmp_path: Path) -> None:
    ctx = context(
        tmp_path / "xt",
        {
            "Dockerfile": ("FROM busybox AS a\nCOPY d /d\nFROM busybox\nCOPY --from=a /d /e\n"),
            "d/f": "x\n",
        },
    )
    os.setxattr(ctx / "d" / "f", "user.tag", b"kept")
    os.setxattr(ctx / "d", "user.dir", b"dir")
    img = build(store, BuildOptions(context=ctx)).image
    tops = store.lowerdirs(store.layers(img)[-1].chain_id)
    f = next(d / "e" / "f" for d in tops if (d / "e" / "f").exists())
    assert os.getxattr(f, "user.tag") == b"kept"
    # the layer tar carries it (PAX SCHILY.xattr), so a pushed image keeps it too
    import tarfile

    from gantry.layers.compression import decompressing_reader

    with (
        store.content.open(store.layers(img)[-1].digest) as raw,
        tarfile.open(fileobj=decompressing_reader(raw), mode="r|") as tf,
    ):
        entry = next(m for m in tf if m.name == "e/f")
        assert entry.pax_headers.get("SCHILY.xattr.user.tag") == "kept"


@pytest.mark.slow
def test_copy_source_symlink_target_change_misses(store: Store, root: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path / "l", {"Dockerfile": COPY_DF, "src/a": "a\n", "src/b": "b\n"})
    os.symlink("a", ctx / "src" / "link")
    _, first = plain_build(root, ctx)
    assert "link -> a" in text(store, store.image(first), "/listing")
    os.unlink(ctx / "src" / "link")
    os.symlink("b", ctx / "src" / "link")
    cached, second = plain_build(root, ctx)
    assert cached == []
    assert "link -> b" in text(store, store.image(second), "/listing")


def test_copy_source_new_mtime_hits(store: Store, root: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path / "m", {"Dockerfile": COPY_DF, "src/f": "same\n"})
    os.symlink("f", ctx / "src" / "link")
    os.setxattr(ctx / "src" / "f", "user.tag", b"kept")
    _, first = plain_build(root, ctx)
    os.utime(ctx / "src" / "f", (1_500_000_000, 1_500_000_000))
    os.utime(ctx / "src" / "link", (1_500_000_000, 1_500_000_000), follow_symlinks=False)
    os.utime(ctx / "src", (1_500_000_000, 1_500_000_000))
    cached, again = plain_build(root, ctx)
    assert cached == ["COPY src/ /src/", "RUN ls -l /src > /listing"] and again == first
    # rewriting the same bytes gives a new mtime and ctime too
    (ctx / "src" / "f").write_text("same\n")
    res = build(store, BuildOptions(context=ctx))
    assert res.cached == res.steps and res.image.id == first


def _build_with_env(root: Path, ctx: Path, env_sde: str | None, *args: str):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    if env_sde is not None:
        env["SOURCE_DATE_EPOCH"] = env_sde
    return subprocess.run(
        [sys.executable, "-m", "gantry", "--root", str(root), "build", "-q", *args, str(ctx)],
        capture_output=True,
        env=env,
        timeout=300,
    )


SDE_DF = 'FROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo "[$SOURCE_DATE_EPOCH]" > /sde\n'


def test_source_date_epoch_build_arg_clamps_and_is_visible(
    store: Store, root: Path, tmp_path: Path
) -> None:
    # BuildKit's Dockerfile frontend takes SOURCE_DATE_EPOCH as a special build arg
    ctx = context(tmp_path / "sa", {"Dockerfile": SDE_DF})
    r = _build_with_env(root, ctx, None, "--build-arg", "SOURCE_DATE_EPOCH=1700000000")
    assert r.returncode == 0, err(r)
    img = store.image(out(r).strip())
    assert store.config(img).created == "2023-11-14T22:13:20Z"
    assert text(store, img, "/sde") == "[1700000000]\n"


def test_source_date_epoch_env_reaches_the_arg(store: Store, root: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path / "se", {"Dockerfile": SDE_DF})
    r = _build_with_env(root, ctx, "1700000000")
    assert r.returncode == 0, err(r)
    img = store.image(out(r).strip())
    assert store.config(img).created == "2023-11-14T22:13:20Z"
    assert text(store, img, "/sde") == "[1700000000]\n"


def test_build_arg_source_date_epoch_wins_over_the_env_and_is_never_unconsumed(
    store: Store, root: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    ctx = context(tmp_path / "sw", {"Dockerfile": SDE_DF})
    r = _build_with_env(root, ctx, "1700000000", "--build-arg", "SOURCE_DATE_EPOCH=1600000000")
    assert r.returncode == 0, err(r)
    img = store.image(out(r).strip())
    assert store.config(img).created == "2020-09-13T12:26:40Z"
    assert text(store, img, "/sde") == "[1600000000]\n"
    # a Dockerfile without ARG SOURCE_DATE_EPOCH: the frontend consumes it, no warning
    plain = context(tmp_path / "nw", {"Dockerfile": "FROM busybox\nRUN echo x > /x\n"})
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "gantry",
            "--root",
            str(root),
            "build",
            "--progress",
            "plain",
            "--iidfile",
            str(tmp_path / "iid"),
            str(plain),
        ],
        capture_output=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, err(r)
    assert "not consumed" not in err(r)
    img = store.image((tmp_path / "iid").read_text())
    assert store.config(img).created == "2023-11-14T22:13:20Z"


def test_source_date_epoch_is_no_unconsumed_build_arg_for_the_checks() -> None:
    from gantry.dockerfile.checks import run_checks

    report = run_checks(
        "FROM alpine:3.20\nUSER a\n",
        file="Dockerfile",
        build_args={"SOURCE_DATE_EPOCH": "1700000000", "EXTRA": "1"},
        base_env=lambda image: {},
    )
    hits = [f.message for f in report.findings if f.rule.name == "UnconsumedBuildArgs"]
    assert hits == ["One or more build-args [EXTRA] were not consumed"]
