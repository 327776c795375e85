"""One registry host over the OCI Distribution API: auth, retries, redirects, errors.

:class:`RegistryClient` is safe to share between threads (downloads run in a
pool). Requests carry the repository scopes they need; the client answers
``401`` challenges (Basic or Bearer) once per request, caches tokens per scope,
retries ``429``/``5xx`` and dropped connections with exponential backoff and
full jitter (honouring ``Retry-After``), and follows redirects (dropping
credentials when the host changes, as blob storage on another host expects).
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import os
import random
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gantry.digest import CHUNK, Digest
from gantry.errors import GantryError, RegistryError
from gantry.oci import mediatypes as mt

from .auth import Challenge, TokenCache, basic_header, parse_challenges, scope_for
from .credentials import ConfigFile, Credential
from .transport import Body, Response, TLSFailure, Transport, TransportError, Urllib3Transport

__all__ = [
    "MANIFEST_ACCEPT",
    "RegistryClient",
    "RetryPolicy",
    "api_host",
    "is_insecure",
]

MANIFEST_ACCEPT = ", ".join(
    [mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST]
)
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "gantry/0.1"


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; sleep ``uniform(0, min(cap, base * 2**n))`` between."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 20.0
    #: the longest ``Retry-After`` honoured; longer ones fail at once
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            wait = _retry_after_seconds(retry_after)
            if wait is not None:
                return min(wait, self.max_retry_after)
        return random.uniform(0, min(self.cap, self.base * (2**attempt)))

    @classmethod
    def from_env(cls) -> RetryPolicy:
        raw = os.environ.get("GANTRY_RETRY_BASE")
        return cls(base=float(raw)) if raw else cls()


def _retry_after_seconds(value: str) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def api_host(domain: str) -> str:
    """Where a reference's domain is served: Docker Hub's API lives elsewhere."""
    return "registry-1.docker.io" if domain in ("docker.io", "index.docker.io") else domain


def _insecure_list() -> list[str]:
    out = [s.strip() for s in os.environ.get("GANTRY_INSECURE_REGISTRIES", "").split(",")]
    try:
        daemon = json.loads(Path("/etc/docker/daemon.json").read_text())
        listed = daemon.get("insecure-registries") if isinstance(daemon, dict) else None
        if isinstance(listed, list):
            out.extend(str(x) for x in listed)
    except (OSError, ValueError):
        pass
    return [s for s in out if s]


def is_insecure(hostport: str, extra: Sequence[str] = ()) -> bool:
    """Docker's rule: loopback and configured registries (names or CIDRs) may use HTTP."""
    host = hostport
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return True
    listed = [*extra, *_insecure_list()]
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = None
    if addr is not None and addr.is_loopback:
        return True
    for entry in listed:
        if entry in (hostport, host):
            return True
        if addr is not None and "/" in entry:
            try:
                if addr in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def _error_from(resp: Response, what: str) -> RegistryError:
    """The registry's error, one line: ``code: message`` like distribution's errcode."""
    body = b""
    try:
        body = resp.read(64 * 1024)
    except TransportError:
        pass
    code: str | None = None
    message = ""
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("errors"), list) and doc["errors"]:
        first = doc["errors"][0]
        if isinstance(first, dict):
            code = str(first.get("code") or "") or None
            message = str(first.get("message") or "")
            detail = first.get("detail")
            if not message and detail:
                message = str(detail)
    status = resp.status
    if code:
        text = f"{code.lower().replace('_', ' ')}: {message or code.lower().replace('_', ' ')}"
    elif status == 401:
        code, text = "UNAUTHORIZED", "unauthorized: authentication required"
    elif status == 403:
        code, text = "DENIED", "denied: requested access to the resource is denied"
    elif status == 404:
        text = f"{what}: not found"
    elif status == 429:
        code, text = "TOOMANYREQUESTS", "toomanyrequests: too many requests"
    else:
        snippet = body[:200].decode("utf-8", "replace").strip().splitlines()
        text = f"{what}: HTTP {status}" + (f": {snippet[0]}" if snippet else "")
    return RegistryError(text, code=code, status=status)


class RegistryClient:
    """The Distribution API of one registry (``domain`` as in a reference)."""

    def __init__(
        self,
        domain: str,
        *,
        transport: Transport | None = None,
        credential: Credential | None = None,
        config: ConfigFile | None = None,
        insecure: bool | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.domain = domain
        self.host = api_host(domain)
        self.transport: Transport = transport or Urllib3Transport()
        if credential is None:
            try:
                credential = (config or ConfigFile()).get(domain)
            except GantryError:
                # a credential helper that cannot run (or a config it cannot read) leaves
                # the request anonymous, as docker/cli's ResolveAuthConfig does; a registry
                # that needs credentials then says so itself
                credential = Credential()
        self.credential = credential
        self.insecure = is_insecure(self.host) if insecure is None else insecure
        self.retry = retry or RetryPolicy.from_env()
        self._base: str | None = None
        self._tls_verify = True
        self._challenge: Challenge | None = None
        self._tokens = TokenCache()
        self._lock = threading.Lock()

    # ------------------------------------------------------------ base and ping

    @property
    def base(self) -> str:
        if self._base is None:
            self.ping()
        assert self._base is not None
        return self._base

    def ping(self) -> None:
        """``GET /v2/``: pick https or (insecure registries) http, learn the challenge."""
        with self._lock:
            if self._base is not None:
                return
            candidates = [(f"https://{self.host}", True)]
            if self.insecure:
                candidates = [(f"https://{self.host}", False), (f"http://{self.host}", True)]
            last: Exception | None = None
            for base, verify in candidates:
                try:
                    resp = self._send_retrying("GET", f"{base}/v2/", {}, None, verify)
                except TransportError as err:
                    last = err
                    continue
                resp.read(64 * 1024)
                if resp.status in (200, 401):
                    self._base, self._tls_verify = base, verify
                    if resp.status == 401:
                        self._challenge = self._pick(resp)
                    return
                last = RegistryError(
                    f"{self.domain} is not a registry: GET /v2/ answered HTTP {resp.status}",
                    status=resp.status,
                )
            if isinstance(last, TLSFailure):
                raise RegistryError(
                    f'Get "https://{self.host}/v2/": tls: {last}',
                    code="TLS",
                    hint=f"put the registry's CA in /etc/docker/certs.d/{self.host}/ca.crt",
                )
            if isinstance(last, RegistryError):
                raise last
            raise RegistryError(f'Get "https://{self.host}/v2/": {last}', code="UNAVAILABLE")

    def check_login(self) -> None:
        """Prove the credential works (``docker login``); raises RegistryError if not."""
        self.ping()
        c = self._challenge
        if c is None:
            return
        failed = RegistryError(
            f"login attempt to {self.base}/v2/ failed with status: 401 Unauthorized",
            code="UNAUTHORIZED",
            status=401,
        )
        if c.scheme == "bearer":
            try:
                token = self._tokens.get(c, [], self.credential, self._plain_send, refresh=True)
            except RegistryError as err:
                if err.status == 401:
                    raise failed from None
                raise
            headers = {"Authorization": f"Bearer {token}"}
        elif c.scheme == "basic":
            headers = {"Authorization": basic_header(self.credential)}
        else:
            raise RegistryError(f"unsupported authentication scheme {c.scheme!r}")
        resp = self._send_retrying("GET", f"{self.base}/v2/", headers, None, self._tls_verify)
        resp.read(64 * 1024)
        if resp.status != 200:
            raise failed

    def _pick(self, resp: Response) -> Challenge | None:
        header = resp.headers.get("WWW-Authenticate", "")
        challenges = parse_challenges(header)
        for scheme in ("bearer", "basic"):
            for c in challenges:
                if c.scheme == scheme:
                    return c
        return None

    # --------------------------------------------------------------- requests

    def _send_retrying(
        self, method: str, url: str, headers: Mapping[str, str], body: Body, verify: bool
    ) -> Response:
        replayable = body is None or isinstance(body, bytes)
        attempt = 0
        while True:
            full = {"User-Agent": USER_AGENT, **headers}
            try:
                resp = self.transport.request(
                    method, url, headers=full, body=body, tls_verify=verify
                )
            except TLSFailure:
                raise
            except TransportError:
                attempt += 1
                if not replayable or attempt >= self.retry.attempts:
                    raise
                time.sleep(self.retry.delay(attempt - 1))
                continue
            if resp.status in _RETRY_STATUS and replayable and attempt + 1 < self.retry.attempts:
                retry_after = resp.headers.get("Retry-After")
                wait = self.retry.delay(attempt, retry_after)
                if retry_after and (_retry_after_seconds(retry_after) or 0) > (
                    self.retry.max_retry_after
                ):
                    return resp
                resp.read(64 * 1024)
                attempt += 1
                time.sleep(wait)
                continue
            return resp

    def _auth_header(self, scopes: Sequence[str], refresh: bool = False) -> dict[str, str]:
        c = self._challenge
        if c is None:
            return {}
        if c.scheme == "basic":
            return {"Authorization": basic_header(self.credential)} if self.credential else {}
        if c.scheme == "bearer":
            wanted = list(scopes)
            extra = c.params.get("scope")
            if refresh and extra:
                wanted.extend(s for s in extra.split(" ") if s)
            token = self._tokens.get(c, wanted, self.credential, self._plain_send, refresh=refresh)
            return {"Authorization": f"Bearer {token}"}
        return {}

    def _plain_send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> Response:
        return self._send_retrying(method, url, headers, body, self._tls_verify)

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base + path

    def request(
        self,
        method: str,
        path: str,
        *,
        scopes: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        body: Body = None,
    ) -> Response:
        """Send with auth, retries and redirects; the caller checks the status."""
        url = self.url(path)
        own_host = urllib.parse.urlsplit(url).netloc
        hdrs = dict(headers or {})
        retried_auth = False
        redirects = 0
        while True:
            same_host = urllib.parse.urlsplit(url).netloc == own_host
            auth = self._auth_header(scopes) if same_host else {}
            resp = self._send_retrying(method, url, {**hdrs, **auth}, body, self._tls_verify)
            replayable = body is None or isinstance(body, bytes)
            if resp.status == 401 and same_host and not retried_auth and replayable:
                challenge = self._pick(resp)
                if challenge is not None:
                    self._challenge = challenge
                    retried_auth = True
                    refreshed = self._auth_header(scopes, refresh=True)
                    if refreshed:
                        resp.read(64 * 1024)
                        resp = self._send_retrying(
                            method, url, {**hdrs, **refreshed}, body, self._tls_verify
                        )
            if resp.status in _REDIRECTS and method in ("GET", "HEAD") and redirects < 10:
                location = resp.headers.get("Location")
                if location:
                    resp.read(64 * 1024)
                    url = urllib.parse.urljoin(url, location)
                    redirects += 1
                    continue
            return resp

    # -------------------------------------------------------------- manifests

    def get_manifest(
        self, repo: str, ref: str, *, accept: str = MANIFEST_ACCEPT
    ) -> tuple[bytes, str]:
        """(bytes, Content-Type) of a manifest by tag or digest; verified when by digest."""
        from gantry.oci.manifest import MAX_MANIFEST_SIZE

        resp = self.request(
            "GET",
            f"/v2/{repo}/manifests/{ref}",
            scopes=[scope_for(repo, ["pull"])],
            headers={"Accept": accept},
        )
        if resp.status != 200:
            raise _error_from(resp, f"manifest {repo}:{ref}")
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > MAX_MANIFEST_SIZE:
            resp.close()
            raise RegistryError(f"manifest {repo}:{ref} is {length} bytes, over the 4 MiB limit")
        data = resp.read(MAX_MANIFEST_SIZE + 1)
        if len(data) > MAX_MANIFEST_SIZE:
            raise RegistryError(f"manifest {repo}:{ref} is over the 4 MiB limit")
        if ref.startswith(("sha256:", "sha512:")):
            from gantry import digest as _digest

            want = Digest(ref)
            got = _digest.of_bytes(data, want.algorithm)
            if got != want:
                raise RegistryError(
                    f"manifest verification failed for digest {want}: the registry sent {got}",
                    code="DIGEST_INVALID",
                )
        return data, resp.headers.get("Content-Type", "")

    def head_manifest(self, repo: str, ref: str) -> tuple[Digest, int, str] | None:
        """(digest, size, media type) of a manifest, or None when absent."""
        resp = self.request(
            "HEAD",
            f"/v2/{repo}/manifests/{ref}",
            scopes=[scope_for(repo, ["pull"])],
            headers={"Accept": MANIFEST_ACCEPT},
        )
        resp.read(0)
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise _error_from(resp, f"manifest {repo}:{ref}")
        dg = resp.headers.get("Docker-Content-Digest")
        if not dg:
            return None
        return (
            Digest(dg),
            int(resp.headers.get("Content-Length", "0") or 0),
            resp.headers.get("Content-Type", ""),
        )

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> Digest:
        resp = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{ref}",
            scopes=[scope_for(repo, ["pull", "push"])],
            headers={"Content-Type": media_type},
            body=data,
        )
        if resp.status not in (200, 201, 202):
            raise _error_from(resp, f"manifest {repo}:{ref}")
        resp.read(64 * 1024)
        from gantry import digest as _digest

        return _digest.of_bytes(data)

    # ------------------------------------------------------------------ blobs

    def has_blob(self, repo: str, digest: str) -> bool:
        resp = self.request(
            "HEAD", f"/v2/{repo}/blobs/{digest}", scopes=[scope_for(repo, ["pull"])]
        )
        resp.read(0)
        if resp.status == 200:
            return True
        if resp.status == 404:
            return False
        raise _error_from(resp, f"blob {digest}")

    def get_blob(self, repo: str, digest: str, *, offset: int = 0) -> Response:
        """The blob from ``offset`` (``206`` when the registry honoured the Range)."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = self.request(
            "GET", f"/v2/{repo}/blobs/{digest}", scopes=[scope_for(repo, ["pull"])], headers=headers
        )
        if resp.status == 416 and offset:
            resp.read(0)
            return self.get_blob(repo, digest)
        if resp.status not in (200, 206):
            raise _error_from(resp, f"blob {digest}")
        return resp

    def read_blob(self, repo: str, digest: str, limit: int) -> bytes:
        from gantry import digest as _digest

        data = self.get_blob(repo, digest).read(limit + 1)
        if len(data) > limit:
            raise RegistryError(f"blob {digest} is over the limit of {limit} bytes")
        _digest.verify(data, digest)
        return data

    # ---------------------------------------------------------------- uploads

    def start_upload(
        self, repo: str, *, mount: str | None = None, source: str | None = None
    ) -> tuple[str | None, bool]:
        """Open an upload session (or mount ``mount`` from repository ``source``).

        Returns (upload location, mounted). A refused mount falls back to a session.
        """
        scopes = [scope_for(repo, ["pull", "push"])]
        path = f"/v2/{repo}/blobs/uploads/"
        if mount is not None and source is not None:
            scopes.append(scope_for(source, ["pull"]))
            path += "?" + urllib.parse.urlencode({"mount": mount, "from": source})
        resp = self.request("POST", path, scopes=scopes, body=b"")
        resp.read(64 * 1024)
        if resp.status == 201 and mount is not None:
            return None, True
        if resp.status != 202:
            raise _error_from(resp, f"upload to {repo}")
        location = resp.headers.get("Location")
        if not location:
            raise RegistryError(f"upload to {repo}: the registry sent no Location")
        return self._absolute(location), False

    def _absolute(self, location: str) -> str:
        return urllib.parse.urljoin(self.base + "/", location)

    def upload_offset(self, repo: str, location: str) -> int | None:
        """Bytes a session already holds (``GET`` on it); None if the session is gone
        or cannot be continued.

        ``Range: 0-0`` is None too: distribution (and gantry's registry) answer it both
        for an empty session and for one holding a single byte, so no offset is safe to
        continue from; a new session costs at most that one byte.
        """
        resp = self.request("GET", location, scopes=[scope_for(repo, ["pull", "push"])])
        resp.read(64 * 1024)
        if resp.status != 204:
            return None
        rng = resp.headers.get("Range", "")
        if rng.startswith("bytes="):
            rng = rng[6:]
        if "-" not in rng:
            return 0
        end = int(rng.split("-", 1)[1])
        return None if end == 0 else end + 1

    def patch_upload(
        self, repo: str, location: str, chunks: Iterable[bytes], start: int, length: int
    ) -> str:
        resp = self.request(
            "PATCH",
            location,
            scopes=[scope_for(repo, ["pull", "push"])],
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(length),
                "Content-Range": f"{start}-{start + length - 1}",
            },
            body=chunks,
        )
        resp.read(64 * 1024)
        if resp.status != 202:
            raise _error_from(resp, f"upload to {repo}")
        return self._absolute(resp.headers.get("Location") or location)

    def finish_upload(
        self, repo: str, location: str, digest: str, chunks: Iterable[bytes] | bytes, length: int
    ) -> None:
        sep = "&" if "?" in location else "?"
        url = f"{location}{sep}digest={urllib.parse.quote(digest)}"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
        resp = self.request(
            "PUT",
            url,
            scopes=[scope_for(repo, ["pull", "push"])],
            headers=headers,
            body=chunks if length else b"",
        )
        resp.read(64 * 1024)
        if resp.status not in (201, 204):
            raise _error_from(resp, f"blob {digest}")

    # ------------------------------------------------------------ listings

    def tags(self, repo: str) -> list[str]:
        out: list[str] = []
        path: str | None = f"/v2/{repo}/tags/list"
        while path:
            resp = self.request("GET", path, scopes=[scope_for(repo, ["pull"])])
            if resp.status != 200:
                raise _error_from(resp, f"tags of {repo}")
            doc = json.loads(resp.read(16 << 20) or b"{}")
            out.extend(str(t) for t in (doc.get("tags") or []))
            path = _next_link(resp.headers.get("Link"))
        return out

    def catalog(self) -> list[str]:
        out: list[str] = []
        path: str | None = "/v2/_catalog?n=1000"
        while path:
            resp = self.request("GET", path, scopes=["registry:catalog:*"])
            if resp.status != 200:
                raise _error_from(resp, "catalog")
            doc = json.loads(resp.read(16 << 20) or b"{}")
            out.extend(str(t) for t in (doc.get("repositories") or []))
            path = _next_link(resp.headers.get("Link"))
        return out


def _next_link(link: str | None) -> str | None:
    if not link:
        return None
    for part in link.split(","):
        if 'rel="next"' in part and "<" in part and ">" in part:
            return part[part.index("<") + 1 : part.index(">")]
    return None


def iter_file(path: Path, start: int = 0, length: int | None = None) -> Iterator[bytes]:
    """``length`` bytes of a file from ``start``, in CHUNK pieces."""
    with open(path, "rb") as f:
        f.seek(start)
        left = length if length is not None else os.fstat(f.fileno()).st_size - start
        while left > 0:
            data = f.read(min(CHUNK, left))
            if not data:
                raise RegistryError(f"{path} shrank while being uploaded")
            left -= len(data)
            yield data
