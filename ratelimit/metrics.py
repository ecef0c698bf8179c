"""Prometheus metrics of the limiter and breakers (default registry, served at /metrics).

Seller ids appear as a label only on the adaptive-factor gauge, and only while that seller's
factor is below nominal: beat removes the label once it has recovered, so the series count
follows the number of throttled sellers, not the number of sellers.
"""
from __future__ import annotations

from functools import cache

from prometheus_client import Counter, Gauge, Histogram

DECISIONS = Counter(
    "ratelimit_decisions_total", "Limiter decisions by bucket, priority and result.",
    ["bucket", "priority", "result"],  # result: granted | wait | circuit_open | unavailable
)
TOKENS_CONSUMED = Counter("ratelimit_tokens_consumed_total", "Tokens granted (requests sent).", ["bucket"])
WAIT_SECONDS = Histogram(
    "ratelimit_wait_seconds", "Waits the limiter imposed (slept in-process or handed back as a countdown).",
    ["bucket"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RATE_LIMITED = Counter("ratelimit_429_total", "HTTP 429 answers CardTrader sent back.", ["bucket"])
FACTOR_CUTS = Counter("ratelimit_adaptive_cuts_total", "Times a seller's adaptive factor was cut.")
ADAPTIVE_FACTOR = Gauge(
    "ratelimit_adaptive_factor", "Adaptive factor of sellers currently below nominal (1.0).", ["seller"],
)
THROTTLED_SELLERS = Gauge("ratelimit_throttled_sellers", "Sellers whose adaptive factor is below nominal.")
BREAKER_TRANSITIONS = Counter(
    "ratelimit_breaker_transitions_total", "Breaker transitions.", ["scope", "transition"],  # scope: seller | shared
)
SHARED_BREAKER_STATE = Gauge(
    "ratelimit_shared_breaker_state", "Shared CardTrader breaker: 0 closed, 1 half-open, 2 open.",
)
BREAKERS_NOT_CLOSED = Gauge("ratelimit_breakers_not_closed", "Breakers open or half-open (as of the last beat).")
BREAKERS_STUCK = Gauge("ratelimit_breakers_stuck_open", "Breakers away from CLOSED longer than the stuck limit.")
UNAVAILABLE = Counter("ratelimit_redis_unavailable_total", "Limiter calls that failed because Redis was unreachable.",
                      ["operation"])

STATE_VALUE = {"C": 0, "H": 1, "O": 2}


class DecisionCounters:
    """The label children one (bucket, priority) decision increments, looked up once: ``labels()``
    takes a lock and hashes the label values, which was a measurable share of a decision."""

    __slots__ = ("circuit_open", "granted", "tokens", "unavailable", "wait")

    def __init__(self, bucket: str, priority: str) -> None:
        self.granted = DECISIONS.labels(bucket, priority, "granted")
        self.wait = DECISIONS.labels(bucket, priority, "wait")
        self.circuit_open = DECISIONS.labels(bucket, priority, "circuit_open")
        self.unavailable = DECISIONS.labels(bucket, priority, "unavailable")
        self.tokens = TOKENS_CONSUMED.labels(bucket)


@cache
def decisions(bucket: object, priority: object) -> DecisionCounters:
    """Counters for a ``Bucket`` / ``Priority`` pair (str enums: their value is the label)."""
    return DecisionCounters(getattr(bucket, "value", str(bucket)), getattr(priority, "value", str(priority)))
