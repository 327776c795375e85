"""Volumes without containers: Docker's anonymous-volume label (and volumes gantry wrote before
it set one), ``CreatedAt`` in Go's RFC 3339, and ``volume prune``'s ``-a`` warning and its
conflict with ``--filter all=...``, through the real CLI on a fresh root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gantry.containers.volumes import ANONYMOUS_LABEL, Volumes, rfc3339

PROJECT = Path(__file__).resolve().parent.parent


def gantry(root: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, GANTRY_ROOT=str(root), PYTHONPATH=str(PROJECT / "src"))
    return subprocess.run(
        [sys.executable, "-m", "gantry", *args],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def names(root: Path) -> set[str]:
    return {v.name for v in Volumes(root).list()}


def test_a_volume_without_a_name_is_labelled_anonymous(tmp_path: Path) -> None:
    vols = Volumes(tmp_path)
    anon = vols.create(labels={"a": "1"})
    assert anon.anonymous and dict(anon.labels) == {"a": "1", ANONYMOUS_LABEL: ""}
    assert Volumes(tmp_path).get(anon.name).labels == anon.labels  # kept in volume.json
    named = vols.create("named")
    assert not named.anonymous and named.inspect()["Labels"] is None


def test_a_volume_written_before_the_label_reads_as_anonymous(tmp_path: Path) -> None:
    vdir = tmp_path / "volumes" / ("a" * 64)
    (vdir / "_data").mkdir(parents=True)
    (vdir / "volume.json").write_text(
        json.dumps({"created": 1.0, "labels": {}, "options": {}, "anonymous": True})
    )
    vol = Volumes(tmp_path).get("a" * 64)
    assert vol.anonymous and vol.inspect()["Labels"] == {ANONYMOUS_LABEL: ""}
    p = gantry(tmp_path, "volume", "prune", "-f")
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"Deleted Volumes:\n{'a' * 64}\n\nTotal reclaimed space: 0B\n"


def test_prune_takes_any_volume_with_the_label_and_only_those(tmp_path: Path) -> None:
    vols = Volumes(tmp_path)
    vols.create("keep")
    vols.create("marked", labels={ANONYMOUS_LABEL: ""})  # as docker: the label decides
    anon = vols.create().name
    p = gantry(tmp_path, "volume", "prune", "-f")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("Deleted Volumes:\n")
    assert set(p.stdout.splitlines()[1:3]) == {anon, "marked"}
    assert names(tmp_path) == {"keep"}


@pytest.mark.parametrize(
    ("tz", "want"),
    [("UTC", "2023-11-14T22:13:20Z"), ("Asia/Kolkata", "2023-11-15T03:43:20+05:30"),
     ("America/New_York", "2023-11-14T17:13:20-05:00")],
)  # fmt: skip
def test_created_at_is_gos_rfc3339_in_local_time(tz: str, want: str) -> None:
    old = os.environ.get("TZ")
    os.environ["TZ"] = tz
    time.tzset()
    try:
        assert rfc3339(1_700_000_000.4) == want
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def test_volume_inspect_shows_created_at_with_z_in_utc(tmp_path: Path) -> None:
    assert gantry(tmp_path, "volume", "create", "stamp").stdout == "stamp\n"
    env_tz = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    try:
        p = gantry(tmp_path, "volume", "inspect", "stamp")
    finally:
        if env_tz is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = env_tz
    (doc,) = json.loads(p.stdout)
    assert doc["CreatedAt"].endswith("Z") and len(doc["CreatedAt"]) == 20, doc


def test_prune_all_warns_about_all_volumes_and_refuses_the_all_filter(tmp_path: Path) -> None:
    vols = Volumes(tmp_path)
    vols.create("keep")
    anon = vols.create().name
    p = gantry(tmp_path, "volume", "prune", "-a", stdin=b"n\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout == (
        "WARNING! This will remove all local volumes not used by at least one container.\n"
        "Are you sure you want to continue? [y/N] "
    )
    p = gantry(tmp_path, "volume", "prune", "--filter", "all=true", stdin=b"n\n")
    assert p.stdout.startswith("WARNING! This will remove anonymous local volumes ")
    for value in ("1", "false"):  # docker refuses the pair whatever the filter's value
        p = gantry(tmp_path, "volume", "prune", "-a", "--filter", f"all={value}", "-f")
        assert p.returncode == 1
        assert "conflicting options: cannot specify both --all and --filter all=1" in p.stderr
    assert names(tmp_path) == {"keep", anon}
    p = gantry(tmp_path, "volume", "prune", "-a", "-f")
    assert p.returncode == 0, p.stderr
    assert names(tmp_path) == set()
