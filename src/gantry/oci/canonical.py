"""Reading untrusted JSON documents and writing gantry's canonical JSON.

Canonical form (what gantry writes for manifests, indexes, configs, index.json):
the same bytes Go's ``encoding/json`` produces for the image-spec structs, so a
document written by gantry is byte-identical to one written by containerd,
BuildKit or skopeo for the same content:

* compact separators (``,`` and ``:``), no trailing newline;
* struct fields in the spec's fixed order (each model's ``to_dict`` decides),
  map keys (annotations, labels, ...) sorted;
* UTF-8, non-ASCII kept as is; ``<``, ``>``, ``&``, U+2028 and U+2029 escaped
  as ``\\u003c`` ... the way Go does.

Reading is strict: the input must be UTF-8 JSON whose top level is an object,
duplicate keys are refused (two parsers could otherwise see two documents), and
every accessor below checks the JSON type and raises
:class:`~gantry.errors.InvalidManifest` naming the offending field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

from gantry.errors import InvalidManifest

V = TypeVar("V")

_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_GO_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")


class FrozenDict(Mapping[str, V]):
    """An immutable, hashable str-keyed mapping (annotations, labels...)."""

    __slots__ = ("_d", "_h")

    def __init__(self, data: Mapping[str, V] | None = None) -> None:
        self._d: dict[str, V] = dict(data) if data else {}
        self._h: int | None = None

    def __getitem__(self, key: str) -> V:
        return self._d[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __hash__(self) -> int:
        if self._h is None:
            self._h = hash(frozenset((k, _hashable(v)) for k, v in self._d.items()))
        return self._h

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._d == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenDict({self._d!r})"


def _hashable(v: Any) -> Any:
    # Extra (unknown) fields may hold lists and dicts; hash their JSON text.
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True)
    return v


def dumps(obj: Any) -> bytes:
    """Serialize ``obj`` (dicts in the order built) to canonical JSON bytes."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = _GO_ESCAPE_RE.sub(lambda m: _GO_ESCAPES[m.group(0)], text)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:  # lone surrogates cannot be written as UTF-8
        raise InvalidManifest(f"cannot encode document as UTF-8: {e.reason}") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise InvalidManifest(f"duplicate key {k!r} in JSON object")
        out[k] = v
    return out


def _no_constants(name: str) -> Any:
    raise InvalidManifest(f"invalid JSON number {name}")


def loads_object(data: bytes | str, what: str) -> dict[str, Any]:
    """Parse untrusted JSON ``data`` whose top level must be an object."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise InvalidManifest(f"{what}: not valid UTF-8") from None
    except json.JSONDecodeError as e:
        raise InvalidManifest(
            f"{what}: invalid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    except RecursionError:
        raise InvalidManifest(f"{what}: JSON nested too deeply") from None
    except ValueError as e:  # e.g. an integer with more digits than Python converts
        raise InvalidManifest(f"{what}: invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidManifest(f"{what}: expected a JSON object, got {type_name(doc)}")
    return doc


def type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _wrong(where: str, want: str, v: Any) -> InvalidManifest:
    return InvalidManifest(f"{where}: expected {want}, got {type_name(v)}")


def req(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise InvalidManifest(f"{where}: missing required field {key!r}")
    return obj[key]


def opt_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise _wrong(f"{where}.{key}", "a string", v)
    return v


def as_str(v: Any, where: str) -> str:
    if not isinstance(v, str):
        raise _wrong(where, "a string", v)
    return v


def as_int(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        # Go accepts 1.0 for an int64 field; JSON numbers with a fraction or
        # exponent that are integral are rare enough in manifests to refuse.
        raise _wrong(where, "an integer", v)
    return v


def as_bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise _wrong(where, "a boolean", v)
    return v


def as_object(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _wrong(where, "an object", v)
    return v


def as_list(v: Any, where: str) -> list[Any]:
    if not isinstance(v, list):
        raise _wrong(where, "an array", v)
    return v


def str_list(v: Any, where: str) -> tuple[str, ...]:
    """An array of strings (``null`` reads as empty, as Go does)."""
    if v is None:
        return ()
    return tuple(as_str(x, f"{where}[{i}]") for i, x in enumerate(as_list(v, where)))


def str_map(v: Any, where: str) -> FrozenDict[str]:
    """An object of string values (``null`` reads as empty); keys must be non-empty."""
    if v is None:
        return FrozenDict()
    obj = as_object(v, where)
    for k, x in obj.items():
        if k == "":
            raise InvalidManifest(f"{where}: empty key")
        as_str(x, f"{where}[{k!r}]")
    return FrozenDict(obj)


def sorted_map(m: Mapping[str, V]) -> dict[str, V]:
    return {k: m[k] for k in sorted(m)}


def freeze(obj: object, tuples: Iterable[str] = (), maps: Iterable[str] = ()) -> None:
    """In a frozen dataclass's ``__post_init__``: store lists as tuples and dicts as
    FrozenDicts, so callers may pass plain containers and the value stays immutable."""
    for name in tuples:
        v = getattr(obj, name)
        if v is not None and not isinstance(v, tuple):
            object.__setattr__(obj, name, tuple(v))
    for name in maps:
        v = getattr(obj, name)
        if not isinstance(v, FrozenDict):
            object.__setattr__(obj, name, FrozenDict(v))
