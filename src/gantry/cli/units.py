"""Sizes, durations and timestamps the way Docker prints and parses them.

- :func:`human_size` / :func:`human_size_with_precision` / :func:`bytes_size`:
  docker/go-units (``72.9MB`` with precision 3 in ``docker images``, ``1.049MB``
  with the default 4, ``3.42GiB`` binary);
- :func:`from_human_size` / :func:`ram_in_bytes`: the inverse (``32kb``, ``1.5g``);
- :func:`human_duration` (from :mod:`gantry.timeutil`): ``Less than a second``, ``3 weeks``...
  and :func:`created_since` (``... ago``) as docker/cli prints CREATED columns;
- :func:`parse_duration`: Go's ``time.ParseDuration`` (``1h30m``, ``300ms``), from
  :mod:`gantry.timeutil` (which also reads ``until=``/``since=`` values for every room);
- :func:`go_time_string`: Go's ``time.Time.String()`` (``.CreatedAt``);
- :func:`rfc3339_nano`: Go's ``time.RFC3339Nano`` in the local zone (inspect's
  ``LastTagTime``), the zero time for None.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from gantry.errors import UsageError
from gantry.timeutil import human_duration, parse_duration

__all__ = [
    "bytes_size",
    "created_since",
    "custom_size",
    "from_human_size",
    "go_time_string",
    "human_duration",
    "human_size",
    "human_size_with_precision",
    "parse_duration",
    "ram_in_bytes",
    "rfc3339_nano",
]

KB, MB, GB, TB, PB = 1000, 1000**2, 1000**3, 1000**4, 1000**5
KiB, MiB, GiB, TiB, PiB = 1024, 1024**2, 1024**3, 1024**4, 1024**5

DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _size_and_unit(size: float, base: float, units: tuple[str, ...]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def custom_size(fmt: str, size: float, base: float, units: tuple[str, ...]) -> str:
    """go-units ``CustomSize``: ``fmt`` is a printf format taking the number and the unit."""
    value, unit = _size_and_unit(float(size), base, units)
    return fmt % (value, unit)


def human_size_with_precision(size: float, precision: int) -> str:
    """Decimal units with ``precision`` significant digits (Go ``%.*g``)."""
    value, unit = _size_and_unit(float(size), 1000.0, DECIMAL_UNITS)
    return f"{value:.{precision}g}{unit}"


def human_size(size: float) -> str:
    """go-units ``HumanSize``: decimal units, 4 significant digits (``1.049MB``)."""
    return human_size_with_precision(size, 4)


def bytes_size(size: float) -> str:
    """go-units ``BytesSize``: binary units, 4 significant digits (``3.42GiB``)."""
    return custom_size("%.4g%s", size, 1024.0, BINARY_UNITS)


_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)*) ?([kmgtpKMGTP])?[iI]?[bB]?$")
_PREFIX = "kmgtp"


def _parse_size(text: str, base: int) -> int:
    m = _SIZE_RE.match(text)
    if m is None:
        raise UsageError(f"invalid size: '{text}'")
    try:
        value = float(m.group(1))
    except ValueError:
        raise UsageError(f"invalid size: '{text}'") from None
    if m.group(2):
        value *= base ** (_PREFIX.index(m.group(2).lower()) + 1)
    return int(value)


def from_human_size(text: str) -> int:
    """go-units ``FromHumanSize``: ``32kB`` -> 32000 (decimal multiples)."""
    return _parse_size(text, 1000)


def ram_in_bytes(text: str) -> int:
    """go-units ``RAMInBytes``: ``32k`` / ``32KiB`` -> 32768 (binary multiples)."""
    return _parse_size(text, 1024)


def created_since(created: float, now: float | None = None) -> str:
    """docker/cli's CREATED column: ``HumanDuration(now - created) + " ago"``."""
    now = time.time() if now is None else now
    return human_duration(now - created) + " ago"


def go_time_string(ts: float, tz: timezone | None = None) -> str:
    """Go's ``time.Unix(ts, 0).String()`` in the local zone: ``2006-01-02 15:04:05 -0700 MST``."""
    dt = datetime.fromtimestamp(int(ts), tz) if tz else datetime.fromtimestamp(int(ts)).astimezone()
    offset = dt.strftime("%z")
    name = dt.tzname() or ""
    if not name or name.startswith(("UTC+", "UTC-")) or name[0] in "+-":
        name = offset if offset != "+0000" else "UTC"
    return f"{dt.strftime('%Y-%m-%d %H:%M:%S')} {offset} {name}"


def rfc3339_nano(ts: float | None, tz: timezone | None = None) -> str:
    """Go's ``t.Format(time.RFC3339Nano)`` of a local time (``Z`` when the zone is UTC);
    ``0001-01-01T00:00:00Z`` (Go's zero time) for None. Fractions to the microsecond."""
    if ts is None:
        return "0001-01-01T00:00:00Z"
    dt = datetime.fromtimestamp(ts, tz) if tz else datetime.fromtimestamp(ts).astimezone()
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}".rstrip("0")
    offset = dt.utcoffset()
    if not offset:
        return text + "Z"
    zone = dt.strftime("%z")
    return f"{text}{zone[:3]}:{zone[3:]}"
