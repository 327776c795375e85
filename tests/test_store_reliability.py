"""Killed writers, concurrent processes, and listing speed on one root."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gantry.store import Store
from test_store_support import layer, make_image

TESTS = Path(__file__).resolve().parent

# An import-like loop: new layer blobs, config, manifest, add_image with tags,
# retag, remove, prune. Runs until killed (or for ITER rounds).
WRITER = """
import os, sys
sys.path.insert(0, {tests!r})
from gantry.store import Store
from test_store_support import layer, make_image
s = Store({root!r})
me = {me!r}
i = 0
while i < {rounds}:
    lay = layer({{f"f{{me}}-{{i}}": os.urandom(2000), "shared": b"s" * 3000}})
    img = make_image(s, [lay], tags=[f"w{{me}}:{{i % 3}}", f"w{{me}}:latest"], salt=f"{{me}}-{{i}}")
    s.tag(img, f"other/w{{me}}:{{i % 2}}")
    if i % 4 == 3:
        for ev in s.remove(f"w{{me}}:latest", force=True):
            pass
    if i % 7 == 6:
        s.prune()
    i += 1
    print(i, flush=True)
"""


def _writer(root: Path, me: int, rounds: int = 10**9) -> list[str]:
    code = WRITER.format(tests=str(TESTS), root=str(root), me=me, rounds=rounds)
    return [sys.executable, "-c", code]


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_check_clean(shm_tmp: Path) -> None:
    root = shm_tmp / "root"
    rng = random.Random(1234)
    for kills in range(1, 13):
        child = subprocess.Popen(_writer(root, 0), stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        # let it get going (the first round pays the imports), then kill at a random point
        child.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        with Store(root) as s:
            assert s.check() == [], f"after kill {kills}"
            # every tag resolves to a complete image
            for img in s.images():
                s.manifest(img)
                s.config(img)
    with Store(root) as s:
        s.gc(grace=-1)
        assert s.check() == []
        # after GC, nothing but live blobs remain
        live = {row[0] for row in s._conn.execute("SELECT DISTINCT digest FROM blob_refs")}
        assert set(s.content.iter_digests()) == live


@pytest.mark.slow
def test_concurrent_processes_on_one_root(shm_tmp: Path) -> None:
    root = shm_tmp / "root"
    Store(root).close()
    procs = [
        subprocess.Popen(_writer(root, me, rounds=15), stdout=subprocess.PIPE, text=True)
        for me in range(4)
    ]
    # meanwhile this process tags, lists and removes too
    with Store(root) as s:
        base = make_image(s, [layer({"shared": b"s" * 3000})], tags=["mine"])
        for n in range(20):
            s.tag(base, f"mine:{n}")
            s.images()
            if n % 5 == 4:
                s.remove(f"mine:{n - 1}")
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    with Store(root) as s:
        assert s.check() == []
        tags = {t for t, _ in s.tags()}
        for me in range(4):
            # the last round (i=14) kept its tags; earlier ones moved or were removed
            assert f"docker.io/library/w{me}:2" in tags
            assert f"docker.io/other/w{me}:0" in tags
        assert s.resolve("mine:19").id == base.id


@pytest.mark.slow
def test_listing_1000_images_is_fast(shm_tmp: Path) -> None:
    root = shm_tmp / "root"
    lay = layer({"f": b"x" * 100})
    with Store(root) as s:
        for i in range(1000):
            make_image(s, [lay], tags=[f"repo{i % 50}:t{i}"], salt=str(i))
    code = (
        "import sys; from gantry.store import Store; "
        f"imgs = Store({str(root)!r}).images(); print(len(imgs), sum(len(i.repo_tags) for i in imgs))"
    )
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        best = min(best, time.perf_counter() - t0)
        assert out.stdout.split() == ["1000", "1000"]
    assert best < 0.3, f"listing 1,000 images took {best:.3f}s including process start"


def test_check_reports_broken_things(root: Path) -> None:
    with Store(root) as s:
        a = make_image(s, [layer({"a": b"1" * 10})], tags=["a"])
        b = make_image(s, [layer({"b": b"2" * 10})], tags=["b"])
        assert s.check() == []
        # corrupt one blob, delete another, point a tag at nothing
        p = s.content.path(s.layers(a)[0].digest)
        p.chmod(0o644)
        with p.open("r+b") as f:
            f.write(b"garbage")
        os.unlink(s.content.path(b.id))
        s._conn.execute(
            "INSERT INTO tags (name, image_id) VALUES (?, ?)",
            ("docker.io/library/ghost:latest", "sha256:" + "f" * 64),
        )
        kinds = sorted((p.kind, p.subject) for p in s.check())
        assert ("corrupt-blob", s.layers(a)[0].digest) in kinds
        assert ("missing-blob", b.id) in kinds
        assert ("dangling-tag", "docker.io/library/ghost:latest") in kinds
        assert all(str(p) for p in s.check())
        # without re-hashing, the corrupt blob goes unnoticed but the rest is found
        assert "corrupt-blob" not in {p.kind for p in s.check(verify_blobs=False)}


def test_df(root: Path) -> None:
    shared = layer({"shared": b"s" * 1000})
    with Store(root) as s:
        a = make_image(s, [shared, layer({"a": b"a" * 200})], tags=["a"])
        b = make_image(s, [shared, layer({"b": b"b" * 300})], tags=["b"])
        s._conn.execute(
            "INSERT INTO containers (id, name, image_id, image_ref, state, created)"
            " VALUES (?, 'c', ?, 'a', 'running', 0)",
            ("c" * 64, a.id),
        )
        df = s.df()
        assert df.total == 2 and df.active == 1
        assert df.size == 1500
        assert df.reclaimable == 300  # b's own layer; the shared one is in use by a
        usage = {u.id: u for u in df.images}
        assert usage[a.id].size == 1200 and usage[a.id].shared_size == 1000
        assert usage[a.id].unique_size == 200 and usage[a.id].containers == 1
        assert usage[b.id].unique_size == 300
        assert df.blobs_size == sum(s.content.size(d) for d in s.content.iter_digests())
