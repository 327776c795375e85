"""The HTTP seam under the registry client.

Everything above this module speaks :class:`Transport` and :class:`Response`;
the default :class:`Urllib3Transport` is urllib3 used from threads (see
``docs/distribution.md`` for why urllib3 and not aiohttp's client). Tests may
hand the client any other object with the same two methods.

The transport does no retries, no redirects and no content decoding: blob
digests are over the raw bytes, and the client decides what is safe to retry.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Protocol

from gantry.digest import CHUNK

__all__ = [
    "Body",
    "Response",
    "TLSFailure",
    "Transport",
    "TransportError",
    "Urllib3Transport",
    "certs_dirs",
]

#: a request body: bytes, or chunks with the length given in Content-Length
Body = bytes | Iterable[bytes] | None


class TransportError(OSError):
    """The connection failed (refused, reset, timed out, truncated)."""


class TLSFailure(TransportError):
    """The TLS handshake or certificate check failed."""


class Response(Protocol):
    status: int

    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive header lookup."""
        ...

    def read(self, limit: int | None = None) -> bytes:
        """The whole body (at most ``limit`` bytes are kept)."""
        ...

    def stream(self, size: int = CHUNK) -> Iterator[bytes]:
        """The body in pieces, raw (no Content-Encoding undone)."""
        ...

    def close(self) -> None: ...


class Transport(Protocol):
    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: Body = None,
        tls_verify: bool = True,
    ) -> Response:
        """Send one request; the body of the answer is read lazily."""
        ...


def certs_dirs() -> list[Path]:
    """Where per-registry CA certificates live, Docker's and containers' places."""
    dirs = [Path("/etc/docker/certs.d"), Path("/etc/containers/certs.d")]
    home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    dirs.append(Path(home) / "docker" / "certs.d")
    extra = os.environ.get("GANTRY_CERTS_D")
    if extra:
        dirs.insert(0, Path(extra))
    return dirs


def _host_tls(hostport: str) -> tuple[list[Path], list[tuple[Path, Path]]]:
    """CA files and client (cert, key) pairs for ``host[:port]`` from certs.d dirs."""
    cas: list[Path] = []
    pairs: list[tuple[Path, Path]] = []
    for base in certs_dirs():
        d = base / hostport  # Docker names the directory host:port
        if not d.is_dir():
            continue
        for f in sorted(d.iterdir()):
            if f.suffix == ".crt":
                cas.append(f)
            elif f.suffix == ".cert":
                key = f.with_suffix(".key")
                if key.is_file():
                    pairs.append((f, key))
    return cas, pairs


class _U3Response:
    def __init__(self, resp: object) -> None:
        import urllib3

        assert isinstance(resp, urllib3.BaseHTTPResponse)
        self._r = resp
        self.status = resp.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._r.headers

    def read(self, limit: int | None = None) -> bytes:
        out = bytearray()
        try:
            for chunk in self.stream():
                if limit is None or len(out) < limit:
                    out += chunk
        finally:
            self.close()
        return bytes(out if limit is None else out[:limit])

    def stream(self, size: int = CHUNK) -> Iterator[bytes]:
        import urllib3

        try:
            while True:
                data = self._r.read(size, decode_content=False)
                if not data:
                    return
                yield data
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise TransportError(f"reading the response: {_why(err)}") from err

    def close(self) -> None:
        self._r.release_conn()


def _why(err: BaseException) -> str:
    reason = getattr(err, "reason", None)
    if reason is not None and reason is not err:
        return _why(reason) if isinstance(reason, BaseException) else str(reason)
    return str(err) or type(err).__name__


class Urllib3Transport:
    """urllib3 connection pools (one per scheme/host/TLS setting), safe across threads."""

    def __init__(self, *, maxsize: int = 8, connect_timeout: float = 30.0) -> None:
        import urllib3

        self._urllib3 = urllib3
        self._maxsize = maxsize
        # No whole-transfer timeout: a read may wait this long for the next bytes.
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=300.0)
        self._pools: dict[tuple[str, bool], urllib3.PoolManager] = {}
        self._lock = threading.Lock()

    def _pool(self, hostport: str, tls_verify: bool) -> object:
        key = (hostport, tls_verify)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                ctx = ssl.create_default_context()
                if tls_verify:
                    cas, pairs = _host_tls(hostport)
                    for ca in cas:
                        ctx.load_verify_locations(cafile=str(ca))
                    for cert, keyfile in pairs:
                        ctx.load_cert_chain(str(cert), str(keyfile))
                else:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                pool = self._urllib3.PoolManager(
                    num_pools=16,
                    maxsize=self._maxsize,
                    block=False,
                    ssl_context=ctx,
                    blocksize=CHUNK,
                )
                self._pools[key] = pool
            return pool

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: Body = None,
        tls_verify: bool = True,
    ) -> Response:
        u3 = self._urllib3
        hostport = u3.util.parse_url(url).netloc or ""
        pool = self._pool(hostport, tls_verify)
        assert isinstance(pool, u3.PoolManager)
        try:
            resp = pool.request(
                method,
                url,
                headers=dict(headers),
                body=body,
                preload_content=False,
                decode_content=False,
                redirect=False,
                retries=False,
                timeout=self._timeout,
            )
        except u3.exceptions.SSLError as err:
            raise TLSFailure(_why(err)) from err
        except (u3.exceptions.HTTPError, OSError) as err:
            raise TransportError(_why(err)) from err
        return _U3Response(resp)

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.clear()
            self._pools.clear()
