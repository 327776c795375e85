"""Acceptance Dockerfiles built with the real thing, checked through the store.

Files of a built image are read from its snapshot chain (top layer first), which is
exactly what a container of it would see.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gantry.build.builder import BuildOptions, BuildResult, build
from gantry.errors import BuildError
from gantry.store import Image, Store
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


def do(store: Store, ctx: Path, **kw: object) -> BuildResult:
    return build(store, BuildOptions(context=ctx, **kw))  # type: ignore[arg-type]


def lookup(store: Store, image: Image, path: str) -> Path | None:
    """Host path of ``path`` in the image's top-most layer that has it (None: absent)."""
    layers = store.layers(image)
    if not layers:
        return None
    for d in store.lowerdirs(layers[-1].chain_id):
        p = d / path.lstrip("/")
        if os.path.lexists(p):
            st = os.lstat(p)
            if (st.st_mode & 0o170000) == 0o020000 and st.st_rdev == 0:
                return None  # whiteout
            return p
    return None


def read(store: Store, image: Image, path: str) -> str:
    p = lookup(store, image, path)
    assert p is not None, f"{path} not in image"
    return p.read_text()


def test_python_app_like_on_busybox(store: Store, tmp_path: Path) -> None:
    ctx = write(
        tmp_path / "app",
        {
            "Dockerfile": (
                "FROM busybox\n"
                "RUN echo app:x:1000:1000::/home/app:/bin/sh >> /etc/passwd && echo app:x:1000: >> /etc/group\n"
                "WORKDIR /srv/app\n"
                "COPY requirements.txt .\n"
                "RUN wc -l requirements.txt > deps.txt\n"
                "COPY --chown=app:app src/ ./src/\n"
                "ENV PORT=8000 MODE=prod\n"
                "EXPOSE 8000\n"
                "USER app\n"
                "RUN id -u > /tmp/whoami && echo $PORT > /tmp/port\n"
                'CMD ["python", "-m", "src.main"]\n'
            ),
            "requirements.txt": "flask\nrequests\n",
            "src/main.py": "print('hi')\n",
            "src/util/__init__.py": "",
        },
    )
    res = do(store, ctx, tags=["app:1"])
    img = res.image
    cfg = store.config(img).container_config
    assert cfg.user == "app"
    assert cfg.working_dir == "/srv/app"
    assert cfg.exposed_ports == ("8000/tcp",)
    assert "PORT=8000" in cfg.env and "MODE=prod" in cfg.env
    assert cfg.cmd == ("python", "-m", "src.main")
    assert read(store, img, "/srv/app/deps.txt").strip() == "2 requirements.txt"
    assert read(store, img, "/tmp/whoami").strip() == "1000"
    assert read(store, img, "/tmp/port").strip() == "8000"
    main = lookup(store, img, "/srv/app/src/main.py")
    assert main is not None
    st = main.stat()
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    req = lookup(store, img, "/srv/app/requirements.txt")
    assert req is not None and req.stat().st_uid == 0
    hist = [h.created_by for h in store.history(img)][::-1]
    assert hist[2:] == [
        "RUN /bin/sh -c echo app:x:1000:1000::/home/app:/bin/sh >> /etc/passwd &&"
        " echo app:x:1000: >> /etc/group # buildkit",
        "WORKDIR /srv/app",
        "COPY requirements.txt . # buildkit",
        "RUN /bin/sh -c wc -l requirements.txt > deps.txt # buildkit",
        "COPY --chown=app:app src/ ./src/ # buildkit",
        "ENV PORT=8000 MODE=prod",
        "EXPOSE map[8000/tcp:{}]",
        "USER app",
        "RUN /bin/sh -c id -u > /tmp/whoami && echo $PORT > /tmp/port # buildkit",
        'CMD ["python" "-m" "src.main"]',
    ]
    comments = {h.comment for h in store.history(img)[:-2]}
    assert comments == {"buildkit.dockerfile.v0"}
    assert store.resolve("app:1").id == img.id


def test_multi_stage_final_from_scratch_and_target_pruning(store: Store, tmp_path: Path) -> None:
    ctx = write(
        tmp_path / "ms",
        {
            "Dockerfile": (
                "FROM busybox AS builder\n"
                "RUN mkdir -p /out && echo '#!/bin/sh' > /out/tool && chmod 755 /out/tool\n"
                "FROM busybox AS unused\n"
                "RUN exit 1\n"
                "FROM scratch\n"
                "COPY --from=builder /out/tool /usr/bin/tool\n"
                'ENTRYPOINT ["/usr/bin/tool"]\n'
            ),
        },
    )
    res = do(store, ctx, tags=["tool:1"])
    img = res.image
    layers = store.layers(img)
    assert len(layers) == 1  # only the COPY: scratch has none
    p = lookup(store, img, "/usr/bin/tool")
    assert p is not None and p.read_text() == "#!/bin/sh\n"
    assert p.stat().st_mode & 0o777 == 0o755
    cfg = store.config(img)
    assert cfg.container_config.entrypoint == ("/usr/bin/tool",)
    assert cfg.container_config.env == (
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    )
    # --target builds the named stage only
    res2 = do(store, ctx, target="builder")
    assert lookup(store, res2.image, "/out/tool") is not None
    with pytest.raises(BuildError, match="exit code: 1"):
        do(store, ctx, target="unused")


def test_onbuild_parent_and_child(store: Store, tmp_path: Path) -> None:
    base = write(
        tmp_path / "base",
        {
            "Dockerfile": (
                "FROM busybox\n"
                "WORKDIR /app\n"
                "ONBUILD COPY . /app/\n"
                "ONBUILD RUN ls /app > /app/listing\n"
            )
        },
    )
    parent = do(store, base, tags=["onbuild-base:1"]).image
    assert store.config(parent).container_config.on_build == (
        "COPY . /app/",
        "RUN ls /app > /app/listing",
    )
    child_ctx = write(
        tmp_path / "child", {"Dockerfile": 'FROM onbuild-base:1\nCMD ["x"]\n', "f.txt": "f\n"}
    )
    child = do(store, child_ctx).image
    assert read(store, child, "/app/f.txt") == "f\n"
    assert "f.txt" in read(store, child, "/app/listing")
    # triggers run once: the child does not inherit them
    assert store.config(child).container_config.on_build == ()


def test_build_args_in_from_and_run(store: Store, tmp_path: Path) -> None:
    store.tag("busybox:latest", "busybox:1.36")
    ctx = write(
        tmp_path / "args",
        {
            "Dockerfile": (
                "ARG TAG=latest\n"
                "FROM busybox:${TAG}\n"
                "ARG GREETING=hello\n"
                "ARG TAG\n"
                'RUN echo "$GREETING from $TAG" > /greeting\n'
            )
        },
    )
    img = do(store, ctx, build_args={"TAG": "1.36", "GREETING": "hi"}).image
    assert read(store, img, "/greeting") == "hi from 1.36\n"
    run_entry = store.history(img)[0].created_by
    assert run_entry == (
        'RUN |2 GREETING=hi TAG=1.36 /bin/sh -c echo "$GREETING from $TAG" > /greeting # buildkit'
    )
    img2 = do(store, ctx).image
    assert read(store, img2, "/greeting") == "hello from latest\n"


def test_dockerignore_keeps_big_dir_out(store: Store, tmp_path: Path) -> None:
    ctx = write(
        tmp_path / "ign",
        {
            "Dockerfile": "FROM busybox\nCOPY . /src/\n",
            ".dockerignore": "node_modules\n",
            "index.js": "x\n",
        },
    )
    big = ctx / "node_modules"
    for i in range(300):
        d = big / f"pkg{i}"
        d.mkdir(parents=True)
        (d / "index.js").write_text("module.exports = 1\n" * 50)
    img = do(store, ctx).image
    assert lookup(store, img, "/src/index.js") is not None
    assert lookup(store, img, "/src/node_modules") is None
    assert store.layers(img)[-1].size < 10_000


def test_source_date_epoch_gives_same_digest_on_two_roots(tmp_path: Path) -> None:
    need_root()
    ctx = write(
        tmp_path / "repro",
        {
            "Dockerfile": (
                "FROM busybox\nCOPY a.txt /a.txt\nRUN date > /built && touch /stamp\nENV X=1\n"
            ),
            "a.txt": "a\n",
        },
    )
    ids = []
    for n in (1, 2):
        with Store(tmp_path / f"root{n}") as s:
            add_busybox(s, tmp_path)
            os.utime(ctx / "a.txt", (2_000_000_000 + n, 2_000_000_000 + n))
            img = build(
                s,
                BuildOptions(context=ctx, source_date_epoch=1700000000),
            ).image
            cfg = s.config(img)
            assert cfg.created == "2023-11-14T22:13:20Z"
            new = cfg.history[2:]
            assert {h.created for h in new} == {"2023-11-14T22:13:20Z"}
            ids.append((img.id, [str(layer.digest) for layer in s.layers(img)]))
    # the COPY layer is identical (mtimes clamped); RUN output (`date`) differs by design
    assert ids[0][1][1] == ids[1][1][1]


def test_source_date_epoch_reproducible_image_digest(tmp_path: Path) -> None:
    need_root()
    ctx = write(
        tmp_path / "repro2",
        {
            "Dockerfile": ("FROM busybox\nCOPY a.txt /a.txt\nRUN echo built > /built\nLABEL v=1\n"),
            "a.txt": "a\n",
        },
    )
    ids = []
    for n in (1, 2):
        with Store(tmp_path / f"root{n}") as s:
            add_busybox(s, tmp_path)
            os.utime(ctx / "a.txt", (2_000_000_000 + n, 2_000_000_000 + n))
            img = build(s, BuildOptions(context=ctx, source_date_epoch=1700000000)).image
            ids.append(img.id)
    assert ids[0] == ids[1]


def test_run_heredoc_and_exec_form(store: Store, tmp_path: Path) -> None:
    ctx = write(
        tmp_path / "hd",
        {
            "Dockerfile": (
                "FROM busybox\n"
                "RUN <<EOF\n"
                "echo one > /one\n"
                "echo two > /two\n"
                "EOF\n"
                'RUN ["/bin/sh", "-c", "echo exec > /exec"]\n'
                "COPY <<EOT /etc/motd\n"
                "welcome\n"
                "EOT\n"
            )
        },
    )
    img = do(store, ctx).image
    assert read(store, img, "/one") == "one\n"
    assert read(store, img, "/two") == "two\n"
    assert read(store, img, "/exec") == "exec\n"
    assert read(store, img, "/etc/motd") == "welcome\n"
    hist = [h.created_by for h in store.history(img)]
    assert hist[1] == "RUN /bin/sh -c echo exec > /exec # buildkit"
    assert hist[0] == "COPY <<EOT /etc/motd # buildkit"


def test_copy_globs_multiple_sources_and_dest_rules(store: Store, tmp_path: Path) -> None:
    ctx = write(
        tmp_path / "cp",
        {
            "Dockerfile": (
                "FROM busybox\n"
                "COPY *.txt /texts/\n"
                "COPY one.txt two.txt /both/\n"
                "COPY one.txt /renamed\n"
                "COPY --chmod=600 dir /d\n"
            ),
            "one.txt": "1\n",
            "two.txt": "2\n",
            "x.md": "no\n",
            "dir/sub/f": "f\n",
        },
    )
    img = do(store, ctx).image
    assert read(store, img, "/texts/one.txt") == "1\n"
    assert read(store, img, "/texts/two.txt") == "2\n"
    assert lookup(store, img, "/texts/x.md") is None
    assert read(store, img, "/both/two.txt") == "2\n"
    assert read(store, img, "/renamed") == "1\n"
    f = lookup(store, img, "/d/sub/f")
    assert f is not None and f.stat().st_mode & 0o777 == 0o600
    bad = write(tmp_path / "bad", {"Dockerfile": "FROM busybox\nCOPY a b /x\n", "a": "", "b": ""})
    with pytest.raises(Exception, match="must be a directory and end with a /"):
        do(store, bad)
    missing = write(tmp_path / "missing", {"Dockerfile": "FROM busybox\nCOPY nope /x\n"})
    with pytest.raises(BuildError, match='"/nope": not found'):
        do(store, missing)


def test_network_none_has_no_interfaces_but_loopback(store: Store, tmp_path: Path) -> None:
    ctx = write(
        tmp_path / "net",
        {
            "Dockerfile": (
                "FROM busybox\n"
                "RUN --network=none ls /sys/class/net > /none\n"
                "RUN ls /sys/class/net > /host\n"
            )
        },
    )
    img = do(store, ctx).image
    assert read(store, img, "/none").split() == ["lo"]
    assert len(read(store, img, "/host").split()) > 1


def test_cli_build_plain_quiet_and_iidfile(store: Store, root: Path, tmp_path: Path) -> None:
    ctx = write(tmp_path / "cli", {"Dockerfile": "FROM busybox\nRUN echo hello-output\n"})
    store.close()
    r = gantry(root, "build", "--progress=plain", "-t", "cli:1", str(ctx))
    assert r.returncode == 0, r.stderr.decode()
    err = r.stderr.decode()
    assert "#2 [2/2] RUN echo hello-output" in err
    assert "hello-output" in err.split("RUN echo hello-output", 1)[1]
    r = gantry(root, "build", "--progress=plain", str(ctx))
    assert "#2 CACHED" in r.stderr.decode()
    iid = tmp_path / "iid"
    r = gantry(root, "build", "-q", "--iidfile", str(iid), str(ctx))
    assert r.returncode == 0
    assert r.stdout.decode().strip() == iid.read_text()
    assert iid.read_text().startswith("sha256:")
    fail = write(tmp_path / "fail", {"Dockerfile": "FROM busybox\n\nRUN echo bad-things; exit 4\n"})
    r = gantry(root, "build", "--progress=plain", str(fail))
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "Dockerfile:3" in err
    assert ">>> RUN echo bad-things; exit 4" in err
    assert "bad-things" in err
    assert (
        'Error: failed to solve: process "/bin/sh -c echo bad-things; exit 4" did not complete'
        " successfully: exit code: 4" in err
    )


@pytest.mark.slow
def test_independent_stages_run_in_parallel(store: Store, tmp_path: Path) -> None:
    import time

    ctx = write(
        tmp_path / "par",
        {
            "Dockerfile": (
                "FROM busybox AS a\n"
                "RUN sleep 2 && echo a > /a\n"
                "FROM busybox AS b\n"
                "RUN sleep 2 && echo b > /b\n"
                "FROM busybox\n"
                "COPY --from=a /a /a\n"
                "COPY --from=b /b /b\n"
            )
        },
    )
    warm = write(tmp_path / "warm", {"Dockerfile": "FROM busybox\nRUN true\n"})
    do(store, warm)  # the first RUN of a root probes the OCI runtime: keep it out of the timing
    t0 = time.monotonic()
    img = do(store, ctx).image
    elapsed = time.monotonic() - t0
    assert read(store, img, "/a") == "a\n" and read(store, img, "/b") == "b\n"
    assert elapsed < 3.6, f"stages ran one after the other ({elapsed:.1f}s)"


def test_failure_in_one_parallel_stage_fails_the_build(store: Store, tmp_path: Path) -> None:
    ctx = write(
        tmp_path / "parfail",
        {
            "Dockerfile": (
                "FROM busybox AS a\n"
                "RUN exit 5\n"
                "FROM busybox AS b\n"
                "RUN echo b > /b\n"
                "FROM busybox\n"
                "COPY --from=a / /a\n"
                "COPY --from=b /b /b\n"
            )
        },
    )
    with pytest.raises(BuildError, match="exit code: 5"):
        do(store, ctx)


def test_add_extracts_local_archives(store: Store, tmp_path: Path) -> None:
    import subprocess

    ctx = tmp_path / "add"
    src = tmp_path / "payload"
    write(src, {"pkg/bin/tool": "#!/bin/sh\n", "pkg/README": "r\n"})
    ctx.mkdir()
    subprocess.run(["tar", "-C", str(src), "-czf", str(ctx / "pkg.tar.gz"), "pkg"], check=True)
    subprocess.run(["tar", "-C", str(src), "-cJf", str(ctx / "pkg.tar.xz"), "pkg"], check=True)
    write(
        ctx,
        {
            "Dockerfile": (
                "FROM busybox\n"
                "ADD pkg.tar.gz /opt/gz/\n"
                "ADD pkg.tar.xz /opt/xz\n"
                "ADD notes.txt /opt/\n"
                "COPY pkg.tar.gz /opt/copied/\n"
            ),
            "notes.txt": "not an archive\n",
        },
    )
    img = do(store, ctx).image
    assert read(store, img, "/opt/gz/pkg/bin/tool") == "#!/bin/sh\n"
    assert read(store, img, "/opt/xz/pkg/README") == "r\n"
    assert read(store, img, "/opt/notes.txt") == "not an archive\n"
    copied = lookup(store, img, "/opt/copied/pkg.tar.gz")
    assert copied is not None and copied.read_bytes()[:2] == b"\x1f\x8b"  # COPY never unpacks


def test_run_mounts_cache_tmpfs_and_bind(store: Store, tmp_path: Path) -> None:
    ctx = write(
        tmp_path / "mnt",
        {
            "Dockerfile": (
                "FROM busybox AS tools\n"
                "RUN echo from-stage > /tool.txt\n"
                "FROM busybox\n"
                "RUN --mount=type=cache,target=/var/cache/app echo $(date +%s%N) >> "
                "/var/cache/app/runs && wc -l < /var/cache/app/runs > /runs-seen\n"
                "RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && ls /scratch > /tmp-ls\n"
                "RUN --mount=type=bind,source=data,target=/data cat /data/in.txt > /bound\n"
                "RUN --mount=type=bind,from=tools,source=/tool.txt,target=/t cat /t > /from-stage\n"
                "RUN --mount=type=bind,source=data,target=/data,rw echo x > /data/written\n"
            ),
            "data/in.txt": "input\n",
        },
    )
    img = do(store, ctx).image
    assert read(store, img, "/runs-seen").strip() == "1"
    assert read(store, img, "/tmp-ls").strip() == "t"
    assert read(store, img, "/bound") == "input\n"
    assert read(store, img, "/from-stage") == "from-stage\n"
    # nothing written through a mount reaches a layer, and rw bind writes are discarded
    for path in ("/var/cache/app/runs", "/scratch/t", "/data/in.txt", "/data/written"):
        assert lookup(store, img, path) is None, path
    assert not (ctx / "data" / "written").exists()
    # the cache mount persists across builds, and does not enter the cache key
    (ctx / "Dockerfile").write_text((ctx / "Dockerfile").read_text().replace("wc -l", "wc -l "))
    img2 = do(store, ctx).image
    assert read(store, img2, "/runs-seen").strip() == "2"
    # a changed bound context file re-runs the step that binds it
    (ctx / "data" / "in.txt").write_text("changed\n")
    img3 = do(store, ctx).image
    assert read(store, img3, "/bound") == "changed\n"
