"""Bucket and adaptive-factor configuration, and the Redis key layout of one seller.

Every key of one seller carries the hash tag ``{seller_id}`` so that one decision's keys live in
one Redis Cluster slot and a single script can touch them all atomically.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

SHARED_TAG = "cardtrader"  # the shared breaker's hash tag; never a seller id (those are UUIDs / token:…)


@dataclass(frozen=True)
class BucketConfig:
    """The nominal budget and how the adaptive factor moves.

    ``capacity`` tokens refill continuously at ``capacity / window_seconds`` per second (200 per
    10 s → 20/s). A 429 multiplies the factor by ``cut`` (no more than once per
    ``cut_cooldown_seconds``, because requests already in flight answer 429 as well), never
    below ``floor``; it climbs back by ``recovery_per_second`` each second, never above 1.

    ``burst`` (``RATE_LIMIT_BURST``, 20 in settings) is for a server that enforces a strict
    sliding window: the bucket then holds ``burst`` tokens and refills at
    ``(capacity - burst) / window_seconds``, so no window of that length is ever granted more
    than ``capacity`` (burst + refill). None (``RATE_LIMIT_BURST=0``) is the full bucket,
    200 + 20·T over any T seconds, which a strict sliding window answers with 429s for up to one
    window after an idle seller starts (docs/RATE_LIMITING.md).
    """

    capacity: int = 200
    window_seconds: float = 10.0
    burst: int | None = None
    jobs_per_second: float = 1.0
    reserved_share: float = 0.2
    cut: float = 0.75
    floor: float = 0.25
    recovery_per_second: float = 0.02
    cut_cooldown_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.window_seconds <= 0 or self.jobs_per_second <= 0:
            raise ValueError("capacity, window and jobs rate must be positive")
        if not 0 <= self.reserved_share <= 0.9:
            raise ValueError("reserved_share must be within 0..0.9")
        if not 0 < self.floor <= 1 or not 0 < self.cut <= 1:
            raise ValueError("floor and cut must be within (0, 1]")
        if self.recovery_per_second < 0 or self.cut_cooldown_seconds < 0:
            raise ValueError("recovery and cooldown must not be negative")
        if self.burst is not None and not 1 <= self.burst < self.capacity:
            raise ValueError("burst must be within 1..capacity-1")

    @classmethod
    def from_settings(cls, **overrides: float) -> BucketConfig:
        values: dict = {
            "capacity": int(settings.RATE_LIMIT_REQUESTS),
            "window_seconds": float(settings.RATE_LIMIT_WINDOW_SECONDS),
            "jobs_per_second": float(settings.RATE_LIMIT_JOBS_PER_SECOND),
            "reserved_share": float(settings.RATE_LIMIT_RESERVED_SHARE),
            "burst": settings.RATE_LIMIT_BURST or None,  # 0 in the environment means "no burst cap"
        }
        values.update(overrides)
        return cls(**values)

    @property
    def bucket_size(self) -> float:
        """Tokens a full bucket holds (at factor 1)."""
        return float(self.capacity if self.burst is None else self.burst)

    @property
    def refill_per_second(self) -> float:
        spread = self.capacity if self.burst is None else self.capacity - self.burst
        return spread / self.window_seconds

    @property
    def jobs_capacity(self) -> float:
        """The jobs bucket holds one second's worth (at least one request)."""
        return max(1.0, self.jobs_per_second)

    def lua_values(self) -> dict[str, float]:
        """The ``BK`` table the scripts read (rates per microsecond: script time is in µs)."""
        return {
            "capacity": self.bucket_size,
            "rate": self.refill_per_second / 1e6,
            "jcap": self.jobs_capacity,
            "jrate": self.jobs_per_second / 1e6,
            "inc": self.recovery_per_second / 1e6,
            "cut": self.cut,
            "floor": self.floor,
            "cooldown_us": self.cut_cooldown_seconds * 1e6,
        }


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix (tests use a unique prefix each; production ``rl``)."""

    prefix: str = "rl"

    def __post_init__(self) -> None:
        if not self.prefix or "{" in self.prefix or "}" in self.prefix:
            raise ValueError("key prefix must be non-empty and free of hash-tag braces")

    def bucket(self, seller_id: str) -> str:
        """Both buckets and the factor, packed (``lua/lib.lua``). Not ``:bucket``: that name held
        the earlier hash layout, and a GET on one of those would be a WRONGTYPE error."""
        return f"{self.prefix}:{{{seller_id}}}:tokens"

    def breaker(self, seller_id: str) -> str:
        """Packed breaker state (``lua/lib.lua``); ``:breaker`` held the earlier hash layout."""
        return f"{self.prefix}:{{{seller_id}}}:cb"

    def rate_limited(self, seller_id: str) -> str:
        return f"{self.prefix}:{{{seller_id}}}:429"

    def waits(self, seller_id: str) -> str:
        """Refused decisions (the caller waited or re-scheduled) per minute, like ``rate_limited``."""
        return f"{self.prefix}:{{{seller_id}}}:waits"

    def shared_breaker(self) -> str:
        return f"{self.prefix}:{{{SHARED_TAG}}}:shared-cb"

    def open_breakers(self) -> str:
        """Sorted set of breakers that left CLOSED (member: seller id or SHARED_TAG), for beat/admin."""
        return f"{self.prefix}:{{index}}:open-breakers"

    def throttled(self) -> str:
        """Sorted set of sellers that received a 429 (member: seller id, score: last 429 in s)."""
        return f"{self.prefix}:{{index}}:throttled"

    def limited(self) -> str:
        """Sorted set of sellers that got a 429 or waited (score: such an event in s, refreshed at
        most every ``EVENT_INDEX_REFRESH_SECONDS`` per process), for the dashboard's hourly sums."""
        return f"{self.prefix}:{{index}}:limited"
