"""Hostile archives given to `gantry load`: a decompression bomb in a layer and a layer whose
diff ID does not match the config are refused with one line on stderr and exit 1, leave no
image, no snapshot and nothing `system check` reports, and do not stop a good load after them.

The archives are written by hand (docker-archive: manifest.json + config + layers; and the OCI
layout form), so each case is exactly the hostile thing it names. The bomb limits come from the
environment (GANTRY_MAX_LAYER_SIZE, GANTRY_MAX_LAYER_RATIO) so the archives stay small.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zlib
from pathlib import Path

import pytest
import zstandard

from gantry.store import Store
from test_archive_support import entry, gantry, make_tar, small_rootfs

MiB = 1 << 20


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _config(diff_ids: list[str]) -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [
                {"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"}
                for i in range(len(diff_ids))
            ],
        }
    ).encode()


def _docker_archive(layers: list[tuple[bytes, str]], tag: str) -> bytes:
    """A docker-archive of ``layers`` (blob bytes, diff ID written in the config)."""
    cfg = _config([d for _, d in layers])
    files: dict[str, bytes] = {"blobs/sha256/" + _sha(cfg)[7:]: cfg}
    names = []
    for blob, _ in layers:
        name = "blobs/sha256/" + _sha(blob)[7:]
        files[name] = blob
        names.append(name)
    manifest = [{"Config": "blobs/sha256/" + _sha(cfg)[7:], "RepoTags": [tag], "Layers": names}]
    files["manifest.json"] = json.dumps(manifest).encode()
    return make_tar(entry(n, d) for n, d in files.items())


def _oci_archive(blob: bytes, diff_id: str, tag: str) -> bytes:
    """An OCI layout archive (no manifest.json) with one gzip layer."""
    cfg = _config([diff_id])
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _sha(cfg),
                "size": len(cfg),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _sha(blob),
                    "size": len(blob),
                }
            ],
        }
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": _sha(manifest),
                    "size": len(manifest),
                    "annotations": {"io.containerd.image.name": f"docker.io/library/{tag}"},
                }
            ],
        }
    ).encode()
    files = {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": index,
        "blobs/sha256/" + _sha(cfg)[7:]: cfg,
        "blobs/sha256/" + _sha(manifest)[7:]: manifest,
        "blobs/sha256/" + _sha(blob)[7:]: blob,
    }
    return make_tar(entry(n, d) for n, d in files.items())


def _zeros_tar_gz(size: int) -> tuple[bytes, str]:
    """gzip of a tar holding one file of ``size`` zero bytes, streamed (constant memory);
    returns (gzip bytes, diff ID of the tar)."""
    header = tarfile.TarInfo("zeros")
    header.size = size
    header.mtime = 1_700_000_000
    head = header.tobuf(format=tarfile.PAX_FORMAT)
    pad = (-size) % 512
    tail = bytes(pad + 1024)
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    h = hashlib.sha256()
    out = io.BytesIO()
    chunk = bytes(8 * MiB)
    for piece in (head,):
        h.update(piece)
        out.write(comp.compress(piece))
    left = size
    while left:
        n = min(left, len(chunk))
        h.update(chunk[:n])
        out.write(comp.compress(chunk[:n]))
        left -= n
    h.update(tail)
    out.write(comp.compress(tail))
    out.write(comp.flush())
    return out.getvalue(), "sha256:" + h.hexdigest()


def _assert_refused(
    root: Path, archive: bytes, message: str, env: dict[str, str], *, from_file: bool = False
) -> None:
    blobs_before = _blob_count(root)
    tmp = root.parent / "tmpdir"  # TMPDIR of the load: nothing may be left there either
    tmp.mkdir(exist_ok=True)
    env = {**env, "TMPDIR": str(tmp)}
    if from_file:
        path = root.parent / "hostile.tar"
        path.write_bytes(archive)
        r = gantry(root, "load", "-i", str(path), env=env)
    else:
        r = gantry(root, "load", input=archive, env=env)
    err = r.stderr.decode()
    assert r.returncode == 1, (r.stdout, err)
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert b"Loaded image" not in r.stdout
    images = gantry(root, "images", "-a", "-q")
    assert images.returncode == 0 and images.stdout == b"", images.stdout
    check = gantry(root, "system", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.decode().strip() == "No problems found"
    with Store(root) as s:
        assert s.images() == [] and s.check() == []
    assert _snapshots(root) == []
    assert _temp_files(root) == []
    # the config and manifest may be kept as content (gc takes them), but never a layer
    # that was refused: at most as many new blobs as the archive had non-layer blobs
    assert _blob_count(root) - blobs_before <= 2
    assert list(tmp.iterdir()) == []


def _blob_count(root: Path) -> int:
    d = root / "content" / "blobs" / "sha256"
    return len(list(d.iterdir())) if d.is_dir() else 0


def _snapshots(root: Path) -> list[str]:
    d = root / "snapshots"
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if not p.name.startswith("."))


def _temp_files(root: Path) -> list[str]:
    """Files that look like an unfinished write (ingest/temp) anywhere in the store."""
    found = []
    for p in root.rglob("*"):
        n = p.name
        unfinished = n.endswith((".tmp", ".partial")) or n.startswith((".tmp", "tmp"))
        if (unfinished or "ingest" in n) and p.is_file():
            found.append(str(p.relative_to(root)))
    return found


def test_size_bomb_in_docker_archive_is_refused(root: Path) -> None:
    blob, diff = _zeros_tar_gz(64 * MiB)
    assert len(blob) < MiB  # 64 MiB of zeros packs into well under 1 MiB
    archive = _docker_archive(
        [(gzip.compress(small_rootfs()), _sha(small_rootfs())), (blob, diff)], "bomb:1"
    )
    _assert_refused(
        root,
        archive,
        f"layer is larger than the {4 * MiB} bytes allowed uncompressed "
        "(possible decompression bomb; raise GANTRY_MAX_LAYER_SIZE)",
        {"GANTRY_MAX_LAYER_SIZE": str(4 * MiB)},
    )
    # the same archive loads once the limit allows it: the refusal came from the limit
    ok = gantry(root, "load", input=archive)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.decode() == "Loaded image: bomb:1\n"


def test_size_bomb_in_oci_layout_is_refused(root: Path) -> None:
    blob, diff = _zeros_tar_gz(32 * MiB)
    _assert_refused(
        root,
        _oci_archive(blob, diff, "bomb:oci"),
        "possible decompression bomb; raise GANTRY_MAX_LAYER_SIZE",
        {"GANTRY_MAX_LAYER_SIZE": str(2 * MiB)},
    )


def test_bomb_refused_from_a_zstd_compressed_archive_file(root: Path) -> None:
    blob, diff = _zeros_tar_gz(32 * MiB)
    archive = zstandard.ZstdCompressor(level=1).compress(_docker_archive([(blob, diff)], "bz:1"))
    _assert_refused(
        root,
        archive,
        "possible decompression bomb",
        {"GANTRY_MAX_LAYER_SIZE": str(MiB)},
        from_file=True,
    )


def test_bomb_refused_from_a_gzip_compressed_archive_on_stdin(root: Path) -> None:
    blob, diff = _zeros_tar_gz(32 * MiB)
    archive = gzip.compress(_docker_archive([(blob, diff)], "bomb:gz"), 1)
    _assert_refused(
        root,
        archive,
        "possible decompression bomb",
        {"GANTRY_MAX_LAYER_SIZE": str(MiB)},
    )


@pytest.mark.slow
def test_ratio_bomb_is_refused(root: Path) -> None:
    """The ratio guard only looks past its first GiB (``Limits.ratio_floor``, not settable
    from the environment), so this bomb inflates to just over 1 GiB; zeros deflate at
    ~1000:1, so a ratio limit of 50 trips as soon as the floor is passed."""
    blob, diff = _zeros_tar_gz((1 << 30) + 64 * MiB)
    assert len(blob) < 8 * MiB
    _assert_refused(
        root,
        _docker_archive([(blob, diff)], "bomb:ratio"),
        "layer inflates more than 50:1 (possible decompression bomb; "
        "set GANTRY_MAX_LAYER_RATIO=0 to allow it)",
        {"GANTRY_MAX_LAYER_RATIO": "50"},
    )


def test_layer_whose_diff_id_does_not_match_the_config_is_refused(root: Path) -> None:
    good = small_rootfs()
    other = make_tar([entry("etc/", type=tarfile.DIRTYPE, mode=0o755), entry("etc/x", b"x")])
    # the config names the diff ID of another tar than the one shipped
    archive = _docker_archive([(gzip.compress(good), _sha(other))], "liar:1")
    _assert_refused(root, archive, f"invalid diffID for layer 0: expected '{_sha(other)}'", {})


def test_second_layer_diff_id_mismatch_leaves_no_partial_image(root: Path) -> None:
    first = small_rootfs()
    second = make_tar([entry("extra", b"payload")])
    archive = _docker_archive(
        [(first, _sha(first)), (gzip.compress(second), "sha256:" + "ab" * 32)], "liar:2"
    )
    _assert_refused(root, archive, "invalid diffID for layer 1", {})


def test_uncompressed_layer_diff_id_mismatch_in_oci_layout_is_refused(root: Path) -> None:
    good = small_rootfs()
    blob = gzip.compress(good)
    _assert_refused(root, _oci_archive(blob, "sha256:" + "cd" * 32, "liar:oci"), "diffID", {})


def test_refusals_do_not_poison_the_store_for_a_good_load(root: Path) -> None:
    blob, diff = _zeros_tar_gz(16 * MiB)
    bomb = _docker_archive([(blob, diff)], "bomb:again")
    _assert_refused(root, bomb, "decompression bomb", {"GANTRY_MAX_LAYER_SIZE": str(MiB)})
    rootfs = small_rootfs()
    good = _docker_archive([(gzip.compress(rootfs), _sha(rootfs))], "good:1")
    r = gantry(root, "load", input=good)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Loaded image: good:1\n"
    with Store(root) as s:
        assert len(s.images()) == 1 and s.check() == []
