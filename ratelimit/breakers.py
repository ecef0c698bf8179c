"""Circuit breaker configuration, states, and which outcomes count for which breaker.

Two breakers guard each request: the seller's (its token revoked, or CardTrader failing for that
seller's data) and one shared by everyone (CardTrader itself down or unreachable). Their state
lives in Redis (packed strings) and every transition happens inside a Lua script (``lua/lib.lua``), so
workers on many machines agree on it.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from .guard import Outcome


class BreakerState(enum.StrEnum):
    CLOSED = "C"
    OPEN = "O"
    HALF_OPEN = "H"

    @property
    def label(self) -> str:
        return {"C": "closed", "O": "open", "H": "half-open"}[self.value]


class Kind(enum.StrEnum):
    SUCCESS = "s"
    FAILURE = "f"
    NEUTRAL = "n"


# A 4xx answer proves CardTrader is up and the token works: a success. A 429 is back-pressure
# for the adaptive factor, not a sign of failure either way. 401/403 are the seller's problem;
# timeouts and connection errors are nobody's data, so only the shared breaker counts them.
SELLER_KIND: dict[Outcome, Kind] = {
    Outcome.OK: Kind.SUCCESS,
    Outcome.CLIENT_ERROR: Kind.SUCCESS,
    Outcome.AUTH_ERROR: Kind.FAILURE,
    Outcome.RATE_LIMITED: Kind.NEUTRAL,
    Outcome.SERVER_ERROR: Kind.FAILURE,
    Outcome.TIMEOUT: Kind.NEUTRAL,
}
SHARED_KIND: dict[Outcome, Kind] = {
    Outcome.OK: Kind.SUCCESS,
    Outcome.CLIENT_ERROR: Kind.SUCCESS,
    Outcome.AUTH_ERROR: Kind.NEUTRAL,
    Outcome.RATE_LIMITED: Kind.NEUTRAL,
    Outcome.SERVER_ERROR: Kind.FAILURE,
    Outcome.TIMEOUT: Kind.FAILURE,
}


@dataclass(frozen=True)
class BreakerConfig:
    """Seed numbers: 5 failures open, 60 s open, 2 half-open successes close.

    ``failure_window_seconds`` forgets failures older than that (the seed let its failure
    counter expire after 60 s). ``max_probes`` requests may be in flight while HALF_OPEN; a probe
    that never reports back frees its slot after ``probe_window_seconds``. ``stuck_after_seconds``
    is how long a breaker may stay away from CLOSED before beat reports it as stuck.
    """

    failure_threshold: int = 5
    open_seconds: float = 60.0
    success_threshold: int = 2
    max_probes: int = 2
    probe_window_seconds: float = 30.0
    failure_window_seconds: float = 60.0
    state_ttl_seconds: float = 86400.0
    stuck_after_seconds: float = 600.0

    def __post_init__(self) -> None:
        if min(self.failure_threshold, self.success_threshold, self.max_probes) < 1:
            raise ValueError("thresholds and max_probes must be at least 1")
        if min(self.open_seconds, self.probe_window_seconds, self.failure_window_seconds) <= 0:
            raise ValueError("breaker periods must be positive")

    @classmethod
    def from_settings(cls) -> BreakerConfig:
        """Seed numbers unless the deployment (or a fault test) overrides them."""
        from django.conf import settings

        return cls(
            failure_threshold=settings.BREAKER_FAILURE_THRESHOLD,
            open_seconds=settings.BREAKER_OPEN_SECONDS,
            success_threshold=settings.BREAKER_SUCCESS_THRESHOLD,
        )

    def lua_values(self) -> dict[str, float]:
        """The ``CB`` table the scripts read."""
        return {
            "threshold": self.failure_threshold,
            "open_us": self.open_seconds * 1e6,
            "successes": self.success_threshold,
            "max_probes": self.max_probes,
            "probe_window_us": self.probe_window_seconds * 1e6,
            "failure_window_us": self.failure_window_seconds * 1e6,
            "ttl_ms": float(int(self.state_ttl_seconds * 1000)),
        }


@dataclass(frozen=True)
class BreakerSnapshot:
    """One breaker as a script left it (``cb_reply`` order: st, f, s, p, o, since)."""

    name: str
    state: BreakerState
    failures: int
    successes: int
    probes: int
    opened_at: float  # unix seconds, 0 when closed
    since: float  # unix seconds the breaker first left CLOSED, 0 when closed

    @classmethod
    def from_reply(cls, name: str, fields: list) -> BreakerSnapshot:
        st, f, s, p, o, since = (_text(x) for x in fields[:6])
        return cls(
            name=name, state=BreakerState(st), failures=int(f), successes=int(s), probes=int(p),
            opened_at=float(o) / 1e6, since=float(since) / 1e6,
        )

    def retry_after(self, config: BreakerConfig, now: float) -> float:
        if self.state is BreakerState.OPEN:
            return max(0.0, self.opened_at + config.open_seconds - now)
        return 0.0

    def stuck(self, config: BreakerConfig, now: float) -> bool:
        return self.state is not BreakerState.CLOSED and now - self.since >= config.stuck_after_seconds


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
