"""Docker's reading of times in ``until=`` / ``since=`` filter values, in one place.

:func:`parse_timestamp` is the daemon's ``timestamp.Parse`` (moby
``daemon/internal/timestamp``): a Go duration counted back from now (``24h``,
``1h30m``, ``-5m``), else an RFC 3339 date or date-time, with or without a zone
(``2006-01-02T15:04:05.999999999Z07:00``, ``2006-01-02T15:04``, ``2006-01-02``...;
no zone means the current local offset, as Docker reads it), else Unix seconds with
an optional fraction (``1700000000.5``). Errors carry Go's wording
(``parsing time "x" as "2006-01-02": cannot parse "x" as "2006"``).

:func:`parse_duration` is Go's ``time.ParseDuration`` (exact: integer nanoseconds,
the same overflow limits and messages).

Also :func:`human_duration`, go-units' ``HumanDuration`` (``Less than a second``, ``About a
minute``, ``3 weeks``), which ``ps``, ``images`` and friends print.

Imports nothing of gantry but :mod:`gantry.errors`, so the store and the CLI both use it.
"""

from __future__ import annotations

import math
import time

from gantry.errors import UsageError

__all__ = ["human_duration", "parse_duration", "parse_duration_ns", "parse_timestamp", "quote"]

_NS = 1
_UNIT_NS = {
    "ns": _NS,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek small letter mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_MAX = 1 << 63


def quote(s: str) -> str:
    """Go's ``strconv.Quote`` for the printable strings these messages carry."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif not ch.isprintable():
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _digits(s: str, i: int) -> int:
    """Index of the first non-ASCII-digit at or after ``i``."""
    while i < len(s) and "0" <= s[i] <= "9":
        i += 1
    return i


def parse_duration_ns(text: str) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds; :class:`UsageError` with Go's message."""
    orig = quote(text)
    invalid = UsageError(f"time: invalid duration {orig}")
    s = text
    neg = False
    if s[:1] in ("-", "+"):
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise invalid
    total = 0
    i = 0
    while i < len(s):
        if not (s[i] == "." or "0" <= s[i] <= "9"):
            raise invalid
        j = _digits(s, i)
        whole = int(s[i:j]) if j > i else 0
        if whole > _MAX:  # Go's leadingInt overflows here
            raise invalid
        pre = j > i
        frac, scale, post = 0, 1, False
        if j < len(s) and s[j] == ".":
            k = _digits(s, j + 1)
            post = k > j + 1
            overflow = False
            for ch in s[j + 1 : k]:  # Go's leadingFraction: stop growing before overflow
                if overflow:
                    continue
                if frac > (_MAX - 1) // 10:
                    overflow = True
                    continue
                nxt = frac * 10 + int(ch)
                if nxt >= _MAX:
                    overflow = True
                    continue
                frac, scale = nxt, scale * 10
            j = k
        if not pre and not post:
            raise invalid
        k = j
        while k < len(s) and not (s[k] == "." or "0" <= s[k] <= "9"):
            k += 1
        if k == j:
            raise UsageError(f"time: missing unit in duration {orig}")
        unit_name = s[j:k]
        unit = _UNIT_NS.get(unit_name)
        if unit is None:
            raise UsageError(f"time: unknown unit {quote(unit_name)} in duration {orig}")
        if whole > _MAX // unit:
            raise invalid
        v = whole * unit
        if frac > 0:
            v += int(float(frac) * (float(unit) / float(scale)))
            if v > _MAX:
                raise invalid
        total += v
        if total > _MAX:
            raise invalid
        i = k
    if neg:
        return -total
    if total > _MAX - 1:
        raise invalid
    return total


def parse_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` (``1h30m``, ``-1.5h``, ``300ms``) in seconds."""
    return parse_duration_ns(text) / 1e9


# ------------------------------------------------------------------ Go time layouts

_RFC3339_LOCAL = "2006-01-02T15:04:05"
_RFC3339_NANO_LOCAL = "2006-01-02T15:04:05.999999999"
_DATE_WITH_ZONE = "2006-01-02Z07:00"
_DATE_LOCAL = "2006-01-02"
_RFC3339 = "2006-01-02T15:04:05Z07:00"
_RFC3339_NANO = "2006-01-02T15:04:05.999999999Z07:00"

# the layout elements these layouts use, longest first where they share a start
_ELEMENTS = ("2006", "01", "02", "15", "04", "05", ".999999999", "Z07:00")


def _chunks(layout: str) -> list[tuple[str, str]]:
    """(literal prefix, element) pairs; the last element is '' (end of layout)."""
    out: list[tuple[str, str]] = []
    literal = ""
    i = 0
    while i < len(layout):
        for el in _ELEMENTS:
            if layout.startswith(el, i):
                out.append((literal, el))
                literal = ""
                i += len(el)
                break
        else:
            literal += layout[i]
            i += 1
    out.append((literal, ""))
    return out


class _ParseError(Exception):
    pass


def _bad(layout: str, value: str, value_elem: str, layout_elem: str) -> _ParseError:
    return _ParseError(
        f"parsing time {quote(value)} as {quote(layout)}: cannot parse "
        f"{quote(value_elem)} as {quote(layout_elem)}"
    )


def _msg(value: str, message: str) -> _ParseError:
    return _ParseError(f"parsing time {quote(value)}{message}")


def _getnum(s: str, fixed: bool) -> tuple[int, str] | None:
    if not s or not "0" <= s[0] <= "9":
        return None
    if len(s) < 2 or not ("0" <= s[1] <= "9"):
        if fixed:
            return None
        return int(s[0]), s[1:]
    return int(s[:2]), s[2:]


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year, even 0)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _go_parse(layout: str, value: str, local_offset: int) -> float:
    """Go's ``time.Parse``/``ParseInLocation`` for the layouts above, as Unix seconds."""
    year, month, day, hour, minute, sec, nsec = 0, 1, 1, 0, 0, 0, 0
    offset: int | None = None
    rest = value
    chunks = _chunks(layout)
    for n, (prefix, el) in enumerate(chunks):
        for ch in prefix:
            if not rest or rest[0] != ch:
                raise _bad(layout, value, rest, prefix)
            rest = rest[1:]
        if not el:
            if rest:
                raise _msg(value, f": extra text: {quote(rest)}")
            break
        hold = rest
        rng = ""
        got: tuple[int, str] | None
        if el == "2006":
            if len(rest) < 4 or not all("0" <= c <= "9" for c in rest[:4]):
                raise _bad(layout, value, hold, el)
            year, rest = int(rest[:4]), rest[4:]
        elif el in ("01", "02", "04"):
            got = _getnum(rest, True)
            if got is None:
                raise _bad(layout, value, hold, el)
            num, rest = got
            if el == "01":
                month = num
                rng = "month" if not 1 <= num <= 12 else ""
            elif el == "02":
                day = num
            else:
                minute = num
                rng = "minute" if num >= 60 else ""
        elif el == "15":
            got = _getnum(rest, False)
            if got is None:
                raise _bad(layout, value, hold, el)
            hour, rest = got
            rng = "hour" if hour >= 24 else ""
        elif el == "05":
            got = _getnum(rest, True)
            if got is None:
                raise _bad(layout, value, hold, el)
            sec, rest = got
            if sec >= 60:
                rng = "second"
            elif (
                len(rest) >= 2
                and rest[0] in ".,"
                and "0" <= rest[1] <= "9"
                and (chunks[n + 1][1] != ".999999999" or chunks[n + 1][0])
            ):
                # a fraction the layout does not ask for is read anyway, as Go does
                k = _digits(rest, 1)
                nsec = int(rest[1 : min(k, 10)].ljust(9, "0"))
                rest = rest[k:]
        elif el == ".999999999":
            if len(rest) >= 2 and rest[0] in ".," and "0" <= rest[1] <= "9":
                k = _digits(rest, 1)
                nsec = int(rest[1 : min(k, 10)].ljust(9, "0"))
                rest = rest[k:]
        elif el == "Z07:00":
            if rest[:1] == "Z":
                offset, rest = 0, rest[1:]
            else:
                if len(rest) < 6 or rest[3] != ":" or rest[0] not in "+-":
                    raise _bad(layout, value, hold, el)
                hh, mm = _getnum(rest[1:3], True), _getnum(rest[4:6], True)
                if hh is None or mm is None or hh[1] or mm[1]:
                    raise _bad(layout, value, hold, el)
                if hh[0] > 24:
                    rng = "time zone offset hour"
                elif mm[0] > 60:
                    rng = "time zone offset minute"
                offset = (hh[0] * 60 + mm[0]) * 60 * (-1 if rest[0] == "-" else 1)
                rest = rest[6:]
        if rng:
            raise _msg(value, f": {rng} out of range")
    if day < 1 or day > _days_in(month, year):
        raise _msg(value, ": day out of range")
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + sec
    seconds -= local_offset if offset is None else offset
    return seconds + nsec / 1e9


def _local_offset(reference: float) -> int:
    """The local zone's UTC offset at ``reference``, in seconds (Go's ``reference.Zone()``)."""
    return time.localtime(reference).tm_gmtoff


def _parse_unix(value: str) -> float:
    """moby's ``parseTimestamp``: ``seconds[.fraction]`` (the fraction cut to nanoseconds)."""
    s, dot, n = value.partition(".")
    body = s[1:] if s[:1] in "+-" else s
    if not body or not all("0" <= c <= "9" for c in body):
        raise UsageError(f"invalid seconds {quote(s)}: invalid syntax")
    sec = int(s)
    if not -_MAX <= sec < _MAX:
        raise UsageError(f"invalid seconds {quote(s)}: value out of range")
    if not dot or n in ("", "0", "000000000"):
        return float(sec)
    if len(n) > 20:
        raise UsageError(f"invalid nanoseconds: length {len(n)} exceeds maximum 20")
    for i, c in enumerate(n):
        if not "0" <= c <= "9":
            raise UsageError(f"invalid nanoseconds: invalid character {c!r} at position {i}")
    return sec + int(n[:9].ljust(9, "0")) / 1e9


def parse_timestamp(value: str, reference: float | None = None) -> float:
    """The daemon's ``timestamp.Parse`` of an ``until=``/``since=`` value, as Unix seconds.

    A duration counts back from ``reference`` (default: now). Raises
    :class:`UsageError` with Docker's message.
    """
    ref = time.time() if reference is None else reference
    if not value.strip():
        raise UsageError("failed to parse value as time or duration: value is empty")
    if value != "0":
        try:
            return ref - parse_duration_ns(value) / 1e9
        except UsageError:
            pass
    in_local = not any(c in value for c in "zZ+") and value.count("-") != 3
    if "." in value:
        layout = _RFC3339_NANO_LOCAL if in_local else _RFC3339_NANO
    elif "T" in value:
        colons = value.count(":")
        if not in_local and not any(c in value for c in "zZ") and colons > 0:
            colons -= 1
        layout = ("2006-01-02T15", "2006-01-02T15:04", _RFC3339_LOCAL)[min(colons, 2)]
        if not in_local:
            layout = ("2006-01-02T15Z07:00", "2006-01-02T15:04Z07:00", _RFC3339)[min(colons, 2)]
    else:
        layout = _DATE_LOCAL if in_local else _DATE_WITH_ZONE
    try:
        return _go_parse(layout, value, _local_offset(ref) if in_local else 0)
    except _ParseError as err:
        if "-" in value:
            raise UsageError(str(err)) from None
    try:
        return _parse_unix(value)
    except UsageError as err:
        raise UsageError(f"failed to parse value as time or duration: {err}") from None


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
