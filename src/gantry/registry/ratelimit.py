"""Per-client token buckets: ``rate`` requests per second, bursts up to ``burst``."""

from __future__ import annotations

import math
import time


class RateLimiter:
    def __init__(self, rate: float, burst: int, *, max_clients: int = 10000) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1, burst)
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)

    def take(self, key: str, now: float | None = None) -> float:
        """0.0 if the request may proceed, else the seconds until it could."""
        t = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (float(self.burst), t))
        tokens = min(float(self.burst), tokens + (t - last) * self.rate)
        if tokens >= 1.0:
            self._store(key, tokens - 1.0, t)
            return 0.0
        self._store(key, tokens, t)
        return (1.0 - tokens) / self.rate

    def _store(self, key: str, tokens: float, t: float) -> None:
        if key not in self._buckets and len(self._buckets) >= self.max_clients:
            # forget the fullest buckets first: those clients lose nothing by it
            full = [k for k, (tok, _) in self._buckets.items() if tok >= self.burst - 1e-9]
            for k in full[: max(1, len(full))]:
                del self._buckets[k]
            if len(self._buckets) >= self.max_clients:
                self._buckets.pop(next(iter(self._buckets)))
        self._buckets[key] = (tokens, t)


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
