"""The distribution spec's error codes, their HTTP statuses and messages.

Like distribution, an error's ``message`` is the code's fixed text ("manifest
unknown") and what it is about (a tag, a digest, a name) goes in ``detail``:
clients show ``<code words>: <message>``, so that is what users read.
"""

from __future__ import annotations

import json
from typing import Any

from gantry.errors import RegistryAPIError, RegistryError

#: code -> (HTTP status, message), as distribution answers them.
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "TAG_INVALID": (400, "manifest tag did not match URI"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "The operation is unsupported."),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "UNAVAILABLE": (503, "service unavailable"),
    "UNKNOWN": (500, "unknown error"),
}


def api_error(
    code: str, detail: Any = None, *, message: str | None = None, status: int | None = None
) -> RegistryAPIError:
    """An error answered with ``code``: its fixed message (unless ``message`` overrides
    it, as distribution does in a few places) and ``detail``."""
    default_status, default_message = CODES[code]
    return RegistryAPIError(
        message or default_message, code=code, status=status or default_status, detail=detail
    )


def error_body(err: RegistryError) -> bytes:
    """The spec's JSON error document for ``err``."""
    entry: dict[str, Any] = {"code": err.code or "UNKNOWN", "message": err.message}
    detail = err.detail if isinstance(err, RegistryAPIError) else None
    if detail is not None:
        entry["detail"] = detail
    # compact and newline-terminated, as Go's json.Encoder writes distribution's
    return json.dumps({"errors": [entry]}, separators=(",", ":")).encode() + b"\n"
