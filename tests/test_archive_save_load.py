"""gantry save / load: the archive's shape, round trips, formats, and refusals."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import tarfile
from pathlib import Path

import pytest
import zstandard

from gantry.archive import import_image, load
from gantry.errors import DigestMismatch, InvalidArchive, InvalidManifest, UnsafeArchive
from gantry.store import Store
from test_archive_support import entry, gantry, make_tar, small_rootfs, tree_snapshot

CONFORMANCE_LAYOUTS = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "conformance" / "oci-layouts"
)


def _populate(root: Path) -> tuple[str, str]:
    """busybox:latest + busybox:1 (one image), other:2 (another); their IDs."""
    with Store(root) as s:
        a = import_image(s, io.BytesIO(small_rootfs()), "busybox:latest", changes=['CMD ["sh"]'])
        s.tag(a, "busybox:1")
        b = import_image(s, io.BytesIO(gzip.compress(small_rootfs())), "other:2", message="two")
        return a.id, b.id


def _members(archive: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as t:
        for m in t:
            f = t.extractfile(m)
            out[m.name + ("/" if m.isdir() else "")] = f.read() if f else b""
    return out


def _archive(files: dict[str, bytes]) -> bytes:
    return make_tar(
        entry(n, b"", type=tarfile.DIRTYPE) if n.endswith("/") else entry(n, d)
        for n, d in files.items()
    )


def _save(root: Path, *names: str) -> bytes:
    r = gantry(root, "save", *names)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_archive_shape_is_dockers(root: Path) -> None:
    a, _ = _populate(root)
    files = _members(_save(root, "busybox"))
    names = list(files)
    assert names[:2] == ["blobs/", "blobs/sha256/"]
    assert names[-4:] == ["index.json", "manifest.json", "oci-layout", "repositories"]
    for n, data in files.items():
        if n.startswith("blobs/sha256/") and not n.endswith("/"):
            assert hashlib.sha256(data).hexdigest() == n.rsplit("/", 1)[1]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    refs = sorted(
        (
            d["annotations"]["io.containerd.image.name"],
            d["annotations"]["org.opencontainers.image.ref.name"],
        )
        for d in index["manifests"]
    )
    assert refs == [
        ("docker.io/library/busybox:1", "1"),
        ("docker.io/library/busybox:latest", "latest"),
    ]
    (item,) = json.loads(files["manifest.json"])
    assert item["Config"] == "blobs/sha256/" + a.split(":")[1]
    assert sorted(item["RepoTags"]) == ["busybox:1", "busybox:latest"]
    with Store(root) as s:
        (layer,) = s.layers(a)
        manifest_digest = s.resolve(a).manifest_digest
    # layers are the stored (gzip) blobs, and the manifest is the image's own
    assert item["Layers"] == ["blobs/sha256/" + layer.digest.hex]
    assert {d["digest"] for d in index["manifests"]} == {manifest_digest}
    assert json.loads(files["repositories"]) == {
        "busybox": {"1": layer.digest.hex, "latest": layer.digest.hex}
    }


def test_round_trip_keeps_ids_digests_and_tags(root: Path, tmp_path: Path) -> None:
    a, b = _populate(root)
    out = tmp_path / "all.tar"
    r = gantry(root, "save", "-o", str(out), "busybox", "other:2")
    assert r.returncode == 0 and r.stdout == b""
    other = tmp_path / "other-root"
    r = gantry(other, "load", "-i", str(out))
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.decode().splitlines()) == [
        "Loaded image: busybox:1",
        "Loaded image: busybox:latest",
        "Loaded image: other:2",
    ]
    with Store(root) as s1, Store(other) as s2:
        for ref in ("busybox:latest", "busybox:1", "other:2"):
            i1, i2 = s1.resolve(ref), s2.resolve(ref)
            assert (i1.id, i1.manifest_digest, i1.size) == (i2.id, i2.manifest_digest, i2.size)
        assert {i.id for i in s2.images()} == {a, b}
        assert s2.check() == []


def test_save_is_deterministic(root: Path) -> None:
    _populate(root)
    assert _save(root, "busybox", "other:2") == _save(root, "busybox", "other:2")


def test_save_by_id_loads_untagged(root: Path, tmp_path: Path) -> None:
    a, _ = _populate(root)
    data = _save(root, a[7:19])
    files = _members(data)
    (entry_,) = json.loads(files["index.json"])["manifests"]
    assert "annotations" not in entry_
    assert json.loads(files["manifest.json"])[0]["RepoTags"] is None
    assert "repositories" not in files
    r = gantry(tmp_path / "r2", "load", input=data)
    assert r.stdout.decode() == f"Loaded image ID: {a}\n"


@pytest.mark.parametrize(
    ("annotations", "printed"),
    [
        # a bare tag names no repository: untagged, as containerd (docker's image store) reads it
        ({"org.opencontainers.image.ref.name": "latest"}, "Loaded image ID: {id}"),
        (
            {"org.opencontainers.image.ref.name": "example.com/app:v2"},
            "Loaded image: example.com/app:v2",
        ),
        ({"org.opencontainers.image.ref.name": "app"}, "Loaded image ID: {id}"),
        (
            {
                "io.containerd.image.name": "docker.io/library/app:3",
                "org.opencontainers.image.ref.name": "3",
            },
            "Loaded image: app:3",
        ),
        ({"io.containerd.image.name": "Bad/Name:1"}, "Loaded image ID: {id}"),
    ],
)
def test_oci_layout_names(
    root: Path, tmp_path: Path, annotations: dict[str, str], printed: str
) -> None:
    a, _ = _populate(tmp_path / "src")
    files = _members(_save(tmp_path / "src", "busybox:latest"))
    del files["manifest.json"], files["repositories"]  # an OCI layout alone
    index = json.loads(files["index.json"])
    index["manifests"][0]["annotations"] = annotations
    files["index.json"] = json.dumps(index).encode()
    r = gantry(root, "load", input=_archive(files))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == printed.format(id=a) + "\n"


def test_save_errors(root: Path, tmp_path: Path) -> None:
    _populate(root)
    out = tmp_path / "x.tar"
    r = gantry(root, "save", "-o", str(out), "busybox", "missing:1")
    assert r.returncode == 1 and r.stderr.decode() == "Error: No such image: missing:1\n"
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".x.tar")] == []
    r = gantry(root, "save")
    assert r.returncode == 1 and b'"gantry save" requires at least 1 argument.' in r.stderr


@pytest.mark.parametrize("codec", ["gzip", "zstd", "xz"])
def test_load_compressed_archives(root: Path, tmp_path: Path, codec: str) -> None:
    a, _ = _populate(root)
    data = _save(root, "busybox:latest")
    packed = {
        "gzip": gzip.compress,
        "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
        "xz": lzma.compress,
    }[codec](data)
    r = gantry(tmp_path / "r2", "load", "-q", input=packed)
    assert r.returncode == 0 and r.stdout == b""
    with Store(tmp_path / "r2") as s:
        assert s.resolve("busybox").id == a


def test_load_docker_archive_without_index(root: Path, tmp_path: Path) -> None:
    """Old docker save / podman: manifest.json only, layers as plain tars by other names."""
    a, _ = _populate(root)
    with Store(root) as s:
        config = s.config_bytes(a)
    layer = small_rootfs()
    files = {
        "abc/layer.tar": layer,
        "abc/VERSION": b"1.0",
        "def/layer.tar": b"",  # replaced by a symlink below
        f"{a[7:]}.json": config,
        "manifest.json": json.dumps(
            [
                {
                    "Config": f"{a[7:]}.json",
                    "RepoTags": ["legacy/app:v1"],
                    "Layers": ["def/layer.tar"],
                }
            ]
        ).encode(),
    }
    entries = [
        entry(n, d)
        if n != "def/layer.tar"
        else entry(n, type=tarfile.SYMTYPE, linkname="../abc/layer.tar")
        for n, d in files.items()
    ]
    r = gantry(tmp_path / "r2", "load", input=make_tar(entries))
    assert r.stdout.decode() == "Loaded image: legacy/app:v1\n", r.stderr
    with Store(tmp_path / "r2") as s:
        img = s.resolve("legacy/app:v1")
        assert img.id == a
        assert img.media_type == "application/vnd.docker.distribution.manifest.v2+json"
        (lay,) = s.layers(img)
        assert lay.digest == "sha256:" + hashlib.sha256(layer).hexdigest()
        assert lay.media_type == "application/vnd.docker.image.rootfs.diff.tar"
        assert s.check() == []


def test_load_oci_layout_directories(root: Path) -> None:
    with Store(root) as s:
        (one,) = load(s, CONFORMANCE_LAYOUTS / "ocilayout2", platform="linux/amd64")
        assert one.image.architecture == "amd64" and one.tags == ()
        (two,) = load(s, CONFORMANCE_LAYOUTS / "ocilayout2", platform="linux/arm64")
        assert two.image.architecture == "arm64"
        with pytest.raises(InvalidArchive, match="no image for platform linux/s390x"):
            load(s, CONFORMANCE_LAYOUTS / "ocilayout2", platform="linux/s390x")
        assert s.check() == []


# ------------------------------------------------------------------- refusals


def _refused(root: Path, data: bytes, message: str, shm: Path | None = None) -> None:
    before = tree_snapshot(shm) if shm else None
    r = gantry(root, "load", input=data)
    err = r.stderr.decode()
    assert r.returncode == 1, r.stdout
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert message in err, err
    with Store(root) as s:
        assert s.images() == [] and s.check() == []
    if shm is not None:
        assert tree_snapshot(shm) == before


def _saved(tmp_path: Path) -> tuple[dict[str, bytes], str]:
    src = tmp_path / "src-root"
    a, _ = _populate(src)
    return _members(_save(src, "busybox:latest")), a


def test_refuses_manifest_whose_digest_does_not_match(root: Path, tmp_path: Path) -> None:
    files, _ = _saved(tmp_path)
    digest = json.loads(files["index.json"])["manifests"][0]["digest"]
    path = "blobs/sha256/" + digest[7:]
    files[path] = files[path][:-1] + b" "  # same size, other bytes
    _refused(root, _archive(files), f"manifest {digest}: content does not match its digest")


def test_refuses_layer_whose_digest_does_not_match(root: Path, tmp_path: Path) -> None:
    files, _ = _saved(tmp_path)
    (item,) = json.loads(files["manifest.json"])
    layer_path = item["Layers"][0]
    other = gzip.compress(small_rootfs() + b"\0" * 1024)
    files[layer_path] = other
    _refused(root, _archive(files), "mismatch")


def test_refuses_diff_id_mismatch(root: Path, tmp_path: Path) -> None:
    files, _ = _saved(tmp_path)
    (item,) = json.loads(files["manifest.json"])
    config = json.loads(files[item["Config"]])
    config["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]
    raw = json.dumps(config).encode()
    name = "blobs/sha256/" + hashlib.sha256(raw).hexdigest()
    docker_only = {
        name: raw,
        item["Layers"][0]: files[item["Layers"][0]],
        "manifest.json": json.dumps([{**item, "Config": name}]).encode(),
    }
    _refused(root, _archive(docker_only), "invalid diffID for layer 0: expected 'sha256:000")


def test_refuses_missing_layer(root: Path, tmp_path: Path) -> None:
    files, _ = _saved(tmp_path)
    (item,) = json.loads(files["manifest.json"])
    del files[item["Layers"][0]]
    _refused(root, _archive(files), "is missing from the archive")


def test_refuses_layer_with_escaping_entries(root: Path, tmp_path: Path, shm_tmp: Path) -> None:
    _files, a = _saved(tmp_path)
    evil = make_tar(
        [entry("link", type=tarfile.SYMTYPE, linkname="/"), entry("link/tmp/pwned", b"x")]
    )
    diff = "sha256:" + hashlib.sha256(evil).hexdigest()
    with Store(tmp_path / "src-root") as s:
        config = json.loads(s.config_bytes(a))
    config["rootfs"]["diff_ids"] = [diff]
    raw = json.dumps(config).encode()
    cname = "blobs/sha256/" + hashlib.sha256(raw).hexdigest()
    lname = "blobs/sha256/" + diff[7:]
    archive = _archive(
        {
            cname: raw,
            lname: evil,
            "manifest.json": json.dumps(
                [{"Config": cname, "RepoTags": ["evil:1"], "Layers": [lname]}]
            ).encode(),
        }
    )
    _refused(
        root,
        archive,
        "refusing layer entry 'link/tmp/pwned': its parent 'link' is a symlink",
        shm_tmp,
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../outside", "refusing archive entry '../outside': path leaves the archive"),
        ("/abs/file", "refusing archive entry '/abs/file': absolute path"),
        ("blobs/../../x", "path leaves the archive"),
    ],
)
def test_refuses_escaping_archive_entries(
    root: Path, tmp_path: Path, name: str, message: str
) -> None:
    files, _ = _saved(tmp_path)
    files[name] = b"x"
    _refused(root, _archive(files), message)


def test_refuses_escaping_archive_symlink(root: Path, tmp_path: Path) -> None:
    files, _ = _saved(tmp_path)
    data = make_tar(
        [entry(n, d) for n, d in files.items() if not n.endswith("/")]
        + [entry("blobs/sha256/evil", type=tarfile.SYMTYPE, linkname="../../../etc/passwd")]
    )
    _refused(root, data, "leaves the archive")


def test_refuses_truncated_and_malformed_archives(root: Path, tmp_path: Path) -> None:
    files, _ = _saved(tmp_path)
    good = _archive(files)
    (item,) = json.loads(files["manifest.json"])
    layer = files[item["Layers"][0]]
    cut = good.index(layer) + len(layer) // 2  # inside the layer's data
    _refused(root, good[:cut], "truncated")
    _refused(root, gzip.compress(good)[:-100], "unexpected EOF")
    _refused(root, b"", "empty archive")
    _refused(root, _archive({"hello.txt": b"hi"}), "no manifest.json or index.json")
    _refused(root, _archive({"manifest.json": b"{}"}), "manifest cannot be null")
    bad_index = dict(
        files, **{"index.json": b'{"schemaVersion":2,"manifests":[{"mediaType":"x"}]}'}
    )
    _refused(root, _archive(bad_index), "index.json:")


def test_library_errors_are_typed(root: Path, tmp_path: Path) -> None:
    files, _ = _saved(tmp_path)
    (item,) = json.loads(files["manifest.json"])
    with Store(root) as s:
        bad = dict(files)
        del bad[item["Layers"][0]]
        with pytest.raises(InvalidArchive):
            load(s, io.BytesIO(_archive(bad)))
        bad = dict(files)
        blob = bytearray(bad[item["Layers"][0]])
        blob[len(blob) // 2] ^= 0xFF  # same size, other bytes
        bad[item["Layers"][0]] = bytes(blob)
        with pytest.raises((DigestMismatch, InvalidArchive)):
            load(s, io.BytesIO(_archive(bad)))
        bad = dict(files)
        bad["x/../../y"] = b"1"
        with pytest.raises(UnsafeArchive):
            load(s, io.BytesIO(_archive(bad)))
        bad = dict(files)
        bad["oci-layout"] = b'{"imageLayoutVersion":"9.9.9"}'
        with pytest.raises(InvalidArchive, match="oci-layout"):
            load(s, io.BytesIO(_archive(bad)))
        assert s.images() == []
    assert InvalidManifest  # imported for the typed-error contract
