"""``RUN --mount=type=cache,target=/root/.cache,sharing=locked``: parsed and validated.

The value is a CSV record of ``key=value`` fields (and the bare words ``ro``,
``rw``, ``readonly``, ``readwrite``, ``required``). Values may still hold
``$VAR`` references: :func:`parse_mount` validates what it can see and leaves
such values for :func:`parse_mount` to check again once an expander is given
(``expand``), as BuildKit does in its two passes. ``from`` never expands.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass

from gantry.dockerfile.goquote import go_quote
from gantry.dockerfile.suggest import with_suggestion

__all__ = ["MOUNT_TYPES", "SHARING_MODES", "Mount", "MountError", "parse_mount", "parse_size"]

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")
_KEYS = (
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "size",
    "env",
)
_BOOLS = {"1": True, "t": True, "true": True, "TRUE": True, "True": True, "T": True}
_BOOLS.update({"0": False, "f": False, "false": False, "FALSE": False, "False": False, "F": False})
_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_VAR = re.compile(r"\$.")


class MountError(ValueError):
    """A bad ``--mount`` value; the instruction layer adds the line."""


@dataclass(frozen=True, kw_only=True)
class Mount:
    """One ``--mount``. ``spec`` is the value as written; ``deferred`` lists keys whose
    values hold variables and still need :func:`parse_mount` with an expander."""

    spec: str
    type: str = "bind"
    from_: str | None = None
    source: str | None = None
    target: str | None = None
    readonly: bool = True
    cache_id: str | None = None
    sharing: str | None = None
    required: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    env: str | None = None
    deferred: tuple[str, ...] = ()


def parse_size(value: str) -> int:
    """docker/go-units ``RAMInBytes``: ``64m``, ``1.5GiB``, ``4096`` -> bytes (base 1024)."""
    m = _SIZE.match(value)
    if m is None:
        raise ValueError(value)
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower()])


def _bool(key: str, value: str) -> bool:
    if value not in _BOOLS:
        raise MountError(f"invalid value for {key}: {value}")
    return _BOOLS[value]


def _uint(key: str, value: str, base: int) -> int:
    try:
        if not value or not value.isascii() or value[0] in "+-_" or "_" in value:
            raise ValueError(value)
        number = int(value, base)
    except ValueError:
        raise MountError(f"invalid value {value} for {key}") from None
    if number >= 1 << 32:
        raise MountError(f"invalid value {value} for {key}")
    return number


def parse_mount(spec: str, expand: Callable[[str], str] | None = None) -> Mount:
    """Parse one ``--mount`` value. Without ``expand``, values with ``$`` are deferred."""
    try:
        fields = next(csv.reader([spec], strict=True), [])
    except csv.Error as exc:
        raise MountError(f"failed to parse csv mounts: {exc}") from None
    values: dict[str, object] = {"type": "bind"}
    deferred: list[str] = []
    ro_auto = True
    for field in fields:
        key, eq, value = field.partition("=")
        key = key.lower()
        if not eq:
            if key in ("readonly", "ro"):
                values["readonly"], ro_auto = True, False
            elif key in ("readwrite", "rw"):
                values["readonly"], ro_auto = False, False
            elif key == "required":
                if values["type"] not in ("secret", "ssh"):
                    raise MountError(f"unexpected key '{key}' for mount type '{values['type']}'")
                values["required"] = True
            else:
                raise MountError(f"invalid field '{field}' must be a key=value pair")
            continue
        if key not in _KEYS:
            raise MountError(with_suggestion(f"unexpected key '{key}' in '{field}'", key, _KEYS))
        if key == "from" and _VAR.search(value):
            raise MountError(
                f"'{key}' doesn't support variable expansion, define alias stage instead"
            )
        if expand is not None and key != "from":
            value = expand(value)
        elif "$" in value and key != "from":
            deferred.append(key)
            values[_canonical(key)] = value
            if key in ("readonly", "ro", "readwrite", "rw"):
                ro_auto = False
            continue
        mount_type = str(values["type"])
        if key == "type":
            t = value.lower()
            if t not in MOUNT_TYPES:
                raise MountError(
                    with_suggestion(f"unsupported mount type {go_quote(value)}", t, MOUNT_TYPES)
                )
            values["type"] = t
        elif key in ("readonly", "ro"):
            values["readonly"], ro_auto = _bool(key, value), False
        elif key in ("readwrite", "rw"):
            values["readonly"], ro_auto = not _bool(key, value), False
        elif key == "required":
            if mount_type not in ("secret", "ssh"):
                raise MountError(f"unexpected key '{key}' for mount type '{mount_type}'")
            values["required"] = _bool(key, value)
        elif key == "size":
            if mount_type != "tmpfs":
                raise MountError(f"unexpected key '{key}' for mount type '{mount_type}'")
            try:
                values["size"] = parse_size(value)
            except ValueError:
                raise MountError(f"invalid value for {key}: {value}") from None
        elif key == "sharing":
            s = value.lower()
            if s not in SHARING_MODES:
                raise MountError(
                    with_suggestion(
                        f"unsupported sharing value {go_quote(value)}", s, SHARING_MODES
                    )
                )
            values["sharing"] = s
        elif key == "mode":
            values["mode"] = _uint(key, value, 8)
        elif key in ("uid", "gid"):
            values[key] = _uint(key, value, 10)
        else:
            values[_canonical(key)] = value
    return _validate(spec, values, ro_auto, tuple(deferred))


def _canonical(key: str) -> str:
    return {
        "src": "source",
        "dst": "target",
        "destination": "target",
        "id": "cache_id",
        "from": "from_",
        "ro": "readonly",
        "rw": "readonly",
        "readwrite": "readonly",
    }.get(key, key)


def _validate(spec: str, v: dict[str, object], ro_auto: bool, deferred: tuple[str, ...]) -> Mount:
    mount_type = str(v["type"])
    if "type" in deferred:
        return _build(spec, v, deferred)
    if mount_type not in ("secret", "ssh", "cache"):
        for key in ("mode", "uid", "gid"):
            if v.get(key) is not None:
                raise MountError(f'{key} not allowed for "{mount_type}" type mounts')
    if ro_auto:
        v["readonly"] = mount_type not in ("cache", "tmpfs")
    if mount_type == "secret":
        if v.get("from_"):
            raise MountError("secret mount should not have a from")
        if v.get("sharing"):
            raise MountError("secret mount should not define sharing")
        if (
            not v.get("source")
            and not v.get("target")
            and not v.get("cache_id")
            and not v.get("env")
        ):
            raise MountError("invalid secret mount. one of source, target required")
        if v.get("source") and v.get("cache_id"):
            raise MountError("both source and id can't be set")
    elif v.get("env") is not None:
        raise MountError(f"unexpected key 'env' for mount type '{mount_type}'")
    if v.get("sharing") and mount_type != "cache":
        raise MountError(f"invalid cache sharing set for {mount_type} mount")
    return _build(spec, v, deferred)


def _build(spec: str, v: dict[str, object], deferred: tuple[str, ...]) -> Mount:
    def s(key: str) -> str | None:
        value = v.get(key)
        return None if value is None else str(value)

    def i(key: str) -> int | None:
        value = v.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    readonly = v.get("readonly", True)
    return Mount(
        spec=spec,
        type=str(v["type"]),
        from_=s("from_"),
        source=s("source"),
        target=s("target"),
        readonly=readonly if isinstance(readonly, bool) else True,
        cache_id=s("cache_id"),
        sharing=s("sharing"),
        required=v.get("required") is True,
        mode=i("mode"),
        uid=i("uid"),
        gid=i("gid"),
        size=i("size"),
        env=s("env"),
        deferred=deferred,
    )
