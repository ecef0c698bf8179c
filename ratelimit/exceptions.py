"""Exceptions the limiter raises through the client seam; callers branch on them."""
from __future__ import annotations


class RateLimitWait(Exception):
    """Not enough tokens now; ``wait_seconds`` is the exact time until they exist."""

    def __init__(self, wait_seconds: float, *, seller_id: str = "", bucket: str = "global") -> None:
        super().__init__(f"rate limited: wait {wait_seconds:.3f}s (seller={seller_id}, bucket={bucket})")
        self.wait_seconds = wait_seconds
        self.seller_id = seller_id
        self.bucket = bucket


class CircuitOpen(Exception):
    """A breaker (the seller's or the shared CardTrader one) refuses requests for now."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"circuit {name} open: retry after {retry_after:.1f}s")
        self.name = name
        self.retry_after = retry_after


class LimiterUnavailable(Exception):
    """Redis could not be reached: nothing may be sent unmetered; the caller retries later."""

    def __init__(self, retry_after: float = 1.0) -> None:
        super().__init__(f"rate limiter unavailable: retry after {retry_after:.1f}s")
        self.retry_after = retry_after
