"""The seam between the CardTrader client and the rate limiter / circuit breakers.

The client calls ``acquire`` before every HTTP request and ``record`` after it. Keeping
this a small protocol lets the client be tested without Redis (``NullGuard``) while the
production guard (``ratelimit.services.RedisGuard``) meters every request.
"""
from __future__ import annotations

import enum
from typing import Protocol


class Bucket(enum.StrEnum):
    """Which CardTrader budget a request draws from."""

    GLOBAL = "global"  # 200 requests / 10 s, every endpoint
    JOBS = "jobs"  # GET /jobs/:uuid, 1 request / s (also counts against GLOBAL)


class Priority(enum.StrEnum):
    HIGH = "high"  # webhook-driven writes, deletes, real-time pushes: may use the reserved share
    NORMAL = "normal"  # imports, reconciles, batch pushes


class Outcome(enum.StrEnum):
    """How a request ended, as far as the limiter and breakers care."""

    OK = "ok"
    CLIENT_ERROR = "client_error"  # 400/404/422: the request's fault, not a breaker failure
    AUTH_ERROR = "auth_error"  # 401/403: the seller's token is bad (seller breaker failure)
    RATE_LIMITED = "rate_limited"  # 429: back-pressure for the adaptive limiter, not a breaker failure
    SERVER_ERROR = "server_error"  # 5xx, HTML error pages, unexpected bodies (shared breaker failure)
    TIMEOUT = "timeout"  # timeouts and connection errors (shared breaker failure)


class RequestGuard(Protocol):
    def acquire(
        self,
        *,
        seller_id: str,
        bucket: Bucket = Bucket.GLOBAL,
        cost: int = 1,
        priority: Priority = Priority.NORMAL,
        max_wait: float = 0.0,
    ) -> None:
        """Return once ``cost`` requests may be sent.

        Waits in-process at most ``max_wait`` seconds; beyond that raises
        ``ratelimit.exceptions.RateLimitWait`` (carrying the exact wait) so a Celery task can
        re-schedule itself with a countdown instead of holding a worker. Raises
        ``ratelimit.exceptions.CircuitOpen`` when the seller's or the shared breaker is open.
        """

    def record(self, *, seller_id: str, outcome: Outcome, bucket: Bucket = Bucket.GLOBAL) -> None:
        """Report how a request ended (feeds the adaptive factor and the breakers)."""


class NullGuard:
    """Meters nothing. For unit tests of the client and for CardTrader calls made before a
    seller exists (token validation during connect uses the real guard keyed by token hash)."""

    def acquire(self, *, seller_id: str, bucket: Bucket = Bucket.GLOBAL, cost: int = 1,
                priority: Priority = Priority.NORMAL, max_wait: float = 0.0) -> None:
        return None

    def record(self, *, seller_id: str, outcome: Outcome, bucket: Bucket = Bucket.GLOBAL) -> None:
        return None
