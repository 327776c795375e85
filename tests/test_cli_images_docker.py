"""Differential test of the image verbs against a real Docker (a private dockerd 20.10 driven by
the docker 28 client): one archive written by `gantry save` is loaded into Docker and into a
fresh gantry root, and `images`, `history` and `inspect` must print the same bytes.

The images are pinned in time so the CREATED columns are stable: the base images carry a fixed
`created`, and the images built on them use `SOURCE_DATE_EPOCH` (BuildKit's meaning: it dates
the image and its new history entries). Two families:

- `plain/*`: a base without symlinks and an image built FROM it (ENV, WORKDIR, COPY, LABEL,
  CMD): every column is compared byte for byte, sizes included.
- `bb/*`: a busybox base (its applets are symlinks) and an image built FROM it: the columns
  are compared with sizes left out, and the sizes on their own in
  test_symlink_sizes_match_docker (Docker's classic store, overlay2, counts a symlink's target
  length in the layer size; so does gantry).

Known, deliberate differences with this daemon, not compared: `docker inspect` (the generic
verb) fills `Config` with every zero-valued field of the 20.10 API and adds VirtualSize,
ContainerConfig, Container and overlay2's GraphDriver paths; `docker image inspect -f` prints
`Config` in the OCI shape newer daemons use, which is gantry's, and that is what is compared.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockerd import Docker, docker_fixture  # noqa: F401 - the fixture
from gantry.layers.create import create
from gantry.oci import (
    ContainerConfig,
    Descriptor,
    History,
    ImageConfig,
    Manifest,
    RootFS,
    mediatypes,
)
from gantry.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.peers]

PROJECT = Path(__file__).resolve().parent.parent
EPOCH_APP = 1735689600  # 2025-01-01T00:00:00Z
EPOCH_BBAPP = 1748736000  # 2025-06-01T00:00:00Z
DOCKERFILE = (
    "FROM {base}\n"
    "ENV APP=demo\n"
    "WORKDIR /app\n"
    "COPY hello.txt /app/hello.txt\n"
    "LABEL org.example.k=v\n"
    'CMD ["cat", "/app/hello.txt"]\n'
)


class Pair:
    """The same archive loaded into ``docker`` and into the gantry root ``root``."""

    def __init__(self, docker: Docker, root: Path) -> None:
        self.docker = docker
        self.root = root

    def gantry(self, *args: str) -> str:
        p = _gantry(self.root, *args)
        assert p.returncode == 0, p.stderr
        return p.stdout

    def both(self, *args: str) -> tuple[str, str]:
        """(gantry's stdout, docker's stdout) of the same command line."""
        return self.gantry(*args), self.docker.run(*args).stdout


def _gantry(root: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GANTRY_ROOT": str(root)}
    env.pop("GANTRY_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "gantry", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _add_base(store: Store, tag: str, rootfs: Path, created: str, comment: str) -> None:
    """An image of one layer made from ``rootfs``, as ``gantry import`` makes one, but dated."""
    buf = io.BytesIO()
    info = create(rootfs, buf, source_date_epoch=0, compression="gzip")
    data = buf.getvalue()
    layer = store.content.write(data)
    cfg = ImageConfig(
        architecture="amd64",
        os="linux",
        rootfs=RootFS(diff_ids=(info.diff_id,)),
        config=ContainerConfig(
            env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
            cmd=("sh",),
        ),
        created=created,
        history=(History(created=created, created_by="", comment=comment),),
    )
    raw = cfg.to_json()
    cd = store.content.write(raw)
    manifest = Manifest(
        config=Descriptor(mediatypes.OCI_CONFIG, cd, len(raw)),
        layers=(Descriptor(mediatypes.OCI_LAYER_GZIP, layer, len(data)),),
    )
    store.add_image(manifest.to_json(), tags=[tag])


def _plain_rootfs(d: Path) -> Path:
    """A root filesystem of directories and regular files only (no symlinks)."""
    for sub in ("bin", "etc", "usr/share/doc"):
        (d / sub).mkdir(parents=True)
    (d / "bin" / "tool").write_bytes(os.urandom(40_000))
    (d / "bin" / "tool").chmod(0o755)
    (d / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (d / "usr" / "share" / "doc" / "README").write_text("plain base\n" * 500)
    return d


def _busybox_rootfs(d: Path) -> Path:
    subprocess.run(
        ["bash", str(PROJECT / "scripts" / "busybox-rootfs.sh"), str(d)],
        check=True,
        capture_output=True,
    )
    return d


def _build(root: Path, ctx: Path, base: str, tag: str, epoch: int) -> None:
    ctx.mkdir()
    (ctx / "hello.txt").write_text("hello\n" * 100)
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    p = _gantry(root, "build", "--build-arg", f"SOURCE_DATE_EPOCH={epoch}", "-t", tag, ".", cwd=ctx)
    assert p.returncode == 0, p.stderr


@pytest.fixture(scope="module")
def pair(docker: Docker) -> Iterator[Pair]:
    work = Path(tempfile.mkdtemp(prefix="gantry-imgdocker-", dir="/dev/shm"))
    try:
        src = work / "src-root"
        with Store(src) as s:
            _add_base(s, "plain/base:1", _plain_rootfs(work / "plain"),
                      "2023-06-01T12:00:00Z", "Imported from -")  # fmt: skip
            _add_base(s, "bb/base:1", _busybox_rootfs(work / "bb"),
                      "2024-01-01T00:00:00Z", "Imported from -")  # fmt: skip
        _build(src, work / "ctx-plain", "plain/base:1", "plain/app:1", EPOCH_APP)
        _build(src, work / "ctx-bb", "bb/base:1", "bb/app:1", EPOCH_BBAPP)
        archive = work / "images.tar"
        p = _gantry(src, "save", "-o", str(archive),
                    "plain/base:1", "plain/app:1", "bb/base:1", "bb/app:1")  # fmt: skip
        assert p.returncode == 0, p.stderr
        root = work / "root"
        p = _gantry(root, "load", "-i", str(archive))
        assert p.returncode == 0, p.stderr
        names = ["plain/base:1", "plain/app:1", "bb/base:1", "bb/app:1"]
        docker.run("rmi", "-f", *names, check=False)
        loaded = docker.run("load", "-i", str(archive)).stdout
        assert sorted(loaded.splitlines()) == sorted(f"Loaded image: {n}" for n in names)
        yield Pair(docker, root)
        docker.run("rmi", "-f", *names, check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------- images


@pytest.mark.parametrize(
    "args",
    [
        ["images", "--format", "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}", "plain/*"],
        ["images", "plain/*"],
        ["images", "--no-trunc", "plain/*"],
        ["images", "--digests", "plain/*"],
        ["images", "--format", "table {{.Repository}}\t{{.Tag}}\t{{.Size}}", "plain/*"],
        ["images", "--format", "{{.ID}} {{.CreatedSince}} {{.CreatedAt}}", "plain/*"],
        ["images", "--format", "{{json .Digest}} {{json .Repository}}", "plain/*"],
        ["images", "-q", "plain/*"],
        ["images", "--filter", "reference=plain/app", "--filter", "reference=plain/base"],
        ["images", "--filter", "before=plain/app:1", "plain/*"],
        ["images", "--filter", "since=plain/base:1", "plain/*"],
        ["images", "--filter", "label=org.example.k=v", "plain/*"],
    ],
    ids=lambda a: " ".join(a[1:]),
)
def test_images_match_docker(pair: Pair, args: list[str]) -> None:
    mine, docker = pair.both(*args)
    assert mine == docker
    assert mine.strip()  # something was compared


def test_images_rows_without_sizes_match_for_busybox(pair: Pair) -> None:
    fmt = "{{.Repository}} {{.Tag}} {{.ID}} {{.CreatedSince}} {{.Digest}}"
    mine, docker = pair.both("images", "--format", fmt, "bb/*")
    assert mine == docker and len(mine.splitlines()) == 2


def test_images_table_widths_match_docker(pair: Pair) -> None:
    mine, docker = pair.both("images", "bb/*")
    mine_lines, docker_lines = mine.splitlines(), docker.splitlines()
    assert mine_lines[0] == docker_lines[0]
    assert len(mine_lines) == len(docker_lines) == 3
    for m, d in zip(mine_lines[1:], docker_lines[1:], strict=True):
        # every column starts at the same offset; the values differ only in SIZE
        assert m.rsplit(None, 1)[0] == d.rsplit(None, 1)[0]
        assert len(m) == len(d)


# --------------------------------------------------------------------------------- history


@pytest.mark.parametrize("image", ["plain/app:1", "plain/base:1"])
@pytest.mark.parametrize(
    "args",
    [
        ["history"],
        ["history", "--no-trunc"],
        ["history", "-H=false"],
        ["history", "-q"],
        ["history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}"],
        ["history", "--format", "table {{.ID}}\t{{.CreatedBy}}\t{{.Comment}}"],
        ["history", "--format", "{{.CreatedSince}}|{{.CreatedAt}}"],
    ],
    ids=lambda a: " ".join(a[1:]) or "default",
)
def test_history_matches_docker(pair: Pair, args: list[str], image: str) -> None:
    mine, docker = pair.both(*args, image)
    assert mine == docker
    assert mine.strip()


def test_history_columns_without_sizes_match_for_busybox(pair: Pair) -> None:
    fmt = "{{.ID}}|{{.CreatedSince}}|{{.CreatedBy}}|{{.Comment}}"
    mine, docker = pair.both("history", "--no-trunc", "--format", fmt, "bb/app:1")
    assert mine == docker and len(mine.splitlines()) == 6
    # the default table: CREATED BY and COMMENT columns at Docker's offsets, only SIZE differs
    mine, docker = pair.both("history", "bb/app:1")
    m_lines, d_lines = mine.splitlines(), docker.splitlines()
    assert m_lines[0] == d_lines[0]
    start, end = d_lines[0].index("SIZE"), d_lines[0].index("COMMENT")
    for m, d in zip(m_lines, d_lines, strict=True):
        assert m[:start] == d[:start] and m[end:] == d[end:]


# --------------------------------------------------------------------------------- inspect

FIELDS = [
    "{{.Id}}",
    "{{.RepoTags}}",
    "{{json .RepoTags}}",
    "{{json .RepoDigests}}",
    "{{json .Config}}",
    "{{json .RootFS}}",
    "{{.Architecture}}",
    "{{.Os}}",
    "{{.Size}}",
    "{{.Created}}",
    "{{.Comment}}",
    "{{json .Author}}",
    "{{json .Parent}}",
    "{{json .Metadata}}",
    "{{range .RootFS.Layers}}{{println .}}{{end}}",
    '{{join .Config.Env ","}}|{{json .Config.Cmd}}|{{.Config.Cmd}}',
]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("image", ["plain/app:1", "plain/base:1"])
def test_image_inspect_fields_match_docker(pair: Pair, image: str, field: str) -> None:
    mine, docker = pair.both("image", "inspect", "-f", field, image)
    assert mine == docker


def test_set_config_fields_match_docker(pair: Pair) -> None:
    field = "{{.Config.WorkingDir}}|{{.Config.Labels}}|{{json .Config.Labels}}|{{.Config.Env}}"
    mine, docker = pair.both("image", "inspect", "-f", field, "plain/app:1")
    assert mine == docker


def test_label_lookup_matches_docker(pair: Pair) -> None:
    field = '{{index .Config.Labels "org.example.k"}}|{{.Config.Labels}}'
    mine, docker = pair.both("image", "inspect", "-f", field, "plain/app:1")
    assert mine == docker == "v|map[org.example.k:v]\n"


@pytest.mark.parametrize(
    "field", ["{{.Id}}", "{{.Architecture}} {{.Os}} {{.Size}}", "{{.RepoTags}}"]
)
def test_generic_inspect_scalars_match_docker(pair: Pair, field: str) -> None:
    mine, docker = pair.both("inspect", "-f", field, "plain/app:1")
    assert mine == docker


def test_inspect_document_keys_docker_defines(pair: Pair) -> None:
    """gantry's document has Docker's top-level keys in Docker's order, minus those this
    daemon adds that newer APIs dropped (Container, ContainerConfig, VirtualSize)."""
    (mine,) = json.loads(pair.gantry("image", "inspect", "plain/app:1"))
    (docker,) = json.loads(pair.docker.run("image", "inspect", "plain/app:1").stdout)
    dropped = {"Container", "ContainerConfig", "VirtualSize"}
    assert list(mine) == [k for k in docker if k not in dropped]
    for key in ("Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "DockerVersion",
                "Author", "Architecture", "Os", "Size", "RootFS", "Metadata"):  # fmt: skip
        assert mine[key] == docker[key], key
    # Config: every field gantry prints has Docker's value; Docker's others are zero values
    for key, value in docker["Config"].items():
        assert mine["Config"].get(key, value if not value else None) == value, key


def test_inspect_config_of_busybox_matches_docker(pair: Pair) -> None:
    for field in ("{{json .Config}}", "{{json .RootFS}}", "{{.Id}}", "{{.Created}}"):
        mine, docker = pair.both("image", "inspect", "-f", field, "bb/app:1")
        assert mine == docker, field


@pytest.mark.parametrize(
    "args",
    [
        ["image", "inspect", "-f", "{{.Size}}", "bb/base:1"],
        ["images", "--format", "{{.Repository}} {{.Size}}", "bb/*"],
        ["history", "-H=false", "--format", "{{.Size}}", "bb/app:1"],
    ],
    ids=["inspect", "images", "history"],
)
def test_symlink_sizes_match_docker(pair: Pair, args: list[str]) -> None:
    mine, docker = pair.both(*args)
    assert mine == docker


# ------------------------------------------------------------------------------ known bugs


@pytest.mark.parametrize(
    "args",
    [
        ["images", "--format", "{{json .}}", "plain/*"],
        ["history", "--format", "{{json .}}", "plain/app:1"],
    ],
    ids=["images", "history"],
)
def test_json_rows_match_docker(pair: Pair, args: list[str]) -> None:
    mine, docker = pair.both(*args)
    assert mine == docker


def test_archive_members_are_what_docker_reads(pair: Pair, tmp_path: Path) -> None:
    """Docker saves what it loaded from gantry with the same image IDs and tags."""
    out = tmp_path / "back.tar"
    pair.docker.run("save", "-o", str(out), "plain/app:1")
    with tarfile.open(out) as t:
        f = t.extractfile("manifest.json")
        assert f is not None
        manifest = json.load(f)
    (item,) = manifest
    assert item["RepoTags"] == ["plain/app:1"]
    image_id = pair.gantry("image", "inspect", "-f", "{{.Id}}", "plain/app:1").strip()
    assert item["Config"].split("/")[-1].removesuffix(".json") == image_id.removeprefix("sha256:")


@pytest.mark.parametrize(
    "field",
    [
        "{{.Config.WorkingDir}}|",
        "{{.Config.User}}|",
        "{{.Config.Entrypoint}}|{{json .Config.Entrypoint}}",
        "{{.Config.Labels}}|{{json .Config.Labels}}",
        "{{.Config.Volumes}}|{{json .Config.ExposedPorts}}",
        "{{.Config.StopSignal}}|{{.Config.Healthcheck}}|{{.Config.OnBuild}}|{{.Config.Shell}}",
    ],
)
def test_unset_config_fields_print_zero_values_like_docker(pair: Pair, field: str) -> None:
    """Docker formats a typed Config: an unset User is "", Entrypoint [] (json null),
    Labels/Volumes map[], Healthcheck <nil>; scripts read these on every image."""
    docker = pair.docker.run("image", "inspect", "-f", field, "plain/base:1").stdout
    p = _gantry(pair.root, "image", "inspect", "-f", field, "plain/base:1")
    assert (p.returncode, p.stdout) == (0, docker)


# ------------------------------------------------------------------------------ tag / rmi

DAEMON = "Error response from daemon: "


def _both_raw(pair: Pair, *args: str) -> tuple[subprocess.CompletedProcess[str], ...]:
    return _gantry(pair.root, *args), pair.docker.run(*args, check=False)


def _message(stderr: str) -> str:
    """The error without its prefix: gantry has no daemon, so it says ``Error: `` where the
    docker client relays ``Error response from daemon: `` (a deliberate difference)."""
    return stderr.removeprefix("Error: ").removeprefix(DAEMON)


def test_tag_and_untag_match_docker(pair: Pair) -> None:
    for target in ("plain/app:tmp", "extra/app:1"):
        mine, docker = _both_raw(pair, "tag", "plain/app:1", target)
        assert (mine.returncode, mine.stdout, mine.stderr) == (0, "", "")
        assert (docker.returncode, docker.stdout, docker.stderr) == (0, "", "")
    mine_out, docker_out = pair.both("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    assert mine_out == docker_out and "extra/app:1" in mine_out
    for target in ("plain/app:tmp", "extra/app:1"):
        mine_out, docker_out = pair.both("rmi", target)
        assert mine_out == docker_out == f"Untagged: {target}\n"
    mine_out, docker_out = pair.both("image", "inspect", "-f", "{{.RepoTags}}", "plain/app:1")
    assert mine_out == docker_out == "[plain/app:1]\n"


def test_rmi_conflict_of_an_id_in_two_repositories_matches_docker(pair: Pair) -> None:
    pair.both("tag", "plain/base:1", "extra/base:1")
    try:
        image_id = pair.gantry("image", "inspect", "-f", "{{.Id}}", "plain/base:1").strip()
        short = image_id.removeprefix("sha256:")[:12]
        mine, docker = _both_raw(pair, "rmi", short)
        assert mine.returncode == docker.returncode == 1
        assert mine.stdout == docker.stdout == ""
        assert docker.stderr.startswith(DAEMON)
        assert _message(mine.stderr) == _message(docker.stderr)
        assert "image is referenced in multiple repositories" in mine.stderr
    finally:
        pair.both("rmi", "extra/base:1")
    assert pair.gantry("images", "-q", "plain/base") == short + "\n"


def test_missing_image_errors_match_docker(pair: Pair) -> None:
    for args in (["rmi", "nosuch:1"], ["tag", "nosuch:1", "y:1"], ["history", "nosuch:1"]):
        mine, docker = _both_raw(pair, *args)
        assert mine.returncode == docker.returncode == 1, args
        assert mine.stdout == docker.stdout == ""
        assert _message(mine.stderr) == _message(docker.stderr), args


def test_rmi_force_of_a_missing_image_exits_zero_like_docker(pair: Pair) -> None:
    mine, docker = _both_raw(pair, "rmi", "-f", "nosuch:1")
    assert docker.returncode == 0 and "No such image: nosuch:1" in docker.stderr
    assert (mine.returncode, mine.stdout) == (0, "")
    assert _message(mine.stderr) == _message(docker.stderr)


def test_tag_to_an_invalid_name_says_what_docker_says(pair: Pair) -> None:
    mine, docker = _both_raw(pair, "tag", "plain/app:1", "Bad:1")
    assert mine.returncode == docker.returncode == 1
    assert _message(mine.stderr) == _message(docker.stderr)
