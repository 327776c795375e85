"""Registry operations without the store: inspect --remote, tag --remote, search, and
the `image copy` / `search` commands."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from gantry.cli import remote as cli_remote
from gantry.distribution import RegistryClient, RetryPolicy, push
from gantry.distribution.remote import inspect_remote, search, split_search_term, tag_remote
from gantry.errors import RegistryError, UsageError
from gantry.oci import mediatypes as mt
from gantry.oci.descriptor import Descriptor
from gantry.oci.manifest import Index
from gantry.oci.platform import Platform
from gantry.store import Store
from test_distribution_support import RegistryThread, image_blobs, make_image, random_layer, sha

FAST = RetryPolicy(attempts=6, base=0.01, cap=0.05)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryThread]:
    with RegistryThread(tmp_path / "registry") as r:
        yield r


def seeded(tmp_path: Path, addr: str, name: str = "t/app:1"):
    with Store(tmp_path / "src") as src:
        img = make_image(src, [random_layer(20_000, seed=i) for i in range(2)], f"{addr}/{name}")
        push(src, f"{addr}/{name}", client=RegistryClient(addr, retry=FAST))
        return img, src.manifest_bytes(img)


def multi(addr: str) -> tuple[bytes, list[Descriptor]]:
    c = RegistryClient(addr, retry=FAST)
    descs = []
    for i, arch in enumerate(["amd64", "arm64"]):
        layers = [random_layer(10_000, seed=40 + i)]
        config, mbody, m = image_blobs(layers, arch=arch)
        for blob in [config, *layers]:
            loc, _ = c.start_upload("t/multi")
            assert loc is not None
            c.finish_upload("t/multi", loc, sha(blob), blob, len(blob))
        c.put_manifest("t/multi", sha(mbody), mbody, m.media_type)
        descs.append(
            Descriptor(m.media_type, sha(mbody), len(mbody), platform=Platform("linux", arch))
        )
    ibody = Index(manifests=tuple(descs), media_type=mt.OCI_INDEX).to_json()
    c.put_manifest("t/multi", "v1", ibody, mt.OCI_INDEX)
    return ibody, descs


@pytest.mark.slow
@pytest.mark.peers
def test_inspect_remote_like_skopeo(tmp_path: Path, registry: RegistryThread):
    _img, body = seeded(tmp_path, registry.addr)
    client = RegistryClient(registry.addr, retry=FAST)
    info = inspect_remote(f"{registry.addr}/t/app:1", client=client).to_dict()
    m = json.loads(body)
    assert info["Name"] == f"{registry.addr}/t/app"
    assert info["Digest"] == sha(body)
    assert info["RepoTags"] == ["1"]
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert info["Created"] == "2024-01-01T00:00:00Z"
    assert info["Layers"] == [d["digest"] for d in m["layers"]]
    assert info["LayersData"][0]["Size"] == m["layers"][0]["size"]
    assert "Platforms" not in info
    # the same fields skopeo prints, with the same values
    p = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{registry.addr}/t/app:1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    theirs = json.loads(p.stdout)
    # (LayersData came with skopeo 1.6; this one may predate it)
    assert {k: v for k, v in info.items() if k not in theirs} in (
        {},
        {"LayersData": info["LayersData"]},
    )
    assert {k: info[k] for k in theirs} == theirs


def test_inspect_remote_index_lists_platforms(tmp_path: Path, registry: RegistryThread):
    ibody, descs = multi(registry.addr)
    client = RegistryClient(registry.addr, retry=FAST)
    info = inspect_remote(
        f"{registry.addr}/t/multi:v1", platform="linux/arm64", client=client, tags=False
    ).to_dict()
    assert info["Digest"] == sha(ibody)
    assert info["ManifestDigest"] == descs[1].digest
    assert info["Architecture"] == "arm64"
    assert [p["platform"]["architecture"] for p in info["Platforms"]] == ["amd64", "arm64"]
    assert info["RepoTags"] == []
    with pytest.raises(RegistryError, match="no matching manifest for linux/s390x"):
        inspect_remote(f"{registry.addr}/t/multi:v1", platform="linux/s390x", client=client)


def test_tag_remote_same_repo_and_other_repo(tmp_path: Path, registry: RegistryThread):
    _img, body = seeded(tmp_path, registry.addr)
    client = RegistryClient(registry.addr, retry=FAST)
    assert tag_remote(f"{registry.addr}/t/app:1", "stable", client=client) == sha(body)
    assert client.get_manifest("t/app", "stable")[0] == body
    assert tag_remote(f"{registry.addr}/t/app:1", f"{registry.addr}/u/app:9", client=client) == sha(
        body
    )
    assert client.get_manifest("u/app", "9")[0] == body
    ibody, _ = multi(registry.addr)
    tag_remote(f"{registry.addr}/t/multi:v1", "latest", client=client)
    assert client.get_manifest("t/multi", "latest")[0] == ibody
    with pytest.raises(UsageError, match="one registry"):
        tag_remote(f"{registry.addr}/t/app:1", "other.example:5000/t/app:1", client=client)


def test_search_uses_the_catalog(tmp_path: Path, registry: RegistryThread):
    seeded(tmp_path, registry.addr, "team/web:1")
    seeded(tmp_path, registry.addr, "web:1")
    seeded(tmp_path, registry.addr, "db:1")
    client = RegistryClient(registry.addr, retry=FAST)
    names = [r.name for r in search(f"{registry.addr}/web", client=client)]
    assert names == [f"{registry.addr}/web", f"{registry.addr}/team/web"]
    assert len(search(f"{registry.addr}/web", limit=1, client=client)) == 1
    assert split_search_term("busybox") == ("docker.io", "busybox")
    assert split_search_term("localhost/x") == ("localhost", "x")
    with pytest.raises(UsageError, match="outside the range"):
        search("x", limit=0)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gantry", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_commands(tmp_path: Path, registry: RegistryThread):
    _img, body = seeded(tmp_path, registry.addr, "web:1")
    addr = registry.addr
    p = run("search", f"{addr}/we")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    assert lines[1].split() == [f"{addr}/web", "0"]
    p = run("search", "--format", "{{.Name}}: {{.StarCount}}", f"{addr}/we")
    assert p.stdout == f"{addr}/web: 0\n"
    p = run("search", "--filter", "nope=1", f"{addr}/we")
    assert p.returncode != 0 and "invalid filter 'nope'" in p.stderr
    p = run("image", "copy", "-q", f"{addr}/web:1", f"oci:{tmp_path / 'o'}:v1")
    assert p.returncode == 0, p.stderr
    assert p.stdout == sha(body) + "\n"
    p = run("image", "copy", f"oci:{tmp_path / 'o'}:v1", f"docker://{addr}/copied:2")
    assert p.returncode == 0, p.stderr
    assert f"Copied oci:{tmp_path / 'o'}:v1 to docker://{addr}/copied:2" in p.stdout
    p = run("image", "inspect", "--remote", f"{addr}/copied:2")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)[0]["Digest"] == sha(body)
    p = run("tag", "--remote", f"{addr}/copied:2", "3")
    assert p.returncode == 0, p.stderr
    assert RegistryClient(addr).get_manifest("copied", "3")[0] == body


def test_search_v1_api_and_dockers_table(tmp_path: Path):
    """A registry with Docker Hub's v1 search API: its rows, Docker's columns and filters."""
    import http.server
    import threading

    rows = [
        {
            "name": "redis",
            "description": "Redis is an open source key-value store that "
            "functions as a data structure server.",
            "star_count": 12000,
            "is_official": True,
        },
        {
            "name": "bitnami/redis",
            "description": "Bitnami\nRedis",
            "star_count": 300,
            "is_official": False,
        },
    ]

    class Hub(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"{}"
            if self.path.startswith("/v1/search?"):
                assert "q=redis" in self.path
                body = json.dumps({"num_results": 2, "results": rows}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    addr = f"127.0.0.1:{srv.server_address[1]}"
    try:
        found = search(f"{addr}/redis", client=RegistryClient(addr, retry=FAST))
        assert [(r.name, r.star_count, r.is_official) for r in found] == [
            ("redis", 12000, True),
            ("bitnami/redis", 300, False),
        ]
        r = CliRunner().invoke(cli_remote.search, [f"{addr}/redis"])
        assert r.exit_code == 0, r.output
        lines = r.output.splitlines()
        assert lines[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
        assert "Redis is an open source key-value store that…" in lines[1]
        assert lines[1].split()[-2:] == ["12000", "[OK]"]
        assert "Bitnami Redis" in lines[2]
        r = CliRunner().invoke(
            cli_remote.search, ["-f", "is-official=true", "--format", "{{.Name}}", f"{addr}/redis"]
        )
        assert r.output == "redis\n"
        r = CliRunner().invoke(
            cli_remote.search, ["-f", "stars=301", "--no-trunc", f"{addr}/redis"]
        )
        assert "functions as a data structure server." in r.output
        assert "bitnami" not in r.output
    finally:
        srv.shutdown()
        srv.server_close()
