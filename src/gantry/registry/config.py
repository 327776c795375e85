"""Registry configuration: defaults, the YAML file, and command-line overrides.

The YAML keeps distribution's shape where it has one, so an existing
``config.yml`` mostly works::

    version: 0.1
    http:
      addr: 127.0.0.1:5000
      tls: {certificate: cert.pem, key: key.pem}
    storage:
      filesystem: {rootdirectory: /var/lib/registry}
      # or s3: {bucket: b, region: us-east-1, regionendpoint: http://127.0.0.1:9000,
      #         accesskey: ..., secretkey: ..., rootdirectory: /prefix, chunksize: 8388608}
      delete: {enabled: true}
      maintenance:
        readonly: {enabled: false}
        uploadpurging: {age: 168h}
    auth:
      htpasswd: {realm: gantry, path: /etc/registry/htpasswd}
      # or token: {realm: https://auth/token, service: registry, issuer: gantry,
      #            rootcertbundle: /etc/registry/token.pem}
    token:          # gantry's own token service, served at /token
      issuer: gantry
      service: registry
      key: /etc/registry/token-key.pem
      htpasswd: /etc/registry/htpasswd
      policy: /etc/registry/policy.yml
      expiration: 300
    ratelimit: {rate: 50, burst: 100}     # requests per second per client address
    notifications:
      endpoints: [{name: hook, url: http://127.0.0.1:8000/events, timeout: 5s}]
    log: {accesslog: {disabled: false}}
    gc: {graceperiod: 1h}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantry.errors import UsageError


@dataclass
class S3Config:
    bucket: str
    region: str = "us-east-1"
    endpoint: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    prefix: str = ""
    chunk_size: int = 16 << 20
    redirect: bool = False


@dataclass
class HtpasswdConfig:
    path: Path
    realm: str = "gantry-registry"


@dataclass
class TokenAuthConfig:
    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


@dataclass
class TokenIssuerConfig:
    key: Path
    issuer: str = "gantry"
    service: str = "gantry-registry"
    htpasswd: Path | None = None
    policy: Path | None = None
    expiration: int = 300


@dataclass
class Endpoint:
    url: str
    name: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 5.0
    threshold: int = 3  # attempts per event batch


@dataclass
class RegistryConfig:
    addr: str = "127.0.0.1:5000"
    data: Path | None = None
    storage: str = "filesystem"
    fsync: bool = True
    s3: S3Config | None = None
    delete_enabled: bool = True
    readonly: bool = False
    upload_purge_age: float = 7 * 24 * 3600.0
    htpasswd: HtpasswdConfig | None = None
    token_auth: TokenAuthConfig | None = None
    token_issuer: TokenIssuerConfig | None = None
    tls_certificate: Path | None = None
    tls_key: Path | None = None
    rate: float | None = None
    burst: int = 0
    notifications: list[Endpoint] = field(default_factory=list)
    access_log: bool = True
    gc_grace_period: float = 3600.0
    #: where relative paths in the file are resolved from
    base_dir: Path = field(default_factory=Path.cwd)

    def host_port(self) -> tuple[str, int]:
        return parse_addr(self.addr)


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any, where: str) -> float:
    """``30``, ``30s``, ``5m``, ``1h``, ``168h`` -> seconds."""
    if isinstance(value, bool):
        raise UsageError(f"{where}: invalid duration {value!r}")
    if isinstance(value, int | float):
        return float(value)
    m = _DURATION.match(str(value).strip())
    if not m:
        raise UsageError(f"{where}: invalid duration {value!r} (use e.g. 30s, 5m, 1h)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_addr(addr: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[::1]:PORT`` or ``:PORT`` (all interfaces)."""
    m = re.match(r"^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]*)):(\d{1,5})$", addr)
    if not m or int(m.group(3)) > 65535:
        raise UsageError(f"invalid address {addr!r}: use HOST:PORT")
    host = m.group(1) or m.group(2) or "0.0.0.0"
    return host, int(m.group(3))


def _section(d: Any, key: str, where: str) -> dict[str, Any]:
    v = d.get(key) if isinstance(d, dict) else None
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise UsageError(f"{where}.{key}: expected a mapping")
    return v


def load(path: Path | None) -> RegistryConfig:
    """Read a YAML config file (None: the defaults)."""
    cfg = RegistryConfig()
    if path is None:
        return cfg
    import yaml

    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except OSError as e:
        raise UsageError(f"cannot read config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise UsageError(f"invalid YAML in {path}: {e}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: the top level must be a mapping")
    cfg.base_dir = path.resolve().parent
    apply(cfg, doc)
    return cfg


def apply(cfg: RegistryConfig, doc: dict[str, Any]) -> None:
    """Apply a parsed config document onto ``cfg``."""

    def p(v: Any) -> Path:
        q = Path(str(v)).expanduser()
        return q if q.is_absolute() else cfg.base_dir / q

    http = _section(doc, "http", "config")
    if "addr" in http:
        cfg.addr = str(http["addr"])
        parse_addr(cfg.addr)
    tls = _section(http, "tls", "http")
    if "tls" in http:
        if "certificate" not in tls or "key" not in tls:
            raise UsageError("http.tls needs certificate and key")
        cfg.tls_certificate = p(tls["certificate"])
        cfg.tls_key = p(tls["key"])

    storage = _section(doc, "storage", "config")
    fs = _section(storage, "filesystem", "storage")
    if fs:
        cfg.storage = "filesystem"
        if "rootdirectory" in fs:
            cfg.data = p(fs["rootdirectory"])
        cfg.fsync = bool(fs.get("fsync", True))
    s3 = _section(storage, "s3", "storage")
    if "s3" in storage:
        if "bucket" not in s3:
            raise UsageError("storage.s3.bucket is required")
        cfg.storage = "s3"
        cfg.s3 = S3Config(
            bucket=str(s3["bucket"]),
            region=str(s3.get("region", "us-east-1")),
            endpoint=s3.get("regionendpoint") or s3.get("endpoint"),
            access_key=s3.get("accesskey"),
            secret_key=s3.get("secretkey"),
            prefix=str(s3.get("rootdirectory", "")).strip("/"),
            chunk_size=int(s3.get("chunksize", 16 << 20)),
            redirect=not bool(_section(storage, "redirect", "storage").get("disable", True)),
        )
        if cfg.s3.chunk_size < 5 << 20:
            raise UsageError("storage.s3.chunksize must be at least 5 MiB (5242880)")
    delete = _section(storage, "delete", "storage")
    if "enabled" in delete:
        cfg.delete_enabled = bool(delete["enabled"])
    maint = _section(storage, "maintenance", "storage")
    ro = _section(maint, "readonly", "storage.maintenance")
    cfg.readonly = bool(ro.get("enabled", cfg.readonly))
    purge = _section(maint, "uploadpurging", "storage.maintenance")
    if "age" in purge:
        cfg.upload_purge_age = parse_duration(purge["age"], "uploadpurging.age")

    auth = _section(doc, "auth", "config")
    ht = _section(auth, "htpasswd", "auth")
    if "htpasswd" in auth:
        if "path" not in ht:
            raise UsageError("auth.htpasswd.path is required")
        cfg.htpasswd = HtpasswdConfig(path=p(ht["path"]), realm=str(ht.get("realm", "gantry")))
    tok = _section(auth, "token", "auth")
    if "token" in auth:
        try:
            cfg.token_auth = TokenAuthConfig(
                realm=str(tok["realm"]),
                service=str(tok["service"]),
                issuer=str(tok["issuer"]),
                rootcertbundle=p(tok["rootcertbundle"]),
            )
        except KeyError as e:
            raise UsageError(f"auth.token.{e.args[0]} is required") from None
    if cfg.htpasswd and cfg.token_auth:
        raise UsageError("configure one of auth.htpasswd and auth.token, not both")

    issuer = _section(doc, "token", "config")
    if "token" in doc:
        if "key" not in issuer:
            raise UsageError("token.key (a PEM private key) is required")
        cfg.token_issuer = TokenIssuerConfig(
            key=p(issuer["key"]),
            issuer=str(issuer.get("issuer", "gantry")),
            service=str(issuer.get("service", "gantry-registry")),
            htpasswd=p(issuer["htpasswd"]) if issuer.get("htpasswd") else None,
            policy=p(issuer["policy"]) if issuer.get("policy") else None,
            expiration=int(parse_duration(issuer.get("expiration", 300), "token.expiration")),
        )

    rl = _section(doc, "ratelimit", "config")
    if rl:
        cfg.rate = float(rl.get("rate", 50))
        cfg.burst = int(rl.get("burst", max(1, int(2 * cfg.rate))))

    notif = _section(doc, "notifications", "config")
    for i, ep in enumerate(notif.get("endpoints") or []):
        if not isinstance(ep, dict) or "url" not in ep:
            raise UsageError(f"notifications.endpoints[{i}]: url is required")
        if ep.get("disabled"):
            continue
        headers = {
            str(k): str(v[0] if isinstance(v, list) else v)
            for k, v in (ep.get("headers") or {}).items()
        }
        cfg.notifications.append(
            Endpoint(
                url=str(ep["url"]),
                name=str(ep.get("name", f"endpoint-{i}")),
                headers=headers,
                timeout=parse_duration(ep.get("timeout", "5s"), "notifications.timeout"),
                threshold=int(ep.get("threshold", 3)),
            )
        )

    log = _section(doc, "log", "config")
    access = _section(log, "accesslog", "log")
    if "disabled" in access:
        cfg.access_log = not bool(access["disabled"])

    gc = _section(doc, "gc", "config")
    if "graceperiod" in gc:
        cfg.gc_grace_period = parse_duration(gc["graceperiod"], "gc.graceperiod")
