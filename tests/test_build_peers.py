"""Built images checked from outside: podman loads and runs what ``gantry save`` wrote of
them, skopeo reads their configs (from a save archive and from ``-o type=oci``).
Private podman storage on /dev/shm."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import need
from gantry.store import Store
from test_build_support import add_busybox, gantry, need_root

pytestmark = [pytest.mark.slow, pytest.mark.peers]

APP = """\
FROM busybox AS build
WORKDIR /src
COPY main.sh .
RUN chmod +x main.sh && echo built > /src/stamp

FROM busybox
LABEL org.example.app=demo
ENV APP_HOME=/app PORT=8080
WORKDIR /app
COPY requirements.txt .
RUN wc -l requirements.txt > /app/deps
COPY --chown=1000:1000 --from=build /src/ /app/
EXPOSE 8080
USER 1000:1000
CMD ["sh", "-c", "./main.sh"]
"""


def run(*args: str) -> str:
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{' '.join(args)}: {r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    need_root()
    d = Path(tempfile.mkdtemp(prefix="gantry-build-peers-", dir="/dev/shm"))
    try:
        yield d
    finally:
        if (d / "podman").exists():
            subprocess.run([*_podman(d), "rm", "-af"], capture_output=True, timeout=120)
        shutil.rmtree(d, ignore_errors=True)


def _podman(work: Path) -> list[str]:
    return [
        need("podman"),
        "--root", str(work / "podman" / "root"),
        "--runroot", str(work / "podman" / "run"),
        "--storage-driver", "vfs",
        "--cgroup-manager", "cgroupfs",
        "--events-backend", "file",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def built(work: Path) -> Path:
    """A gantry root holding app:1 built from APP."""
    root = work / "gantry"
    with Store(root) as s:
        add_busybox(s, work)
    ctx = work / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(APP)
    (ctx / "main.sh").write_text('#!/bin/sh\necho "app on $PORT as $(id -u) $(cat /app/deps)"\n')
    (ctx / "requirements.txt").write_text("flask\nrequests\n")
    r = gantry(root, "build", "-q", "-t", "app:1", str(ctx))
    assert r.returncode == 0, r.stderr.decode()
    return root


def test_podman_runs_a_saved_build(work: Path, built: Path) -> None:
    archive = work / "app.tar"
    r = gantry(built, "save", "-o", str(archive), "app:1")
    assert r.returncode == 0, r.stderr.decode()
    podman = _podman(work)
    run(*podman, "load", "-i", str(archive))
    out = run(*podman, "run", "--rm", "--net=none", "app:1")
    assert out.strip() == "app on 8080 as 1000 2 requirements.txt"
    with Store(built) as s:
        gantry_id = str(s.resolve("app:1").id)
    podman_id = run(*podman, "image", "inspect", "--format", "{{.Id}}", "app:1").strip()
    assert "sha256:" + podman_id == gantry_id


def test_skopeo_reads_the_config(work: Path, built: Path) -> None:
    skopeo = need("skopeo")
    archive = work / "app-skopeo.tar"
    assert gantry(built, "save", "-o", str(archive), "app:1").returncode == 0
    cfg = json.loads(run(skopeo, "inspect", "--config", f"docker-archive:{archive}"))
    c = cfg["config"]
    assert c["User"] == "1000:1000"
    assert c["WorkingDir"] == "/app"
    assert c["Cmd"] == ["sh", "-c", "./main.sh"]
    assert "APP_HOME=/app" in c["Env"] and "PORT=8080" in c["Env"]
    assert c["ExposedPorts"] == {"8080/tcp": {}}
    assert c["Labels"] == {"org.example.app": "demo"}
    created_by = [h.get("created_by", "") for h in cfg["history"]]
    assert "RUN /bin/sh -c wc -l requirements.txt > /app/deps # buildkit" in created_by
    assert all(h.get("comment") == "buildkit.dockerfile.v0" for h in cfg["history"][2:])
    layers = sum(1 for h in cfg["history"] if not h.get("empty_layer"))
    assert layers == len(cfg["rootfs"]["diff_ids"])
    # the same image through -o type=oci
    oci = work / "app-oci.tar"
    r = gantry(built, "build", "-q", "-t", "app:1", "-o", f"type=oci,dest={oci}", str(work / "ctx"))
    assert r.returncode == 0, r.stderr.decode()
    inspected = json.loads(run(skopeo, "inspect", f"oci-archive:{oci}"))
    assert inspected["Labels"] == {"org.example.app": "demo"}
    assert len(inspected["Layers"]) == layers
