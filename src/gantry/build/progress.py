"""Build progress in BuildKit's plain format (``#N [stage k/n] INSTR``, ``#N CACHED``).

``Progress`` receives events from the builder; :class:`PlainProgress` prints them
the way ``docker build --progress=plain`` does, :class:`QuietProgress` keeps the
output of the running step only so a failure can show its last lines.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TextIO


class Progress:
    """Events of a build. The base class records output tails and prints nothing."""

    TAIL = 10

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self._tails: dict[int, deque[str]] = {}
        self._partial: dict[int, str] = {}
        self._start: dict[int, float] = {}

    def vertex(self, name: str) -> int:
        with self._lock:
            self._next += 1
            n = self._next
            self._tails[n] = deque(maxlen=self.TAIL)
            self._start[n] = time.monotonic()
        self.on_start(n, name)
        return n

    def cached(self, n: int) -> None:
        self.on_cached(n)

    def log(self, n: int, data: bytes) -> None:
        text = self._partial.pop(n, "") + data.decode("utf-8", "replace")
        lines = text.split("\n")
        self._partial[n] = lines.pop()
        for line in lines:
            self._tails[n].append(line)
            self.on_line(n, line)

    def _flush(self, n: int) -> None:
        rest = self._partial.pop(n, "")
        if rest:
            self._tails[n].append(rest)
            self.on_line(n, rest)

    def done(self, n: int) -> None:
        self._flush(n)
        self.on_done(n, time.monotonic() - self._start.get(n, time.monotonic()))

    def error(self, n: int, message: str) -> None:
        self._flush(n)
        self.on_error(n, message, time.monotonic() - self._start.get(n, time.monotonic()))

    def tail(self, n: int) -> list[str]:
        return list(self._tails.get(n, ()))

    def elapsed(self, n: int) -> float:
        return time.monotonic() - self._start.get(n, time.monotonic())

    # hooks
    def on_start(self, n: int, name: str) -> None: ...
    def on_cached(self, n: int) -> None: ...
    def on_line(self, n: int, line: str) -> None: ...
    def on_done(self, n: int, seconds: float) -> None: ...
    def on_error(self, n: int, message: str, seconds: float) -> None: ...
    def info(self, n: int, text: str) -> None: ...


class QuietProgress(Progress):
    pass


class PlainProgress(Progress):
    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self.out = out

    def _w(self, text: str) -> None:
        with self._lock:
            self.out.write(text)
            self.out.flush()

    def on_start(self, n: int, name: str) -> None:
        self._w(f"#{n} {name}\n")

    def on_cached(self, n: int) -> None:
        self._w(f"#{n} CACHED\n\n")

    def on_line(self, n: int, line: str) -> None:
        self._w(f"#{n} {self.elapsed(n):.3f} {line}\n")

    def info(self, n: int, text: str) -> None:
        self._w(f"#{n} {text}\n")

    def on_done(self, n: int, seconds: float) -> None:
        self._w(f"#{n} DONE {seconds:.1f}s\n\n")

    def on_error(self, n: int, message: str, seconds: float) -> None:
        self._w(f"#{n} ERROR: {message}\n")


class TtyProgress(Progress):
    """A compact view for terminals: one ``=> [k/n] INSTR  0.1s`` line per finished step,
    the last lines of RUN output while it runs are not kept on screen, and BuildKit's
    ``[+] Building 1.2s (5/5) FINISHED`` summary at the end."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self.out = out
        self.names: dict[int, str] = {}
        self.t0 = time.monotonic()
        self.finished = 0

    def _w(self, text: str) -> None:
        with self._lock:
            self.out.write(text)
            self.out.flush()

    def on_start(self, n: int, name: str) -> None:
        self.names[n] = name

    def on_cached(self, n: int) -> None:
        self.finished += 1
        self._w(f" => CACHED {self.names[n]:<60} {0.0:>5.1f}s\n")
        self._start[n] = -1.0

    def on_done(self, n: int, seconds: float) -> None:
        if self._start.get(n) == -1.0:
            return
        self.finished += 1
        self._w(f" => {self.names[n]:<67} {seconds:>5.1f}s\n")

    def on_error(self, n: int, message: str, seconds: float) -> None:
        self._w(f" => ERROR {self.names[n]:<61} {seconds:>5.1f}s\n")
        for line in self.tail(n):
            self._w(f" => => # {line}\n")

    def summary(self, ok: bool) -> None:
        total = len(self.names)
        state = "FINISHED" if ok else "ERROR"
        elapsed = time.monotonic() - self.t0
        self._w(f"[+] Building {elapsed:.1f}s ({self.finished}/{total}) {state}\n")
