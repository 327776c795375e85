"""Go's ``time.ParseDuration``, for HEALTHCHECK --interval and friends (result in nanoseconds)."""

from __future__ import annotations

from gantry.dockerfile.goquote import go_quote

__all__ = ["DurationError", "format_duration", "parse_duration"]

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_MAX = (1 << 63) - 1


class DurationError(ValueError):
    """Worded like Go's: ``time: invalid duration "x"``."""


def parse_duration(text: str) -> int:
    """``"1h30m"`` -> nanoseconds. Accepts what Go accepts (``-1.5s``, ``0``, ``2h45m0.5s``)."""
    orig = text
    s = text
    negative = False
    if s and s[0] in "+-":
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        raise DurationError(f"time: invalid duration {go_quote(orig)}")
    total = 0
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            raise DurationError(f"time: invalid duration {go_quote(orig)}")
        i = 0
        while i < len(s) and "0" <= s[i] <= "9":
            i += 1
        pre = i > 0
        whole = int(s[:i]) if pre else 0
        s = s[i:]
        frac, scale, post = 0, 1.0, False
        if s.startswith("."):
            s = s[1:]
            i = 0
            while i < len(s) and "0" <= s[i] <= "9":
                i += 1
            post = i > 0
            digits = s[:i]
            s = s[i:]
            # Go keeps at most the digits that fit; more only add precision we drop anyway
            for ch in digits[:18]:
                frac = frac * 10 + int(ch)
                scale *= 10
        if not pre and not post:
            raise DurationError(f"time: invalid duration {go_quote(orig)}")
        i = 0
        while i < len(s) and s[i] != "." and not ("0" <= s[i] <= "9"):
            i += 1
        unit_text = s[:i]
        s = s[i:]
        if unit_text == "":
            raise DurationError(f"time: missing unit in duration {go_quote(orig)}")
        unit = _UNITS.get(unit_text)
        if unit is None:
            raise DurationError(
                f"time: unknown unit {go_quote(unit_text)} in duration {go_quote(orig)}"
            )
        value = whole * unit
        if frac:
            value += int(float(frac) * (float(unit) / scale))
        total += value
        if total > _MAX + (1 if negative else 0):
            raise DurationError(f"time: invalid duration {go_quote(orig)}")
    return -total if negative else total


def format_duration(ns: int) -> str:
    """Go's ``Duration.String`` for whole values we print back (``1m30s``, ``500ms``, ``0s``)."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("\u00b5s", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _trim(ns / size) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _trim(rest / 1_000_000_000) + "s"
    out = ""
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return sign + out + seconds


def _trim(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")
