"""CardTrader's per-token request limits: 200 per 10 s on everything, plus 1/s on /jobs/:uuid
and 10/s on /marketplace/products (both also count toward the 200).

The window algorithm and whether rejected calls count are unknown for the real API, so both are
switches; the defaults (sliding window, rejected calls don't count) are the kinder reading.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque

GLOBAL_BODY = {"error": "Too many requests: max 200 requests per 10 seconds"}
JOBS_BODY = {"error": "Too many requests: max 1 request per second"}
MARKETPLACE_BODY = {"error": "Too many requests: max 10 requests per second"}


class Window:
    """One limit for one token: ``limit`` calls per ``seconds``."""

    __slots__ = ("fixed_count", "fixed_start", "hits")

    def __init__(self) -> None:
        self.hits: deque[float] = deque()
        self.fixed_start = 0.0
        self.fixed_count = 0

    def allowed(self, now: float, limit: int, seconds: float, algorithm: str) -> tuple[bool, float]:
        """(allowed?, seconds until a slot frees). Does not record the call."""
        if algorithm == "fixed":
            if now >= self.fixed_start + seconds:
                self.fixed_start, self.fixed_count = now, 0
            if self.fixed_count < limit:
                return True, 0.0
            return False, self.fixed_start + seconds - now
        hits = self.hits
        cutoff = now - seconds
        while hits and hits[0] <= cutoff:
            hits.popleft()
        if len(hits) < limit:
            return True, 0.0
        return False, hits[len(hits) - limit] + seconds - now

    def record(self, now: float, algorithm: str) -> None:
        if algorithm == "fixed":
            self.fixed_count += 1
        else:
            self.hits.append(now)


class RateLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], Window] = {}

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def check(self, token: str, scope: str | None, *, limit: int, seconds: float, algorithm: str,
              count_rejected: bool) -> tuple[dict | None, int]:
        """Return (None, 0) if the call may proceed, else (429 body, Retry-After seconds)."""
        now = time.monotonic()
        checks = [("global", limit, seconds, GLOBAL_BODY)]
        if scope == "jobs":
            checks.append(("jobs", 1, 1.0, JOBS_BODY))
        elif scope == "marketplace":
            checks.append(("marketplace", 10, 1.0, MARKETPLACE_BODY))
        with self._lock:
            windows = []
            for name, lim, secs, body in checks:
                window = self._windows.get((token, name))
                if window is None:
                    window = self._windows[(token, name)] = Window()
                ok, wait = window.allowed(now, lim, secs, algorithm)
                windows.append((window, secs))
                if not ok:
                    if count_rejected:
                        for w, _ in windows:
                            w.record(now, algorithm)
                    return body, max(1, math.ceil(wait))
            for w, _ in windows:
                w.record(now, algorithm)
        return None, 0
