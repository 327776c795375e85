"""Build secrets and SSH forwarding: in the RUN, never in a layer, history or cache value."""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
from pathlib import Path

import pytest

from gantry.build.builder import BuildOptions, BuildResult, build
from gantry.build.secrets import parse_secret_flag, parse_ssh_flag
from gantry.errors import BuildError, UsageError
from gantry.store import Image, Store
from test_build_cache import Recorder
from test_build_dockerfiles import lookup, read
from test_build_support import add_busybox, gantry, need_root

SECRET = b"s3cr3t-value-0123456789"


@pytest.fixture
def store(root: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    need_root()
    s = Store(root)
    add_busybox(s, tmp_path)
    yield s
    s.close()


def do(store: Store, ctx: Path, dockerfile: str, **kw: object) -> tuple[BuildResult, Recorder]:
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    rec = Recorder()
    return build(store, BuildOptions(context=ctx, **kw), rec), rec  # type: ignore[arg-type]


def layers_bytes(store: Store, image: Image) -> bytes:
    return b"".join(gzip.decompress(store.content.read(la.digest)) for la in store.layers(image))


def test_file_secret_is_seen_by_run_and_kept_out_of_everything(
    store: Store, tmp_path: Path
) -> None:
    df = (
        "FROM busybox\n"
        "RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -c1-64 > /sum && "
        "stat -c %a /run/secrets/tok > /mode\n"
        "RUN --mount=type=secret,id=tok,target=/etc/app/key,mode=0440,uid=7 "
        "stat -c '%a %u' /etc/app/key > /custom\n"
    )
    result, _ = do(store, tmp_path / "ctx", df, secrets={"tok": SECRET})
    img = result.image
    assert read(store, img, "/sum").strip() == hashlib.sha256(SECRET).hexdigest()
    assert read(store, img, "/mode").strip() == "400"
    assert read(store, img, "/custom").strip() == "440 7"
    for gone in ("/run/secrets/tok", "/run/secrets", "/etc/app/key", "/etc/app"):
        assert lookup(store, img, gone) is None, gone
    assert SECRET not in layers_bytes(store, img)
    config = store.config(img)
    assert all(SECRET.decode() not in (h.created_by or "") for h in config.history)
    assert not list(Path("/dev/shm").glob("gantry-secret-*"))
    # a new value of the secret is not a new step: the value never keys the cache
    _, rec2 = do(store, tmp_path / "ctx", df, secrets={"tok": b"another"})
    assert rec2.ran == [] and len(rec2.hits) == 2


def test_env_secret_and_missing_secrets(store: Store, tmp_path: Path) -> None:
    df = (
        "FROM busybox\n"
        "RUN --mount=type=secret,id=tok,env=TOKEN echo ${#TOKEN} > /len "
        "&& test ! -e /run/secrets/tok\n"
        "RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent && touch /ok\n"
    )
    result, _ = do(store, tmp_path / "a", df, secrets={"tok": SECRET})
    assert read(store, result.image, "/len").strip() == str(len(SECRET))
    assert lookup(store, result.image, "/ok") is not None
    env = store.config(result.image).container_config.env
    assert not any("TOKEN" in e for e in env)
    assert SECRET not in layers_bytes(store, result.image)
    with pytest.raises(BuildError, match="secret need: not found"):
        do(store, tmp_path / "b", "FROM busybox\nRUN --mount=type=secret,id=need,required true\n")


def test_ssh_agent_socket_is_forwarded(store: Store, tmp_path: Path) -> None:
    sock_path = tmp_path / "agent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    try:
        df = (
            "FROM busybox\n"
            'RUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK" > /where\n'
        )
        result, _ = do(store, tmp_path / "ctx", df, ssh={"default": str(sock_path)})
        assert read(store, result.image, "/where").strip() == "/run/buildkit/ssh_agent.0"
        assert lookup(store, result.image, "/run/buildkit") is None
    finally:
        server.close()
    with pytest.raises(BuildError, match='no SSH key "default" forwarded'):
        do(store, tmp_path / "x", "FROM busybox\nRUN --mount=type=ssh,required true\n")


def test_cli_secret_from_file_and_env(store: Store, root: Path, tmp_path: Path) -> None:
    store.close()
    secret_file = tmp_path / "token.txt"
    secret_file.write_bytes(SECRET)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN --mount=type=secret,id=a --mount=type=secret,id=b,env=B "
        'test "$(cat /run/secrets/a)" = "$B"\n'
    )
    env = dict(os.environ, MY_B=SECRET.decode())
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "gantry", "--root", str(root), "build", "-q",
         "--secret", f"id=a,src={secret_file}", "--secret", "id=b,env=MY_B", str(ctx)],
        capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr.decode()
    r = gantry(root, "build", "--secret", "id=a,src=/nonexistent", str(ctx))
    assert r.returncode == 1
    assert "failed to read secret a: open /nonexistent" in r.stderr.decode()


def test_flag_parsing(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"file-value")
    environ = {"TOK": "env-value", "OTHER": "o"}
    assert parse_secret_flag(f"id=x,src={f}", environ) == ("x", b"file-value")
    assert parse_secret_flag(f"id=x,source={f}", environ) == ("x", b"file-value")
    assert parse_secret_flag("id=x,env=OTHER", environ) == ("x", b"o")
    assert parse_secret_flag("id=TOK", environ) == ("TOK", b"env-value")  # env wins
    assert parse_secret_flag("type=env,id=TOK", environ) == ("TOK", b"env-value")
    assert parse_secret_flag(f"src={f}", environ) == ("f", b"file-value")
    with pytest.raises(UsageError, match="is not set"):
        parse_secret_flag("id=x,env=NOPE", environ)
    with pytest.raises(UsageError, match="unexpected key"):
        parse_secret_flag("id=x,bogus=1", environ)
    with pytest.raises(UsageError, match="SSH_AUTH_SOCK"):
        parse_ssh_flag("default", {})
    assert parse_ssh_flag(f"k={f}", {}) == ("k", str(f))
    with pytest.raises(UsageError, match="no such file"):
        parse_ssh_flag("default", {"SSH_AUTH_SOCK": str(tmp_path / "none")})
