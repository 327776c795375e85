"""HTTP ``Range`` requests on blobs (RFC 9110 section 14), answered or refused exactly."""

from __future__ import annotations

import re

from gantry.errors import RegistryError

_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def _unsatisfiable() -> RegistryError:
    return RegistryError("requested range not satisfiable", status=416)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive for a satisfiable single range, None to send everything.

    Unknown units and multiple ranges are ignored (the whole blob is sent, which the
    RFC allows); a malformed or unsatisfiable byte range raises a RegistryError
    with status 416 (the caller answers ``Content-Range: bytes */SIZE``).
    """
    if header is None:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    m = _SPEC.match(spec)
    if not m or (not m.group(1) and not m.group(2)):
        raise _unsatisfiable()
    first_s, last_s = m.group(1), m.group(2)
    if not first_s:  # suffix range: the last N bytes
        n = int(last_s)
        if n == 0 or size == 0:
            raise _unsatisfiable()
        return max(0, size - n), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if last < first or first >= size:
        raise _unsatisfiable()
    return first, min(last, size - 1)
