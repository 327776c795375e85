"""Differential test: gantry's formatter against the real docker CLI.

``docker context ls --format`` needs no daemon and runs docker/cli's whole
``--format`` machinery (template, header map, header functions, tabwriter). We
create contexts in a private DOCKER_CONFIG, read the rows docker itself reports
(``--format json``), render the same rows with gantry and compare byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import need
from gantry.cli import formatter
from gantry.errors import TemplateError

pytestmark = pytest.mark.peers

CONTEXTS = [
    ("alpha", "first one", "unix:///tmp/alpha.sock"),
    ("b-wide", "宽字符 wide text", "tcp://127.0.0.1:2375"),
    ("c-empty", "", "unix:///e.sock"),
    ("d-long", "a considerably longer description than the others", "unix:///d.sock"),
]

HEADER = {
    "Name": "NAME",
    "Description": "DESCRIPTION",
    "DockerEndpoint": "DOCKER ENDPOINT",
    "Error": "ERROR",
}


class ContextRow(formatter.Row):
    go_type = "*formatter.clientContextContext"
    json_fields = ("Current", "Description", "DockerEndpoint", "Error", "Name")

    def __init__(self, doc: dict[str, Any]) -> None:
        self.Name: str = doc["Name"]
        self.Description: str = doc["Description"]
        self.DockerEndpoint: str = doc["DockerEndpoint"]
        self.Error: str = doc["Error"]
        self.Current: bool = doc["Current"]


@pytest.fixture(scope="module")
def docker_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    docker = need("docker")
    cfg = tmp_path_factory.mktemp("docker-config")
    env = {**os.environ, "DOCKER_CONFIG": str(cfg), "DOCKER_HOST": "unix:///nonexistent.sock"}
    env.pop("DOCKER_CONTEXT", None)
    for name, desc, host in CONTEXTS:
        subprocess.run(
            [docker, "context", "create", name, "--description", desc, "--docker", f"host={host}"],
            env=env,
            check=True,
            capture_output=True,
        )
    env["GANTRY_TEST_DOCKER"] = docker
    return env


def docker_ls(env: dict[str, str], fmt: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [env["GANTRY_TEST_DOCKER"], "context", "ls", "--format", fmt],
        env=env,
        capture_output=True,
        text=True,
        cwd=Path(env["DOCKER_CONFIG"]),
    )


@pytest.fixture(scope="module")
def rows(docker_env: dict[str, str]) -> list[ContextRow]:
    p = docker_ls(docker_env, "json")
    assert p.returncode == 0, p.stderr
    return [ContextRow(json.loads(line)) for line in p.stdout.splitlines()]


FORMATS = [
    "table {{.Name}}{{if .Current}} *{{end}}\\t{{.Description}}\\t{{.DockerEndpoint}}\\t{{.Error}}",
    "table {{.Name}}\\t{{.Current}}",
    "table {{upper .Name}}\\t{{json .Description}}\\t{{pad .DockerEndpoint 1 1}}|",
    "table {{.Name}}",
    "table {{.Name}}\\t",
    "table {{.Description}}\\t{{.Name}}\\n{{.DockerEndpoint}}",
    "table   {{title .Name}}\\t{{lower .Description}}   ",
    'table {{.Label "a_b-c.d"}}',
    'table {{range split .DockerEndpoint "/"}}{{.}}\\t{{end}}',
    "json",
    "{{json .}}",
    "{{.Name}}: {{if .Current}}current{{else}}-{{end}}",
    "   {{.Name}}   ",
    # (docker's truncate cuts bytes, splitting the wide runes of b-wide into invalid
    # UTF-8; gantry cuts characters, see test_cli_template.py)
    '{{printf "%-10s|" .Name}}{{len .Description}}|{{truncate .Name 3}}',
    "{{.Name}}\\t{{.DockerEndpoint}}",
    '{{range $i, $p := split .DockerEndpoint ":"}}{{if $i}},{{end}}{{$p}}{{end}}',
    "{{.Nope}}",
    "{{.Name}} {{.Description.Size}}",
    "{{upper .Current}}",
    "{{if}}",
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_output_as_docker(
    fmt: str, docker_env: dict[str, str], rows: list[ContextRow]
) -> None:
    want = docker_ls(docker_env, fmt)
    try:
        got = formatter.render(fmt, rows, HEADER)
    except TemplateError as err:
        assert want.returncode != 0, f"docker accepted the format: {want.stdout!r}"
        assert str(err) in want.stderr
        return
    assert want.returncode == 0, want.stderr
    assert got == want.stdout
