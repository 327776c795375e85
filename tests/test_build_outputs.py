"""Context from stdin, --build-context, -o outputs and --squash, through the real CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from gantry.build.builder import BuildOptions, build
from gantry.build.outputs import Output, parse_output
from gantry.errors import UsageError
from gantry.store import Store
from test_build_dockerfiles import lookup, read
from test_build_support import add_busybox, gantry, need_root


@pytest.fixture
def store(root: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    need_root()
    s = Store(root)
    add_busybox(s, tmp_path)
    yield s
    s.close()


def write(ctx: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return ctx


def run_cli(
    root: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "gantry", "--root", str(root), *args],
        input=stdin,
        capture_output=True,
        timeout=300,
    )


def test_context_tar_and_dockerfile_on_stdin(store: Store, root: Path, tmp_path: Path) -> None:
    store.close()
    ctx = write(
        tmp_path / "ctx",
        {"Dockerfile": "FROM busybox\nCOPY app.txt /app.txt\n", "other.df": "FROM busybox\n"},
    )
    (ctx / "app.txt").write_text("from-a-tar\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(ctx, arcname=".")
    r = run_cli(root, "build", "-q", "-t", "fromtar:1", "-", stdin=buf.getvalue())
    assert r.returncode == 0, r.stderr.decode()
    with Store(root) as s:
        assert read(s, s.resolve("fromtar:1"), "/app.txt") == "from-a-tar\n"
    r = run_cli(root, "build", "-q", "-f", "other.df", "-", stdin=buf.getvalue())
    assert r.returncode == 0, r.stderr.decode()
    r = run_cli(
        root, "build", "-q", "-t", "plain:1", "-", stdin=b"FROM busybox\nRUN echo hi > /hi\n"
    )
    assert r.returncode == 0, r.stderr.decode()
    with Store(root) as s:
        assert read(s, s.resolve("plain:1"), "/hi") == "hi\n"
    r = run_cli(root, "build", "-f", "-", "-", stdin=b"")
    assert r.returncode == 1
    assert "can't use stdin for both build context and dockerfile" in r.stderr.decode()
    assert not list((root / "tmp").glob("stdin-*"))


def test_build_contexts_local_dir_and_docker_image(store: Store, tmp_path: Path) -> None:
    from gantry.oci import mediatypes  # noqa: F401  (the store API is enough)

    add_busybox(store, tmp_path, tag="mybase:7")
    extra = write(tmp_path / "extra", {"data/one.txt": "one\n", "skip.log": "x\n"})
    (extra / ".dockerignore").write_text("*.log\n")
    ctx = write(
        tmp_path / "ctx",
        {
            "Dockerfile": (
                "FROM base\n"
                "COPY --from=extra /data /data\n"
                "RUN --mount=from=extra,target=/mnt cat /mnt/data/one.txt > /via-mount\n"
            )
        },
    )
    contexts = {"extra": str(extra), "base": "docker-image://mybase:7"}
    result = build(store, BuildOptions(context=ctx, build_contexts=contexts))
    img = result.image
    assert read(store, img, "/data/one.txt") == "one\n"
    assert read(store, img, "/via-mount") == "one\n"
    # the content of a named context keys the cache like the main context does
    again = build(store, BuildOptions(context=ctx, build_contexts=contexts))
    assert again.cached == again.steps
    (extra / "data" / "one.txt").write_text("changed\n")
    changed = build(store, BuildOptions(context=ctx, build_contexts=contexts))
    assert changed.cached == 0
    assert read(store, changed.image, "/via-mount") == "changed\n"


def test_outputs_local_tar_docker_oci(store: Store, root: Path, tmp_path: Path) -> None:
    store.close()
    ctx = write(
        tmp_path / "ctx",
        {"Dockerfile": "FROM busybox\nRUN echo made > /made && rm /bin/ls\n"},
    )
    out = tmp_path / "out"
    r = gantry(root, "build", "-q", "-o", f"type=local,dest={out}", str(ctx))
    assert r.returncode == 0, r.stderr.decode()
    assert (out / "made").read_text() == "made\n"
    assert (out / "bin" / "sh").exists() or (out / "bin" / "sh").is_symlink()
    assert not os.path.lexists(out / "bin" / "ls")  # the RUN's whiteout applied
    tar_path = tmp_path / "fs.tar"
    r = gantry(root, "build", "-q", "-o", f"type=tar,dest={tar_path}", str(ctx))
    assert r.returncode == 0, r.stderr.decode()
    with tarfile.open(tar_path) as tf:
        names = set(tf.getnames())
    assert "made" in names and "bin/ls" not in names
    r = gantry(root, "build", "--progress=plain", "-o", "-", str(ctx))
    assert r.returncode == 0, r.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tf:
        assert tf.extractfile("made").read() == b"made\n"  # type: ignore[union-attr]
    for kind in ("docker", "oci"):
        arch = tmp_path / f"{kind}.tar"
        r = gantry(root, "build", "-q", "-t", f"out-{kind}:1", "-o", f"type={kind},dest={arch}", str(ctx))  # fmt: skip
        assert r.returncode == 0, r.stderr.decode()
        with tarfile.open(arch) as tf:
            index = json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]
            assert index["manifests"], index
            manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
            assert manifest[0]["RepoTags"] == [f"out-{kind}:1"]
    r = gantry(root, "build", "-q", "-t", "local-only:1", "-o", f"type=local,dest={out}", str(ctx))
    assert r.returncode == 0, r.stderr.decode()
    with Store(root) as s:
        # a filesystem output names nothing in the store
        assert not any("local-only" in t for img in s.images() for t in img.familiar_tags)


def test_squash_merges_layers_above_the_base(store: Store, tmp_path: Path) -> None:
    ctx = write(
        tmp_path / "ctx",
        {
            "Dockerfile": (
                "FROM busybox\n"
                "RUN mkdir -p /work/sub /opq && echo 1 > /work/a && echo keep > /work/sub/k && touch /opq/old\n"
                "RUN echo 2 > /work/a && rm /bin/ls && echo gone > /tmp/gone\n"
                "RUN rm /tmp/gone && rm -rf /opq /usr && mkdir /opq /usr && echo only > /opq/only\n"
                "ENV X=1\n"
                "COPY f.txt /work/f.txt\n"
            ),
            "f.txt": "f\n",
        },
    )
    plain = build(store, BuildOptions(context=ctx)).image
    squashed = build(store, BuildOptions(context=ctx, squash=True)).image
    base_layers = 1
    assert len(store.layers(plain)) == base_layers + 4
    assert len(store.layers(squashed)) == base_layers + 1
    cfg = store.config(squashed)
    assert sum(1 for h in cfg.history if not h.empty_layer) == base_layers + 1
    assert cfg.history[-1].comment.startswith("merge sha256:")  # type: ignore[union-attr]
    assert read(store, squashed, "/work/a") == "2\n"
    assert read(store, squashed, "/work/sub/k") == "keep\n"
    assert read(store, squashed, "/work/f.txt") == "f\n"
    assert lookup(store, squashed, "/bin/ls") is None
    assert lookup(store, squashed, "/tmp/gone") is None
    assert lookup(store, squashed, "/opq/old") is None  # /opq was replaced (opaque)
    assert read(store, squashed, "/opq/only") == "only\n"
    # the squashed layer blob, flattened over the base, gives the same tree
    from gantry.build.outputs import export

    a, b = tmp_path / "a", tmp_path / "b"
    export(store, plain, Output("local", str(a)))
    export(store, squashed, Output("local", str(b)))

    def tree(p: Path) -> dict[str, tuple[int, bytes]]:
        out: dict[str, tuple[int, bytes]] = {}
        for dirpath, dirs, files in os.walk(p):
            for n in dirs + files:
                q = Path(dirpath) / n
                st = os.lstat(q)
                data = q.read_bytes() if q.is_file() and not q.is_symlink() else b""
                out[str(q.relative_to(p))] = (st.st_mode, data)
        return out

    assert tree(a) == tree(b)
    assert not (b / "usr" / "bin").exists()  # a base directory replaced (opaque in the layer)
    assert (b / "usr").is_dir()


def test_parse_output() -> None:
    assert parse_output("out") == Output("local", "out")
    assert parse_output("-") == Output("tar", "-")
    assert parse_output("type=tar,dest=x.tar") == Output("tar", "x.tar")
    assert parse_output("type=docker") == Output("image")
    for bad in ("type=local", "type=nope,dest=x", "dest=x", "type=tar,dest=x,compression=gzip"):
        with pytest.raises(UsageError):
            parse_output(bad)
