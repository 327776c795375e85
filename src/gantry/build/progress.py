"""Build progress as BuildKit shows it.

``Progress`` receives events from the builder (a vertex per step: started, cached,
output lines, done or failed). :class:`PlainProgress` prints them as
``--progress=plain`` does (``#N [stage k/n] INSTR``, ``#N CACHED``, every output line
with its time); :class:`TtyProgress` is the interactive view redrawn in place;
:class:`QuietProgress` prints nothing but keeps the running step's last lines so a
failure can show them.
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
    """BuildKit's interactive view, redrawn in place about ten times a second.

    ``[+] Building 3.2s (4/7)`` then one `` => [k/n] INSTR   1.2s`` line per step in
    start order (`` => CACHED ...`` for cache hits, `` => ERROR ...`` for a failure);
    the last lines of a running step's output show under it as `` => => # line`` and
    fold away when it finishes (a failed step keeps them). :meth:`summary` draws the
    final frame with ``FINISHED`` or ``ERROR`` and stops redrawing.
    """

    LOG_LINES = 6
    INTERVAL = 0.1

    def __init__(self, out: TextIO, *, width: int | None = None, height: int | None = None):
        super().__init__()
        self.out = out
        self.t0 = time.monotonic()
        self.names: dict[int, str] = {}
        self.state: dict[int, str] = {}  # running, cached, done, error
        self.took: dict[int, float] = {}
        self.logs: dict[int, deque[str]] = {}
        self._width = width
        self._height = height
        self._drawn = 0
        self._final: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- events ----------------------------------------------------------------------

    def on_start(self, n: int, name: str) -> None:
        with self._lock:
            self.names[n] = name
            self.state[n] = "running"
            self.logs[n] = deque(maxlen=self.LOG_LINES)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
            self._thread.start()

    def on_cached(self, n: int) -> None:
        with self._lock:
            self.state[n] = "cached"
            self.took[n] = 0.0

    def on_line(self, n: int, line: str) -> None:
        with self._lock:
            self.logs[n].append(line)

    def on_done(self, n: int, seconds: float) -> None:
        with self._lock:
            if self.state.get(n) != "cached":
                self.state[n] = "done"
                self.took[n] = seconds

    def on_error(self, n: int, message: str, seconds: float) -> None:
        with self._lock:
            self.state[n] = "error"
            self.took[n] = seconds

    # -- drawing ---------------------------------------------------------------------

    def _size(self) -> tuple[int, int]:
        import shutil

        cols, rows = shutil.get_terminal_size((100, 40))
        return self._width or cols, self._height or rows

    def frame(self) -> list[str]:
        """The lines of the current view (without cursor movement)."""
        width, height = self._size()
        now = time.monotonic()
        with self._lock:
            order = sorted(self.names)
            finished = sum(1 for n in order if self.state[n] in ("cached", "done"))
            head = f"[+] Building {now - self.t0:.1f}s ({finished}/{len(order)})"
            if self._final:
                head += f" {self._final}"
            body: list[str] = []
            for n in order:
                state = self.state[n]
                took = self.took.get(n, now - self._start.get(n, now))
                label = {"cached": "CACHED ", "error": "ERROR "}.get(state, "")
                body.append(_timed_line(f" => {label}{self.names[n]}", took, width))
                if state in ("running", "error"):
                    body += [_clip(f" => => # {line}", width) for line in self.logs[n]]
        room = max(1, height - 1)
        if len(body) > room:
            body = body[-room:]
        return [head, *body]

    def _draw(self) -> None:
        lines = self.frame()
        parts = []
        if self._drawn:
            parts.append(f"\x1b[{self._drawn}A")
        parts += [f"\r{line}\x1b[K\n" for line in lines]
        extra = self._drawn - len(lines)
        if extra > 0:  # a shorter frame: blank what the last one left below
            parts += ["\x1b[K\n"] * extra + [f"\x1b[{extra}A"]
        self._drawn = len(lines)
        try:
            self.out.write("".join(parts))
            self.out.flush()
        except (OSError, ValueError):
            self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            self._draw()

    def summary(self, ok: bool) -> None:
        """The last frame: every step with its time, ``FINISHED`` or ``ERROR``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._final = "FINISHED" if ok else "ERROR"
        self._draw()


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _timed_line(text: str, seconds: float, width: int) -> str:
    """``text`` with ``1.2s`` right-aligned at ``width`` (BuildKit's layout)."""
    stamp = f"{seconds:.1f}s"
    room = width - len(stamp) - 1
    if room < 10:
        return f"{text} {stamp}"
    return f"{_clip(text, room):<{room}} {stamp}"
