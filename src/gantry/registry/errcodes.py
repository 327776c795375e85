"""The distribution spec's error codes, their HTTP statuses and default messages."""

from __future__ import annotations

import json
from typing import Any

from gantry.errors import RegistryError

#: code -> (HTTP status, default message), as the spec and distribution answer them.
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "UNAVAILABLE": (503, "service unavailable"),
    "UNKNOWN": (500, "unknown error"),
}


def api_error(code: str, message: str | None = None, *, status: int | None = None) -> RegistryError:
    """A :class:`RegistryError` carrying a spec error code and its HTTP status."""
    default_status, default_message = CODES[code]
    return RegistryError(message or default_message, code=code, status=status or default_status)


def error_body(err: RegistryError, detail: Any = None) -> bytes:
    """The spec's JSON error document for ``err``."""
    entry: dict[str, Any] = {"code": err.code or "UNKNOWN", "message": err.message}
    if detail is not None:
        entry["detail"] = detail
    return json.dumps({"errors": [entry]}).encode()
