"""Registry configuration, Range parsing, the rate limiter, htpasswd, the CLI's errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gantry.errors import RegistryError, UsageError
from gantry.registry.config import load, parse_addr, parse_duration
from gantry.registry.htpasswd import Htpasswd, hash_password
from gantry.registry.ranges import parse_range
from gantry.registry.ratelimit import RateLimiter


def test_yaml_config_in_distributions_shape(tmp_path: Path) -> None:
    conf = tmp_path / "c.yml"
    conf.write_text(
        """
version: 0.1
http: {addr: "[::1]:5443", tls: {certificate: cert.pem, key: key.pem}}
storage:
  s3: {bucket: b, regionendpoint: "http://127.0.0.1:9000", accesskey: k, secretkey: s,
       rootdirectory: /reg, chunksize: 10485760}
  delete: {enabled: false}
  maintenance: {readonly: {enabled: true}, uploadpurging: {age: 48h}}
auth:
  htpasswd: {realm: r, path: users}
ratelimit: {rate: 5}
notifications:
  endpoints:
    - {name: a, url: "http://127.0.0.1:1/e", timeout: 500ms, headers: {X-Token: [abc]}}
    - {name: off, url: "http://x", disabled: true}
log: {accesslog: {disabled: true}}
gc: {graceperiod: 10m}
"""
    )
    cfg = load(conf)
    assert cfg.host_port() == ("::1", 5443)
    assert cfg.tls_certificate == tmp_path / "cert.pem"
    assert cfg.storage == "s3" and cfg.s3 is not None
    assert cfg.s3.prefix == "reg" and cfg.s3.chunk_size == 10 << 20 and not cfg.s3.redirect
    assert not cfg.delete_enabled and cfg.readonly and cfg.upload_purge_age == 48 * 3600
    assert cfg.htpasswd is not None and cfg.htpasswd.path == tmp_path / "users"
    assert cfg.rate == 5 and cfg.burst == 10
    assert len(cfg.notifications) == 1 and cfg.notifications[0].timeout == 0.5
    assert cfg.notifications[0].headers == {"X-Token": "abc"}
    assert not cfg.access_log and cfg.gc_grace_period == 600


@pytest.mark.parametrize(
    "text, message",
    [
        ("http: {addr: nope}", "invalid address"),
        ("storage: {s3: {region: x}}", "bucket is required"),
        ("storage: {s3: {bucket: b, chunksize: 10}}", "at least 5 MiB"),
        ("auth: {token: {realm: r}}", "auth.token.service is required"),
        ("gc: {graceperiod: soon}", "invalid duration"),
        ("[1, 2]", "must be a mapping"),
        ("http: [", "invalid YAML"),
    ],
)
def test_bad_config_is_a_usage_error(tmp_path: Path, text: str, message: str) -> None:
    conf = tmp_path / "c.yml"
    conf.write_text(text)
    with pytest.raises(UsageError, match=message):
        load(conf)


def test_durations_and_addresses() -> None:
    assert parse_duration("1h", "x") == 3600 and parse_duration(30, "x") == 30
    assert parse_duration("1.5s", "x") == 1.5 and parse_duration("250ms", "x") == 0.25
    assert parse_addr(":5000") == ("0.0.0.0", 5000)
    with pytest.raises(UsageError):
        parse_addr("127.0.0.1:99999")


def test_parse_range() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-0", 10) == (0, 0)
    assert parse_range("bytes=5-", 10) == (5, 9)
    assert parse_range("bytes=-3", 10) == (7, 9)
    assert parse_range("bytes=-30", 10) == (0, 9)
    assert parse_range("bytes=8-100", 10) == (8, 9)
    assert parse_range("lines=1-2", 10) is None
    assert parse_range("bytes=0-1,4-5", 10) is None
    for bad in ["bytes=10-", "bytes=-0", "bytes=3-2", "bytes=x", "bytes=-", "bytes=0-"]:
        size = 0 if bad == "bytes=0-" else 10
        with pytest.raises(RegistryError) as e:
            parse_range(bad, size)
        assert e.value.status == 416


def test_rate_limiter_refills() -> None:
    rl = RateLimiter(rate=2, burst=2)
    assert rl.take("a", now=0.0) == 0 and rl.take("a", now=0.0) == 0
    assert rl.take("a", now=0.0) == pytest.approx(0.5)
    assert rl.take("b", now=0.0) == 0  # per client
    assert rl.take("a", now=0.5) == 0


def test_htpasswd(tmp_path: Path) -> None:
    f = tmp_path / "h"
    f.write_text(f"# users\nalice:{hash_password('pw', rounds=4)}\n")
    h = Htpasswd(f)
    assert h.verify("alice", "pw") and h.verify("alice", "pw")
    assert not h.verify("alice", "PW") and not h.verify("bob", "pw")
    f.write_text("alice:{SHA}abc\n")
    with pytest.raises(UsageError, match="bcrypt"):
        Htpasswd(f)


def test_serve_cli_errors(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "gantry", "--root", str(tmp_path), "registry", "serve"]
    p = subprocess.run([*base, "--addr", "bad"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stderr.startswith("Error: invalid address 'bad'")
    conf = tmp_path / "c.yml"
    conf.write_text("storage: {s3: {}}")
    p = subprocess.run([*base, "--config", str(conf)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "bucket is required" in p.stderr
