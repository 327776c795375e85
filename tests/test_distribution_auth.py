"""Credentials (Docker config.json, helpers), challenges, Basic and Bearer auth, login/logout."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gantry.distribution import ConfigFile, Credential, RegistryClient, RetryPolicy, pull, push
from gantry.distribution.auth import parse_challenges
from gantry.distribution.client import is_insecure
from gantry.distribution.credentials import DOCKER_HUB_KEY, server_key
from gantry.errors import RegistryError
from gantry.registry.config import HtpasswdConfig, TokenAuthConfig, TokenIssuerConfig
from gantry.registry.htpasswd import hash_password
from gantry.store import Store
from test_distribution_support import RegistryThread, make_image, random_layer

FAST = RetryPolicy(attempts=3, base=0.01, cap=0.02)


def test_parse_challenges() -> None:
    cs = parse_challenges(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push", Basic realm="x\\"y"'
    )
    assert [c.scheme for c in cs] == ["bearer", "basic"]
    assert cs[0].realm == "https://auth.example/token"
    assert cs[0].params["scope"] == "repository:a/b:pull,push"
    assert cs[1].params["realm"] == 'x"y'
    assert parse_challenges("Basic realm=plain")[0].realm == "plain"


def test_server_keys_and_insecure_rule() -> None:
    assert server_key("docker.io") == DOCKER_HUB_KEY
    assert server_key("https://index.docker.io/v1/") == DOCKER_HUB_KEY
    assert server_key("https://reg.example:5000/v2/") == "reg.example:5000"
    assert is_insecure("127.0.0.1:5000") and is_insecure("localhost:1") and is_insecure("[::1]:5")
    assert not is_insecure("reg.example:5000")
    assert is_insecure("10.1.2.3:5000", ["10.0.0.0/8"])
    assert is_insecure("reg.example:5000", ["reg.example:5000"])


def test_config_file_roundtrip_keeps_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "psFormat": "table {{.ID}}",
                "auths": {
                    "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()}
                },
            }
        )
    )
    cf = ConfigFile(path)
    assert cf.get("docker.io") == Credential("hub", "pw")
    cf.store("127.0.0.1:5000", Credential("u", "p:w"))
    again = ConfigFile(path)
    assert again.get("http://127.0.0.1:5000") == Credential("u", "p:w")
    assert again.data["psFormat"] == "table {{.ID}}"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert again.erase("127.0.0.1:5000")
    assert not ConfigFile(path).get("127.0.0.1:5000")
    assert not again.erase("127.0.0.1:5000")


def test_credential_helper_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real docker-credential-* program speaking the helper protocol over stdin/stdout."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    db = tmp_path / "secrets.json"
    helper = bindir / "docker-credential-testing"
    helper.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"db = {str(db)!r}\n"
        "try:\n    data = json.load(open(db))\nexcept FileNotFoundError:\n    data = {}\n"
        "action = sys.argv[1]\n"
        "if action == 'store':\n"
        "    d = json.load(sys.stdin); data[d['ServerURL']] = d; json.dump(data, open(db, 'w'))\n"
        "elif action == 'get':\n"
        "    key = sys.stdin.read().strip()\n"
        "    if key not in data:\n        print('credentials not found in native keychain'); sys.exit(1)\n"
        "    print(json.dumps(data[key]))\n"
        "elif action == 'erase':\n"
        "    data.pop(sys.stdin.read().strip(), None); json.dump(data, open(db, 'w'))\n"
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"credHelpers": {"reg.example": "testing"}}))
    cf = ConfigFile(path)
    assert not cf.get("reg.example")
    assert cf.store("reg.example", Credential("u", "secret")) == "testing"
    assert json.loads(db.read_text())["reg.example"]["Secret"] == "secret"
    assert "secret" not in path.read_text()
    assert ConfigFile(path).get("reg.example") == Credential("u", "secret")
    assert ConfigFile(path).erase("reg.example")
    assert not ConfigFile(path).get("reg.example")


def _htpasswd(tmp_path: Path) -> Path:
    p = tmp_path / "htpasswd"
    p.write_text(f"alice:{hash_password('alicepw', rounds=4)}\n")
    return p


def gantry(
    args: list[str], env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gantry", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


@pytest.mark.slow
def test_basic_auth_login_pull_push_logout(tmp_path: Path) -> None:
    reg = RegistryThread(tmp_path / "data", htpasswd=HtpasswdConfig(path=_htpasswd(tmp_path)))
    with reg:
        addr = reg.addr
        with Store(tmp_path / "src") as src:
            make_image(src, [random_layer(10_000, 1)], f"{addr}/a/img:1")
            with pytest.raises(RegistryError) as e:
                push(
                    src,
                    f"{addr}/a/img:1",
                    client=RegistryClient(addr, credential=Credential(), retry=FAST),
                )
            assert e.value.status == 401
            push(
                src,
                f"{addr}/a/img:1",
                client=RegistryClient(addr, credential=Credential("alice", "alicepw")),
            )
        env = {"DOCKER_CONFIG": str(tmp_path / "dc"), "GANTRY_ROOT": str(tmp_path / "dst")}
        bad = gantry(["login", addr, "-u", "alice", "--password-stdin"], env, "wrong\n")
        assert bad.returncode == 1
        assert bad.stderr.startswith(
            f"Error: login attempt to http://{addr}/v2/ failed with status: 401"
        )
        denied = gantry(["pull", f"{addr}/a/img:1"], env)
        assert denied.returncode == 1
        assert f"pull access denied for {addr}/a/img" in denied.stderr
        ok = gantry(["login", addr, "-u", "alice", "--password-stdin"], env, "alicepw\n")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout == "Login Succeeded\n"
        assert "WARNING! Your password will be stored unencrypted" in ok.stderr
        auths = json.loads((tmp_path / "dc" / "config.json").read_text())["auths"]
        assert base64.b64decode(auths[addr]["auth"]) == b"alice:alicepw"
        pulled = gantry(["pull", "-q", f"{addr}/a/img:1"], env)
        assert pulled.returncode == 0, pulled.stderr
        assert pulled.stdout == f"{addr}/a/img:1\n"
        out = gantry(["logout", addr], env)
        assert out.stdout == f"Removing login credentials for {addr}\n"
        assert gantry(["logout", addr], env).stdout == f"Not logged in to {addr}\n"


def _keys(d: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    priv, pub = d / "k.pem", d / "p.pem"
    priv.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return priv, pub


POLICY = """
- account: alice
  name: "alice/*"
  actions: [pull, push]
- account: "*"
  name: "*"
  actions: [pull]
- account: anonymous
  name: "alice/*"
  actions: [pull]
"""


def test_bearer_tokens_per_scope(tmp_path: Path) -> None:
    priv, pub = _keys(tmp_path)
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    reg = RegistryThread(tmp_path / "data")
    reg.cfg.token_auth = TokenAuthConfig(
        realm=f"http://{reg.addr}/token", service="svc", issuer="iss", rootcertbundle=pub
    )
    reg.cfg.token_issuer = TokenIssuerConfig(
        key=priv, issuer="iss", service="svc", htpasswd=_htpasswd(tmp_path), policy=policy
    )
    with reg:
        addr = reg.addr
        alice = RegistryClient(addr, credential=Credential("alice", "alicepw"), retry=FAST)
        with Store(tmp_path / "src") as src:
            img = make_image(src, [random_layer(10_000, 2)], f"{addr}/alice/app:1")
            push(src, f"{addr}/alice/app:1", client=alice)
            alice.check_login()
            with pytest.raises(RegistryError) as e:
                RegistryClient(
                    addr, credential=Credential("alice", "nope"), retry=FAST
                ).check_login()
            assert "401" in str(e.value)
            src.tag(img, f"{addr}/other/app:1")
            with pytest.raises(RegistryError) as e:
                push(src, f"{addr}/other/app:1", client=alice)
            assert e.value.status in (401, 403)
            assert "\n" not in str(e.value)
        # anonymous pull is allowed by the policy: an anonymous token
        with Store(tmp_path / "dst") as dst:
            r = pull(
                dst, f"{addr}/alice/app:1", client=RegistryClient(addr, credential=Credential())
            )
            assert r.image.id == img.id
