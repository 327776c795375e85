"""rmi, image prune and system df with real containers (issue 7 item 5).

Containers are made through ``gantry.containers`` (``create`` records them and holds the
image's snapshot chain; ``run -d`` starts one under runc), never by writing rows. The
expected wording is moby's ``daemon/images/image_delete.go``:

- a name whose image a container uses, without ``-f`` and with no other reference:
  ``conflict: unable to remove repository reference "x" (must force) - container <id12> is
  using its referenced image <id12>``
- an ID, a stopped (or created) container: ``conflict: unable to delete <id12> (must be
  forced) - image is being used by stopped container <id12>``; ``-f`` deletes the image
  (the container keeps its layers)
- an ID, a running container: ``... (cannot be forced) - image is being used by running
  container <id12>``, with or without ``-f``
- ``-f`` on a name whose image a running container uses: only the name goes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.containers import Containers, CreateOptions
from gantry.errors import Conflict
from gantry.store import Deleted, Store, Untagged
from test_containers_support import add_image, err, gantry, out, wait_for

pytest_plugins = ["test_containers_support"]  # the croot fixture


@pytest.fixture
def mgr(croot: Path) -> Iterator[Containers]:
    with Containers(croot) as m:
        yield m


def _repo_conflict(ref: str, cid: str, image_id: str) -> str:
    return (
        f'conflict: unable to remove repository reference "{ref}" (must force) - '
        f"container {cid[:12]} is using its referenced image {image_id[7:19]}"
    )


def test_created_container_blocks_rmi_until_forced(croot: Path, mgr: Containers) -> None:
    store: Store = mgr.store
    img = store.resolve("busybox")
    c = mgr.create(CreateOptions(image="busybox", command=["true"], network="none"))
    assert c.state == "created"
    with pytest.raises(Conflict) as exc:
        store.remove("busybox")
    assert str(exc.value) == _repo_conflict("busybox", c.id, img.id)
    # the same through the name the user typed, and the full name
    with pytest.raises(Conflict) as exc:
        store.remove("docker.io/library/busybox:latest")
    assert str(exc.value) == _repo_conflict("docker.io/library/busybox:latest", c.id, img.id)
    for spec in (img.id, img.id.hex, img.id.hex[:12]):
        with pytest.raises(Conflict) as exc:
            store.remove(spec)
        assert str(exc.value) == (
            f"conflict: unable to delete {img.id.hex[:12]} (must be forced) - "
            f"image is being used by stopped container {c.id[:12]}"
        )
    assert store.image(img.id).repo_tags == ("docker.io/library/busybox:latest",)
    # a second tag in another repository: the name goes (no container typed it as the
    # only reference), the image stays
    store.tag(img, "other:1")
    assert store.remove("busybox") == [Untagged("busybox:latest")]
    with pytest.raises(Conflict) as exc:
        store.remove("other:1")  # now the only reference again
    assert str(exc.value) == _repo_conflict("other:1", c.id, img.id)


def test_force_deletes_image_of_stopped_container_keeping_its_layers(
    croot: Path, mgr: Containers
) -> None:
    store: Store = mgr.store
    img = store.resolve("busybox")
    c = mgr.create(CreateOptions(image="busybox", command=["true"], network="none"))
    assert c.chain_id is not None
    # docker rmi -f busybox: the tag, then the image (a stopped container is a soft
    # conflict); no layer is deleted, the container still holds them
    assert store.remove("busybox", force=True) == [Untagged("busybox:latest"), Deleted(img.id)]
    assert store.images() == []
    snaps = store.snapshots()
    assert [s.chain_id for s in snaps] == [c.chain_id] and snaps[0].refcount == 1
    assert store.lowerdirs(c.chain_id)[0].joinpath("bin", "busybox").exists()
    assert store.check() == []
    # the container goes; so do the layers nobody else holds
    mgr.remove(c.id)
    assert store.snapshots() == []
    assert list(store.content.iter_digests()) == []


def test_force_by_id_deletes_image_of_created_container(croot: Path, mgr: Containers) -> None:
    store: Store = mgr.store
    img = store.resolve("busybox")
    c = mgr.create(CreateOptions(image="busybox", command=["true"], network="none"))
    assert store.remove(img.id.hex[:12], force=True) == [
        Untagged("busybox:latest"),
        Deleted(img.id),
    ]
    assert mgr.get(c.id).image_id == img.id  # the container still names the image it ran
    mgr.remove(c.id)


def test_prune_all_keeps_images_containers_use(croot: Path, mgr: Containers) -> None:
    store: Store = mgr.store
    used = store.resolve("busybox")
    unused = add_image(store, "spare:1", labels={"x": "y"})
    c = mgr.create(CreateOptions(image="busybox", command=["true"], network="none"))
    report = store.prune(all=True)
    assert report.deleted == (Untagged("spare:1"), Deleted(unused.id))
    assert [i.id for i in store.images()] == [used.id]
    assert store.image(used.id).repo_tags == ("docker.io/library/busybox:latest",)
    # dangling but used (the tag moved to a newer build): image prune keeps it too
    newer = add_image(store, "busybox:latest", labels={"v": "2"})
    assert store.image(used.id).dangling
    store.remove(newer.id)
    assert store.prune().deleted == ()
    assert store.prune(all=True).deleted == ()
    # once the container is gone, the image is an ordinary dangling one
    mgr.remove(c.id)
    assert store.prune().deleted[0] == Deleted(used.id)
    assert store.images() == []


def test_df_counts_containers_and_their_images(croot: Path, mgr: Containers) -> None:
    store: Store = mgr.store
    add_image(store, "spare:1", labels={"x": "y"})
    c = mgr.create(CreateOptions(image="busybox", command=["true"], network="none"))
    (mgr.container_dir(c.id) / "upper" / "data").write_bytes(b"z" * 3000)
    usage = store.df()
    assert (usage.total, usage.active) == (2, 1)
    assert usage.containers.total == 1 and usage.containers.active == 0
    assert usage.containers.size == 3000 and usage.containers.reclaimable == 3000
    assert [u.id for u in usage.containers.containers] == [c.id]
    assert {u.containers for u in usage.images} == {0, 1}
    # the used image's layers are not reclaimable; the spare image shares the same layer
    assert usage.reclaimable == 0
    p = gantry(croot, "system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}")
    assert out(p).splitlines() == [
        "Images 2 1",
        "Containers 1 0",
        "Local Volumes 0 0",
        "Build Cache 0 0",
    ], err(p)


@pytest.mark.slow
def test_running_container_conflicts(croot: Path) -> None:
    p = gantry(croot, "run", "-d", "--network", "none", "busybox", "sleep", "300", check=True)
    cid = out(p).strip()
    with Store(croot) as store:
        img = store.resolve("busybox")
        id12 = img.id.hex[:12]
        running = (
            f"conflict: unable to delete {id12} (cannot be forced) - "
            f"image is being used by running container {cid[:12]}"
        )
        with pytest.raises(Conflict) as exc:
            store.remove("busybox")
        assert str(exc.value) == _repo_conflict("busybox", cid, img.id)
        for force in (False, True):
            with pytest.raises(Conflict) as exc:
                store.remove(id12, force=force)
            assert str(exc.value) == running
        assert store.df().containers.active == 1
        assert store.prune(all=True).deleted == ()
    # the CLI: Docker's messages, exit status 1
    p = gantry(croot, "rmi", "busybox")
    assert p.returncode == 1
    assert _repo_conflict("busybox", cid, img.id) in err(p)
    p = gantry(croot, "rmi", "-f", id12)
    assert p.returncode == 1 and running in err(p)
    # -f on the name: the tag goes, the image stays (a running container uses it)
    p = gantry(croot, "rmi", "-f", "busybox", check=True)
    assert out(p) == "Untagged: busybox:latest\n"
    with Store(croot) as store:
        assert store.image(img.id).dangling
        assert store.prune().deleted == ()
    gantry(croot, "stop", "-t", "0", cid, check=True)
    wait_for(lambda: "Exited" in out(gantry(croot, "ps", "-a", "--format", "{{.Status}}")))
    with Store(croot) as store:
        with pytest.raises(Conflict) as exc:
            store.remove(id12)
        assert str(exc.value) == (
            f"conflict: unable to delete {id12} (must be forced) - "
            f"image is being used by stopped container {cid[:12]}"
        )
        assert store.remove(id12, force=True) == [Deleted(img.id)]
