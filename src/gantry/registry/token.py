"""A token service for Docker's registry auth flow (``GET /token``).

Clients that got ``401 WWW-Authenticate: Bearer realm=...`` from the registry
come here with Basic credentials (or none, for anonymous access) and the
scopes they need; the service grants the subset its policy allows and returns
a signed JWT. Users come from an htpasswd file; the policy is a YAML list::

    - account: alice          # user name (glob); "*" any signed-in user,
      name: "alice/*"         # "anonymous" for requests without credentials
      actions: [pull, push, delete]
    - account: "*"
      name: "*"
      actions: [pull]

Without a policy file every signed-in user gets every action and anonymous
requests get nothing.
"""

from __future__ import annotations

import asyncio
import datetime
import fnmatch
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from gantry.errors import UsageError

from .auth import ALL_ACTIONS, basic_credentials, key_id
from .config import TokenIssuerConfig
from .htpasswd import Htpasswd

ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Rule:
    account: str
    name: str
    actions: frozenset[str]

    def matches(self, account: str | None, type_: str, name: str) -> bool:
        who = account if account is not None else ANONYMOUS
        if self.account == "*" and account is None:
            return False
        if not fnmatch.fnmatchcase(who, self.account):
            return False
        target = name if type_ == "repository" else f"{type_}:{name}"
        return fnmatch.fnmatchcase(target, self.name)


def load_policy(path: Path) -> list[Rule]:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text()) or []
    except (OSError, yaml.YAMLError) as e:
        raise UsageError(f"cannot read token policy {path}: {e}") from None
    if isinstance(doc, dict):
        doc = doc.get("rules", [])
    if not isinstance(doc, list):
        raise UsageError(f"{path}: expected a list of rules")
    rules: list[Rule] = []
    for i, r in enumerate(doc):
        if not isinstance(r, dict) or "account" not in r or "name" not in r:
            raise UsageError(f"{path}: rule {i} needs account and name")
        actions = r.get("actions", ["pull"])
        if actions == "*" or actions == ["*"]:
            actions = sorted(ALL_ACTIONS | {"*"})
        rules.append(Rule(str(r["account"]), str(r["name"]), frozenset(str(a) for a in actions)))
    return rules


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """``repository:samalba/app:pull,push`` -> (type, name, actions)."""
    type_, sep, rest = scope.partition(":")
    if not sep:
        return None
    name, sep, actions = rest.rpartition(":")
    if not sep or not name:
        return None
    return type_, name, [a for a in actions.split(",") if a]


class TokenService:
    def __init__(
        self,
        key: Any,
        *,
        issuer: str,
        service: str,
        htpasswd: Htpasswd | None,
        policy: list[Rule] | None,
        expiration: int = 300,
    ) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        self.key = key
        if isinstance(key, rsa.RSAPrivateKey):
            self.algorithm = "RS256"
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            self.algorithm = {256: "ES256", 384: "ES384", 521: "ES512"}[key.curve.key_size]
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            self.algorithm = "EdDSA"
        else:
            raise UsageError("token key must be an RSA, EC or Ed25519 private key")
        self.issuer = issuer
        self.service = service
        self.htpasswd = htpasswd
        self.policy = policy
        self.expiration = expiration
        # distribution's verifier finds the signing key by this header
        self.kid = key_id(key.public_key())

    @classmethod
    def from_config(cls, cfg: TokenIssuerConfig) -> TokenService:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(cfg.key.read_bytes(), password=None)
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot load token key {cfg.key}: {e}") from None
        return cls(
            key,
            issuer=cfg.issuer,
            service=cfg.service,
            htpasswd=Htpasswd(cfg.htpasswd) if cfg.htpasswd else None,
            policy=load_policy(cfg.policy) if cfg.policy else None,
            expiration=cfg.expiration,
        )

    def install(self, app: web.Application) -> None:
        app.router.add_get("/token", self.handle)
        app.router.add_post("/token", self.handle)

    def grant(self, account: str | None, type_: str, name: str, wanted: list[str]) -> list[str]:
        if self.policy is None:
            allowed: set[str] = set(ALL_ACTIONS | {"*"}) if account is not None else set()
        else:
            allowed = set()
            for rule in self.policy:
                if rule.matches(account, type_, name):
                    allowed |= rule.actions
        if "*" in allowed:
            return list(wanted)
        return [a for a in wanted if a in allowed]

    def issue(self, account: str | None, scopes: list[str]) -> dict[str, Any]:
        import jwt

        access: list[dict[str, Any]] = []
        for scope in scopes:
            for one in scope.split(" "):
                parsed = parse_scope(one)
                if parsed is None:
                    continue
                type_, name, wanted = parsed
                granted = self.grant(account, type_, name, wanted)
                access.append({"type": type_, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": account or "",
            "aud": self.service,
            "exp": now + self.expiration,
            "nbf": now - 1,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "access": access,
        }
        token = jwt.encode(claims, self.key, algorithm=self.algorithm, headers={"kid": self.kid})
        issued = (
            datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat().replace("+00:00", "Z")
        )
        return {
            "token": token,
            "access_token": token,
            "expires_in": self.expiration,
            "issued_at": issued,
        }

    async def handle(self, request: web.Request) -> web.Response:
        params: dict[str, list[str]] = {}
        for k, v in request.query.items():
            params.setdefault(k, []).append(v)
        creds = basic_credentials(request)
        if request.method == "POST":
            form = await request.post()
            for fk, fv in form.items():
                params.setdefault(fk, []).append(str(fv))
            if form.get("grant_type") == "password" and form.get("username"):
                creds = (str(form["username"]), str(form.get("password", "")))
        service = (params.get("service") or [self.service])[0]
        if service != self.service:
            return _err(400, "DENIED", f"unknown service {service!r}")
        account: str | None = None
        if creds is not None:
            ok = self.htpasswd is not None and await asyncio.to_thread(self.htpasswd.verify, *creds)
            if not ok:
                return _err(401, "UNAUTHORIZED", "invalid username or password")
            account = creds[0]
        body = self.issue(account, params.get("scope", []))
        return web.json_response(body)


def _err(status: int, code: str, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Basic realm="gantry-token"'} if status == 401 else {}
    return web.json_response(
        {"errors": [{"code": code, "message": message}]}, status=status, headers=headers
    )
