"""gantry import: tars (plain and compressed), directories, stdin, --change, refusals."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard

from gantry.archive import Limits, apply_changes, import_image
from gantry.errors import InvalidArchive, UnsafeArchive, UsageError
from gantry.layers.compression import decompressing_reader
from gantry.oci import ContainerConfig
from gantry.store import Store
from test_archive_support import entry, gantry, make_tar, small_rootfs, tree_snapshot


def _config(store: Store, ref: str) -> dict[str, object]:
    raw = store.config_bytes(store.resolve(ref))
    out: dict[str, object] = json.loads(raw)
    return out


def test_import_tar_prints_id_and_keeps_the_tar_as_the_diff(root: Path, tmp_path: Path) -> None:
    data = small_rootfs()
    src = tmp_path / "rootfs.tar"
    src.write_bytes(data)
    r = gantry(root, "import", str(src), "base:1")
    assert r.returncode == 0, r.stderr
    image_id = r.stdout.decode().strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    with Store(root) as s:
        img = s.resolve("base:1")
        assert img.id == image_id
        cfg = _config(s, "base:1")
        # the diff ID is the digest of the tar exactly as given
        assert cfg["rootfs"] == {
            "type": "layers",
            "diff_ids": ["sha256:" + hashlib.sha256(data).hexdigest()],
        }
        assert cfg["history"][0]["comment"] == "Imported from -"  # type: ignore[index]
        (layer,) = s.layers(img)
        # stored gzip-compressed, with gantry's pinned gzip
        assert layer.media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
        blob = s.content.path(layer.digest).read_bytes()
        assert gzip.decompress(blob) == data
        # Docker's size: files once (the hard link adds nothing), plus the symlink's target
        assert img.size == sum(
            len(d)
            for d in [
                b"#!/bin/sh\necho hello\n",
                b"root:x:0:0:root:/root:/bin/sh\n",
                b"/bin/busybox",
            ]
        )
        assert s.check() == []


@pytest.mark.parametrize("codec", ["gzip", "zstd", "xz", "bzip2"])
def test_import_compressed_tar_from_stdin(root: Path, codec: str) -> None:
    data = small_rootfs()
    import bz2
    import lzma

    packed = {
        "gzip": lambda d: gzip.compress(d),
        "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
        "xz": lambda d: lzma.compress(d),
        "bzip2": lambda d: bz2.compress(d),
    }[codec](data)
    r = gantry(root, "import", "-", f"c-{codec}", input=packed)
    assert r.returncode == 0, r.stderr
    with Store(root) as s:
        cfg = _config(s, f"c-{codec}")
        assert cfg["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(data).hexdigest()]  # type: ignore[index]


def test_import_directory_makes_a_sorted_layer(root: Path, shm_tmp: Path) -> None:
    d = shm_tmp / "rootfs"
    (d / "bin").mkdir(parents=True)
    (d / "bin" / "tool").write_bytes(b"x" * 5000)
    (d / "etc").mkdir()
    (d / "etc" / "hostname").write_text("box\n")
    with Store(root) as s:
        img = import_image(s, d, "fromdir")
        (layer,) = s.layers(img)
        with (
            s.content.open(layer.digest) as f,
            tarfile.open(fileobj=decompressing_reader(f), mode="r|") as t,
        ):
            names = [m.name for m in t]
        assert names == ["bin", "bin/tool", "etc", "etc/hostname"]  # sorted walk
        assert img.size == 5000 + 4
        assert s.check() == []


def test_change_flags_shape_the_config(root: Path, tmp_path: Path) -> None:
    src = tmp_path / "r.tar"
    src.write_bytes(small_rootfs())
    r = gantry(
        root,
        "import",
        "-c", 'CMD ["sh"]',
        "--change", "ENV PATH=/usr/bin:/bin GREETING=\"hello world\"",
        "-c", "WORKDIR /srv",
        "-c", "WORKDIR app",
        "-c", "USER 1000:1000",
        "-c", "EXPOSE 80 53/udp",
        "-c", "LABEL org.example.name=demo \"with space\"=yes",
        "-c", "ENV HOME_DIR=$GREETING",
        "--platform", "linux/arm64/v8",
        "-m", "my message",
        str(src),
        "demo",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    with Store(root) as s:
        cfg = _config(s, "demo")
    assert cfg["architecture"] == "arm64" and cfg["os"] == "linux"
    c = cfg["config"]
    assert c == {  # type: ignore[comparison-overlap]
        "User": "1000:1000",
        "ExposedPorts": {"53/udp": {}, "80/tcp": {}},
        "Env": ["PATH=/usr/bin:/bin", "GREETING=hello world", "HOME_DIR=hello world"],
        "Cmd": ["sh"],
        "WorkingDir": "/srv/app",
        "Labels": {"org.example.name": "demo", "with space": "yes"},
    }
    assert cfg["history"][0]["comment"] == "my message"  # type: ignore[index]
    r = gantry(root, "image", "inspect", "-f", "{{.Comment}}", "demo")
    assert r.stdout.decode() == "my message\n"


def test_change_rules() -> None:
    base = ContainerConfig(cmd=("old",))
    # a new ENTRYPOINT drops the inherited CMD; shell form goes through /bin/sh -c
    c = apply_changes(base, ["ENTRYPOINT /bin/app --serve"])
    assert c.entrypoint == ("/bin/sh", "-c", "/bin/app --serve") and c.cmd is None
    c = apply_changes(base, ['ENTRYPOINT ["/app"]', 'CMD ["x"]'])
    assert c.entrypoint == ("/app",) and c.cmd == ("x",)
    c = apply_changes(base, ["EXPOSE 8000-8002", "VOLUME /data /logs", "STOPSIGNAL SIGINT"])
    assert c.exposed_ports == ("8000/tcp", "8001/tcp", "8002/tcp")
    assert c.volumes == ("/data", "/logs") and c.stop_signal == "SIGINT"
    c = apply_changes(base, ["ONBUILD RUN make"])
    assert c.on_build == ("RUN make",)
    c = apply_changes(
        base, ["HEALTHCHECK --interval=5s --start-period=1m --retries=3 CMD curl -f http://x/"]
    )
    assert c.to_dict()["Healthcheck"] == {
        "Test": ["CMD-SHELL", "curl -f http://x/"],
        "Interval": 5_000_000_000,
        "StartPeriod": 60_000_000_000,
        "Retries": 3,
    }
    c = apply_changes(c, ['HEALTHCHECK CMD ["/bin/check", "-q"]'])
    assert c.healthcheck is not None and c.healthcheck.test == ("CMD", "/bin/check", "-q")
    c = apply_changes(c, ["HEALTHCHECK NONE"])
    assert c.to_dict()["Healthcheck"] == {"Test": ["NONE"]}
    for bad, message in [
        ("RUN echo", "RUN is not a valid change command"),
        ("FROM x", "FROM is not a valid change command"),
        ("EXPOSE 99999", "invalid range specified for container port: 99999"),
        ("EXPOSE http", "invalid containerPort: http"),
        ("HEALTHCHECK --bogus=1 CMD x", "unknown flag: --bogus"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK --interval=10us CMD x", "cannot be less than 1ms"),
    ]:
        with pytest.raises(UsageError, match=message):
            apply_changes(base, [bad])


def test_bad_change_is_refused_before_reading_the_input(root: Path) -> None:
    r = gantry(root, "import", "-c", "RUN rm -rf /", "-", "x", input=small_rootfs())
    assert r.returncode == 1
    assert r.stderr.decode() == "Error: RUN is not a valid change command\n"
    with Store(root) as s:
        assert s.images() == []


def test_digest_reference_is_refused(root: Path) -> None:
    r = gantry(root, "import", "-", "x@sha256:" + "a" * 64, input=small_rootfs())
    assert r.returncode == 1
    assert b"refusing to create a tag with a digest reference" in r.stderr


def _escapes() -> dict[str, bytes]:
    T = tarfile
    return {
        "dotdot": make_tar([entry("../../evil", b"x")]),
        "nested-dotdot": make_tar([entry("a/", type=T.DIRTYPE), entry("a/../../evil", b"x")]),
        "absolute": make_tar([entry("/etc/evil", b"x")]),
        "symlink-parent": make_tar(
            [entry("escape", type=T.SYMTYPE, linkname="/etc"), entry("escape/evil", b"x")]
        ),
        "symlink-parent-relative": make_tar(
            [entry("up", type=T.SYMTYPE, linkname="../../.."), entry("up/tmp/evil", b"x")]
        ),
        "hardlink-outside": make_tar([entry("pw", type=T.LNKTYPE, linkname="../../etc/passwd")]),
        "hardlink-absolute": make_tar([entry("pw", type=T.LNKTYPE, linkname="/etc/passwd")]),
        "hardlink-missing": make_tar([entry("pw", type=T.LNKTYPE, linkname="etc/shadow")]),
        "hardlink-through-symlink": make_tar(
            [
                entry("etc", type=T.SYMTYPE, linkname="/etc"),
                entry("pw", type=T.LNKTYPE, linkname="etc/passwd"),
            ]
        ),
    }


@pytest.mark.parametrize("case", sorted(_escapes()))
def test_escaping_entries_are_refused(root: Path, shm_tmp: Path, case: str) -> None:
    sentinel = shm_tmp / "sentinel"
    sentinel.mkdir()
    (sentinel / "keep").write_text("keep")
    before = tree_snapshot(shm_tmp)
    data = gzip.compress(_escapes()[case])
    r = gantry(root, "import", "-", "evil", input=data, env={"TMPDIR": str(sentinel)})
    assert r.returncode == 1, r.stdout
    err = r.stderr.decode()
    assert err.startswith("Error: refusing layer ") and err.count("\n") == 1, err
    assert tree_snapshot(shm_tmp) == before
    with Store(root) as s:
        assert s.images() == [] and s.check() == []


def test_truncated_gzip_and_garbage_are_refused(root: Path) -> None:
    good = gzip.compress(small_rootfs() + bytes(8192))
    for data, message in [
        (good[: len(good) // 2], "unexpected EOF"),
        (b"this is not a tar file at all" * 40, "invalid tar header"),
        (small_rootfs()[:700], "truncated"),
        (b"", "empty layer"),
    ]:
        r = gantry(root, "import", "-", "bad", input=data)
        assert r.returncode == 1
        err = r.stderr.decode()
        assert message in err and err.count("\n") == 1, err
    with Store(root) as s:
        assert s.images() == [] and s.check() == []


def test_decompression_bomb_of_trailing_zeros_is_refused_quickly(root: Path) -> None:
    # a valid tiny tar followed by 256 MiB of zeros: gzip makes it ~250 KB
    comp = zstandard.ZstdCompressor(level=1)
    bomb = comp.compress(small_rootfs() + bytes(256 << 20))
    assert len(bomb) < 1 << 20
    r = gantry(root, "import", "-", "bomb", input=bomb)
    assert r.returncode == 1
    assert b"after the end of the layer tar (possible decompression bomb)" in r.stderr


def test_decompression_bomb_ratio_guard(root: Path) -> None:
    payload = bytes(64 << 20)
    bomb = zstandard.ZstdCompressor(level=3).compress(make_tar([entry("zeros", payload)]))
    with Store(root) as s:
        with pytest.raises(InvalidArchive, match="inflates more than 100:1"):
            import_image(
                s, io.BytesIO(bomb), "bomb", limits=Limits(max_ratio=100, ratio_floor=1 << 20)
            )
        with pytest.raises(InvalidArchive, match="larger than the 1048576 bytes allowed"):
            import_image(s, io.BytesIO(bomb), "bomb", limits=Limits(max_size=1 << 20))
        # the same data is fine under the default limits (a real file of zeros)
        img = import_image(s, io.BytesIO(bomb), "zeros")
        assert img.size == 64 << 20
        assert [i.repo_tags for i in s.images()] == [("docker.io/library/zeros:latest",)]


def test_max_layer_size_from_environment(root: Path) -> None:
    r = gantry(
        root, "import", "-", "x", input=small_rootfs(), env={"GANTRY_MAX_LAYER_SIZE": "1000"}
    )
    assert r.returncode == 1 and b"larger than the 1000 bytes allowed" in r.stderr


def test_unsafe_error_types() -> None:
    with Store(Path("/dev/shm") / f"gantry-test-unused-{id(object())}") as s:
        try:
            with pytest.raises(UnsafeArchive):
                import_image(s, io.BytesIO(_escapes()["absolute"]))
        finally:
            import shutil

            shutil.rmtree(s.root, ignore_errors=True)


def test_missing_source_file(root: Path) -> None:
    r = gantry(root, "import", "/nonexistent/rootfs.tar")
    assert r.returncode == 1
    assert r.stderr.decode() == "Error: open /nonexistent/rootfs.tar: no such file or directory\n"
