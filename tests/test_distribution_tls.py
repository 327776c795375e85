"""The registry client over TLS: an unknown CA is refused in one line; certs.d trusts it.

The registry is gantry's own (``gantry registry serve --tls-cert``) on 127.0.0.1, reached
by the name ``vm`` (``/etc/hosts`` maps it to 127.0.0.1) so that the client does not treat
it as a loopback registry, where Docker's rule skips verification. The CA and the server
certificate are made by ``openssl`` here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.distribution import RegistryClient, push
from gantry.errors import RegistryError
from gantry.store import Store
from test_distribution_support import docker_registry, free_port, make_image, random_layer
from test_registry_support import registry_process

pytestmark = [pytest.mark.slow]

HOST = "vm"


def openssl(*args: str, cwd: Path) -> None:
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def make_ca_and_server(d: Path, name: str) -> tuple[Path, Path, Path]:
    """(ca.crt, server.crt, server.key): a CA, and a server cert for DNS ``name`` it signed."""
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
            "-subj", "/CN=gantry test CA", cwd=d)  # fmt: skip
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={name}",
            cwd=d)  # fmt: skip
    (d / "ext.cnf").write_text(
        f"subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "ext.cnf",
            cwd=d)  # fmt: skip
    return d / "ca.crt", d / "server.crt", d / "server.key"


@pytest.fixture
def tls_registry(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(``vm:PORT``, ca.crt) of a TLS registry whose CA nobody trusts yet."""
    try:
        resolved = socket.gethostbyname(HOST)
    except OSError:
        pytest.fail(f"{HOST} does not resolve; the test needs it to name 127.0.0.1")
    assert resolved == "127.0.0.1"
    ca, cert, key = make_ca_and_server(tmp_path / "pki", HOST)
    reg_root = tmp_path / "regroot"
    reg_root.mkdir()
    with registry_process(
        reg_root,
        "--data",
        str(tmp_path / "regdata"),
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
    ) as (addr, _):
        yield f"{HOST}:{addr.rsplit(':', 1)[1]}", ca


def gantry(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gantry", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GANTRY_CERTS_D", "SSL_CERT_FILE")}
    env.update(
        GANTRY_ROOT=str(tmp_path / "client-root"),
        DOCKER_CONFIG=str(tmp_path / "docker-config"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg"),
        GANTRY_RETRY_BASE="0.01",
    )
    env.update(extra)
    return env


def seed(tmp_path: Path, addr: str, certs_d: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Push a small image over TLS (trusting the CA through ``certs_d``); its image ID."""
    monkeypatch.setenv("GANTRY_CERTS_D", str(certs_d))
    with Store(tmp_path / "src") as src:
        img = make_image(src, [random_layer(40_000, 3), random_layer(20_000, 4)], f"{addr}/t/a:1")
        push(src, f"{addr}/t/a:1", client=RegistryClient(addr))
    monkeypatch.delenv("GANTRY_CERTS_D")
    return img.id.hex


def test_unknown_ca_fails_in_one_line_then_certs_d_is_trusted(
    tmp_path: Path, tls_registry: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    addr, ca = tls_registry
    certs_d = tmp_path / "certs.d"
    (certs_d / addr).mkdir(parents=True)
    (certs_d / addr / "ca.crt").write_bytes(ca.read_bytes())
    image_id = seed(tmp_path, addr, certs_d, monkeypatch)

    env = clean_env(tmp_path)
    bad = gantry(["pull", f"{addr}/t/a:1"], env)
    assert bad.returncode != 0
    lines = bad.stderr.strip().splitlines()
    # one line about the error (a hint line may follow, as gantry's errors do)
    assert len(lines) <= 2, bad.stderr
    error = lines[0]
    assert error.startswith("Error"), bad.stderr
    assert f"https://{addr}/v2/" in error
    assert "certificate" in error.lower(), error
    assert "Traceback" not in bad.stderr
    assert (
        not (tmp_path / "client-root").exists()
        or "t/a" not in gantry(["images", "--format", "{{.Repository}}"], env).stdout
    )

    ok = gantry(["pull", f"{addr}/t/a:1"], clean_env(tmp_path, GANTRY_CERTS_D=str(certs_d)))
    assert ok.returncode == 0, ok.stderr
    assert f"Status: Downloaded newer image for {addr}/t/a:1" in ok.stdout
    ids = gantry(["images", "--no-trunc", "--format", "{{.ID}}"], env).stdout.split()
    assert f"sha256:{image_id}" in ids


def test_xdg_docker_certs_d_is_read(
    tmp_path: Path, tls_registry: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``$XDG_CONFIG_HOME/docker/certs.d/HOST:PORT/*.crt`` (rootless Docker's place)."""
    addr, ca = tls_registry
    xdg = tmp_path / "xdg"
    (xdg / "docker" / "certs.d" / addr).mkdir(parents=True)
    (xdg / "docker" / "certs.d" / addr / "ca.crt").write_bytes(ca.read_bytes())
    image_id = seed(tmp_path, addr, xdg / "docker" / "certs.d", monkeypatch)
    ok = gantry(["pull", "-q", f"{addr}/t/a:1"], clean_env(tmp_path))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == f"{addr}/t/a:1\n"
    ids = gantry(["images", "--no-trunc", "--format", "{{.ID}}"], clean_env(tmp_path)).stdout
    assert f"sha256:{image_id}" in ids.split()


def test_ca_for_another_port_is_not_used(
    tmp_path: Path, tls_registry: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """certs.d is per ``host:port``: the CA under another port's directory does not apply."""
    addr, ca = tls_registry
    certs_d = tmp_path / "certs.d"
    (certs_d / f"{HOST}:1").mkdir(parents=True)
    (certs_d / f"{HOST}:1" / "ca.crt").write_bytes(ca.read_bytes())
    with pytest.raises(RegistryError) as e:
        monkeypatch.setenv("GANTRY_CERTS_D", str(certs_d))
        RegistryClient(addr).ping()
    assert "certificate" in str(e.value).lower()
    assert "\n" not in str(e.value)


def test_insecure_registries_skip_verification(
    tmp_path: Path, tls_registry: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry named in ``GANTRY_INSECURE_REGISTRIES`` is used over https without
    verification (Docker's ``insecure-registries``), no CA needed."""
    addr, ca = tls_registry
    certs_d = tmp_path / "certs.d"
    (certs_d / addr).mkdir(parents=True)
    (certs_d / addr / "ca.crt").write_bytes(ca.read_bytes())
    image_id = seed(tmp_path, addr, certs_d, monkeypatch)
    ok = gantry(
        ["pull", "-q", f"{addr}/t/a:1"], clean_env(tmp_path, GANTRY_INSECURE_REGISTRIES=addr)
    )
    assert ok.returncode == 0, ok.stderr
    ids = gantry(["images", "--no-trunc", "--format", "{{.ID}}"], clean_env(tmp_path)).stdout
    assert f"sha256:{image_id}" in ids.split()
    # another name in the list does not make this one insecure
    other = gantry(
        ["pull", "-q", f"{addr}/t/a:1"],
        clean_env(tmp_path, GANTRY_INSECURE_REGISTRIES=f"{HOST}:1,10.0.0.0/8"),
    )
    assert other.returncode != 0
    assert "certificate" in other.stderr.lower()


@contextlib.contextmanager
def tls_distribution(
    tmp: Path, cert: Path, key: Path, client_ca: Path | None = None
) -> Iterator[str]:
    """distribution's ``docker-registry`` serving TLS on 127.0.0.1; yields ``vm:PORT``.
    With ``client_ca`` it requires a client certificate signed by that CA."""
    port = free_port()
    config = (
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp / 'dist-tls-data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"  tls:\n    certificate: {cert}\n    key: {key}\n"
        + (f"    clientcas:\n      - {client_ca}\n" if client_ca else "")
    )
    with docker_registry(tmp, "distribution-tls", config, port):
        yield f"{HOST}:{port}"


@pytest.mark.peers
def test_push_and_pull_over_tls_with_distribution(tmp_path: Path) -> None:
    """The same certs.d rule against distribution's registry: refused, then trusted."""
    ca, cert, key = make_ca_and_server(tmp_path / "pki", HOST)
    with tls_distribution(tmp_path, cert, key) as addr:
        root = tmp_path / "client-root"
        with Store(root) as src:
            img = make_image(src, [random_layer(50_000, 7)], f"{addr}/d/tls:1")
        refused = gantry(["push", f"{addr}/d/tls:1"], clean_env(tmp_path))
        assert refused.returncode != 0
        assert "certificate" in refused.stderr.splitlines()[0].lower(), refused.stderr
        certs_d = tmp_path / "certs.d"
        (certs_d / addr).mkdir(parents=True)
        (certs_d / addr / "ca.crt").write_bytes(ca.read_bytes())
        trusted = clean_env(tmp_path, GANTRY_CERTS_D=str(certs_d))
        pushed = gantry(["push", f"{addr}/d/tls:1"], trusted)
        assert pushed.returncode == 0, pushed.stderr
        assert f"1: digest: {img.manifest_digest} size: " in pushed.stdout
        fresh = clean_env(tmp_path, GANTRY_CERTS_D=str(certs_d), GANTRY_ROOT=str(tmp_path / "b"))
        pulled = gantry(["pull", "-q", f"{addr}/d/tls:1"], fresh)
        assert pulled.returncode == 0, pulled.stderr
        ids = gantry(["images", "--no-trunc", "--format", "{{.ID}}"], fresh).stdout.split()
        assert ids == [str(img.id)]


def make_client_cert(d: Path) -> tuple[Path, Path]:
    """(client.cert, client.key) signed by the CA made in ``d`` by make_ca_and_server."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", *ec, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=gantry",
            cwd=d)  # fmt: skip
    (d / "client-ext.cnf").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "client.cert", "-days", "1", "-extfile",
            "client-ext.cnf", cwd=d)  # fmt: skip
    return d / "client.cert", d / "client.key"


@pytest.mark.peers
def test_client_certificate_from_certs_d(tmp_path: Path) -> None:
    """A registry that wants a client certificate: ``*.cert`` + ``*.key`` beside the CA in
    ``certs.d/HOST:PORT`` (Docker's rule) are presented; without them the handshake fails."""
    ca, cert, key = make_ca_and_server(tmp_path / "pki", HOST)
    client_cert, client_key = make_client_cert(tmp_path / "pki")
    with tls_distribution(tmp_path, cert, key, client_ca=ca) as addr:
        certs_d = tmp_path / "certs.d"
        (certs_d / addr).mkdir(parents=True)
        (certs_d / addr / "ca.crt").write_bytes(ca.read_bytes())
        env = clean_env(tmp_path, GANTRY_CERTS_D=str(certs_d))
        with Store(tmp_path / "client-root") as src:
            img = make_image(src, [random_layer(20_000, 8)], f"{addr}/m/tls:1")
        refused = gantry(["push", f"{addr}/m/tls:1"], env)
        assert refused.returncode != 0
        assert refused.stderr.startswith("Error"), refused.stderr
        assert "Traceback" not in refused.stderr
        (certs_d / addr / "client.cert").write_bytes(client_cert.read_bytes())
        (certs_d / addr / "client.key").write_bytes(client_key.read_bytes())
        pushed = gantry(["push", f"{addr}/m/tls:1"], env)
        assert pushed.returncode == 0, pushed.stderr
        assert f"1: digest: {img.manifest_digest} size: " in pushed.stdout
        other = clean_env(tmp_path, GANTRY_CERTS_D=str(certs_d), GANTRY_ROOT=str(tmp_path / "b"))
        pulled = gantry(["pull", "-q", f"{addr}/m/tls:1"], other)
        assert pulled.returncode == 0, pulled.stderr
