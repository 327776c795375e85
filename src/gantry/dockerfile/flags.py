"""Instruction flags (``--from=build``, ``--link``, ``--mount=...``), checked like BuildKit's BFlags.

A flag is a bool (``--link``, ``--link=false``), a string (``--from=x``, value
required) or a repeatable string (``--mount=...``, ``--exclude=...``). A lone
``--`` ends the flags. Errors name the flag as written: ``unknown flag: --foo``.
"""

from __future__ import annotations

from enum import Enum

from gantry.dockerfile.suggest import with_suggestion

__all__ = ["FlagError", "FlagKind", "parse_flags"]


class FlagKind(Enum):
    BOOL = "bool"
    STRING = "string"
    STRINGS = "strings"


class FlagError(ValueError):
    """A bad flag; the instruction layer adds the line."""


FlagValue = bool | str | list[str]


def parse_flags(flags: list[str], spec: dict[str, FlagKind]) -> dict[str, FlagValue]:
    """The flags that were given, by name (without ``--``): bool, str or list of str."""
    used: dict[str, FlagValue] = {}
    for arg in flags:
        if not arg.startswith("--"):
            raise FlagError(f"Arg should start with -- : {arg}")
        if arg == "--":
            break
        name, eq, value = arg[2:].partition("=")
        kind = spec.get(name)
        if kind is None:
            raise FlagError(
                with_suggestion(f"unknown flag: --{name}", f"--{name}", [f"--{k}" for k in spec])
            )
        if name in used and kind is not FlagKind.STRINGS:
            raise FlagError(f"duplicate flag specified: --{name}")
        if kind is FlagKind.BOOL:
            if eq and value == "":
                raise FlagError(f"missing a value on flag: --{name}")
            lowered = value.lower()
            if lowered == "":
                used[name] = True
            elif lowered in ("true", "false"):
                used[name] = lowered == "true"
            else:
                raise FlagError(f"expecting boolean value for flag --{name}, not: {value}")
        elif not eq:
            raise FlagError(f"missing a value on flag: --{name}")
        elif kind is FlagKind.STRING:
            used[name] = value
        else:
            previous = used.get(name)
            values = previous if isinstance(previous, list) else []
            values.append(value)
            used[name] = values
    return used
