"""The Store's container records: ``containers`` + ``container_status`` in one transaction.

Real SQLite and real snapshot holds; the migration cases start from a root that schema
version 3 wrote, with and without the ``container_status`` table gantry.containers used
to create itself.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.errors import Conflict, NotFound, UsageError
from gantry.store import ContainerRecord, Image, Store, schema
from test_store_support import layer, make_image

BASE = layer({"bin/sh": b"#!shell" * 100})
APP = layer({"app/main.py": b"print('hi')\n" * 10})
CID = "c" * 64
CID2 = "c" * 12 + "d" * 52


@pytest.fixture
def store(root: Path) -> Iterator[Store]:
    with Store(root) as s:
        yield s


def _top(store: Store, img: Image) -> str:
    return str(store.layers(img)[-1].chain_id)


def _add(store: Store, img: Image, cid: str = CID, name: str = "web") -> ContainerRecord:
    return store.add_container(
        cid,
        name=name,
        image_id=img.id,
        image_ref="app",
        chain_id=_top(store, img),
        labels={"a": "1"},
        settings={"Config": {"Cmd": ["sh"]}, "Path": "sh"},
    )


def test_add_holds_the_chain_in_the_same_transaction(store: Store) -> None:
    img = make_image(store, [BASE, APP], tags=["app"])
    rec = _add(store, img)
    assert rec == store.container(CID)
    assert (rec.name, rec.state, rec.image_id, rec.image_ref) == ("web", "created", img.id, "app")
    assert rec.labels == {"a": "1"} and rec.settings["Path"] == "sh"
    assert (rec.restart_count, rec.error, rec.health, rec.stop_requested) == (0, "", {}, False)
    assert [s.refcount for s in store.snapshots()] == [2, 2]  # the image and the container
    assert store.image(img.id).containers == 1
    # the image goes (-f), the container keeps its layers
    top = _top(store, img)
    store.remove("app", force=True)
    assert [s.refcount for s in store.snapshots()] == [1, 1]
    assert [p.joinpath("app", "main.py").exists() for p in store.lowerdirs(top)] == [True, False]
    assert store.remove_container(CID) is True
    assert store.snapshots() == [] and list(store.content.iter_digests()) == []
    assert store.container(CID) is None and store.remove_container(CID) is False


def test_failed_add_leaves_nothing(store: Store) -> None:
    img = make_image(store, [BASE], tags=["app"])
    _add(store, img)
    with pytest.raises(Conflict) as exc:
        _add(store, img, cid=CID2)
    assert str(exc.value) == (
        'Conflict. The container name "/web" is already in use by container '
        f'"{CID}". You have to remove (or rename) that container to be able to reuse that name.'
    )
    with pytest.raises(NotFound):
        store.add_container(
            CID2, name="other", image_id=img.id, image_ref="x", chain_id="sha256:" + "0" * 64
        )
    assert [c.id for c in store.containers()] == [CID]
    owners = {r[0] for r in store._conn.execute("SELECT owner FROM snapshot_refs")}
    assert owners == {f"image:{img.id}", f"container:{CID}"}
    status = store._conn.execute("SELECT id FROM container_status").fetchall()
    assert status == [(CID,)]


def test_lookup_as_docker(store: Store) -> None:
    img = make_image(store, [BASE], tags=["app"])
    _add(store, img)
    store.add_container(CID2, name="db", image_id=img.id, image_ref="app", created=time.time() + 1)
    assert store.find_container(CID).name == "web"
    assert store.find_container("web").id == CID
    assert store.find_container("/db").id == CID2
    assert store.find_container("ccccccccccccd").id == CID2
    with pytest.raises(NotFound, match=r"^Multiple IDs found with provided prefix: ccc$"):
        store.find_container("ccc")
    with pytest.raises(NotFound, match=r"^No such container: nope$"):
        store.find_container("nope")
    assert [c.name for c in store.containers()] == ["db", "web"]  # newest first


def test_update_both_tables_and_expect(store: Store) -> None:
    img = make_image(store, [BASE], tags=["app"])
    _add(store, img)
    assert store.update_container(
        CID,
        state="running",
        started=10.0,
        pid=42,
        supervisor_pid=7,
        supervisor_start=99,
        health={"Status": "starting"},
        settings={"Path": "true"},
    )
    rec = store.container(CID)
    assert rec is not None
    assert (rec.state, rec.started, rec.pid, rec.supervisor_pid, rec.supervisor_start) == (
        "running",
        10.0,
        42,
        7,
        99,
    )
    assert rec.health == {"Status": "starting"} and rec.settings == {"Path": "true"}
    # the state check and the change are one transaction
    assert not store.update_container(CID, expect=("created",), state="exited")
    assert store.update_container(CID, expect=("running",), state="exited", exit_code=3)
    rec = store.container(CID)
    assert rec is not None and (rec.state, rec.exit_code) == ("exited", 3)
    assert not store.update_container("f" * 64, state="exited")
    with pytest.raises(UsageError, match="unknown container fields: bogus"):
        store.update_container(CID, bogus=1)
    store.add_container(CID2, name="db", image_id=img.id, image_ref="app")
    with pytest.raises(Conflict, match='"/db" is already in use'):
        store.update_container(CID, name="db")
    assert store.update_container(CID, name="web2")
    assert store.find_container("web2").id == CID


def test_records_from_the_containers_room_read_back(store: Store, root: Path) -> None:
    """gantry.containers' own ContainerDB and the Store API see the same rows."""
    from gantry.containers.state import ContainerDB

    img = make_image(store, [BASE], tags=["app"])
    _add(store, img)
    db = ContainerDB(root)
    try:
        theirs = db.by_id(CID)
        assert theirs is not None and theirs.labels == {"a": "1"} and theirs.path == "sh"
        db.update(CID, state="exited", exit_code=1, restart_count=2, error="boom")
    finally:
        db.close()
    rec = store.container(CID)
    assert rec is not None
    assert (rec.state, rec.exit_code, rec.restart_count, rec.error) == ("exited", 1, 2, "boom")


def _v3(root: Path, *, with_status: bool) -> None:
    """Make ``root`` look as schema version 3 left it."""
    conn = sqlite3.connect(root / "meta.db", isolation_level=None)
    if not with_status:
        conn.execute("DROP TABLE container_status")
    conn.execute("PRAGMA user_version = 3")
    conn.close()


@pytest.mark.parametrize("with_status", [False, True])
def test_v3_root_gains_container_status(root: Path, with_status: bool) -> None:
    with Store(root) as s:
        img = make_image(s, [BASE], tags=["app"])
        _add(s, img)
        s.update_container(CID, restart_count=5)
    _v3(root, with_status=with_status)
    with Store(root) as s:
        assert s._conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        rec = s.container(CID)
        assert rec is not None and rec.name == "web"
        # made by gantry.containers before version 4: its rows stay; otherwise defaults
        assert rec.restart_count == (5 if with_status else 0)
        assert s.update_container(CID, stop_requested=True)
        rec = s.container(CID)
        assert rec is not None and rec.stop_requested
        assert s.check() == []


def test_check_finds_orphan_holds_and_unheld_layers(store: Store) -> None:
    img = make_image(store, [BASE, APP], tags=["app"])
    top = _top(store, img)
    _add(store, img)
    assert store.check(verify_blobs=False) == []
    # a create killed between its hold and its insert (the old two-step way)
    store.hold(f"container:{CID2}", top)
    problems = store.check(verify_blobs=False)
    assert [(p.kind, p.subject) for p in problems] == [("orphan-hold", CID2)]
    store.release(f"container:{CID2}")
    # a container whose hold went missing
    store.release(f"container:{CID}")
    problems = store.check(verify_blobs=False)
    assert [(p.kind, p.subject) for p in problems] == [("unheld-layers", top)]
    assert CID in problems[0].message


# create / update / rmi -f / remove containers in a loop until killed
LOOP = """
import sys
sys.path.insert(0, {tests!r})
from gantry.store import Store
from test_store_support import layer, make_image
s = Store({root!r})
i = 0
while True:
    lay = layer({{f"f{{i % 5}}": b"x" * 3000}})
    img = make_image(s, [lay], tags=[f"app:{{i % 3}}"], salt=str(i % 5))
    cid = f"{{i:064x}}"
    s.add_container(cid, name=f"c{{i}}", image_id=img.id, image_ref="app",
                    chain_id=s.layers(img)[-1].chain_id)
    s.update_container(cid, expect=("created",), state="exited", exit_code=0, restart_count=1)
    if i % 2:
        s.remove(f"app:{{i % 3}}", force=True)
    if i >= 2:
        s.remove_container(f"{{i - 2:064x}}")
    i += 1
    print(i, flush=True)
"""


@pytest.mark.slow
def test_sigkill_mid_container_changes_leaves_check_clean(shm_tmp: Path) -> None:
    root = shm_tmp / "root"
    code = LOOP.format(tests=str(Path(__file__).resolve().parent), root=str(root))
    rng = random.Random(7)
    for kills in range(1, 9):
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        child.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.2))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        with Store(root) as s:
            assert s.check(verify_blobs=False) == [], f"after kill {kills}"
            for rec in s.containers():
                # every container's layers are there to mount
                assert rec.chain_id is not None and s.lowerdirs(rec.chain_id)
            # start the next run with fresh names
            for rec in s.containers():
                s.remove_container(rec.id)
