"""Docker's ``--filter`` values that the store evaluates: ``until=`` and ``label=``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gantry import timeutil
from gantry.errors import UsageError


def parse_duration(value: str) -> float | None:
    """Go's ``time.ParseDuration`` (``1h30m``, ``90s``, ``1.5h``) in seconds; None if not one."""
    try:
        return timeutil.parse_duration(value)
    except UsageError:
        return None


def parse_timestamp(value: str, now: float | None = None) -> float:
    """Docker's reading of an ``until=``/``since=`` value (see :mod:`gantry.timeutil`).

    A Go duration before ``now``, an RFC 3339 date or time (local offset when it has no
    zone), or Unix seconds with an optional fraction.
    """
    return timeutil.parse_timestamp(value, now)


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
