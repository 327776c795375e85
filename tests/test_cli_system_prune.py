"""``gantry system prune`` over real containers, volumes, images and build cache.

Containers are created through ``gantry.containers`` (and one runs under runc, in the slow
test); volumes are real directories made by ``create -v /path``; build-cache records are
recorded through the Store API. Expected output is docker/cli's: the prompt of
``cli/command/system/prune.go``, one section per pruner that removed something (each
followed by an empty line), then ``Total reclaimed space``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.containers import Containers, CreateOptions
from gantry.store import Store
from test_containers_support import add_image, err, gantry, out

pytest_plugins = ["test_containers_support"]  # the croot fixture

KEY_UNSHARED = "sha256:" + "a1" * 32
KEY_SHARED = "sha256:" + "b2" * 32


@pytest.fixture
def mgr(croot: Path) -> Iterator[Containers]:
    with Containers(croot) as m:
        yield m


def _cache(store: Store) -> None:
    """One record of its own (100 bytes), one sharing busybox's layer (an image uses it)."""
    store.put_cache_record(KEY_UNSHARED, description="RUN make", size=100)
    layer = store.layers("busybox")[0]
    store.put_cache_record(
        KEY_SHARED,
        description="ADD busybox /",
        layer_digest=layer.digest,
        media_type=layer.media_type,
        diff_id=layer.diff_id,
        chain_id=layer.chain_id,
        size=layer.unpacked_size,
    )


def _sections(text: str) -> dict[str, list[str]]:
    """``Title:`` + lines + empty line -> {title: lines}; the total under "Total"."""
    out: dict[str, list[str]] = {}
    blocks = text.split("\n\n")
    for block in blocks[:-1]:
        title, *lines = block.splitlines()
        assert title.endswith(":"), text
        out[title[:-1]] = lines
    last = blocks[-1]
    assert re.fullmatch(r"Total reclaimed space: [0-9.]+[kMGT]?B\n", last), text
    out["Total"] = [last.strip()]
    return out


def test_prompt_wording_and_no(croot: Path, mgr: Containers) -> None:
    c = mgr.create(CreateOptions(image="busybox", network="none"))
    p = gantry(croot, "system", "prune", input=b"n\n")
    assert p.returncode == 0, err(p)
    assert out(p) == (
        "WARNING! This will remove:\n"
        "  - all stopped containers\n"
        "  - all dangling images\n"
        "  - unused build cache\n"
        "\n"
        "Are you sure you want to continue? [y/N] "
    )
    p = gantry(
        croot,
        "system",
        "prune",
        "-a",
        "--volumes",
        "--filter",
        "label=b=2",
        "--filter",
        "label!=a10",
        "--filter",
        "label!=a9",
        input=b"\n",
    )
    assert out(p) == (
        "WARNING! This will remove:\n"
        "  - all stopped containers\n"
        "  - all anonymous volumes not used by at least one container\n"
        "  - all images without at least one container associated to them\n"
        "  - all build cache\n"
        "\n"
        "  Items to be pruned will be filtered with:\n"
        "  - label!=a9\n"
        "  - label!=a10\n"
        "  - label=b=2\n"
        "\n"
        "Are you sure you want to continue? [y/N] "
    )
    assert [x.id for x in mgr.list()] == [c.id]  # nothing removed
    # a "y" answer goes ahead
    p = gantry(croot, "system", "prune", input=b"y\n")
    assert out(p).split("[y/N] ", 1)[1].startswith(f"Deleted Containers:\n{c.id}\n\n")
    assert mgr.list() == []


def test_prune_all_with_volumes(croot: Path, mgr: Containers) -> None:
    store: Store = mgr.store
    busybox = store.resolve("busybox")
    old = add_image(store, "old:1", labels={"v": "1"})
    stopped = mgr.create(CreateOptions(image="old:1", binds=["/data"], network="none"))
    (mgr.container_dir(stopped.id) / "upper" / "junk").write_bytes(b"j" * 4000)
    anon = next(m["Name"] for m in stopped.settings["Mounts"] if m["Type"] == "volume")
    (mgr.volumes.get(anon).mountpoint / "f").write_bytes(b"v" * 2000)
    assert mgr.volumes.get(anon).anonymous
    mgr.volumes.create("named")  # named and unused: docker's system prune keeps it
    _cache(store)

    # without -a: the stopped (created) container goes, then the anonymous volume it
    # used; no image is dangling; the cache record an image shares stays
    p = gantry(croot, "system", "prune", "-f", "--volumes")
    assert p.returncode == 0, err(p)
    sections = _sections(out(p))
    assert sections["Deleted Containers"] == [stopped.id]
    assert sections["Deleted Volumes"] == [anon]
    assert "Deleted Images" not in sections
    assert sections["Deleted build cache objects"] == [KEY_UNSHARED[7:32]]
    # 4000 B writable layer + 2000 B volume + 100 B cache record
    assert sections["Total"] == ["Total reclaimed space: 6.1kB"]
    assert {v.name for v in mgr.volumes.list()} == {"named"}
    assert {i.id for i in store.images()} == {old.id, busybox.id}

    # -a: every image no container uses and all build cache; named volumes still stay
    p = gantry(croot, "system", "prune", "-af", "--volumes")
    assert p.returncode == 0, err(p)
    sections = _sections(out(p))
    assert "Deleted Containers" not in sections and "Deleted Volumes" not in sections
    assert set(sections["Deleted Images"]) >= {
        "untagged: old:1",
        f"deleted: {old.id}",
        "untagged: busybox:latest",
        f"deleted: {busybox.id}",
    }
    assert sections["Deleted build cache objects"] == [KEY_SHARED[7:32]]
    assert store.images() == [] and store.cache_records() == []
    assert store.snapshots() == []
    assert {v.name for v in mgr.volumes.list()} == {"named"}
    assert store.check() == []


def test_output_byte_for_byte(croot: Path, mgr: Containers) -> None:
    c = mgr.create(CreateOptions(image="busybox", network="none"))
    (mgr.container_dir(c.id) / "upper" / "x").write_bytes(b"x" * 1500)
    store: Store = mgr.store
    store.put_cache_record(KEY_UNSHARED, size=500)
    p = gantry(croot, "system", "prune", "-f")
    assert out(p) == (
        f"Deleted Containers:\n{c.id}\n\n"
        f"Deleted build cache objects:\n{KEY_UNSHARED[7:32]}\n\n"
        "Total reclaimed space: 2kB\n"
    )
    p = gantry(croot, "system", "prune", "-f")
    assert out(p) == "Total reclaimed space: 0B\n"


def test_filters(croot: Path, mgr: Containers) -> None:
    store: Store = mgr.store
    keep = mgr.create(CreateOptions(image="busybox", labels={"keep": "yes"}, network="none"))
    drop = mgr.create(CreateOptions(image="busybox", labels={"team": "a"}, network="none"))
    spare = add_image(store, "spare:1", labels={"team": "a"})
    other = add_image(store, "other:1", labels={"team": "b"})
    store.put_cache_record(KEY_UNSHARED, size=100)
    # label=: only what carries the label; build-cache records carry none, so they stay
    p = gantry(croot, "system", "prune", "-af", "--filter", "label=team=a")
    sections = _sections(out(p))
    assert sections["Deleted Containers"] == [drop.id]
    assert sections["Deleted Images"] == ["untagged: spare:1", f"deleted: {spare.id}"]
    assert "Deleted build cache objects" not in sections
    assert [x.id for x in mgr.list()] == [keep.id]
    # label!=: what lacks it, build cache included
    p = gantry(croot, "system", "prune", "-af", "--filter", "label!=keep")
    sections = _sections(out(p))
    assert "Deleted Containers" not in sections
    assert sections["Deleted Images"] == ["untagged: other:1", f"deleted: {other.id}"]
    assert sections["Deleted build cache objects"] == [KEY_UNSHARED[7:32]]
    # until: nothing created in the last hour goes (the images say 2024, so -a takes them)
    store.put_cache_record(KEY_SHARED, size=1)
    p = gantry(croot, "system", "prune", "-af", "--filter", "until=1h")
    sections = _sections(out(p))
    assert "Deleted Containers" not in sections
    assert "Deleted build cache objects" not in sections
    assert [x.id for x in mgr.list()] == [keep.id]
    # bad filters are refused before anything is removed
    for args, message in (
        (["--filter", "dangling=true"], "invalid filter 'dangling'"),
        (["--filter", "until=soon"], "invalid value for 'until' filter"),
        (["--filter", "until=1h", "--filter", "until=2h"], "more than one until filter"),
        (["--volumes", "--filter", "until=1h"], 'The "until" filter is not supported with'),
        (["--filter", "label"], "bad format of filter"),
    ):
        p = gantry(croot, "system", "prune", "-af", *args)
        assert p.returncode != 0 and message in err(p), (args, err(p))
        assert out(p) == ""
    assert [x.id for x in mgr.list()] == [keep.id]
    assert store.cache_records() != []


@pytest.mark.slow
def test_running_container_and_its_volume_stay(croot: Path) -> None:
    p = gantry(croot, "run", "-d", "--network", "none", "-v", "/data", "busybox", "sleep", "300")
    assert p.returncode == 0, err(p)
    running = out(p).strip()
    gantry(croot, "create", "--name", "idle", "busybox", check=True)
    with Containers(croot) as mgr:
        idle = mgr.get("idle").id
        vol = next(m["Name"] for m in mgr.get(running).settings["Mounts"] if m["Type"] == "volume")
    p = gantry(croot, "system", "prune", "-af", "--volumes")
    assert p.returncode == 0, err(p)
    sections = _sections(out(p))
    assert sections == {"Deleted Containers": [idle], "Total": [sections["Total"][0]]}
    with Containers(croot) as mgr:
        assert [c.id for c in mgr.list()] == [running]
        assert [v.name for v in mgr.volumes.list()] == [vol]
        assert [i.familiar_tags for i in mgr.store.images()] == [("busybox:latest",)]
    p = gantry(croot, "system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}")
    assert out(p).splitlines()[:3] == ["Images 1 1", "Containers 1 1", "Local Volumes 1 1"]
