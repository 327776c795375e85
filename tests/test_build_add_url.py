"""ADD from HTTP(S) URLs against a real HTTP server on 127.0.0.1 (started and stopped here)."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import tarfile
import threading
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest

from gantry.build.builder import BuildOptions, BuildResult, build
from gantry.build.urls import url_filename
from gantry.errors import BuildError
from gantry.store import Store
from test_build_cache import Recorder
from test_build_dockerfiles import lookup, read
from test_build_support import add_busybox, need_root

MODIFIED = 1_500_000_000  # 2017-07-14


class Files:
    """What the server serves: path -> bytes; requests counted."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.requests: list[str] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Files]]:
    files = Files()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            files.requests.append(self.path)
            body = files.data.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Last-Modified", formatdate(MODIFIED, usegmt=True))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def store(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    need_root()
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    s = Store(root)
    add_busybox(s, tmp_path)
    yield s
    s.close()


def do(store: Store, ctx: Path, dockerfile: str) -> tuple[BuildResult, Recorder]:
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    rec = Recorder()
    return build(store, BuildOptions(context=ctx), rec), rec


def test_add_url_names_modes_mtime_and_no_unpacking(
    store: Store, tmp_path: Path, server: tuple[str, Files]
) -> None:
    base, files = server
    files.data["/dl/tool.bin"] = b"#!/bin/sh\necho tool\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("inside.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"hi"))
    files.data["/dl/pkg.tar.gz"] = buf.getvalue()
    df = (
        "FROM busybox\n"
        f"ADD {base}/dl/tool.bin /opt/\n"
        f"ADD --chmod=755 {base}/dl/tool.bin /usr/local/bin/tool\n"
        f"ADD {base}/dl/pkg.tar.gz /pkgs/\n"
    )
    result, _ = do(store, tmp_path / "ctx", df)
    img = result.image
    opt = lookup(store, img, "/opt/tool.bin")
    assert opt is not None and opt.read_bytes() == files.data["/dl/tool.bin"]
    st = os.stat(opt)
    assert st.st_mode & 0o7777 == 0o600
    assert int(st.st_mtime) == MODIFIED
    tool = lookup(store, img, "/usr/local/bin/tool")
    assert tool is not None and os.stat(tool).st_mode & 0o7777 == 0o755
    assert lookup(store, img, "/pkgs/pkg.tar.gz") is not None  # remote archives stay packed
    assert lookup(store, img, "/pkgs/inside.txt") is None
    history = [h.created_by for h in store.config(img).history]
    assert f"ADD {base}/dl/tool.bin /opt/ # buildkit" in history


def test_checksum_verified_and_keys_the_cache(
    store: Store, tmp_path: Path, server: tuple[str, Files]
) -> None:
    base, files = server
    body = b"payload\n"
    files.data["/f.txt"] = body
    good = "sha256:" + hashlib.sha256(body).hexdigest()
    bad = "sha256:" + "0" * 64
    with pytest.raises(BuildError, match=f"digest mismatch {bad}: {good}"):
        do(store, tmp_path / "bad", f"FROM busybox\nADD --checksum={bad} {base}/f.txt /f.txt\n")
    df = f"FROM busybox\nADD --checksum={good} {base}/f.txt /f.txt\n"
    result, _ = do(store, tmp_path / "ok", df)
    assert read(store, result.image, "/f.txt") == "payload\n"
    files.requests.clear()
    _, rec = do(store, tmp_path / "ok", df)
    assert rec.ran == [] and files.requests == []  # cached by checksum: no download


def test_without_checksum_content_keys_the_cache(
    store: Store, tmp_path: Path, server: tuple[str, Files]
) -> None:
    base, files = server
    files.data["/v.txt"] = b"one\n"
    df = f"FROM busybox\nADD {base}/v.txt /v.txt\nRUN cat /v.txt > /copy\n"
    do(store, tmp_path / "c", df)
    _, rec = do(store, tmp_path / "c", df)
    assert rec.ran == []  # same bytes: hit (downloaded again to know)
    files.data["/v.txt"] = b"two\n"
    result, rec = do(store, tmp_path / "c", df)
    assert len(rec.ran) == 2
    assert read(store, result.image, "/copy") == "two\n"
    with pytest.raises(BuildError, match="invalid response status 404"):
        do(store, tmp_path / "d", f"FROM busybox\nADD {base}/missing /m\n")
    assert not list((store.root / "tmp").glob("add-*"))


def test_url_filename() -> None:
    assert url_filename("https://example.com/a/b/tool.tar.gz?x=1") == "tool.tar.gz"
    assert url_filename("https://example.com/") == "__unnamed__"
    assert url_filename("https://example.com") == "__unnamed__"
    assert url_filename("https://example.com/dir/") == "dir"
    assert url_filename("https://example.com/a%20b") == "a b"
