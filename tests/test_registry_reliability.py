"""Crashes, races and hostile input against a real ``gantry registry serve`` process."""

from __future__ import annotations

import concurrent.futures
import hashlib
import http.client
import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from test_registry_support import free_port, registry_process, sha

pytestmark = pytest.mark.slow


def request(
    addr: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    host, port = addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def test_kill_mid_chunked_upload_then_resume(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    d = sha(data)
    port = free_port()
    args = ("--data", str(tmp_path / "data"), "-q")
    with registry_process(tmp_path, *args, port=port) as (addr, proc):
        # something committed before the crash must survive it
        status, _, _ = request(addr, "POST", f"/v2/k/blobs/uploads/?digest={sha(b'kept')}", b"kept")
        assert status == 201
        status, h, _ = request(addr, "POST", "/v2/k/blobs/uploads/")
        loc = h["Location"]
        status, h, _ = request(
            addr, "PATCH", loc, data[: 1 << 20], {"Content-Range": f"0-{(1 << 20) - 1}"}
        )
        assert status == 202
        # the second chunk is half sent when the server dies
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(
            f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: {1 << 20}\r\n"
            f"Content-Range: {1 << 20}-{(2 << 20) - 1}\r\n\r\n".encode()
        )
        s.sendall(data[1 << 20 : (1 << 20) + 300000])
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        s.close()
    with registry_process(tmp_path, *args, port=port) as (addr, _):
        status, _, body = request(addr, "GET", f"/v2/k/blobs/{sha(b'kept')}")
        assert status == 200 and body == b"kept"
        status, h, _ = request(addr, "GET", loc)
        assert status == 204
        have = int(h["Range"].split("-")[1]) + 1
        # all of the committed chunk, and whatever prefix of the torn one reached the disk
        assert (1 << 20) <= have <= (1 << 20) + 300000
        status, h, _ = request(
            addr, "PATCH", loc, data[have:], {"Content-Range": f"{have}-{len(data) - 1}"}
        )
        assert status == 202, h
        status, _, body = request(addr, "PUT", f"{loc}?digest={d}")
        assert status == 201, body
        status, _, body = request(addr, "GET", f"/v2/k/blobs/{d}")
        assert status == 200 and body == data
        # a client that prefers to restart can: a fresh upload of the same blob
        status, _, _ = request(addr, "POST", f"/v2/k2/blobs/uploads/?digest={d}", data)
        assert status == 201


def test_eight_clients_push_the_same_blob(tmp_path: Path) -> None:
    data = os.urandom(4 << 20)
    d = sha(data)
    with registry_process(tmp_path, "--data", str(tmp_path / "data"), "-q") as (addr, _):

        def push(i: int) -> int:
            status, h, _ = request(addr, "POST", "/v2/same/blobs/uploads/")
            loc = h["Location"]
            half = len(data) // 2
            status, _, _ = request(
                addr, "PATCH", loc, data[:half], {"Content-Range": f"0-{half - 1}"}
            )
            assert status == 202
            status, _, _body = request(addr, "PUT", f"{loc}?digest={d}", data[half:])
            return status

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert list(pool.map(push, range(8))) == [201] * 8
        _status, _, body = request(addr, "GET", f"/v2/same/blobs/{d}")
        assert body == data
    blob_files = [p for p in (tmp_path / "data" / "blobs").rglob("*") if p.is_file()]
    assert [p.parent.name for p in blob_files] == [d.split(":")[1]]
    assert not list((tmp_path / "data" / "repositories" / "same" / "_uploads").iterdir())


def test_corrupt_blob_refused_and_hostile_manifests(tmp_path: Path) -> None:
    with registry_process(tmp_path, "--data", str(tmp_path / "data"), "-q") as (addr, _):
        good = b"payload"
        bad_digest = sha(b"payloaX")
        status, _, body = request(addr, "POST", f"/v2/h/blobs/uploads/?digest={bad_digest}", good)
        assert status == 400 and json.loads(body)["errors"][0]["code"] == "DIGEST_INVALID"
        status, _, _ = request(addr, "HEAD", f"/v2/h/blobs/{bad_digest}")
        assert status == 404
        ct = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        cases = [
            (b"\xff\xfe not utf8", 400, "MANIFEST_INVALID"),
            (b'{"schemaVersion":2,"schemaVersion":2}', 400, "MANIFEST_INVALID"),
            (b"{" * 100000, 400, "MANIFEST_INVALID"),
            (b" " * (4 * 1024 * 1024 + 1), 413, "MANIFEST_INVALID"),
        ]
        for manifest, want, code in cases:
            status, _, body = request(addr, "PUT", "/v2/h/manifests/t", manifest, ct)
            assert status == want, manifest[:20]
            assert json.loads(body)["errors"][0]["code"] == code
        for bad in ["sha256:xyz", "sha256:" + "0" * 63, "sha999:" + "0" * 64, "sha256:" + "A" * 64]:
            status, _, body = request(addr, "GET", f"/v2/h/blobs/{bad}")
            assert status == 400 and json.loads(body)["errors"][0]["code"] == "DIGEST_INVALID"
            status, _, body = request(addr, "GET", f"/v2/h/manifests/{bad}")
            assert status == 400
        status, _, body = request(addr, "GET", f"/v2/{'a' * 300}/tags/list")
        assert status == 400 and json.loads(body)["errors"][0]["code"] == "NAME_INVALID"
        status, _, body = request(addr, "GET", "/v2/Upper/tags/list")
        assert status == 400 and json.loads(body)["errors"][0]["code"] == "NAME_INVALID"
    # nothing was written outside the data directory
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("registry-")) == [
        "data"
    ]


def test_concurrent_monolithic_pushes_with_sha512(tmp_path: Path) -> None:
    with registry_process(tmp_path, "--data", str(tmp_path / "data"), "-q") as (addr, _):

        def push(i: int) -> None:
            data = os.urandom(100000 + i)
            d = "sha512:" + hashlib.sha512(data).hexdigest()
            status, _, _ = request(addr, "POST", f"/v2/c{i}/blobs/uploads/?digest={d}", data)
            assert status == 201
            status, _, body = request(addr, "GET", f"/v2/c{i}/blobs/{d}")
            assert body == data

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(push, range(16)))


def test_client_disconnect_mid_patch_keeps_a_consistent_prefix(tmp_path: Path) -> None:
    """The server survives; it keeps all it received, and its cached hash state matches
    that, so finishing the upload on the same server yields the right digest."""
    data = os.urandom(6 << 20)
    d = sha(data)
    with registry_process(tmp_path, "--data", str(tmp_path / "data"), "-q") as (addr, _):
        port = int(addr.split(":")[1])
        for _round in range(2):
            status, h, _ = request(addr, "POST", "/v2/dc/blobs/uploads/")
            loc = h["Location"]
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(
                f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            )
            s.sendall(data[: (3 << 20) + 12345])
            time.sleep(0.3)
            s.close()
            time.sleep(0.3)
            status, h, _ = request(addr, "GET", loc)
            assert status == 204
            have = int(h["Range"].split("-")[1]) + 1
            # everything that arrived before the FIN is kept, the part of the body
            # still batched for the writer included
            assert have == (3 << 20) + 12345
            status, _, _ = request(
                addr, "PATCH", loc, data[have:], {"Content-Range": f"{have}-{len(data) - 1}"}
            )
            assert status == 202
            status, _, body = request(addr, "PUT", f"{loc}?digest={d}")
            assert status == 201, body
        status, _, body = request(addr, "GET", f"/v2/dc/blobs/{d}")
        assert body == data
