"""The registry's HTTP API: OCI Distribution Spec v1.1 on aiohttp.

``make_app(config)`` returns an :class:`aiohttp.web.Application`; run it with
:func:`gantry.registry.server.serve` or aiohttp's test server. Routes (names may
contain "/", so one dispatcher matches them by regular expression):

=========  ==========================================  ==========================
end-1      GET    /v2/                                  API version check
end-2      GET    /v2/<name>/blobs/<digest>              HEAD too; Range served
end-3      GET    /v2/<name>/manifests/<reference>       HEAD too; Accept negotiated
end-4a/b   POST   /v2/<name>/blobs/uploads/[?digest=]    session or monolithic
end-5      PATCH  /v2/<name>/blobs/uploads/<id>          chunk, Content-Range in order
end-6      PUT    /v2/<name>/blobs/uploads/<id>?digest=  close the session
end-7      PUT    /v2/<name>/manifests/<reference>       ?tag= may repeat
end-8      GET    /v2/<name>/tags/list[?n=&last=]        Link rel="next"
end-9      DELETE /v2/<name>/manifests/<reference>       tag or manifest
end-10     DELETE /v2/<name>/blobs/<digest>
end-11     POST   /v2/<name>/blobs/uploads/?mount=&from= falls back to a session
end-12     GET    /v2/<name>/referrers/<digest>          ?artifactType= filter
end-13     GET    /v2/<name>/blobs/uploads/<id>          upload status
end-14     DELETE /v2/<name>/blobs/uploads/<id>          cancel
           GET    /v2/_catalog[?n=&last=]
           GET    /healthz
=========  ==========================================  ==========================
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from gantry import digest as _digest
from gantry.digest import Digest
from gantry.errors import RegistryError
from gantry.oci import mediatypes as mt

from . import auth as _auth
from . import layout
from .auth import Access, Authenticator, Identity
from .backend import REFERRERS_PAGE, Backend, BlobInfo, ManifestRecord, parse_digest
from .config import RegistryConfig
from .errcodes import api_error, error_body
from .keys import IDENTITY_KEY, REQUEST_ID_KEY, USER_KEY
from .names import validate_name, validate_upload_id
from .notify import Notifier
from .ranges import parse_range
from .ratelimit import RateLimiter, retry_after
from .storage import open_driver
from .storage.base import PathNotFound, StorageDriver

log = logging.getLogger("gantry.registry")
access_log = logging.getLogger("gantry.registry.access")

API_VERSION = "registry/2.0"
CHUNK = 1 << 20
UPLOAD_BATCH = 4 << 20
MAX_PAGE = 10000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    name: str
    params: dict[str, str]


# Upload routes first: "<name>/blobs/uploads/<id>" must not read as a blob named "uploads/<id>".
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("catalog", re.compile(r"^_catalog$")),
    ("upload", re.compile(r"^(?P<name>.+)/blobs/uploads/(?P<id>[^/]+)$")),
    ("uploads", re.compile(r"^(?P<name>.+)/blobs/uploads/?$")),
    ("blob", re.compile(r"^(?P<name>.+)/blobs/(?P<digest>[^/]+)$")),
    ("manifest", re.compile(r"^(?P<name>.+)/manifests/(?P<reference>[^/]+)$")),
    ("tags", re.compile(r"^(?P<name>.+)/tags/list$")),
    ("referrers", re.compile(r"^(?P<name>.+)/referrers/(?P<digest>[^/]+)$")),
]

_ALLOWED: dict[str, frozenset[str]] = {
    "base": frozenset({"GET", "HEAD"}),
    "catalog": frozenset({"GET"}),
    "upload": frozenset({"GET", "PATCH", "PUT", "DELETE"}),
    "uploads": frozenset({"POST"}),
    "blob": frozenset({"GET", "HEAD", "DELETE"}),
    "manifest": frozenset({"GET", "HEAD", "PUT", "DELETE"}),
    "tags": frozenset({"GET"}),
    "referrers": frozenset({"GET"}),
}
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _match(path: str) -> tuple[str, dict[str, str]] | None:
    if path in ("", "/"):
        return "base", {}
    for kind, pattern in _PATTERNS:
        m = pattern.match(path)
        if m:
            return kind, {k: unquote(v) for k, v in m.groupdict().items()}
    return None


def _required_access(kind: str, method: str, params: dict[str, str]) -> list[Access]:
    name = params.get("name", "")
    if kind == "base":
        return []
    if kind == "catalog":
        return [_auth.CATALOG]
    if method == "DELETE" and kind in ("manifest", "blob"):
        return [_auth.repository(name, "delete")]
    if method in ("GET", "HEAD") and kind in ("manifest", "blob", "tags", "referrers"):
        return [_auth.repository(name, "pull")]
    return [_auth.repository(name, "pull", "push")]


def _accepts(accept: Sequence[str], media_type: str) -> bool:
    if not accept:
        return True
    major = media_type.split("/", 1)[0]
    for entry in accept:
        for item in entry.split(","):
            t, _, params = item.partition(";")
            t = t.strip().lower()
            if re.search(r"(?:^|;)\s*q\s*=\s*0(?:\.0*)?\s*(?:;|$)", params):
                continue
            if t in ("*/*", media_type, f"{major}/*"):
                return True
    return False


def _json(obj: Any, status: int = 200, **kw: Any) -> web.Response:
    return web.Response(
        body=json.dumps(obj, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        **kw,
    )


def error_response(err: RegistryError, headers: dict[str, str] | None = None) -> web.Response:
    status = err.status or 500
    return web.Response(
        body=error_body(err),
        status=status,
        content_type="application/json",
        headers=headers or {},
    )


def _page_params(request: web.Request) -> tuple[int | None, str | None]:
    raw_n = request.query.get("n")
    n: int | None = None
    if raw_n is not None and raw_n != "":
        try:
            n = int(raw_n)
        except ValueError:
            n = -1
        if n < 0:
            raise api_error("PAGINATION_NUMBER_INVALID", {"n": raw_n})
        n = min(n, MAX_PAGE)
    return n, request.query.get("last")


def _paginate(items: list[str], n: int | None, last: str | None) -> tuple[list[str], bool]:
    if last:
        items = [i for i in items if i > last]
    if n is None:
        return items, False
    return items[:n], n > 0 and len(items) > n


class _HashCache:
    """In-process hash states of uploads: an optimisation, never the source of truth.

    A PATCH leaves ``(offset, hasher)`` here; the closing PUT uses it when the
    offset still matches the stored data, and otherwise (restart, another
    replica took the chunk) the backend re-reads the upload.
    """

    def __init__(self, limit: int = 512) -> None:
        self._d: collections.OrderedDict[str, tuple[int, Any]] = collections.OrderedDict()
        self.limit = limit

    def take(self, upload_id: str, offset: int) -> Any:
        entry = self._d.pop(upload_id, None)
        if entry is not None and entry[0] == offset:
            return entry[1]
        return None

    def put(self, upload_id: str, offset: int, hasher: Any) -> None:
        self._d[upload_id] = (offset, hasher)
        while len(self._d) > self.limit:
            self._d.popitem(last=False)

    def drop(self, upload_id: str) -> None:
        self._d.pop(upload_id, None)


class BlobFileResponse(web.StreamResponse):
    """A blob (or a range of it) sent from a local file with sendfile(2)."""

    def __init__(self, path: str, offset: int, count: int, *, status: int, headers: dict[str, str]):
        super().__init__(status=status, headers=headers)
        self._path = path
        self._offset = offset
        self._count = count
        self.content_length = count

    async def prepare(self, request: web.BaseRequest) -> Any:
        if request.method == "HEAD" or self._count == 0:
            return await super().prepare(request)
        loop = asyncio.get_running_loop()
        f = open(self._path, "rb")  # noqa: SIM115 - closed below
        try:
            writer = await super().prepare(request)
            transport = request.transport
            if transport is None:
                raise ConnectionResetError("connection lost")
            try:
                await loop.sendfile(transport, f, self._offset, self._count)
            except NotImplementedError:
                f.seek(self._offset)
                left = self._count
                while left > 0:
                    chunk = f.read(min(CHUNK, left))
                    if not chunk:
                        break
                    await self.write(chunk)
                    left -= len(chunk)
            await super().write_eof()
            return writer
        finally:
            f.close()


class JsonAccessLogger(AbstractAccessLogger):
    """One JSON object per request on the ``gantry.registry.access`` logger."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        record = {
            "time": _now_iso(),
            "remote": request.remote,
            "method": request.method,
            "path": request.rel_url.raw_path_qs
            if hasattr(request.rel_url, "raw_path_qs")
            else request.path_qs,
            "status": response.status,
            "bytes": response.body_length,
            "duration_ms": round(time * 1000, 3),
            "user_agent": request.headers.get("User-Agent", ""),
            "user": request.get(USER_KEY) or "",
            "request_id": request.get(REQUEST_ID_KEY, ""),
        }
        self.logger.info(json.dumps(record))

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"


class Registry:
    """The registry application: one backend, one authenticator, the handlers."""

    def __init__(
        self,
        config: RegistryConfig,
        *,
        driver: StorageDriver | None = None,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.config = config
        self.driver = driver if driver is not None else open_driver(config)
        self.backend = Backend(self.driver, delete_enabled=config.delete_enabled)
        self.auth = authenticator if authenticator is not None else _auth.from_config(config)
        self.limiter = RateLimiter(config.rate, config.burst) if config.rate else None
        self.notifier = Notifier(config.notifications, source_addr=config.addr)
        self.hashes = _HashCache()
        self._locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------------ plumbing
    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a backend call: inline for local disks, in a thread for network drivers."""
        if self.driver.blocking:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def _unlock_forget(self, key: str) -> None:
        lock = self._locks.get(key)
        if lock is not None and not lock.locked():
            del self._locks[key]

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/v2", self._dispatch)
        app.router.add_route("*", "/v2/{tail:.*}", self._dispatch)
        app.router.add_get("/healthz", self._healthz)
        if self.config.token_issuer is not None:
            from .token import TokenService

            TokenService.from_config(self.config.token_issuer).install(app)
        app.on_response_prepare.append(self._common_headers)
        app.on_startup.append(self._startup)
        app.on_cleanup.append(self._cleanup)
        app[REGISTRY_KEY] = self
        return app

    async def _startup(self, app: web.Application) -> None:
        await self.notifier.start()

    async def _cleanup(self, app: web.Application) -> None:
        await self.notifier.stop()
        self.driver.close()

    @staticmethod
    async def _common_headers(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/v2"):
            response.headers.setdefault("Docker-Distribution-API-Version", API_VERSION)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        request[REQUEST_ID_KEY] = str(uuid.uuid4())
        if self.limiter is not None:
            wait = self.limiter.take(request.remote or "")
            if wait > 0:
                return error_response(
                    api_error("TOOMANYREQUESTS"),
                    {"Retry-After": retry_after(wait)},
                )
        try:
            return await handler(request)
        except RegistryError as err:
            if err.status is None:
                err.status = 500
            return error_response(err)

    async def _healthz(self, request: web.Request) -> web.Response:
        try:
            await self.run(self.driver.list, "")
        except PathNotFound:
            pass  # empty storage is healthy
        except Exception as e:  # any storage failure makes the instance unhealthy
            return _json({"status": "unhealthy", "storage": str(e)}, status=503)
        except BaseException:
            raise
        return _json({"status": "ok", "storage": self.driver.name})

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = request.raw_path.split("?", 1)[0]
        tail = raw[len("/v2") :]
        tail = tail[1:] if tail.startswith("/") else tail
        found = _match(tail) if raw != "/v2" else ("base", {})
        if found is None:
            raise (
                api_error("NAME_INVALID", f"invalid path: {request.path}", status=404)
                if "/" in tail
                else api_error("UNSUPPORTED", f"unknown endpoint: {request.path}", status=404)
            )
        kind, params = found
        method = request.method
        if method not in _ALLOWED[kind]:
            raise api_error("UNSUPPORTED", f"method {method} not allowed on this endpoint")
        if "name" in params:
            validate_name(params["name"])
        if self.config.readonly and method in _WRITES:
            raise api_error("UNSUPPORTED", "the registry is in read-only mode", status=405)
        needed = _required_access(kind, method, params)
        ident = await self._authorize(request, needed)
        if isinstance(ident, web.StreamResponse):
            return ident
        request[USER_KEY] = ident.user
        request[IDENTITY_KEY] = ident
        handler = getattr(self, f"_h_{kind}")
        result: web.StreamResponse = await handler(request, **params)
        return result

    async def _authorize(
        self, request: web.Request, needed: list[Access]
    ) -> Identity | web.Response:
        try:
            return await self.auth.authorize(request, needed)
        except RegistryError as err:
            if err.code != "UNAUTHORIZED":
                return error_response(err)
            reason = str(getattr(err, "detail", None) or "")
            error = None
            if "Authorization" in request.headers and isinstance(self.auth, _auth.TokenAuth):
                # RFC 6750: a bad token is invalid_token, a good one lacking scope is not
                error = (
                    "invalid_token" if reason.startswith("invalid token") else "insufficient_scope"
                )
            challenge = self.auth.challenge(needed, error=error)
            headers = {"WWW-Authenticate": challenge} if challenge else {}
            # as distribution: the detail lists the access the request needed
            records = [
                {"Type": a.type, "Class": "", "Name": a.name, "Action": action}
                for a in needed
                for action in a.scope.rsplit(":", 1)[1].split(",")
            ]
            return error_response(api_error("UNAUTHORIZED", records or None), headers)

    # ------------------------------------------------------------------- base
    async def _h_base(self, request: web.Request) -> web.Response:
        return _json({})

    async def _h_catalog(self, request: web.Request) -> web.Response:
        n, last = _page_params(request)
        repos: list[str] = await self.run(self.backend.catalog)
        page, more = _paginate(repos, n, last)
        headers = {}
        if more and page:
            headers["Link"] = f'</v2/_catalog?n={n}&last={quote(page[-1], safe="/")}>; rel="next"'
        return _json({"repositories": page}, headers=headers)

    async def _h_tags(self, request: web.Request, name: str) -> web.Response:
        n, last = _page_params(request)
        tags: list[str] = await self.run(self.backend.tags, name)
        page, more = _paginate(tags, n, last)
        headers = {}
        if more and page:
            headers["Link"] = f'</v2/{name}/tags/list?n={n}&last={quote(page[-1])}>; rel="next"'
        return _json({"name": name, "tags": page}, headers=headers)

    # ---------------------------------------------------------------- manifests
    async def _h_manifest(
        self, request: web.Request, name: str, reference: str
    ) -> web.StreamResponse:
        if request.method in ("GET", "HEAD"):
            return await self._get_manifest(request, name, reference)
        if request.method == "PUT":
            return await self._put_manifest(request, name, reference)
        return await self._delete_manifest(request, name, reference)

    async def _get_manifest(self, request: web.Request, name: str, reference: str) -> web.Response:
        rec: ManifestRecord = await self.run(self.backend.resolve, name, reference)
        accept = request.headers.getall("Accept", [])
        body: bytes | None = None
        if not _accepts(accept, rec.media_type):
            rec, body = await self._negotiate(name, reference, rec, accept)
        if body is None:
            body = await self.run(self.backend.manifest_body, rec)
        headers = {
            "Docker-Content-Digest": str(rec.digest),
            "ETag": f'"{rec.digest}"',
        }
        return web.Response(body=body, status=200, headers=headers, content_type=rec.media_type)

    async def _negotiate(
        self, name: str, reference: str, rec: ManifestRecord, accept: list[str]
    ) -> tuple[ManifestRecord, bytes]:
        """The client cannot take ``rec``'s type: offer linux/amd64 of an index, as Docker does."""
        if mt.is_index(rec.media_type) and ":" not in reference:
            from gantry.oci.manifest import Index, parse_manifest

            body: bytes = await self.run(self.backend.manifest_body, rec)
            idx = parse_manifest(body, rec.media_type)
            if isinstance(idx, Index):
                for desc in idx.manifests:
                    p = desc.platform
                    if p is not None and p.os == "linux" and p.architecture == "amd64":
                        child: ManifestRecord = await self.run(
                            self.backend.resolve, name, str(desc.digest)
                        )
                        if _accepts(accept, child.media_type):
                            return child, await self.run(self.backend.manifest_body, child)
        # distribution's words (scripts look for "but accept header does not support")
        kind, kinds = {
            mt.OCI_MANIFEST: ("OCI manifest", "OCI manifests"),
            mt.OCI_INDEX: ("OCI index", "OCI indexes"),
            mt.DOCKER_MANIFEST: ("Docker manifest", "Docker manifests"),
            mt.DOCKER_MANIFEST_LIST: ("Docker manifest list", "Docker manifest lists"),
        }.get(rec.media_type, (rec.media_type, rec.media_type))
        # distribution puts this one in the message, so docker shows it
        raise api_error(
            "MANIFEST_UNKNOWN",
            {"Tag": reference} if ":" not in reference else {"Revision": reference},
            message=f"{kind} found, but accept header does not support {kinds}",
        )

    async def _read_limited(self, request: web.Request, limit: int) -> bytes:
        if request.content_length is not None and request.content_length > limit:
            raise api_error(
                "MANIFEST_INVALID",
                f"manifest too large: {request.content_length} bytes, the limit is {limit}",
                status=413,
            )
        buf = bytearray()
        async for chunk in request.content.iter_chunked(CHUNK):
            buf += chunk
            if len(buf) > limit:
                raise api_error(
                    "MANIFEST_INVALID",
                    f"manifest too large: the limit is {limit} bytes",
                    status=413,
                )
        return bytes(buf)

    async def _put_manifest(self, request: web.Request, name: str, reference: str) -> web.Response:
        from gantry.oci.manifest import MAX_MANIFEST_SIZE

        body = await self._read_limited(request, MAX_MANIFEST_SIZE)
        tags = request.query.getall("tag", [])
        content_type = request.headers.get("Content-Type")
        result = await asyncio.to_thread(
            self.backend.put_manifest, name, reference, body, content_type, tags
        )
        headers = {
            "Location": f"/v2/{name}/manifests/{result.digest}",
            "Docker-Content-Digest": str(result.digest),
        }
        if result.subject is not None:
            headers["OCI-Subject"] = str(result.subject)
        for tag in result.tags or [""]:
            self.notifier.publish(
                "push",
                name,
                digest=str(result.digest),
                media_type=result.media_type,
                size=result.size,
                tag=tag,
                request=request,
                user=request.get(USER_KEY),
            )
        return web.Response(status=201, headers=headers)

    async def _delete_manifest(
        self, request: web.Request, name: str, reference: str
    ) -> web.Response:
        rec = await asyncio.to_thread(self.backend.delete_manifest, name, reference)
        self.notifier.publish(
            "delete",
            name,
            digest=str(rec.digest) if rec else "",
            media_type=rec.media_type if rec else "",
            size=rec.size if rec else 0,
            tag=None if rec else reference,
            request=request,
            user=request.get(USER_KEY),
        )
        return web.Response(status=202)

    # ------------------------------------------------------------------- blobs
    async def _h_blob(self, request: web.Request, name: str, digest: str) -> web.StreamResponse:
        d = parse_digest(digest)
        if request.method == "DELETE":
            await asyncio.to_thread(self.backend.delete_blob, name, d)
            self.notifier.publish(
                "delete", name, digest=str(d), request=request, user=request.get(USER_KEY)
            )
            return web.Response(status=202)
        info: BlobInfo = await self.run(self.backend.stat_blob, name, d)
        headers = {
            "Docker-Content-Digest": str(d),
            "ETag": f'"{d}"',
            "Accept-Ranges": "bytes",
            "Cache-Control": "max-age=31536000",
            "Content-Type": "application/octet-stream",
        }
        rng = None
        if request.method == "GET":
            if_range = request.headers.get("If-Range")
            if if_range is None or if_range.strip() == f'"{d}"':
                try:
                    rng = parse_range(request.headers.get("Range"), info.size)
                except RegistryError:
                    headers["Content-Range"] = f"bytes */{info.size}"
                    del headers["Content-Type"]
                    return web.Response(status=416, headers=headers)
            url = self.driver.redirect_url(info.path)
            if url is not None:
                return web.Response(
                    status=307, headers={"Location": url, "Docker-Content-Digest": str(d)}
                )
        offset, count, status = 0, info.size, 200
        if rng is not None:
            offset, count, status = rng[0], rng[1] - rng[0] + 1, 206
            headers["Content-Range"] = f"bytes {rng[0]}-{rng[1]}/{info.size}"
        local = self.driver.local_path(info.path)
        if local is not None:
            return BlobFileResponse(str(local), offset, count, status=status, headers=headers)
        return await self._stream_blob(request, info, offset, count, status, headers)

    async def _stream_blob(
        self,
        request: web.Request,
        info: BlobInfo,
        offset: int,
        count: int,
        status: int,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = count
        await resp.prepare(request)
        if request.method == "HEAD" or count == 0:
            await resp.write_eof()
            return resp
        f = await asyncio.to_thread(self.driver.reader, info.path, offset, count)
        try:
            while True:
                chunk = await asyncio.to_thread(f.read, CHUNK)
                if not chunk:
                    break
                await resp.write(chunk)
        finally:
            await asyncio.to_thread(f.close)
        await resp.write_eof()
        return resp

    # ----------------------------------------------------------------- uploads
    def _upload_headers(self, name: str, upload_id: str, size: int) -> dict[str, str]:
        return {
            "Location": f"/v2/{name}/blobs/uploads/{upload_id}",
            "Range": f"0-{max(size - 1, 0)}",
            "Docker-Upload-UUID": upload_id,
        }

    async def _h_uploads(self, request: web.Request, name: str) -> web.Response:
        q = request.query
        mount = q.get("mount")
        if mount is not None:
            d = parse_digest(mount)
            source = q.get("from")
            if source:
                validate_name(source)
                ident = request[IDENTITY_KEY]
                if ident.permits(_auth.repository(source, "pull")):
                    info = await self.run(self.backend.mount, name, d, source)
                    if info is not None:
                        self.notifier.publish(
                            "mount",
                            name,
                            digest=str(d),
                            size=info.size,
                            request=request,
                            user=request.get(USER_KEY),
                        )
                        return web.Response(
                            status=201,
                            headers={
                                "Location": f"/v2/{name}/blobs/{d}",
                                "Docker-Content-Digest": str(d),
                            },
                        )
        digest_param = q.get("digest")
        expected = parse_digest(digest_param) if digest_param is not None else None
        upload_id: str = await asyncio.to_thread(self.backend.start_upload, name)
        if expected is None:
            return web.Response(status=202, headers=self._upload_headers(name, upload_id, 0))
        # monolithic upload: the whole blob is this request's body
        try:
            await self._receive(request, name, upload_id, None)
            info = await self._finish(request, name, upload_id, expected)
        except BaseException:
            await asyncio.to_thread(_quiet, self.backend.cancel_upload, name, upload_id)
            raise
        return web.Response(
            status=201,
            headers={
                "Location": f"/v2/{name}/blobs/{info.digest}",
                "Docker-Content-Digest": str(info.digest),
            },
        )

    async def _h_upload(self, request: web.Request, name: str, id: str) -> web.Response:
        upload_id = validate_upload_id(id)
        method = request.method
        if method == "GET":
            size = await self.run(self.backend.upload_size, name, upload_id)
            return web.Response(status=204, headers=self._upload_headers(name, upload_id, size))
        if method == "DELETE":
            async with self._lock(upload_id):
                await asyncio.to_thread(self.backend.cancel_upload, name, upload_id)
                self.hashes.drop(upload_id)
            self._unlock_forget(upload_id)
            return web.Response(status=204)
        try:
            start = self._content_range_start(request)
            if method == "PATCH":
                size = await self._receive(request, name, upload_id, start)
                return web.Response(status=202, headers=self._upload_headers(name, upload_id, size))
        except RegistryError as err:
            if err.status != 416:
                raise
            # out of order: tell the client where the upload really is
            size = await self.run(self.backend.upload_size, name, upload_id)
            return error_response(err, self._upload_headers(name, upload_id, size))
        # PUT: optional last chunk, then close
        digest_param = request.query.get("digest")
        if digest_param is None:
            raise api_error("DIGEST_INVALID", "the digest query parameter is required")
        expected = parse_digest(digest_param)
        if start is not None or request.content_length or request.headers.get("Transfer-Encoding"):
            await self._receive(request, name, upload_id, start)
        info = await self._finish(request, name, upload_id, expected)
        return web.Response(
            status=201,
            headers={
                "Location": f"/v2/{name}/blobs/{info.digest}",
                "Docker-Content-Digest": str(info.digest),
            },
        )

    @staticmethod
    def _content_range_start(request: web.Request) -> int | None:
        cr = request.headers.get("Content-Range")
        if cr is None:
            return None
        m = re.match(r"^\s*(?:bytes[ =])?\s*(\d+)-(\d+)(?:/(?:\d+|\*))?\s*$", cr)
        if not m:
            raise api_error(
                "BLOB_UPLOAD_INVALID", f"invalid Content-Range header: {cr!r}", status=416
            )
        first, last = int(m.group(1)), int(m.group(2))
        if last < first:
            raise api_error(
                "BLOB_UPLOAD_INVALID", f"invalid Content-Range header: {cr!r}", status=416
            )
        if request.content_length is not None and request.content_length != last - first + 1:
            raise api_error(
                "SIZE_INVALID",
                f"Content-Length {request.content_length} does not match Content-Range {cr}",
            )
        return first

    async def _receive(
        self, request: web.Request, name: str, upload_id: str, start: int | None
    ) -> int:
        """Append the request body to the upload; returns the new size."""
        async with self._lock(upload_id):
            size: int = await self.run(self.backend.upload_size, name, upload_id)
            if start is not None and start != size:
                raise api_error(
                    "BLOB_UPLOAD_INVALID",
                    f"chunk starts at {start} but the upload has {size} bytes",
                    status=416,
                )
            writer = await self.run(self.backend.upload_writer, name, upload_id)
            hasher = self.hashes.take(upload_id, size)
            if hasher is None and size == 0:
                hasher = _digest.new_hasher("sha256")
            # Hashing and writing run in a worker thread (both release the GIL) while
            # the event loop receives the next batch: a two-stage pipeline. Batches
            # of 4 MiB (at most two per upload in memory): with 1 MiB ones the
            # hand-offs to the thread cost about a fifth of the server's CPU per GB.
            loop = asyncio.get_running_loop()
            limit = UPLOAD_BATCH
            inflight: asyncio.Future[None] | None = None
            batch: list[bytes] = []
            batched = 0

            def consume(chunks: list[bytes]) -> None:
                # One update and one write per batch, not per chunk: the loop drains
                # the socket as data arrives, so a docker push (32 KiB HTTP chunks)
                # gives ~32 KiB pieces, and a GIL hand-off for each of them (hashlib
                # and write(2) both release it) left the threads queueing on the GIL
                # (strace: ~12,000 futex waits per 256 MB). join() copies without the
                # GIL above 1 MiB.
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                if hasher is not None:
                    hasher.update(data)
                writer.write(data)

            try:
                # iter_chunked, not iter_chunks: the latter stops at every HTTP chunk
                # (docker sends 32 KiB ones), more CPU per GB for docker push
                async for chunk in request.content.iter_chunked(CHUNK):
                    batch.append(chunk)
                    batched += len(chunk)
                    if batched >= limit:
                        if inflight is not None:
                            await inflight
                        inflight = loop.run_in_executor(None, consume, batch)
                        batch, batched = [], 0
                if inflight is not None:
                    await inflight
                    inflight = None
                if batch:
                    await loop.run_in_executor(None, consume, batch)
            except BaseException:
                # keep what arrived (the batch not yet handed over too): it is a prefix
                # of the blob and the client may resume after it
                if inflight is not None:
                    await asyncio.shield(inflight)
                if batch:
                    await asyncio.shield(loop.run_in_executor(None, consume, batch))
                if hasher is not None:
                    self.hashes.put(upload_id, writer.size, hasher)
                await self.run(writer.commit)
                raise
            await self.run(writer.commit)
            new_size: int = writer.size
            if hasher is not None:
                self.hashes.put(upload_id, new_size, hasher)
            return new_size

    async def _finish(
        self, request: web.Request, name: str, upload_id: str, expected: Digest
    ) -> BlobInfo:
        async with self._lock(upload_id):
            size = await self.run(self.backend.upload_size, name, upload_id)
            hasher = self.hashes.take(upload_id, size)
            computed = _digest.from_hasher(hasher) if hasher is not None else None
            info: BlobInfo = await asyncio.to_thread(
                self.backend.finish_upload, name, upload_id, expected, computed
            )
        self._unlock_forget(upload_id)
        self.notifier.publish(
            "push",
            name,
            digest=str(info.digest),
            size=info.size,
            media_type="application/octet-stream",
            request=request,
            user=request.get(USER_KEY),
        )
        return info

    # --------------------------------------------------------------- referrers
    async def _h_referrers(self, request: web.Request, name: str, digest: str) -> web.Response:
        d = parse_digest(digest)
        artifact_type = request.query.get("artifactType")
        n, last_raw = _page_params(request)
        last = parse_digest(last_raw) if last_raw else None
        limit = REFERRERS_PAGE if n is None else n
        entries: list[dict[str, Any]]
        entries, more = await self.run(
            functools.partial(
                self.backend.referrers_page, name, d, artifact_type, last=last, limit=limit
            )
        )
        headers = {}
        if artifact_type is not None:
            headers["OCI-Filters-Applied"] = "artifactType"
        if more and entries:
            query = [("last", entries[-1]["digest"])]
            if n is not None:
                query.insert(0, ("n", str(n)))
            if artifact_type is not None:
                query.append(("artifactType", artifact_type))
            headers["Link"] = (
                f'</v2/{name}/referrers/{d}?{urlencode(query, safe=":/")}>; rel="next"'
            )
        body = json.dumps(
            {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
        ).encode()
        return web.Response(body=body, status=200, content_type=mt.OCI_INDEX, headers=headers)


def _quiet(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except RegistryError:
        pass


REGISTRY_KEY: web.AppKey[Registry] = web.AppKey("registry", Registry)


def make_app(
    config: RegistryConfig,
    *,
    driver: StorageDriver | None = None,
    authenticator: Authenticator | None = None,
) -> web.Application:
    """The registry as an aiohttp application."""
    return Registry(config, driver=driver, authenticator=authenticator).make_app()


__all__ = [
    "REGISTRY_KEY",
    "BlobFileResponse",
    "JsonAccessLogger",
    "Registry",
    "error_response",
    "layout",
    "make_app",
]
