"""Auth: bearer tokens from gantry's token service (in process and with skopeo/podman), TLS."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import ipaddress
import json
import re
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gantry.registry import RegistryConfig
from gantry.registry.auth import key_id
from gantry.registry.config import TokenAuthConfig, TokenIssuerConfig
from gantry.registry.htpasswd import hash_password
from test_registry_support import (
    free_port,
    in_process,
    make_oci_layout,
    push_image,
    registry_process,
    sha,
    skopeo,
    wait_http,
)

SERVICE = "gantry-registry"
ISSUER = "gantry-test"


def write_keys(d: Path) -> tuple[Path, Path, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    priv = d / "token-key.pem"
    pub = d / "token-pub.pem"
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
    return priv, pub, key


POLICY = """
- account: alice
  name: "alice/*"
  actions: [pull, push, delete]
- account: alice
  name: "registry:catalog"
  actions: ["*"]
- account: "*"
  name: "*"
  actions: [pull]
- account: anonymous
  name: "public/*"
  actions: [pull]
"""


@pytest.fixture
def token_setup(tmp_path: Path) -> dict[str, Any]:
    priv, pub, key = write_keys(tmp_path)
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(
        f"alice:{hash_password('alicepw', rounds=4)}\nbob:{hash_password('bobpw', rounds=4)}\n"
    )
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    return {"priv": priv, "pub": pub, "key": key, "htpasswd": htpasswd, "policy": policy}


def token_config(tmp_path: Path, s: dict[str, Any], realm: str) -> RegistryConfig:
    return RegistryConfig(
        data=tmp_path / "data",
        fsync=False,
        access_log=False,
        token_auth=TokenAuthConfig(
            realm=realm, service=SERVICE, issuer=ISSUER, rootcertbundle=s["pub"]
        ),
        token_issuer=TokenIssuerConfig(
            key=s["priv"],
            issuer=ISSUER,
            service=SERVICE,
            htpasswd=s["htpasswd"],
            policy=s["policy"],
        ),
    )


def basic(user: str, pw: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


async def get_token(c: Any, scope: str, creds: dict[str, str] | None = None) -> str:
    r = await c.get("/token", params={"service": SERVICE, "scope": scope}, headers=creds or {})
    assert r.status == 200, await r.text()
    doc = await r.json()
    assert doc["expires_in"] == 300 and doc["access_token"] == doc["token"]
    return str(doc["token"])


def test_token_flow_in_process(tmp_path: Path, token_setup: dict[str, Any]) -> None:
    async def body(c: Any) -> None:
        r = await c.get("/v2/")
        assert r.status == 401
        assert (
            r.headers["WWW-Authenticate"] == f'Bearer realm="http://auth/token",service="{SERVICE}"'
        )
        r = await c.get("/v2/alice/app/tags/list")
        assert r.status == 401
        assert 'scope="repository:alice/app:pull"' in r.headers["WWW-Authenticate"]
        assert (await r.json())["errors"][0]["code"] == "UNAUTHORIZED"
        # alice pushes to her namespace
        tok = await get_token(c, "repository:alice/app:pull,push", basic("alice", "alicepw"))
        claims = jwt.decode(tok, options={"verify_signature": False})
        assert claims["access"] == [
            {"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}
        ]
        auth = {"Authorization": f"Bearer {tok}"}

        class Authed:
            def __getattr__(self, method: str) -> Any:
                def call(url: str, **kw: Any) -> Any:
                    kw["headers"] = {**auth, **kw.get("headers", {})}
                    return getattr(c, method)(url, **kw)

                return call

        await push_image(Authed(), "alice/app", "v1")
        # a pull-only token cannot push: 401 insufficient_scope naming what is needed
        pull_tok = await get_token(c, "repository:alice/app:pull", basic("alice", "alicepw"))
        r = await c.post(
            "/v2/alice/app/blobs/uploads/", headers={"Authorization": f"Bearer {pull_tok}"}
        )
        assert r.status == 401
        challenge = r.headers["WWW-Authenticate"]
        assert (
            'scope="repository:alice/app:pull,push"' in challenge
            and 'error="insufficient_scope"' in challenge
        )
        r = await c.get(
            "/v2/alice/app/manifests/v1", headers={"Authorization": f"Bearer {pull_tok}"}
        )
        assert r.status == 200
        # bob asks for push on alice/app and gets only pull granted
        bob_tok = await get_token(c, "repository:alice/app:pull,push", basic("bob", "bobpw"))
        assert jwt.decode(bob_tok, options={"verify_signature": False})["access"][0]["actions"] == [
            "pull"
        ]
        r = await c.post(
            "/v2/alice/app/blobs/uploads/", headers={"Authorization": f"Bearer {bob_tok}"}
        )
        assert r.status == 401
        # anonymous: public/* pull only
        anon = await get_token(c, "repository:public/x:pull,push")
        assert jwt.decode(anon, options={"verify_signature": False})["access"][0]["actions"] == [
            "pull"
        ]
        anon2 = await get_token(c, "repository:alice/app:pull")
        assert jwt.decode(anon2, options={"verify_signature": False})["access"][0]["actions"] == []
        # wrong password: 401 from the token service
        r = await c.get(
            "/token",
            params={"service": SERVICE, "scope": "repository:a:pull"},
            headers=basic("alice", "no"),
        )
        assert r.status == 401
        r = await c.get("/token", params={"service": "other", "scope": "repository:a:pull"})
        assert r.status == 400
        # catalog needs registry:catalog:*
        r = await c.get("/v2/_catalog", headers={"Authorization": f"Bearer {tok}"})
        assert r.status == 401 and 'scope="registry:catalog:*"' in r.headers["WWW-Authenticate"]
        cat = await get_token(c, "registry:catalog:*", basic("alice", "alicepw"))
        r = await c.get("/v2/_catalog", headers={"Authorization": f"Bearer {cat}"})
        assert r.status == 200 and (await r.json())["repositories"] == ["alice/app"]

    in_process(token_config(tmp_path, token_setup, "http://auth/token"), body)


def test_forged_and_expired_tokens_are_refused(tmp_path: Path, token_setup: dict[str, Any]) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    access = [{"type": "repository", "name": "x", "actions": ["pull", "push"]}]
    base = {
        "iss": ISSUER,
        "aud": SERVICE,
        "sub": "mallory",
        "iat": now,
        "nbf": now,
        "access": access,
    }
    forged = jwt.encode({**base, "exp": now + 300}, other, algorithm="ES256")
    expired = jwt.encode(
        {**base, "exp": now - 3600, "iat": now - 7200, "nbf": now - 7200},
        token_setup["key"],
        algorithm="ES256",
    )
    wrong_aud = jwt.encode(
        {**base, "aud": "elsewhere", "exp": now + 300}, token_setup["key"], algorithm="ES256"
    )
    wrong_iss = jwt.encode(
        {**base, "iss": "elsewhere", "exp": now + 300}, token_setup["key"], algorithm="ES256"
    )
    unsigned = jwt.encode({**base, "exp": now + 300}, "", algorithm="none")
    good = jwt.encode({**base, "exp": now + 300}, token_setup["key"], algorithm="ES256")

    async def body(c: Any) -> None:
        for tok in (forged, expired, wrong_aud, wrong_iss, unsigned, "garbage"):
            r = await c.get("/v2/x/tags/list", headers={"Authorization": f"Bearer {tok}"})
            assert r.status == 401, tok
            assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        r = await c.get("/v2/x/tags/list", headers={"Authorization": f"Bearer {good}"})
        assert r.status == 404  # authorised; the repository just does not exist

    in_process(token_config(tmp_path, token_setup, "http://auth/token"), body)


def write_config(tmp_path: Path, s: dict[str, Any], port: int) -> Path:
    conf = tmp_path / "registry.yml"
    conf.write_text(
        json.dumps(
            {
                "version": 0.1,
                "http": {"addr": f"127.0.0.1:{port}"},
                "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}},
                "auth": {
                    "token": {
                        "realm": f"http://127.0.0.1:{port}/token",
                        "service": SERVICE,
                        "issuer": ISSUER,
                        "rootcertbundle": str(s["pub"]),
                    }
                },
                "token": {
                    "key": str(s["priv"]),
                    "issuer": ISSUER,
                    "service": SERVICE,
                    "htpasswd": str(s["htpasswd"]),
                    "policy": str(s["policy"]),
                },
            }
        )
    )
    return conf


@pytest.fixture
def podman_store() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="gr-pod-", dir="/tmp"))
    try:
        yield d
    finally:
        subprocess.run(
            [
                "podman",
                "--root",
                str(d / "root"),
                "--runroot",
                str(d / "run"),
                "--storage-driver",
                "vfs",
                "system",
                "reset",
                "-f",
            ],
            capture_output=True,
        )
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.peers
def test_token_auth_with_skopeo_and_podman(
    tmp_path: Path, token_setup: dict[str, Any], podman_store: Path
) -> None:
    port = free_port()
    conf = write_config(tmp_path, token_setup, port)
    src = tmp_path / "src"
    mdigest, _ = make_oci_layout(src)
    with registry_process(tmp_path, "--config", str(conf), port=port) as (addr, _):
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:alicepw",
            f"oci:{src}:latest",
            f"docker://{addr}/alice/app:v1",
        )
        p = skopeo(
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "bob:bobpw",
            f"oci:{src}:latest",
            f"docker://{addr}/alice/bobs:v1",
            check=False,
        )
        assert p.returncode != 0
        raw = skopeo(
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            "bob:bobpw",
            f"docker://{addr}/alice/app:v1",
        ).stdout
        assert sha(raw.encode()) == mdigest
        p = skopeo(
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--no-creds",
            f"docker://{addr}/alice/app:v1",
            check=False,
        )
        assert p.returncode != 0
        pod = [
            "podman",
            "--root",
            str(podman_store / "root"),
            "--runroot",
            str(podman_store / "run"),
            "--storage-driver",
            "vfs",
        ]
        p = subprocess.run(
            [*pod, "pull", "--tls-verify=false", "--creds", "bob:bobpw", f"{addr}/alice/app:v1"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert p.returncode == 0, p.stderr
        p = subprocess.run(
            [*pod, "tag", f"{addr}/alice/app:v1", f"{addr}/alice/again:v2"],
            capture_output=True,
            text=True,
        )
        assert p.returncode == 0, p.stderr
        p = subprocess.run(
            [*pod, "push", "--tls-verify=false", "--creds", "bob:bobpw", f"{addr}/alice/again:v2"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert p.returncode != 0
        p = subprocess.run(
            [
                *pod,
                "push",
                "--tls-verify=false",
                "--creds",
                "alice:alicepw",
                f"{addr}/alice/again:v2",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert p.returncode == 0, p.stderr


def self_signed(d: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    c, k = d / "cert.pem", d / "key.pem"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return c, k


@pytest.mark.slow
@pytest.mark.peers
def test_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    src = tmp_path / "src"
    mdigest, _ = make_oci_layout(src)
    with registry_process(
        tmp_path, "--data", str(tmp_path / "data"), "--tls-cert", str(cert), "--tls-key", str(key)
    ) as (addr, _):
        ctx = ssl.create_default_context(cafile=str(cert))
        with urllib.request.urlopen(f"https://{addr}/v2/", context=ctx, timeout=10) as r:
            assert (
                r.status == 200 and r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
            )
        certs = tmp_path / "certs"
        certs.mkdir()
        (certs / "ca.crt").write_bytes(cert.read_bytes())
        skopeo(
            "copy",
            "--dest-cert-dir",
            str(certs),
            f"oci:{src}:latest",
            f"docker://{addr}/tls/app:v1",
        )
        raw = skopeo(
            "inspect", "--raw", "--cert-dir", str(certs), f"docker://{addr}/tls/app:v1"
        ).stdout
        assert sha(raw.encode()) == mdigest


def test_key_id_is_libtrust_form(token_setup: dict[str, Any]) -> None:
    """12 groups of 4 base32 characters, from the key's SPKI; one per key."""
    kid = key_id(token_setup["key"].public_key())
    assert re.fullmatch(r"([A-Z2-7]{4}:){11}[A-Z2-7]{4}", kid)
    der = (
        token_setup["key"]
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    raw = base64.b32decode(kid.replace(":", ""))
    assert raw == hashlib.sha256(der).digest()[:30]
    assert key_id(ec.generate_private_key(ec.SECP256R1()).public_key()) != kid


def test_issued_tokens_name_their_key(tmp_path: Path, token_setup: dict[str, Any]) -> None:
    """The token service puts ``kid`` in the JWT header; the verifier picks the key by
    it, and a token naming a trusted kid but signed by another key is refused."""

    async def body(c: Any) -> None:
        tok = await get_token(c, "repository:alice/app:pull", basic("alice", "alicepw"))
        assert jwt.get_unverified_header(tok)["kid"] == key_id(token_setup["key"].public_key())
        r = await c.get("/v2/alice/app/tags/list", headers={"Authorization": f"Bearer {tok}"})
        assert r.status == 404  # authorised; nothing pushed
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": SERVICE, "sub": "m", "iat": now, "exp": now + 300}
        claims["access"] = [{"type": "repository", "name": "alice/app", "actions": ["pull"]}]
        liar = jwt.encode(
            claims,
            ec.generate_private_key(ec.SECP256R1()),
            algorithm="ES256",
            headers={"kid": key_id(token_setup["key"].public_key())},
        )
        r = await c.get("/v2/alice/app/tags/list", headers={"Authorization": f"Bearer {liar}"})
        assert r.status == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]

    in_process(token_config(tmp_path, token_setup, "http://auth/token"), body)


def certificate_for(key: Any, path: Path) -> Path:
    """A self-signed certificate of the token key: distribution's rootcertbundle takes
    certificates only."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gantry token signer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@contextlib.contextmanager
def distribution_with_tokens(tmp: Path, realm: str, bundle: Path) -> Iterator[str]:
    """Debian's docker-registry (distribution 2.8) trusting tokens signed by ``bundle``."""
    port = free_port()
    cfg = tmp / "distribution.yml"
    cfg.write_text(
        json.dumps(
            {
                "version": 0.1,
                "log": {"level": "error", "accesslog": {"disabled": True}},
                "storage": {"filesystem": {"rootdirectory": str(tmp / "dist-data")}},
                "http": {"addr": f"127.0.0.1:{port}"},
                "auth": {
                    "token": {
                        "realm": realm,
                        "service": SERVICE,
                        "issuer": ISSUER,
                        "rootcertbundle": str(bundle),
                    }
                },
            }
        )
    )
    log = open(tmp / "distribution.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=log, stderr=log)
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/", proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def bearer_status(url: str, token: str) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


@pytest.mark.slow
@pytest.mark.peers
def test_distribution_trusts_gantry_token_service(
    tmp_path: Path, token_setup: dict[str, Any]
) -> None:
    """gantry's token service in front of distribution 2.8: its verifier finds the
    signing key by the libtrust ``kid``; without it the same token is refused."""
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry (distribution) is not installed")
    port = free_port()
    conf = write_config(tmp_path, token_setup, port)
    bundle = certificate_for(token_setup["key"], tmp_path / "token-cert.pem")
    src = tmp_path / "src"
    mdigest, _ = make_oci_layout(src)
    realm = f"http://127.0.0.1:{port}/token"
    with (
        registry_process(tmp_path, "--config", str(conf), port=port) as (gantry_addr, _),
        distribution_with_tokens(tmp_path, realm, bundle) as dist,
    ):
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:alicepw",
            f"oci:{src}:latest",
            f"docker://{dist}/alice/app:v1",
        )
        raw = skopeo(
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            "bob:bobpw",
            f"docker://{dist}/alice/app:v1",
        ).stdout
        assert sha(raw.encode()) == mdigest
        p = skopeo(
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "bob:bobpw",
            f"oci:{src}:latest",
            f"docker://{dist}/alice/bobs:v1",
            check=False,
        )
        assert p.returncode != 0
        # the same grant signed by the same key, once with kid and once without
        scope = "repository:alice/app:pull"
        with urllib.request.urlopen(
            urllib.request.Request(
                f"http://{gantry_addr}/token?service={SERVICE}&scope={scope}",
                headers=basic("bob", "bobpw"),
            ),
            timeout=10,
        ) as r:
            tok = json.load(r)["token"]
        claims = jwt.decode(tok, options={"verify_signature": False})
        bare = jwt.encode(claims, token_setup["key"], algorithm="ES256")
        url = f"http://{dist}/v2/alice/app/tags/list"
        assert bearer_status(url, tok) == 200
        assert bearer_status(url, bare) == 401
