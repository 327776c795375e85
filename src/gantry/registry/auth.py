"""Who may do what: no auth, htpasswd (Basic), or Docker's bearer-token scheme.

The token scheme is the one Docker and every registry client speak: a request
without a good token gets ``401`` and ``WWW-Authenticate: Bearer realm=...,
service=...,scope=repository:NAME:pull,push``; the client fetches a JWT from the
realm and retries. The registry verifies the JWT's signature (keys from
``rootcertbundle``), issuer, audience, lifetime and its ``access`` claims.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import binascii
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from gantry.errors import UsageError

from .errcodes import api_error
from .htpasswd import Htpasswd

ALL_ACTIONS = frozenset({"pull", "push", "delete"})


@dataclass(frozen=True, slots=True)
class Access:
    """One resource and the actions a request needs on it."""

    type: str
    name: str
    actions: frozenset[str]

    @property
    def scope(self) -> str:
        order = ["pull", "push", "delete", "*"]
        acts = sorted(self.actions, key=lambda a: (order.index(a) if a in order else 9, a))
        return f"{self.type}:{self.name}:{','.join(acts)}"


def repository(name: str, *actions: str) -> Access:
    return Access("repository", name, frozenset(actions))


CATALOG = Access("registry", "catalog", frozenset({"*"}))


@dataclass(slots=True)
class Identity:
    """The authenticated caller; ``grants`` is None when everything is allowed."""

    user: str | None = None
    grants: dict[tuple[str, str], frozenset[str]] | None = field(default=None)

    def permits(self, access: Access) -> bool:
        if self.grants is None:
            return True
        have = self.grants.get((access.type, access.name), frozenset())
        return "*" in have or access.actions <= have


class Authenticator(abc.ABC):
    @abc.abstractmethod
    async def authorize(self, request: web.Request, access: Sequence[Access]) -> Identity:
        """The caller's identity, or RegistryError UNAUTHORIZED / DENIED."""

    def challenge(self, access: Sequence[Access], *, error: str | None = None) -> str | None:
        """The ``WWW-Authenticate`` value sent with a 401."""
        return None


class AllowAll(Authenticator):
    async def authorize(self, request: web.Request, access: Sequence[Access]) -> Identity:
        return Identity()


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class HtpasswdAuth(Authenticator):
    """Basic auth against an htpasswd file; every known user may do everything."""

    def __init__(self, path: Path, realm: str) -> None:
        self.htpasswd = Htpasswd(path)
        self.realm = realm

    async def authorize(self, request: web.Request, access: Sequence[Access]) -> Identity:
        creds = basic_credentials(request)
        if creds is None:
            raise api_error("UNAUTHORIZED")
        ok = await asyncio.to_thread(self.htpasswd.verify, *creds)
        if not ok:
            raise api_error("UNAUTHORIZED", "invalid username or password")
        return Identity(user=creds[0])

    def challenge(self, access: Sequence[Access], *, error: str | None = None) -> str:
        return f'Basic realm="{self.realm}"'


def key_id(public_key: Any) -> str:
    """The libtrust key ID of ``public_key``: the ``kid`` distribution's token verifier
    looks up among the keys of its ``rootcertbundle``.

    SHA-256 of the key's DER SubjectPublicKeyInfo, its first 240 bits in base32,
    in twelve groups of four joined by ``:`` (``ABCD:EFGH:...``).
    """
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(b32[i : i + 4] for i in range(0, len(b32), 4))


def load_verification_keys(path: Path) -> list[Any]:
    """Public keys from a PEM bundle of certificates and/or public keys."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        text = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read rootcertbundle {path}: {e.strerror}") from None
    keys: list[Any] = []
    for block in text.split(b"-----END ")[:-1]:
        begin = block.rfind(b"-----BEGIN ")
        if begin < 0:
            continue
        kind = block[begin + 11 : block.index(b"-----", begin + 11)]
        pem = block[begin:] + b"-----END " + kind + b"-----\n"
        if kind == b"CERTIFICATE":
            keys.append(x509.load_pem_x509_certificate(pem).public_key())
        elif kind == b"PUBLIC KEY":
            keys.append(load_pem_public_key(pem))
    if not keys:
        raise UsageError(f"{path}: no certificate or public key found")
    return keys


class TokenAuth(Authenticator):
    """Bearer JWTs issued by a token service Docker clients already know how to use."""

    ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA")

    def __init__(self, realm: str, service: str, issuer: str, rootcertbundle: Path) -> None:
        self.realm = realm
        self.service = service
        self.issuer = issuer
        self.keys = load_verification_keys(rootcertbundle)
        self.key_ids = {key_id(k): k for k in self.keys}

    def verify(self, token: str) -> dict[str, Any]:
        import jwt

        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as e:
            raise api_error("UNAUTHORIZED", f"invalid token: {e}") from None
        named = self.key_ids.get(kid) if isinstance(kid, str) else None
        # the key the token names first (one signature check instead of one per
        # key); tokens without a known kid still try every trusted key
        keys = [named] if named is not None else self.keys
        last: Exception | None = None
        for key in keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key=key,
                    algorithms=list(self.ALGORITHMS),
                    audience=self.service,
                    issuer=self.issuer,
                    options={"require": ["exp", "iss", "aud"]},
                    leeway=30,
                )
                return claims
            except jwt.InvalidSignatureError as e:
                last = e
                continue
            except jwt.PyJWTError as e:
                raise api_error("UNAUTHORIZED", f"invalid token: {e}") from None
        raise api_error("UNAUTHORIZED", f"invalid token: {last}")

    async def authorize(self, request: web.Request, access: Sequence[Access]) -> Identity:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise api_error("UNAUTHORIZED")
        claims = self.verify(token.strip())
        grants: dict[tuple[str, str], frozenset[str]] = {}
        for entry in claims.get("access") or []:
            if not isinstance(entry, dict):
                continue
            key = (str(entry.get("type", "")), str(entry.get("name", "")))
            acts = entry.get("actions") or []
            if isinstance(acts, list):
                grants[key] = grants.get(key, frozenset()) | frozenset(str(a) for a in acts)
        ident = Identity(user=str(claims.get("sub") or "") or None, grants=grants)
        for a in access:
            if not ident.permits(a):
                raise api_error("UNAUTHORIZED", "insufficient scope")
        return ident

    def challenge(self, access: Sequence[Access], *, error: str | None = None) -> str:
        parts = [f'realm="{self.realm}"', f'service="{self.service}"']
        if access:
            parts.append(f'scope="{" ".join(a.scope for a in access)}"')
        if error:
            parts.append(f'error="{error}"')
        return "Bearer " + ",".join(parts)


def from_config(cfg: Any) -> Authenticator:
    """The authenticator a :class:`~gantry.registry.config.RegistryConfig` asks for."""
    if cfg.htpasswd is not None:
        return HtpasswdAuth(cfg.htpasswd.path, cfg.htpasswd.realm)
    if cfg.token_auth is not None:
        t = cfg.token_auth
        return TokenAuth(t.realm, t.service, t.issuer, t.rootcertbundle)
    return AllowAll()


def now() -> float:
    return time.time()
