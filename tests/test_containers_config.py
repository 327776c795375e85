"""Docker's merge rules, status strings, json-file logs, names: no runc needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gantry.containers import names
from gantry.containers.config import (
    CreateOptions,
    container_settings,
    entrypoint_and_cmd,
    merge_env,
    parse_restart,
    path_and_args,
)
from gantry.containers.logs import JsonLogWriter, format_time, parse_time, read_logs
from gantry.containers.state import Container, status_text
from gantry.errors import UsageError

IMG = {"Entrypoint": ["/entry.sh"], "Cmd": ["serve", "--port", "80"]}


@pytest.mark.parametrize(
    ("image", "command", "entrypoint", "expected"),
    [
        # nothing given: the image's entrypoint and cmd
        (IMG, [], None, (["/entry.sh"], ["serve", "--port", "80"])),
        # a command replaces the image's Cmd, keeps its Entrypoint
        (IMG, ["debug"], None, (["/entry.sh"], ["debug"])),
        # --entrypoint drops the image's Cmd
        (IMG, [], "sh", (["sh"], None)),
        (IMG, ["-c", "id"], "sh", (["sh"], ["-c", "id"])),
        # --entrypoint "" resets it; the image's Cmd is not used either
        (IMG, ["echo", "x"], "", (None, ["echo", "x"])),
        # the entrypoint string is one argument, never split
        ({}, [], "sh -c", (["sh -c"], None)),
        ({"Cmd": ["sh"]}, [], None, (None, ["sh"])),
    ],
)
def test_entrypoint_and_cmd_rules(image, command, entrypoint, expected) -> None:  # type: ignore[no-untyped-def]
    assert entrypoint_and_cmd(image, command, entrypoint) == expected


def test_no_command_is_an_error() -> None:
    with pytest.raises(UsageError, match="No command specified"):
        entrypoint_and_cmd({}, [], None)
    with pytest.raises(UsageError, match="No command specified"):
        entrypoint_and_cmd(IMG, [], "")


def test_path_and_args() -> None:
    assert path_and_args(["/entry.sh"], ["a", "b"]) == ("/entry.sh", ["a", "b"])
    assert path_and_args(None, ["sh", "-c", "x"]) == ("sh", ["-c", "x"])


def test_env_merge_replaces_by_key_and_keeps_order() -> None:
    base = ["PATH=/bin", "A=1", "B=2"]
    assert merge_env(base, ["A=9", "C=3", "NOVALUE"]) == ["PATH=/bin", "A=9", "B=2", "C=3"]


def test_restart_policies() -> None:
    assert parse_restart("no") == ("no", 0)
    assert parse_restart("on-failure:3") == ("on-failure", 3)
    assert parse_restart("unless-stopped") == ("unless-stopped", 0)
    for bad in ("sometimes", "always:3", "on-failure:x", "on-failure:-1"):
        with pytest.raises(UsageError):
            parse_restart(bad)


def test_settings_in_dockers_shape() -> None:
    img = {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "ExposedPorts": {"80/tcp": {}},
           "StopSignal": "SIGQUIT", "WorkingDir": "/app", "Labels": {"a": "1"}}  # fmt: skip
    s = container_settings(
        CreateOptions(
            image="x",
            env=["A=2"],
            publish=["8080:80", "53/udp"],
            labels={"b": "2"},
            restart="on-failure:2",
            memory=64 << 20,
            nano_cpus=500_000_000,
        ),
        img,
        container_id="ab" * 32,
    )
    cfg, hc = s["Config"], s["HostConfig"]
    assert cfg["Hostname"] == "abababababab"
    assert cfg["Env"] == ["PATH=/bin", "A=2"]
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["StopSignal"] == "SIGQUIT" and cfg["WorkingDir"] == "/app"
    assert cfg["Labels"] == {"a": "1", "b": "2"}
    assert hc["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "", "HostPort": ""}],
    }
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert hc["Memory"] == 64 << 20 and hc["NanoCpus"] == 500_000_000
    assert s["Path"] == "sh" and s["Args"] == []
    with pytest.raises(UsageError, match="Conflicting options: --restart and --rm"):
        container_settings(CreateOptions(image="x", restart="always", auto_remove=True), img,
                           container_id="ab" * 32)  # fmt: skip
    with pytest.raises(UsageError, match="needs to be an absolute path"):
        container_settings(CreateOptions(image="x", workdir="rel"), img, container_id="ab" * 32)


def _c(state: str, **kw: object) -> Container:
    return Container(id="a" * 64, name="n", image_id="", image_ref="", chain_id=None,
                     state=state, created=0.0, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_status_strings() -> None:
    now = 10_000.0
    assert status_text(_c("created"), now) == "Created"
    assert status_text(_c("running", started=now - 0.3), now) == "Up Less than a second"
    assert status_text(_c("running", started=now - 3), now) == "Up 3 seconds"
    assert status_text(_c("running", started=now - 90), now) == "Up About a minute"
    assert (
        status_text(_c("running", started=now - 3, health={"Status": "healthy"}), now)
        == "Up 3 seconds (healthy)"
    )
    assert status_text(_c("paused", started=now - 120), now) == "Up 2 minutes (Paused)"
    assert (
        status_text(_c("exited", finished=now - 120, exit_code=0), now)
        == "Exited (0) 2 minutes ago"
    )
    assert (
        status_text(_c("restarting", finished=now - 1, exit_code=1), now)
        == "Restarting (1) 1 second ago"
    )
    assert status_text(_c("dead"), now) == "Dead"
    assert status_text(_c("removing"), now) == "Removal In Progress"


def test_json_file_log_lines_and_reader(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    w = JsonLogWriter(log)
    w.write("stdout", b"one\ntw")
    w.write("stderr", b"err\n")
    w.write("stdout", b"o\nthree")
    w.write("stdout", b"x" * 20000 + b"\n")
    w.close()
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(d["stream"], d["log"][:6]) for d in lines] == [
        ("stdout", "one\n"),
        ("stderr", "err\n"),
        ("stdout", "two\n"),
        ("stdout", "threex"),  # a 16 KiB piece: Docker splits long lines
        ("stdout", "x" * 6),
    ]
    assert len(lines[3]["log"]) == 16384
    entries = list(read_logs(log))
    assert "".join(e.text for e in entries if e.stream == "stdout") == (
        "one\ntwo\nthree" + "x" * 20000 + "\n"
    )
    assert [e.text for e in read_logs(log, tail=2)] == [lines[3]["log"], lines[4]["log"]]
    assert list(read_logs(log, tail=0)) == []
    cut = entries[2].time_ns
    assert next(e.text for e in read_logs(log, since_ns=cut)) == "two\n"


def test_time_format_round_trip() -> None:
    ns = 1_700_000_000_123_400_000
    assert format_time(ns) == "2023-11-14T22:13:20.1234Z"
    assert format_time(ns, fixed=True) == "2023-11-14T22:13:20.123400000Z"
    assert parse_time(format_time(ns)) == ns
    assert parse_time("2023-11-14T23:13:20.5+01:00") == 1_700_000_000_500_000_000


def test_names() -> None:
    n = names.random_name()
    adj, _, surname = n.partition("_")
    assert adj in names.ADJECTIVES and surname in names.SURNAMES
    assert names.random_name(1)[-1].isdigit()
    assert len(names.new_id()) == 64
    assert names.valid_name("web-1.a_b") and not names.valid_name("x")  # 2+ characters
    assert not names.valid_name("bad name") and not names.valid_name("-x")
