"""Container logs in Docker's ``json-file`` format, written by the supervisor, read by ``logs``.

One JSON object per line: ``{"log": "text\\n", "stream": "stdout", "time": "..."}``, the
time in RFC 3339 with nanoseconds (trailing zeros trimmed, as Go marshals a time). Output
is split at newlines; a line longer than 16 KiB is written in pieces, the last piece of a
stream without a newline when it closes is written as it is (Docker does the same).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

#: Docker's maximum message size before a line is split.
MAX_LINE = 16 * 1024


def format_time(ns: int, *, fixed: bool = False) -> str:
    """RFC 3339 UTC with nanoseconds; ``fixed`` keeps all 9 digits (``docker logs -t``)."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}"
    if not fixed:
        digits = digits.rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def parse_time(text: str) -> int:
    """RFC 3339 (as written by :func:`format_time` or Docker) -> Unix nanoseconds."""
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    main, dot, rest = t.partition(".")
    frac = "0"
    tz = ""
    if dot:
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac, tz = rest[:i] or "0", rest[i:]
    else:
        for sign in ("+", "-"):
            idx = main.rfind(sign)
            if idx > 10:
                main, tz = main[:idx], main[idx:]
                break
    dt = datetime.fromisoformat(main + (tz or "+00:00"))
    return int(dt.timestamp()) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])


class JsonLogWriter:
    """Appends a container's output to its json-file log, line by line."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._pending: dict[str, bytes] = {}

    def _emit(self, stream: str, data: bytes) -> None:
        entry = {
            "log": data.decode("utf-8", errors="replace"),
            "stream": stream,
            "time": format_time(time.time_ns()),
        }
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
        os.write(self._fd, (line + "\n").encode())

    def write(self, stream: str, chunk: bytes) -> None:
        buf = self._pending.get(stream, b"") + chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0 or nl >= MAX_LINE:
                break
            self._emit(stream, buf[: nl + 1])
            buf = buf[nl + 1 :]
        while len(buf) >= MAX_LINE:
            self._emit(stream, buf[:MAX_LINE])
            buf = buf[MAX_LINE:]
        self._pending[stream] = buf

    def flush(self, stream: str | None = None) -> None:
        """Write what is left of a stream (no newline yet), e.g. when it closes."""
        for s in [stream] if stream else list(self._pending):
            rest = self._pending.pop(s, b"")
            if rest:
                self._emit(s, rest)

    def close(self) -> None:
        self.flush()
        with contextlib.suppress(OSError):
            os.close(self._fd)


@dataclass(frozen=True)
class LogEntry:
    stream: str
    text: str
    time_ns: int


def _parse_line(line: bytes) -> LogEntry | None:
    try:
        d = json.loads(line)
        return LogEntry(
            str(d.get("stream", "stdout")), str(d.get("log", "")), parse_time(d["time"])
        )
    except (ValueError, KeyError, TypeError):
        return None


def _tail_lines(path: Path, n: int) -> tuple[list[bytes], int]:
    """The last ``n`` complete lines of the file and the offset just after them."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        pos = end
        data = b""
        while pos > 0 and data.count(b"\n") <= n:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    complete_end = data.rfind(b"\n") + 1
    lines = data[:complete_end].splitlines()
    return lines[-n:] if n > 0 else [], pos + complete_end


def read_logs(
    path: str | os.PathLike[str],
    *,
    tail: int | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    follow: bool = False,
    still_running: Callable[[], bool] | None = None,
    poll: float = 0.1,
) -> Iterator[LogEntry]:
    """Entries of a json-file log, oldest first.

    ``tail``: only the last N (before following). ``follow``: keep reading new entries
    until ``still_running()`` says the container stopped (and the file is drained).
    """
    p = Path(path)
    if not p.exists():
        if not follow:
            return
        p.touch()
    if tail is not None and tail >= 0:
        lines, offset = _tail_lines(p, tail)
    else:
        lines, offset = [], 0
    for line in lines:
        entry = _parse_line(line)
        if entry is None:
            continue
        if since_ns is not None and entry.time_ns < since_ns:
            continue
        if until_ns is not None and entry.time_ns > until_ns:
            continue
        yield entry
    with open(p, "rb") as f:
        f.seek(offset)
        pending = b""
        while True:
            chunk = f.read(65536)
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    entry = _parse_line(line)
                    if entry is None:
                        continue
                    if since_ns is not None and entry.time_ns < since_ns:
                        continue
                    if until_ns is not None and entry.time_ns > until_ns:
                        return
                    yield entry
                continue
            if not follow:
                return
            if still_running is not None and not still_running():
                # one last read: the supervisor may have written after our last look
                rest = f.read()
                if not rest:
                    return
                pending += rest
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    entry = _parse_line(line)
                    if entry is not None and (since_ns is None or entry.time_ns >= since_ns):
                        yield entry
                return
            time.sleep(poll)
