"""``STOPSIGNAL`` validation: the names and numbers BuildKit's frontend accepts.

BuildKit checks the signal with moby's ``signal.ParseSignal`` (Linux table): a decimal
integer other than 0 (sign allowed, as Go's ``strconv.Atoi`` reads it), or a name from
the table, any case, with or without ``SIG``. The image keeps the text as written.
"""

from __future__ import annotations

import re

from gantry.errors import BuildError

_RTMIN = 34
_RTMAX = 64

_NAMES: dict[str, int] = {
    "ABRT": 6,
    "ALRM": 14,
    "BUS": 7,
    "CHLD": 17,
    "CLD": 17,
    "CONT": 18,
    "FPE": 8,
    "HUP": 1,
    "ILL": 4,
    "INT": 2,
    "IO": 29,
    "IOT": 6,
    "KILL": 9,
    "PIPE": 13,
    "POLL": 29,
    "PROF": 27,
    "PWR": 30,
    "QUIT": 3,
    "SEGV": 11,
    "STKFLT": 16,
    "STOP": 19,
    "SYS": 31,
    "TERM": 15,
    "TRAP": 5,
    "TSTP": 20,
    "TTIN": 21,
    "TTOU": 22,
    "URG": 23,
    "USR1": 10,
    "USR2": 12,
    "VTALRM": 26,
    "WINCH": 28,
    "XCPU": 24,
    "XFSZ": 25,
    "RTMIN": _RTMIN,
    "RTMAX": _RTMAX,
}
_NAMES.update({f"RTMIN+{i}": _RTMIN + i for i in range(1, 16)})
_NAMES.update({f"RTMAX-{i}": _RTMAX - i for i in range(1, 15)})

_ATOI = re.compile(r"[+-]?[0-9]+\Z")
_INT64 = 1 << 63


def parse_signal(raw: str) -> int:
    """The signal number ``raw`` names; :class:`BuildError` ``invalid signal: X`` if none."""
    if _ATOI.match(raw):
        n = int(raw)
        if -_INT64 <= n < _INT64:  # beyond int64 Atoi fails and the name lookup follows
            if n == 0:
                raise BuildError(f"invalid signal: {raw}")
            return n
    name = raw.upper()
    if name.startswith("SIG"):
        name = name[3:]
    found = _NAMES.get(name)
    if found is None:
        raise BuildError(f"invalid signal: {raw}")
    return found
