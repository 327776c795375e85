"""gantry.containers keeps its records through the store's container-records API: a created
container is its rows plus the hold on its image's layers (one transaction), a failed create
leaves neither, remove drops both, and a root whose rows were written the older way (rows,
then a hold in a second step) still lists, starts and removes."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from gantry.containers import Containers, CreateOptions
from gantry.errors import Conflict
from gantry.store import Store
from test_containers_support import err, gantry, out

pytestmark = [pytest.mark.slow, pytest.mark.root]
pytest_plugins = ["test_containers_support"]  # the croot fixture


def _holders(root: Path) -> list[str]:
    conn = sqlite3.connect(root / "meta.db")
    try:
        rows = conn.execute(
            "SELECT DISTINCT owner FROM snapshot_refs WHERE owner LIKE 'container:%'"
        ).fetchall()
    finally:
        conn.close()
    return sorted(str(r[0]) for r in rows)


def test_create_and_remove_keep_rows_and_holds_together(croot: Path) -> None:
    with Containers(croot) as mgr:
        c = mgr.create(CreateOptions(image="busybox", name="one", command=["true"]))
        assert _holders(croot) == [f"container:{c.id}"]
        rec = mgr.store.container(c.id)
        assert rec is not None and rec.name == "one" and rec.state == "created"
        assert rec.chain_id == c.chain_id is not None
        assert mgr.store.check(verify_blobs=False) == []
        # a taken name: Docker's conflict, and nothing left of the attempt
        with pytest.raises(Conflict, match='name "/one" is already in use'):
            mgr.create(CreateOptions(image="busybox", name="one", command=["true"]))
        assert [r.id for r in mgr.store.containers()] == [c.id]
        assert sorted(p.name for p in (croot / "containers").iterdir()) == [c.id]
        assert _holders(croot) == [f"container:{c.id}"]
        mgr.remove(c.id)
        assert mgr.store.containers() == [] and _holders(croot) == []
        assert mgr.store.check(verify_blobs=False) == []


def test_random_names_do_not_collide_with_taken_ones(croot: Path) -> None:
    with Containers(croot) as mgr:
        made = [mgr.create(CreateOptions(image="busybox", command=["true"])) for _ in range(3)]
        assert len({c.name for c in made}) == 3
        for c in made:
            assert mgr.get(c.name).id == c.id
            mgr.remove(c.id)


def test_a_container_recorded_the_older_way_still_works(croot: Path) -> None:
    """Rows inserted and the hold taken in separate steps (as gantry did before the store's
    API), settings as JSON: ps, start, logs and rm behave as for any container."""
    with Store(croot) as store:
        image = store.resolve("busybox")
        chain = str(store.layers(image)[-1].chain_id)
        cid = "ab" * 32
        settings = {
            "Config": {"Image": "busybox", "Cmd": ["echo", "old"], "Labels": {}},
            "HostConfig": {"NetworkMode": "none", "LogConfig": {"Type": "json-file"}},
            "Path": "echo",
            "Args": ["old"],
            "Mounts": [],
            "LogPath": str(croot / "containers" / cid / f"{cid}-json.log"),
            "ImageID": str(image.id),
        }
        store.hold(f"container:{cid}", chain)
        conn = sqlite3.connect(croot / "meta.db", isolation_level=None)
        conn.execute(
            "INSERT INTO containers (id, name, image_id, image_ref, chain_id, state, created,"
            " labels, config) VALUES (?,?,?,?,?,?,?,?,?)",
            (cid, "old", str(image.id), "busybox", chain, "created", 1.0, "{}",
             json.dumps(settings)),
        )  # fmt: skip
        conn.execute("INSERT INTO container_status (id, restart_count) VALUES (?, 2)", (cid,))
        conn.close()
    for sub in ("upper", "work", "merged", "bundle"):
        (croot / "containers" / cid / sub).mkdir(parents=True)
    assert out(gantry(croot, "ps", "-a", "--format", "{{.Names}} {{.Status}}")) == "old Created\n"
    p = gantry(croot, "start", "-a", "old")
    assert p.returncode == 0, err(p)
    assert out(p) == "old\n"
    assert out(gantry(croot, "logs", "old")) == "old\n"
    assert out(gantry(croot, "rm", "old")) == "old\n"
    assert _holders(croot) == []
    with Store(croot) as store:
        assert store.containers() == [] and store.check(verify_blobs=False) == []


def test_rm_refuses_a_container_started_since_it_looked(croot: Path) -> None:
    """``rm`` (not forced) marks the container REMOVING only if it is still stopped, checked
    under the store's write lock: a start that lands between its look and its write wins."""
    from gantry.containers.supervisor import proc_start_time

    with Containers(croot) as mgr:
        c = mgr.create(CreateOptions(image="busybox", name="racy", command=["true"]))
        seen = mgr.get(c.id)  # what rm looked at: created
        me = os.getpid()  # a live "supervisor", so nothing reconciles the record away
        assert mgr.store.update_container(
            c.id, state="running", supervisor_pid=me, supervisor_start=proc_start_time(me) or 0
        )
        mgr.get = lambda ref: seen  # type: ignore[method-assign]  # rm's look came first
        with pytest.raises(Conflict, match='"/racy": container is running: stop the container'):
            mgr.remove(c.id)
        rec = mgr.store.container(c.id)
        assert rec is not None and rec.state == "running"
        assert _holders(croot) == [f"container:{c.id}"]
        del mgr.get  # type: ignore[method-assign]
        mgr.store.update_container(c.id, state="exited", supervisor_pid=0, supervisor_start=0)
        mgr.remove(c.id)
        assert mgr.store.containers() == [] and _holders(croot) == []
