"""Docker's ``--filter`` values that the store evaluates: ``until=`` and ``label=``."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime

from gantry.errors import UsageError

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_UNIX = re.compile(r"^-?\d+(\.\d+)?$")


def parse_duration(value: str) -> float | None:
    """Go's ``time.ParseDuration`` (``1h30m``, ``90s``, ``1.5h``); None if it is not one."""
    s = value.strip()
    sign = 1.0
    if s[:1] in "+-" and s[:1]:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total if s else None


def parse_timestamp(value: str, now: float | None = None) -> float:
    """Docker's ``GetTimestamp``: a duration before now, a Unix time, or an RFC 3339 date."""
    now = time.time() if now is None else now
    duration = parse_duration(value)
    if duration is not None:
        return now - duration
    if _UNIX.match(value):
        return float(value)
    try:
        # dates without a zone are local time, as in Docker
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        pass
    raise UsageError(f'failed to parse value as time or duration: "{value}"')


def label_matches(labels: Mapping[str, str], wanted: str) -> bool:
    """``key`` (present) or ``key=value`` (present with that value)."""
    key, eq, value = wanted.partition("=")
    if key not in labels:
        return False
    return not eq or labels[key] == value


def match_labels(labels: Mapping[str, str], include: Iterable[str], exclude: Iterable[str]) -> bool:
    """Every ``include`` matches and no ``exclude`` does (``label=`` / ``label!=``)."""
    return all(label_matches(labels, w) for w in include) and not any(
        label_matches(labels, w) for w in exclude
    )


def check_keys(filters: Mapping[str, Iterable[str]], allowed: Iterable[str]) -> None:
    allowed_set = set(allowed)
    for key in filters:
        if key not in allowed_set:
            raise UsageError(f"invalid filter '{key}'")
