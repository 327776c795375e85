"""Sizes, durations and timestamps the way Docker prints and parses them.

- :func:`human_size` / :func:`human_size_with_precision` / :func:`bytes_size`:
  docker/go-units (``72.9MB`` with precision 3 in ``docker images``, ``1.049MB``
  with the default 4, ``3.42GiB`` binary);
- :func:`from_human_size` / :func:`ram_in_bytes`: the inverse (``32kb``, ``1.5g``);
- :func:`human_duration`: ``Less than a second``, ``About a minute``, ``3 weeks``...
  and :func:`created_since` (``... ago``) as docker/cli prints CREATED columns;
- :func:`parse_duration`: Go's ``time.ParseDuration`` (``1h30m``, ``300ms``);
- :func:`get_timestamp`: the daemon's reading of ``until=``/``since=`` filter values
  (a Go duration before now, an RFC 3339 date or time, or unix seconds);
- :func:`go_time_string`: Go's ``time.Time.String()`` (``.CreatedAt``).
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime, timedelta, timezone

from gantry.errors import UsageError

__all__ = [
    "bytes_size",
    "created_since",
    "custom_size",
    "from_human_size",
    "get_timestamp",
    "go_time_string",
    "human_duration",
    "human_size",
    "human_size_with_precision",
    "parse_duration",
    "ram_in_bytes",
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


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration`` of a duration in seconds."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = _go_round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def _go_round(x: float) -> int:
    """math.Round: half away from zero (Python's round() is half to even)."""
    return math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1)


def created_since(created: float, now: float | None = None) -> str:
    """docker/cli's CREATED column: ``HumanDuration(now - created) + " ago"``."""
    now = time.time() if now is None else now
    return human_duration(now - created) + " ago"


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_SEGMENT_RE = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def parse_duration(text: str) -> float:
    """Go ``time.ParseDuration``: ``1h30m``, ``-1.5h``, ``300ms`` -> seconds."""
    orig = text
    quoted = '"' + orig + '"'
    sign = 1.0
    if text[:1] in "+-" and text:
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise UsageError(f"time: invalid duration {quoted}")
    total = 0.0
    pos = 0
    while pos < len(text):
        m = _SEGMENT_RE.match(text, pos)
        assert m is not None  # the pattern matches the empty string
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise UsageError(f"time: invalid duration {quoted}")
        if not unit:
            raise UsageError(f"time: missing unit in duration {quoted}")
        # the unit runs up to the next digit or dot
        if unit not in _DURATION_UNITS:
            raise UsageError(f'time: unknown unit "{unit}" in duration {quoted}')
        value = float(f"{whole or '0'}.{frac or '0'}")
        total += value * _DURATION_UNITS[unit]
        pos = m.end()
    if total * 1e9 > 2**63 - 1:
        raise UsageError(f"time: invalid duration {quoted}")
    return sign * total


_DATE = r"(\d{4})-(\d{2})-(\d{2})"
_ZONE = r"(Z|[+-]\d{2}:\d{2})"


def _zone(text: str | None, local: timezone) -> timezone:
    if text is None:
        return local
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def get_timestamp(value: str, reference: float | None = None) -> float:
    """The daemon's ``GetTimestamp`` for ``until=`` / ``since=`` values, as unix seconds.

    A Go duration counts back from ``reference`` (default now); otherwise an RFC 3339
    date or date-time (with a zone, or in the local zone), or unix seconds with an
    optional fraction (``1700000000.5``).
    """
    ref = time.time() if reference is None else reference
    if value != "0":
        try:
            return ref - parse_duration(value)
        except UsageError:
            pass
    in_local = not any(c in value for c in "zZ+") and value.count("-") != 3
    local = datetime.fromtimestamp(ref).astimezone().tzinfo
    assert isinstance(local, timezone)
    zone = "" if in_local else _ZONE
    if "." in value:
        layout = "2006-01-02T15:04:05.999999999" + ("" if in_local else "Z07:00")
        pattern = _DATE + r"T(\d{2}):(\d{2}):(\d{2})\.(\d{1,9})" + zone
    elif "T" in value:
        colons = value.count(":")
        if not in_local and "z" not in value.lower() and colons > 0:
            colons -= 1
        parts = [r"T(\d{2})", r":(\d{2})", r":(\d{2})"][: min(colons, 2) + 1]
        layout = "2006-01-02" + ["T15", "T15:04", "T15:04:05"][min(colons, 2)]
        layout += "" if in_local else "Z07:00"
        pattern = _DATE + "".join(parts) + zone
    else:
        layout = "2006-01-02" + ("" if in_local else "Z07:00")
        pattern = _DATE + zone
    m = re.fullmatch(pattern, value)
    if m is None:
        if "-" in value:
            raise UsageError(f'parsing time "{value}" as "{layout}": cannot parse')
        sec, dot, frac = value.partition(".")
        if not re.fullmatch(r"[+-]?\d+", sec) or (dot and not re.fullmatch(r"\d+", frac)):
            raise UsageError(f'failed to parse value as time or duration: "{value}"')
        nanos = int(frac[:9].ljust(9, "0")) if frac else 0
        return int(sec) + nanos / 1e9
    groups = list(m.groups())
    tz = _zone(groups.pop() if not in_local else None, local)
    nums = [int(g) for g in groups[:3]]
    clock = [0, 0, 0]
    nanos = 0
    rest = groups[3:]
    if "." in value:
        clock = [int(g) for g in rest[:3]]
        nanos = int(rest[3].ljust(9, "0"))
    else:
        for i, g in enumerate(rest):
            clock[i] = int(g)
    try:
        dt = datetime(nums[0], nums[1], nums[2], clock[0], clock[1], clock[2], tzinfo=tz)
    except ValueError as err:
        raise UsageError(f'parsing time "{value}": {err}') from None
    return dt.timestamp() + nanos / 1e9


def go_time_string(ts: float, tz: timezone | None = None) -> str:
    """Go's ``time.Unix(ts, 0).String()`` in the local zone: ``2006-01-02 15:04:05 -0700 MST``."""
    dt = datetime.fromtimestamp(int(ts), tz) if tz else datetime.fromtimestamp(int(ts)).astimezone()
    offset = dt.strftime("%z")
    name = dt.tzname() or ""
    if not name or name.startswith(("UTC+", "UTC-")) or name[0] in "+-":
        name = offset if offset != "+0000" else "UTC"
    return f"{dt.strftime('%Y-%m-%d %H:%M:%S')} {offset} {name}"
