"""Registry authentication: ``WWW-Authenticate`` challenges, Basic, Bearer tokens.

The Docker token flow: a registry answers 401 with
``Bearer realm="https://auth/token",service="reg",scope="repository:x:pull"``; the
client asks ``realm?service=reg&scope=...`` (with Basic credentials when it has
them, or a refresh token by OAuth2 POST) and sends ``Authorization: Bearer <t>``.
Tokens are cached per scope set until shortly before they expire.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gantry.errors import RegistryError

from .credentials import Credential
from .transport import Response

__all__ = ["Challenge", "TokenCache", "basic_header", "parse_challenges", "scope_for"]


@dataclass(frozen=True)
class Challenge:
    scheme: str  #: lower case: "basic", "bearer"
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def _token68_or_params(s: str, i: int) -> tuple[dict[str, str], int]:
    params: dict[str, str] = {}
    n = len(s)
    while i < n:
        while i < n and s[i] in " \t,":
            i += 1
        start = i
        while i < n and s[i] not in "= \t,":
            i += 1
        key = s[start:i].lower()
        while i < n and s[i] in " \t":
            i += 1
        if i >= n or s[i] != "=" or not key:
            # the next challenge's scheme: hand back to the caller
            return params, start
        i += 1
        while i < n and s[i] in " \t":
            i += 1
        if i < n and s[i] == '"':
            i += 1
            value = []
            while i < n and s[i] != '"':
                if s[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(s[i])
                i += 1
            i += 1
            params[key] = "".join(value)
        else:
            start = i
            while i < n and s[i] not in " \t,":
                i += 1
            params[key] = s[start:i]
    return params, i


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge in a ``WWW-Authenticate`` value (RFC 7235 syntax)."""
    out: list[Challenge] = []
    i, n = 0, len(header)
    while i < n:
        while i < n and header[i] in " \t,":
            i += 1
        start = i
        while i < n and header[i] not in " \t,":
            i += 1
        scheme = header[start:i].lower()
        if not scheme:
            break
        params, i = _token68_or_params(header, i)
        out.append(Challenge(scheme, params))
    return out


def basic_header(cred: Credential) -> str:
    raw = f"{cred.username}:{cred.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def scope_for(repository: str, actions: Sequence[str]) -> str:
    return f"repository:{repository}:{','.join(actions)}"


Requester = Callable[[str, str, dict[str, str], bytes | None], Response]


class TokenCache:
    """Bearer tokens by (realm, service, scopes), refreshed before they expire."""

    def __init__(self) -> None:
        #: key -> (token, refresh after, fetched at)
        self._tokens: dict[tuple[str, str, tuple[str, ...]], tuple[str, float, float]] = {}
        self._fetching: dict[tuple[str, str, tuple[str, ...]], threading.Lock] = {}
        self._lock = threading.Lock()

    def get(
        self,
        challenge: Challenge,
        scopes: Sequence[str],
        cred: Credential,
        send: Requester,
        *,
        refresh: bool = False,
    ) -> str:
        asked = time.time()
        realm = challenge.realm
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(f"invalid bearer challenge: realm {realm!r} is not a URL")
        service = challenge.params.get("service", "")
        wanted = tuple(sorted(set(scopes)))
        key = (realm, service, wanted)
        with self._lock:
            hit = self._tokens.get(key)
            if hit is not None and not refresh and hit[1] > time.time():
                return hit[0]
            # one fetch per key at a time: the concurrent blob transfers of one pull or
            # push wait for the first one's token instead of each asking for their own
            fetching = self._fetching.setdefault(key, threading.Lock())
        with fetching:
            with self._lock:
                hit = self._tokens.get(key)
                # (a refresh is satisfied by a token fetched while this thread waited)
                if hit is not None and hit[1] > time.time() and (not refresh or hit[2] > asked):
                    return hit[0]
            token, lifetime = _fetch_token(realm, service, wanted, cred, send)
            with self._lock:
                # refresh a little early; tokens without expires_in live 60 s (spec)
                now = time.time()
                self._tokens[key] = (token, now + max(lifetime - 10, lifetime / 2), now)
        return token

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


def _fetch_token(
    realm: str, service: str, scopes: tuple[str, ...], cred: Credential, send: Requester
) -> tuple[str, float]:
    headers: dict[str, str] = {}
    if cred.identity_token:
        form: list[tuple[str, str]] = [
            ("grant_type", "refresh_token"),
            ("refresh_token", cred.identity_token),
            ("service", service),
            ("client_id", "gantry"),
            *(("scope", s) for s in scopes),
        ]
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        resp = send("POST", realm, headers, urllib.parse.urlencode(form).encode())
    else:
        query: list[tuple[str, str]] = []
        if service:
            query.append(("service", service))
        query.extend(("scope", s) for s in scopes)
        if cred.username:
            headers["Authorization"] = basic_header(cred)
            if query:
                query.append(("account", cred.username))
        sep = "&" if "?" in realm else "?"
        url = realm + (sep + urllib.parse.urlencode(query) if query else "")
        resp = send("GET", url, headers, None)
    body = resp.read(1 << 20)
    if resp.status == 401:
        raise RegistryError(
            "unauthorized: incorrect username or password"
            if cred
            else "unauthorized: authentication required",
            code="UNAUTHORIZED",
            status=401,
        )
    if resp.status != 200:
        raise RegistryError(
            f"getting a token from {realm}: HTTP {resp.status}", code="UNAUTHORIZED", status=401
        )
    try:
        doc = json.loads(body)
    except ValueError:
        raise RegistryError(f"token server {realm} sent invalid JSON") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"token server {realm} sent invalid JSON")
    token = doc.get("token") or doc.get("access_token")
    if not isinstance(token, str) or not token:
        raise RegistryError(f"token server {realm} sent no token")
    lifetime = doc.get("expires_in")
    seconds = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 60.0
    return token, seconds
