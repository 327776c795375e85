from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gantry import digest
from gantry.content import ContentStore
from gantry.errors import BlobNotFound, DigestMismatch, GantryError, InvalidDigest, StoreError


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def cs(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "content")


def test_write_read_roundtrip(cs: ContentStore) -> None:
    d = cs.write(b"hello")
    assert d == sha(b"hello")
    assert cs.has(d) and cs.size(d) == 5
    assert cs.read(d) == b"hello"
    with cs.open(d) as f:
        assert f.read() == b"hello"
    assert cs.path(d) == cs.root / "blobs" / "sha256" / d.hex
    assert list(cs.iter_digests()) == [d]
    assert cs.verify(d)
    # nothing left behind in ingest/
    assert cs.ingests() == []
    # committed blobs are read-only
    assert cs.path(d).stat().st_mode & 0o222 == 0


def test_write_is_idempotent_and_refreshes_mtime(cs: ContentStore) -> None:
    d = cs.write(b"x")
    os.utime(cs.path(d), (1000, 1000))
    assert cs.write(b"x") == d
    assert cs.mtime(d) > time.time() - 60
    assert list(cs.iter_digests()) == [d]


def test_expected_digest_mismatch_stores_nothing(cs: ContentStore) -> None:
    with pytest.raises(DigestMismatch, match="digest mismatch"):
        cs.write(b"hello", expected=sha(b"other"))
    assert not cs.has(sha(b"hello"))
    assert list(cs.iter_digests()) == []
    assert cs.ingests() == []


def test_size_mismatch_both_ways(cs: ContentStore) -> None:
    data = b"abcdef"
    with pytest.raises(DigestMismatch, match="size mismatch"):
        cs.ingest(io.BytesIO(data), expected=sha(data), size=5)
    with pytest.raises(DigestMismatch, match="size mismatch"):
        cs.ingest(io.BytesIO(data), expected=sha(data), size=7)
    assert list(cs.iter_digests()) == [] and cs.ingests() == []
    assert cs.ingest(io.BytesIO(data), expected=sha(data), size=6) == (sha(data), 6)


def test_ingest_iterable_and_sha512(cs: ContentStore) -> None:
    chunks = [b"a" * 1000, b"b" * 3, b""]
    d, n = cs.ingest(iter(chunks))
    assert n == 1003 and d == sha(b"".join(chunks))
    data = b"sha512 blob"
    d512 = "sha512:" + hashlib.sha512(data).hexdigest()
    assert cs.write(data, expected=d512) == d512
    assert cs.path(d512).parent.name == "sha512"
    assert cs.read(d512) == data
    assert set(cs.iter_digests()) == {d, d512}


def test_never_trusts_digest_strings(cs: ContentStore) -> None:
    for bad in ["sha256:../../etc/passwd", "md5:" + "a" * 32, "sha256:" + "A" * 64, "x"]:
        with pytest.raises(InvalidDigest):
            cs.path(bad)
        with pytest.raises(InvalidDigest):
            cs.write(b"", expected=bad)
    # a stray file in blobs/ with a bad name is not listed
    (cs.blobs_dir / "sha256" / "junk").write_bytes(b"")
    assert list(cs.iter_digests()) == []


def test_missing_blob_errors(cs: ContentStore) -> None:
    d = sha(b"nope")
    assert not cs.has(d) and not cs.verify(d)
    for fn in (cs.size, cs.open, cs.read):
        with pytest.raises(BlobNotFound):
            fn(d)
    assert cs.delete(d) is False


def test_read_verifies_and_caps(cs: ContentStore) -> None:
    d = cs.write(b"0123456789")
    with pytest.raises(GantryError, match="over the limit"):
        cs.read(d, max_size=9)
    assert cs.read(d, max_size=10) == b"0123456789"
    # corrupt the blob on disk: read and verify notice
    p = cs.path(d)
    p.chmod(0o644)
    p.write_bytes(b"0123456780")
    assert not cs.verify(d)
    with pytest.raises(DigestMismatch):
        cs.read(d)


def test_writer_commits_and_aborts(cs: ContentStore) -> None:
    with cs.writer() as w:
        w.write(b"part1-")
        w.write(bytearray(b"part2"))
        assert w.size == 11
    assert w.digest == sha(b"part1-part2") and cs.has(w.digest)

    with pytest.raises(RuntimeError), cs.writer() as w2:
        w2.write(b"never stored")
        raise RuntimeError("producer failed")
    assert not cs.has(sha(b"never stored"))
    assert cs.ingests() == []
    with pytest.raises(GantryError):
        w2.write(b"more")


def test_delete(cs: ContentStore) -> None:
    d = cs.write(b"bye")
    assert cs.delete(d) is True
    assert not cs.has(d)


def test_large_blob_streams_with_flat_memory(shm_tmp: Path) -> None:
    """200 MiB through ingest in a child process: its peak RSS stays small."""
    code = f"""
import resource, sys
from gantry.content import ContentStore
cs = ContentStore({str(shm_tmp / "c")!r})
class Src:
    left = 200 << 20
    def read(self, n=-1):
        n = min(n, self.left)
        self.left -= n
        return b"z" * n
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
d, n = cs.ingest(Src())
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(d, n, after - before)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    want = hashlib.sha256(b"z" * (200 << 20)).hexdigest()
    assert out[0] == "sha256:" + want and int(out[1]) == 200 << 20
    assert int(out[2]) < 40_000  # KiB of growth: a few chunks, never the blob


def test_resumable_ingest_by_ref(cs: ContentStore) -> None:
    data = os.urandom(300_000)
    d = sha(data)
    # first attempt dies after 100 kB (the writer keeps its bytes)
    with pytest.raises(ConnectionError), cs.writer(d, size=len(data), ref="pull-1") as w:
        w.write(data[:100_000])
        raise ConnectionError("peer went away")
    assert not cs.has(d)
    assert cs.ingest_offset("pull-1") == 100_000
    # second attempt resumes from the offset (as an HTTP Range request would)
    with cs.writer(d, size=len(data), ref="pull-1") as w:
        assert w.offset == 100_000
        w.write(data[w.offset :])
    assert cs.read(d) == data
    assert cs.ingest_offset("pull-1") == 0 and cs.ingests() == []


def test_resume_with_seekable_source_and_abort(cs: ContentStore) -> None:
    data = b"y" * 50_000
    with pytest.raises(ValueError), cs.writer(ref="r") as w:
        w.write(data[:20_000])
        raise ValueError
    assert cs.ingest(io.BytesIO(data), sha(data), len(data), ref="r") == (sha(data), len(data))
    # a resumed ingest whose partial bytes are wrong fails and leaves nothing
    with pytest.raises(ValueError), cs.writer(ref="bad") as w:
        w.write(b"garbage!")
        raise ValueError
    with pytest.raises(DigestMismatch):
        cs.ingest(io.BytesIO(b"good bytes"), sha(b"good bytes"), ref="bad")
    assert cs.ingest_offset("bad") == 0
    with pytest.raises(ValueError), cs.writer(ref="gone") as w:
        w.write(b"x")
        raise ValueError
    assert cs.abort_ingest("gone") is True and cs.abort_ingest("gone") is False


def test_ref_is_exclusive_across_processes(cs: ContentStore) -> None:
    code = f"""
import sys, time
from gantry.content import ContentStore
cs = ContentStore({str(cs.root)!r})
w = cs.writer(ref="shared")
w.write(b"x")
print("held", flush=True)
sys.stdin.read()
"""
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(StoreError, match="in use"):
            cs.writer(ref="shared")
        # the holder is protected from ingest cleaning as well
        assert cs.clean_ingests(older_than=-1) == 0
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)
    # once the holder is gone the ref can be taken (and cleaned)
    with cs.writer(ref="shared") as w:
        assert w.offset == 1
        w.write(b"y")
    assert cs.read(w.digest) == b"xy"


def test_clean_ingests_respects_age(cs: ContentStore) -> None:
    with pytest.raises(ValueError), cs.writer(ref="old") as w:
        w.write(b"12345")
        raise ValueError
    assert cs.clean_ingests(older_than=3600) == 0
    assert cs.clean_ingests(older_than=-1) == 5
    assert cs.ingests() == []


def test_concurrent_writers_of_the_same_blob(tmp_path: Path) -> None:
    """Eight processes store the same 5 MB blob at once: all succeed, one blob results."""
    root = tmp_path / "content"
    ContentStore(root)
    code = f"""
from gantry.content import ContentStore
cs = ContentStore({str(root)!r})
data = bytes(range(256)) * 20000
for _ in range(5):
    print(cs.ingest(iter([data[i:i+65536] for i in range(0, len(data), 65536)]))[0])
"""
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    outs = [p.communicate(timeout=60)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    want = digest.of_bytes(bytes(range(256)) * 20000)
    assert all(o == [want] * 5 for o in outs)
    cs = ContentStore(root)
    assert list(cs.iter_digests()) == [want] and cs.verify(want)
    assert cs.ingests() == []
