"""Bearer tokens in the registry client: one token per scope (cached), refreshed when it
expires, and credentials from ``credsStore`` (a real ``docker-credential-*`` program).

The registry is gantry's, with gantry's own token service; the challenge's realm points
at a counting proxy in front of that service, so every token request is seen.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gantry.distribution import Credential, RegistryClient, RetryPolicy, pull, push
from gantry.registry.config import TokenAuthConfig, TokenIssuerConfig
from gantry.store import Image, Store
from test_distribution_auth import _htpasswd, _keys
from test_distribution_support import (
    FaultProxy,
    RegistryThread,
    free_port,
    make_image,
    random_layer,
)
from test_registry_auth import (
    ISSUER,
    SERVICE,
    certificate_for,
    distribution_with_tokens,
    write_keys,
)

FAST = RetryPolicy(attempts=3, base=0.01, cap=0.02)

POLICY = """
- account: alice
  name: "alice/*"
  actions: [pull, push]
"""


@dataclass
class TokenRegistry:
    addr: str  #: the registry (host:port)
    proxy: FaultProxy  #: in front of the token service: counts token requests

    def token_scopes(self) -> list[tuple[str, ...]]:
        """The scope set of every token request seen so far, in order."""
        with self.proxy.lock:
            paths = [p for m, p in self.proxy.requests if m == "GET" and p.startswith("/token")]
        out = []
        for p in paths:
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(p).query)
            out.append(tuple(sorted(q.get("scope", []))))
        return out


def configured(
    tmp_path: Path, realm: str, *, expiration: int, keydir: Path, port: int | None = None
) -> RegistryThread:
    """gantry's registry with its token service (keys made in ``keydir``), not started."""
    keydir.mkdir(exist_ok=True)
    priv, pub = _keys(keydir)
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    reg = RegistryThread(tmp_path / "data")
    if port is not None:
        reg.port, reg.addr = port, f"127.0.0.1:{port}"
        reg.cfg.addr = reg.addr
    reg.cfg.token_auth = TokenAuthConfig(
        realm=realm, service="svc", issuer="iss", rootcertbundle=pub
    )
    reg.cfg.token_issuer = TokenIssuerConfig(
        key=priv,
        issuer="iss",
        service="svc",
        htpasswd=_htpasswd(tmp_path),
        policy=policy,
        expiration=expiration,
    )
    return reg


def _started(tmp_path: Path, expiration: int) -> Iterator[TokenRegistry]:
    port = free_port()
    # the token requests go through the proxy, which forwards to the registry itself
    with FaultProxy(f"127.0.0.1:{port}") as proxy:
        reg = configured(
            tmp_path,
            f"http://{proxy.addr}/token",
            expiration=expiration,
            keydir=tmp_path / "keys",
            port=port,
        )
        with reg:
            yield TokenRegistry(reg.addr, proxy)


@pytest.fixture
def short_tokens(tmp_path: Path) -> Iterator[TokenRegistry]:
    """Tokens that live 14 s (the client keeps them 7 s: half, when under 20 s)."""
    yield from _started(tmp_path, 14)


@pytest.fixture
def long_tokens(tmp_path: Path) -> Iterator[TokenRegistry]:
    yield from _started(tmp_path, 300)


ALICE = Credential("alice", "alicepw")


def seed(tmp_path: Path, tr: TokenRegistry) -> Image:
    with Store(tmp_path / "src") as src:
        img = make_image(
            src, [random_layer(100_000, i) for i in range(3)], f"{tr.addr}/alice/app:1"
        )
        push(src, f"{tr.addr}/alice/app:1", client=RegistryClient(tr.addr, credential=ALICE))
        return img


def test_pull_asks_one_token_per_scope(tmp_path: Path, long_tokens: TokenRegistry) -> None:
    tr = long_tokens
    img = seed(tmp_path, tr)
    tr.proxy.requests.clear()
    client = RegistryClient(tr.addr, credential=ALICE)
    with Store(tmp_path / "dst") as dst:
        # HEAD + GET manifest, config, 3 layers (fetched concurrently): one token
        r = pull(dst, f"{tr.addr}/alice/app:1", client=client)
        assert r.image.id == img.id
        assert tr.token_scopes() == [("repository:alice/app:pull",)]
        # the same client again (up to date: a HEAD): the cached token, no new request
        pull(dst, f"{tr.addr}/alice/app:1", client=client)
        assert tr.token_scopes() == [("repository:alice/app:pull",)]
    # another repository is another scope: one more token
    with Store(tmp_path / "src") as src:
        src.tag(img, f"{tr.addr}/alice/copy:1")
        push(src, f"{tr.addr}/alice/copy:1", client=RegistryClient(tr.addr, credential=ALICE))
    tr.proxy.requests.clear()
    with Store(tmp_path / "dst") as dst:
        pull(dst, f"{tr.addr}/alice/copy:1", client=client)
        pull(dst, f"{tr.addr}/alice/app:1", client=client)
    assert tr.token_scopes() == [("repository:alice/copy:pull",)]


def test_push_asks_one_token_per_scope(tmp_path: Path, long_tokens: TokenRegistry) -> None:
    tr = long_tokens
    with Store(tmp_path / "src") as src:
        make_image(src, [random_layer(100_000, i) for i in range(3)], f"{tr.addr}/alice/app:1")
        push(src, f"{tr.addr}/alice/app:1", client=RegistryClient(tr.addr, credential=ALICE))
    scopes = tr.token_scopes()
    assert scopes, "no token was asked for"
    # HEADs, POSTs, PUTs of 3 layers + config + manifest: never the same scope twice
    assert len(scopes) == len(set(scopes)), scopes


@pytest.mark.slow
def test_expired_token_is_refreshed(tmp_path: Path, short_tokens: TokenRegistry) -> None:
    tr = short_tokens
    img = seed(tmp_path, tr)
    tr.proxy.requests.clear()
    client = RegistryClient(tr.addr, credential=ALICE)
    with Store(tmp_path / "dst") as dst:
        pull(dst, f"{tr.addr}/alice/app:1", client=client)
        assert len(tr.token_scopes()) == 1
        # still fresh: the same client asks no new token
        pull(dst, f"{tr.addr}/alice/app:1", client=client)
        assert len(tr.token_scopes()) == 1
        time.sleep(7.5)  # past the client's refresh point (the token lives 14 s)
        r = pull(dst, f"{tr.addr}/alice/app:1", client=client)
        assert r.image.id == img.id
        assert tr.token_scopes() == [("repository:alice/app:pull",)] * 2


@pytest.mark.slow
def test_token_refused_after_a_key_rotation_is_asked_again_once(tmp_path: Path) -> None:
    """The registry restarts with a new signing key: the cached token gets a 401, and the
    client asks one fresh token (with the challenge's scope) and carries on."""
    port = free_port()
    with FaultProxy(f"127.0.0.1:{port}") as proxy:
        realm = f"http://{proxy.addr}/token"
        tr = TokenRegistry(f"127.0.0.1:{port}", proxy)
        reg = configured(tmp_path, realm, expiration=300, keydir=tmp_path / "k1", port=port)
        with reg:
            seed(tmp_path, tr)
            client = RegistryClient(tr.addr, credential=ALICE, retry=FAST)
            digest = client_digest(tmp_path, tr)
            assert client.has_blob("alice/app", digest) is True
        proxy.requests.clear()
        reg2 = configured(tmp_path, realm, expiration=300, keydir=tmp_path / "k2", port=port)
        with reg2:
            assert client.has_blob("alice/app", digest) is True
            assert tr.token_scopes() == [("repository:alice/app:pull",)]
            assert client.has_blob("alice/app", digest) is True
            assert len(tr.token_scopes()) == 1  # the new token is cached in turn


def client_digest(tmp_path: Path, tr: TokenRegistry) -> str:
    with Store(tmp_path / "src") as src:
        return str(src.manifest(src.resolve(f"{tr.addr}/alice/app:1")).layers[0].digest)


# -- credsStore ---------------------------------------------------------------


def write_helper(bindir: Path, name: str, db: dict[str, dict[str, str]], log: Path) -> None:
    """``docker-credential-<name>``: the helper protocol over stdin/stdout, a JSON db."""
    bindir.mkdir(exist_ok=True)
    store = bindir / f"{name}.json"
    store.write_text(json.dumps(db))
    helper = bindir / f"docker-credential-{name}"
    helper.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"db_path, log = {str(store)!r}, {str(log)!r}\n"
        "data = json.load(open(db_path))\n"
        "action = sys.argv[1]\n"
        "arg = sys.stdin.read()\n"
        f"open(log, 'a').write(json.dumps([{name!r}, action, arg]) + '\\n')\n"
        "if action == 'get':\n"
        "    key = arg.strip()\n"
        "    if key not in data:\n"
        "        print('credentials not found in native keychain'); sys.exit(1)\n"
        "    print(json.dumps(data[key]))\n"
        "elif action == 'store':\n"
        "    d = json.loads(arg); data[d['ServerURL']] = d; json.dump(data, open(db_path, 'w'))\n"
        "elif action == 'erase':\n"
        "    data.pop(arg.strip(), None); json.dump(data, open(db_path, 'w'))\n"
        "elif action == 'list':\n"
        "    print(json.dumps({k: v['Username'] for k, v in data.items()}))\n"
    )
    helper.chmod(0o755)


def gantry(
    args: list[str], env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gantry", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def helper_calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.slow
def test_creds_store_supplies_the_credential(tmp_path: Path, long_tokens: TokenRegistry) -> None:
    tr = long_tokens
    img = seed(tmp_path, tr)
    bindir, log, dc = tmp_path / "bin", tmp_path / "helper.log", tmp_path / "dc"
    dc.mkdir()
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "DOCKER_CONFIG": str(dc),
        "GANTRY_ROOT": str(tmp_path / "root"),
    }
    # no credentials anywhere: the policy lets nobody else pull alice/*
    denied = gantry(["pull", f"{tr.addr}/alice/app:1"], env)
    assert denied.returncode == 1
    assert f"pull access denied for {tr.addr}/alice/app" in denied.stderr

    write_helper(
        bindir,
        "vault",
        {tr.addr: {"ServerURL": tr.addr, "Username": "alice", "Secret": "alicepw"}},
        log,
    )
    (dc / "config.json").write_text(json.dumps({"credsStore": "vault"}))
    ok = gantry(["pull", f"{tr.addr}/alice/app:1"], env)
    assert ok.returncode == 0, ok.stderr
    assert f"Status: Downloaded newer image for {tr.addr}/alice/app:1" in ok.stdout
    # the helper was asked for this registry by Docker's key: host:port, no scheme
    assert ["vault", "get", tr.addr] in [[n, a, s.strip()] for n, a, s in helper_calls(log)]
    with Store(tmp_path / "root") as st:
        assert st.resolve(f"{tr.addr}/alice/app:1").id == img.id
    # the token was requested as alice (her account in the request)
    assert any("account=alice" in p for m, p in tr.proxy.requests if p.startswith("/token"))


@pytest.mark.slow
def test_cred_helpers_win_over_creds_store_and_login_stores_in_the_helper(
    tmp_path: Path, long_tokens: TokenRegistry
) -> None:
    tr = long_tokens
    bindir, log, dc = tmp_path / "bin", tmp_path / "helper.log", tmp_path / "dc"
    dc.mkdir()
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "DOCKER_CONFIG": str(dc),
        "GANTRY_ROOT": str(tmp_path / "root"),
    }
    write_helper(bindir, "store", {}, log)
    write_helper(
        bindir,
        "special",
        {tr.addr: {"ServerURL": tr.addr, "Username": "alice", "Secret": "alicepw"}},
        log,
    )
    (dc / "config.json").write_text(
        json.dumps({"credsStore": "store", "credHelpers": {tr.addr: "special"}})
    )
    seed(tmp_path, tr)
    ok = gantry(["pull", "-q", f"{tr.addr}/alice/app:1"], env)
    assert ok.returncode == 0, ok.stderr
    names = {n for n, a, _ in helper_calls(log) if a == "get"}
    assert names == {"special"}

    # login with only credsStore: the secret goes to the helper, not into config.json
    (dc / "config.json").write_text(json.dumps({"credsStore": "store"}))
    log.unlink()
    li = gantry(["login", tr.addr, "-u", "alice", "--password-stdin"], env, "alicepw\n")
    assert li.returncode == 0, li.stderr
    assert li.stdout == "Login Succeeded\n"
    assert "stored unencrypted" not in li.stderr
    stored = json.loads((bindir / "store.json").read_text())
    assert stored[tr.addr]["Username"] == "alice"
    assert stored[tr.addr]["Secret"] == "alicepw"
    assert "alicepw" not in (dc / "config.json").read_text()
    assert json.loads((dc / "config.json").read_text())["credsStore"] == "store"


@pytest.mark.slow
@pytest.mark.peers
def test_one_token_per_scope_against_distribution(tmp_path: Path) -> None:
    """distribution 2.8 trusting gantry's token service: a pull of 3 layers asks one token."""
    priv, _, key = write_keys(tmp_path)
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    issuer = RegistryThread(tmp_path / "issuer-data")
    issuer.cfg.token_issuer = TokenIssuerConfig(
        key=priv, issuer=ISSUER, service=SERVICE, htpasswd=_htpasswd(tmp_path), policy=policy
    )
    bundle = certificate_for(key, tmp_path / "token-cert.pem")
    with (
        issuer,
        FaultProxy(issuer.addr) as proxy,
        distribution_with_tokens(tmp_path, f"http://{proxy.addr}/token", bundle) as dist,
    ):
        tr = TokenRegistry(dist, proxy)
        img = seed(tmp_path, tr)
        proxy.requests.clear()
        with Store(tmp_path / "dst") as dst:
            r = pull(dst, f"{dist}/alice/app:1", client=RegistryClient(dist, credential=ALICE))
            assert r.image.id == img.id
            assert dst.check() == []
        assert tr.token_scopes() == [("repository:alice/app:pull",)]


def test_missing_creds_store_helper_does_not_block_an_anonymous_pull(tmp_path: Path) -> None:
    with RegistryThread(tmp_path / "data") as reg:
        with Store(tmp_path / "src") as src:
            img = make_image(src, [random_layer(10_000, 5)], f"{reg.addr}/pub/app:1")
            push(src, f"{reg.addr}/pub/app:1", client=RegistryClient(reg.addr))
        dc = tmp_path / "dc"
        dc.mkdir()
        (dc / "config.json").write_text(json.dumps({"credsStore": "not-installed-here"}))
        env = {**os.environ, "DOCKER_CONFIG": str(dc), "GANTRY_ROOT": str(tmp_path / "root")}
        r = gantry(["pull", "-q", f"{reg.addr}/pub/app:1"], env)
        assert r.returncode == 0, r.stderr
        with Store(tmp_path / "root") as st:
            assert st.resolve(f"{reg.addr}/pub/app:1").id == img.id
