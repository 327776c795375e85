"""``gantry manifest inspect`` against the registry, compared with the docker CLI's output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gantry.distribution import push
from gantry.store import Store
from test_distribution_support import RegistryThread, make_image, random_layer


def gantry(*args: str) -> str:
    p = subprocess.run(
        [sys.executable, "-m", "gantry", *args], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.mark.slow
@pytest.mark.peers
def test_manifest_inspect_raw_and_verbose(tmp_path: Path) -> None:
    with RegistryThread(tmp_path / "reg") as reg, Store(tmp_path / "src") as src:
        img = make_image(src, [random_layer(1000, 3)], f"{reg.addr}/m/x:1", docker=True)
        push(src, f"{reg.addr}/m/x:1")
        raw = gantry("manifest", "inspect", f"{reg.addr}/m/x:1")
        assert json.loads(raw) == json.loads(src.manifest_bytes(img))
        v = json.loads(gantry("manifest", "inspect", "-v", f"{reg.addr}/m/x:1"))
        assert v["Descriptor"]["digest"] == img.manifest_digest
        assert v["Descriptor"]["platform"] == {"architecture": "amd64", "os": "linux"}
        assert "SchemaV2Manifest" in v
        if shutil.which("docker") is None:
            pytest.fail("the docker CLI is not installed; run `make setup`")
        env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "dc")}
        for extra in ([], ["-v"]):
            theirs = subprocess.run(
                ["docker", "manifest", "inspect", "--insecure", *extra, f"{reg.addr}/m/x:1"],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
            )
            assert theirs.returncode == 0, theirs.stderr
            ours = gantry("manifest", "inspect", *extra, f"{reg.addr}/m/x:1")
            assert ours == theirs.stdout
