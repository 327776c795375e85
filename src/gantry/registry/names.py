"""Names that reach the registry from URLs: repositories, tags, upload ids.

Everything here is validated before it becomes part of a storage path, so a
request can never name a file outside the registry's data (``..``, ``%2e%2e``,
absolute paths and upper case all fail the grammar of
:func:`gantry.reference.validate_repository`).
"""

from __future__ import annotations

import re
import uuid

from gantry import reference
from gantry.errors import InvalidReference

from .errcodes import api_error

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_NAME_LENGTH = reference.NAME_TOTAL_LENGTH_MAX


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid repository name, else raise NAME_INVALID."""
    if len(name) > MAX_NAME_LENGTH:
        raise api_error("NAME_INVALID", reference.ERR_NAME_TOO_LONG)
    try:
        return reference.validate_repository(name)
    except InvalidReference as e:
        raise api_error("NAME_INVALID", f"{name!r}: {e}") from None


def is_tag(ref: str) -> bool:
    return bool(reference.TAG_RE.fullmatch(ref))


def validate_tag(tag: str) -> str:
    if not is_tag(tag):
        raise api_error("MANIFEST_INVALID", {"Tag": tag})
    return tag


def new_upload_id() -> str:
    return str(uuid.uuid4())


def validate_upload_id(upload_id: str) -> str:
    if not _UUID_RE.match(upload_id):
        raise api_error("BLOB_UPLOAD_UNKNOWN")
    return upload_id
