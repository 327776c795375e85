"""`gantry registry serve` as a user starts it: the access log and the plain-HTTP warning."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gantry.cli.registry import _loopback
from test_registry_support import registry_process


def _log_lines(root: Path, port: str) -> list[str]:
    return (root / f"registry-{port}.log").read_text().splitlines()


def test_access_log_is_one_json_object_per_request(tmp_path: Path) -> None:
    with registry_process(tmp_path) as (addr, _proc):
        req = urllib.request.Request(
            f"http://{addr}/v2/no/such/manifests/latest", headers={"User-Agent": "probe/1"}
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 404
        port = addr.rsplit(":", 1)[1]
        deadline = time.monotonic() + 10
        records: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            records = [
                json.loads(line) for line in _log_lines(tmp_path, port) if line.startswith("{")
            ]
            if any(r.get("user_agent") == "probe/1" for r in records):
                break
            time.sleep(0.05)
    (rec,) = [r for r in records if r.get("user_agent") == "probe/1"]
    assert rec["method"] == "GET"
    assert rec["path"] == "/v2/no/such/manifests/latest"
    assert rec["status"] == 404
    assert rec["remote"] == "127.0.0.1"
    assert isinstance(rec["duration_ms"], float | int) and rec["duration_ms"] >= 0
    assert str(rec["time"]).endswith("Z")
    lines = _log_lines(tmp_path, port)
    assert any(line.startswith("gantry registry listening on http://127.0.0.1:") for line in lines)
    assert not any("WARNING" in line for line in lines)  # loopback: plain HTTP is expected


def test_quiet_turns_the_access_log_off(tmp_path: Path) -> None:
    with registry_process(tmp_path, "-q") as (addr, _proc):
        with urllib.request.urlopen(f"http://{addr}/v2/", timeout=10) as r:
            assert r.status == 200
        port = addr.rsplit(":", 1)[1]
    assert not [line for line in _log_lines(tmp_path, port) if line.startswith("{")]


@pytest.mark.parametrize(
    ("addr", "loopback"),
    [
        ("127.0.0.1:5000", True),
        ("127.9.9.9:5000", True),
        ("localhost:5000", True),
        ("[::1]:5000", True),
        ("0.0.0.0:5000", False),
        (":5000", False),
        ("[::]:5000", False),
        ("192.168.1.10:5000", False),
        ("registry.example.com:5000", False),
    ],
)
def test_plain_http_warning_is_for_addresses_beyond_loopback(addr: str, loopback: bool) -> None:
    assert _loopback(addr) is loopback
