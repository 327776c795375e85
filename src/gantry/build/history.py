"""History ``created_by`` strings exactly as BuildKit's Dockerfile frontend writes them.

Filesystem steps end in `` # buildkit``; metadata steps are Go ``fmt`` renderings
(``CMD ["sh" "-c" "x"]``, ``EXPOSE map[80/tcp:{}]``, ``VOLUME [/data]``...). The
comment of every entry is ``buildkit.dockerfile.v0``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from gantry.dockerfile.durations import format_duration
from gantry.dockerfile.goquote import go_quote, go_quote_list

COMMENT = "buildkit.dockerfile.v0"
SUFFIX = " # buildkit"


def run(args: Sequence[str], build_args: Iterable[tuple[str, str]]) -> str:
    """``RUN |2 A=1 B=2 /bin/sh -c make # buildkit`` (the ``|N`` part only with args)."""
    pairs = [f"{k}={v}" for k, v in build_args]
    prefix = [f"|{len(pairs)}", *pairs] if pairs else []
    return "RUN " + " ".join([*prefix, *args]) + SUFFIX


def copy(
    keyword: str,
    sources: Sequence[str],
    heredocs: Sequence[str],
    dest: str,
    *,
    chown: str | None = None,
    chmod: str | None = None,
    parents: bool = False,
) -> str:
    parts = [keyword]
    if parents:
        parts.append("--parents")
    if chown:
        parts.append(f"--chown={chown}")
    if chmod:
        parts.append(f"--chmod={chmod}")
    parts += list(sources)
    parts += [f"<<{h}" for h in heredocs]
    parts.append(dest)
    return " ".join(parts) + SUFFIX


def workdir(path: str) -> str:
    return f"WORKDIR {path}"


def key_values(keyword: str, pairs: Iterable[tuple[str, str]]) -> str:
    return keyword + "".join(f" {k}={v}" for k, v in pairs)


def arg(pairs: Iterable[tuple[str, str | None]]) -> str:
    return "ARG " + " ".join(k if v is None else f"{k}={v}" for k, v in pairs)


def command(keyword: str, args: Sequence[str]) -> str:
    """``CMD ["a" "b"]`` / ``ENTRYPOINT [...]`` (Go's ``%q`` of a string slice)."""
    return f"{keyword} {go_quote_list(args)}"


def go_list(items: Iterable[str]) -> str:
    """Go's ``%v`` of a string slice: ``[a b]``."""
    return "[" + " ".join(items) + "]"


def _port_key(port: str) -> str:
    return port


def expose(ports: Iterable[str]) -> str:
    """``EXPOSE map[443/tcp:{} 80/tcp:{}]`` (Go prints map keys sorted)."""
    keys = sorted(set(ports))
    return "EXPOSE map[" + " ".join(f"{k}:{{}}" for k in keys) + "]"


def healthcheck(
    test: Sequence[str],
    interval: int,
    timeout: int,
    start_period: int,
    start_interval: int,
    retries: int,
) -> str:
    """``HEALTHCHECK &{["CMD-SHELL" "x"] "30s" "0s" "0s" "0s" '\\x03'}``: Go's ``%q`` of a
    ``*HealthConfig``, as BuildKit writes it (durations quoted through their ``String``,
    ``Retries`` quoted as a rune)."""
    durations = " ".join(
        go_quote(format_duration(d)) for d in (interval, timeout, start_period, start_interval)
    )
    return f"HEALTHCHECK &{{{go_quote_list(test)} {durations} {go_quote_rune(retries)}}}"


_RUNE_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}


def go_quote_rune(n: int) -> str:
    """Go's ``%q`` of an integer: ``strconv.QuoteRune`` (``'\\x03'``, ``'A'``, ``'\\u2028'``)."""
    if n < 0 or n > 0x10FFFF or 0xD800 <= n <= 0xDFFF:
        n = 0xFFFD  # fmt turns a value beyond MaxRune, and QuoteRune an invalid one, into this
    if n in (0x27, 0x5C):
        return "'\\" + chr(n) + "'"
    ch = chr(n)
    if n == 0x20 or (n > 0x20 and ch.isprintable()):
        return f"'{ch}'"
    simple = _RUNE_ESCAPES.get(n)
    if simple is not None:
        return f"'{simple}'"
    if n < 0x20 or n == 0x7F:
        return f"'\\x{n:02x}'"
    if n < 0x10000:
        return f"'\\u{n:04x}'"
    return f"'\\U{n:08x}'"


def simple(keyword: str, value: str) -> str:
    return f"{keyword} {value}"


def labels_of(pairs: Mapping[str, str]) -> list[tuple[str, str]]:
    return list(pairs.items())
