"""The Redis-backed request guard and the operations staff and beat perform on it.

``RedisGuard`` is what the CardTrader client calls before and after every request
(``ratelimit.guard.RequestGuard``). Per request it makes one script call to acquire and one to
record; the shared CardTrader breaker lives in another cluster slot, so it is consulted with a
separate call, skipped while this process saw it CLOSED less than ``shared_cache_seconds`` ago.

Two feature flags are read on every call (``brxsync.features``): ``adaptive_rate_limiting`` off
keeps every seller at the nominal budget (a 429 is counted, nothing is cut or drained);
``circuit_breaker`` off means no breaker blocks or opens (failures are still counted). Each flag
combination has its own script text (the ``FL`` table), so a call carries no flag arguments.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.exceptions import ClusterError, ReadOnlyError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from brxsync import features

from . import metrics
from .breakers import SELLER_KIND, SHARED_KIND, BreakerConfig, BreakerSnapshot, BreakerState, Kind
from .buckets import SHARED_TAG, BucketConfig, Keys
from .exceptions import CircuitOpen, LimiterUnavailable, RateLimitWait
from .guard import Bucket, Outcome, Priority
from .scripts import Runner, Scripts, lua_table

logger = logging.getLogger(__name__)

# What "Redis is unreachable" looks like: refused/reset connections, timeouts, a server still
# loading its data after a restart (BusyLoadingError is a ConnectionError), a cluster without a
# master for the slot, a replica promoted mid-write.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, ClusterError, ReadOnlyError)
UNAVAILABLE_RETRY_SECONDS = 1.0
SHARED_NAME = "cardtrader"
SELLER_KEYS_CACHED = 100_000  # a process serving more sellers than this rebuilds names now and then
EVENT_INDEX_REFRESH_SECONDS = 10.0  # a process re-marks a seller in the 429/wait index at most this often
EVENT_INDEX_HOURS = 1.0  # beat drops sellers whose last 429/wait is older than this from that index


def limiter_client(url: str | None = None) -> redis.Redis:
    """A Redis client that gives up fast: a worker must learn within a second that the limiter is
    gone (and re-schedule) rather than hang. One immediate retry covers a pooled connection that a
    Redis restart left stale."""
    return redis.Redis.from_url(
        url or settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 1), health_check_interval=30,
    )


@dataclass(frozen=True, slots=True)
class Decision:
    granted: bool
    wait_seconds: float
    tokens_left: float
    factor: float


@dataclass
class MaintenanceReport:
    half_opened: list[str] = field(default_factory=list)
    not_closed: list[BreakerSnapshot] = field(default_factory=list)
    stuck: list[BreakerSnapshot] = field(default_factory=list)
    throttled: dict[str, float] = field(default_factory=dict)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _flags() -> tuple[bool, bool]:
    """(adaptive_rate_limiting, circuit_breaker), read per call so a settings override applies."""
    return features.enabled("adaptive_rate_limiting"), features.enabled("circuit_breaker")


class RedisGuard:
    """Token buckets, adaptive factor and breakers in Redis; fails safe when Redis is gone."""

    def __init__(
        self,
        client: Any = None,
        *,
        prefix: str = "rl",
        buckets: BucketConfig | None = None,
        breakers: BreakerConfig | None = None,
        reserved_share_for: Callable[[str], float | None] | None = None,
        share_cache_seconds: float = 60.0,
        shared_cache_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client if client is not None else limiter_client()
        self.keys = Keys(prefix)
        self.buckets = buckets or BucketConfig.from_settings()
        self.breakers = breakers or BreakerConfig()
        self._reserved_share_for = reserved_share_for
        self._share_cache_seconds = share_cache_seconds
        self._shares: dict[str, tuple[float, float]] = {}
        self._shared_cache_seconds = shared_cache_seconds
        self._shared_seen: tuple[str, int, float] | None = None  # (state, failures, monotonic time)
        self._sleep = sleep
        self._seller_keys: dict[str, tuple[list[str], list[str]]] = {}
        self._noted: dict[str, float] = {}  # seller -> when this process last marked it in keys.limited()
        self._preamble = lua_table("BK", self.buckets.lua_values()) + "\n" + lua_table("CB", self.breakers.lua_values())
        self._scripts: dict[tuple[bool, bool], Scripts] = {}
        self._run = Runner(self.client)

    @classmethod
    def from_settings(cls) -> RedisGuard:
        from .selectors import reserved_share_override

        return cls(
            prefix=settings.RATE_LIMIT_KEY_PREFIX,
            breakers=BreakerConfig.from_settings(),
            reserved_share_for=reserved_share_override,
        )

    def scripts_for(self, adaptive: bool, breakers: bool) -> Scripts:
        """The scripts for one combination of the two flags (built once per guard)."""
        scripts = self._scripts.get((adaptive, breakers))
        if scripts is None:
            flags = lua_table("FL", {"adaptive": int(adaptive), "breakers": int(breakers)})
            scripts = self._scripts[(adaptive, breakers)] = Scripts(f"{self._preamble}\n{flags}")
        return scripts

    @property
    def scripts(self) -> Scripts:
        """The scripts for the flags as they are now."""
        return self.scripts_for(*_flags())

    # ------------------------------------------------------------------ RequestGuard

    def acquire(self, *, seller_id: str, bucket: Bucket = Bucket.GLOBAL, cost: int = 1,
                priority: Priority = Priority.NORMAL, max_wait: float = 0.0) -> None:
        decision = self.decide(seller_id=seller_id, bucket=bucket, cost=cost, priority=priority)
        if decision.granted:
            return
        if decision.wait_seconds <= max_wait:
            metrics.WAIT_SECONDS.labels(bucket.value).observe(decision.wait_seconds)
            self._sleep(decision.wait_seconds)
            decision = self.decide(seller_id=seller_id, bucket=bucket, cost=cost, priority=priority)
            if decision.granted:
                return
        metrics.WAIT_SECONDS.labels(bucket.value).observe(decision.wait_seconds)
        raise RateLimitWait(decision.wait_seconds, seller_id=seller_id, bucket=bucket.value)

    def record(self, *, seller_id: str, outcome: Outcome, bucket: Bucket = Bucket.GLOBAL) -> None:
        """Never raises for Redis trouble: the request has happened, and losing one report (a
        breaker count, a factor cut) is better than failing the caller after the fact."""
        record_keys = self._keys_of(seller_id)[1]
        limited = outcome is Outcome.RATE_LIMITED
        if limited:
            metrics.RATE_LIMITED.labels(bucket.value).inc()
        adaptive, breakers = _flags()
        scripts = self.scripts_for(adaptive, breakers)
        try:
            reply = self._run(
                scripts.record, record_keys,
                [SELLER_KIND[outcome].value, "1" if limited else "0", "j" if bucket is Bucket.JOBS else "g"],
            )
            transition, factor, cut = _text(reply[0]), float(_text(reply[2])), int(reply[3])
            if transition:
                self._breaker_moved(seller_id, transition, "seller")
            if limited:
                if cut:
                    metrics.FACTOR_CUTS.inc()
                if adaptive:
                    metrics.ADAPTIVE_FACTOR.labels(seller_id).set(factor)
                    self.client.zadd(self.keys.throttled(), {seller_id: time.time()})
                self._note_limited(seller_id)
            self._record_shared(SHARED_KIND[outcome], scripts)
        except UNAVAILABLE_ERRORS as exc:
            metrics.UNAVAILABLE.labels("record").inc()
            logger.warning("rate limiter could not record %s for seller %s: %s", outcome.value, seller_id, exc)

    # ------------------------------------------------------------------ decisions

    def decide(self, *, seller_id: str, bucket: Bucket = Bucket.GLOBAL, cost: int = 1,
               priority: Priority = Priority.NORMAL) -> Decision:
        """One attempt, no sleeping: granted, or the exact wait until ``cost`` tokens exist.

        Raises CircuitOpen, LimiterUnavailable, or ValueError for a cost no bucket can ever hold.
        """
        acquire_keys = self._keys_of(seller_id)[0]
        if not isinstance(cost, int) or cost < 1:
            raise ValueError(f"cost must be a positive integer, not {cost!r}")
        counted = metrics.decisions(bucket, priority)
        share = 0.0 if priority is Priority.HIGH else self.reserved_share(seller_id)
        adaptive, breakers = _flags()
        scripts = self.scripts_for(adaptive, breakers)
        try:
            probe = self._admit_shared(scripts) if breakers else False
            try:
                reply = self._run(scripts.acquire, acquire_keys,
                                  [cost, repr(share), "1" if bucket is Bucket.JOBS else "0"])
            except BaseException:
                if probe:
                    self._release_shared_probe(scripts)
                raise
            code, wait_us = reply[0], reply[1]
            if code != 1 and probe:
                self._release_shared_probe(scripts)
        except UNAVAILABLE_ERRORS as exc:
            metrics.UNAVAILABLE.labels("acquire").inc()
            counted.unavailable.inc()
            raise LimiterUnavailable(UNAVAILABLE_RETRY_SECONDS) from exc
        except CircuitOpen:
            counted.circuit_open.inc()
            raise
        if code == -1:
            counted.circuit_open.inc()
            raise CircuitOpen(f"seller:{seller_id}", wait_us / 1e6)
        if code == -2:
            raise ValueError(
                f"cost {cost} can never be granted (capacity {self.buckets.capacity}, reserved share {share}, "
                f"bucket {bucket.value})"
            )
        tokens, factor = reply[2] / 1e6, reply[3] / 1e6
        if code == 1:
            counted.granted.inc()
            counted.tokens.inc(cost)
            return Decision(True, 0.0, tokens, factor)
        counted.wait.inc()
        self._note_limited(seller_id)
        return Decision(False, wait_us / 1e6, tokens, factor)

    def _note_limited(self, seller_id: str) -> None:
        """Mark the seller in ``keys.limited()`` (the dashboard sums its 429s and waits over that
        index), at most once per ``EVENT_INDEX_REFRESH_SECONDS`` per process: the per-minute counts
        themselves are kept by the scripts. Losing a mark to Redis trouble costs a dashboard
        figure, never a decision."""
        now = time.time()
        last = self._noted.get(seller_id)
        if last is not None and now - last < EVENT_INDEX_REFRESH_SECONDS:
            return
        if len(self._noted) >= SELLER_KEYS_CACHED:
            self._noted.clear()
        self._noted[seller_id] = now
        try:
            self.client.zadd(self.keys.limited(), {seller_id: now})
        except UNAVAILABLE_ERRORS:
            metrics.UNAVAILABLE.labels("index").inc()

    def _keys_of(self, seller_id: str) -> tuple[list[str], list[str]]:
        """The seller's (acquire keys, record keys), built and checked once per seller: a decision
        is a hot path, and formatting three key names per call showed in its profile."""
        keys = self._seller_keys.get(seller_id)
        if keys is None:
            _check_seller(seller_id)
            bucket, breaker = self.keys.bucket(seller_id), self.keys.breaker(seller_id)
            keys = ([bucket, breaker, self.keys.waits(seller_id)], [bucket, breaker, self.keys.rate_limited(seller_id)])
            if len(self._seller_keys) >= SELLER_KEYS_CACHED:
                self._seller_keys.clear()
            self._seller_keys[seller_id] = keys
        return keys

    def reserved_share(self, seller_id: str) -> float:
        """The seller's override (cached for ``share_cache_seconds``) or the configured default."""
        if self._reserved_share_for is None:
            return self.buckets.reserved_share
        now = time.monotonic()
        cached = self._shares.get(seller_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        override = self._reserved_share_for(seller_id)
        share = self.buckets.reserved_share if override is None else min(0.9, max(0.0, float(override)))
        self._shares[seller_id] = (share, now + self._share_cache_seconds)
        return share

    # ------------------------------------------------------------------ the shared breaker

    def _shared_call(self, op: str, kind: str = "n", scripts: Scripts | None = None) -> list:
        reply = (scripts or self.scripts).breaker(self.client, [self.keys.shared_breaker()], [op, kind])
        self._shared_seen = (_text(reply[2]), int(reply[3]), time.monotonic())
        metrics.SHARED_BREAKER_STATE.set(metrics.STATE_VALUE[_text(reply[2])])
        return reply

    def _shared_fresh(self) -> tuple[str, int] | None:
        seen = self._shared_seen
        if seen is None or time.monotonic() - seen[2] >= self._shared_cache_seconds:
            return None
        return seen[0], seen[1]

    def _admit_shared(self, scripts: Scripts) -> bool:
        """Raise CircuitOpen if the shared breaker refuses; True when admitted as a half-open probe."""
        fresh = self._shared_fresh()
        if fresh is not None and fresh[0] == BreakerState.CLOSED:
            return False
        reply = self._shared_call("admit", scripts=scripts)
        verdict = _text(reply[0])
        if verdict == "0":
            raise CircuitOpen(SHARED_NAME, int(reply[1]) / 1e6)
        return verdict == "probe"

    def _release_shared_probe(self, scripts: Scripts) -> None:
        self._shared_call("release", scripts=scripts)

    def _record_shared(self, kind: Kind, scripts: Scripts) -> None:
        fresh = self._shared_fresh()
        healthy = fresh is not None and fresh == (BreakerState.CLOSED, 0)
        if kind is Kind.FAILURE or (kind is Kind.SUCCESS and not healthy) or (kind is Kind.NEUTRAL and fresh is not None
                                                                             and fresh[0] == BreakerState.HALF_OPEN):
            reply = self._shared_call("record", kind.value, scripts)
            transition = _text(reply[0])
            if transition:
                self._breaker_moved(SHARED_TAG, transition, "shared")

    def _breaker_moved(self, member: str, transition: str, scope: str) -> None:
        metrics.BREAKER_TRANSITIONS.labels(scope, transition).inc()
        log = logger.warning if transition in ("opened", "reopened") else logger.info
        log("circuit breaker %s %s", member if scope == "seller" else SHARED_NAME, transition,
            extra={"breaker": member, "transition": transition})
        if transition == "closed":
            self.client.zrem(self.keys.open_breakers(), member)
        elif transition == "opened":
            self.client.zadd(self.keys.open_breakers(), {member: time.time()})

    # ------------------------------------------------------------------ staff and beat

    def breaker_key(self, name: str) -> str:
        return self.keys.shared_breaker() if name == SHARED_TAG else self.keys.breaker(name)

    def breaker_op(self, name: str, op: str) -> tuple[str, BreakerSnapshot]:
        reply = self.scripts.breaker(self.client, [self.breaker_key(name)], [op, "n"])
        return _text(reply[0]), BreakerSnapshot.from_reply(name, reply[2:8])

    def reset_breaker(self, name: str) -> None:
        _check_seller(name)
        self.breaker_op(name, "reset")
        self.client.zrem(self.keys.open_breakers(), name)
        if name == SHARED_TAG:
            self._shared_seen = None
        logger.info("circuit breaker %s reset by staff", name)

    def reset_bucket(self, seller_id: str) -> None:
        _check_seller(seller_id)
        self.client.delete(self.keys.bucket(seller_id))
        self.client.zrem(self.keys.throttled(), seller_id)
        _forget_factor(seller_id)
        logger.info("rate-limit bucket of seller %s reset by staff", seller_id)

    def maintain(self) -> MaintenanceReport:
        """Beat: move breakers whose open period passed to HALF_OPEN, drop closed ones from the
        index, report the stuck, refresh the factor gauges of throttled sellers."""
        report = MaintenanceReport()
        now = time.time()
        members = {_text(m) for m in self.client.zrange(self.keys.open_breakers(), 0, -1)} | {SHARED_TAG}
        for name in sorted(members):
            transition, snap = self.breaker_op(name, "tick")
            if transition == "half_opened":
                report.half_opened.append(name)
                metrics.BREAKER_TRANSITIONS.labels("shared" if name == SHARED_TAG else "seller", transition).inc()
            if snap.state is BreakerState.CLOSED:
                self.client.zrem(self.keys.open_breakers(), name)
                continue
            report.not_closed.append(snap)
            if snap.stuck(self.breakers, now):
                report.stuck.append(snap)
                logger.error("circuit breaker %s stuck %s for %.0f s", name, snap.state.label, now - snap.since,
                             extra={"breaker": name, "state": snap.state.label})
        metrics.BREAKERS_NOT_CLOSED.set(len(report.not_closed))
        metrics.BREAKERS_STUCK.set(len(report.stuck))
        self.client.zremrangebyscore(self.keys.limited(), "-inf", now - EVENT_INDEX_HOURS * 3600
                                     - EVENT_INDEX_REFRESH_SECONDS)

        from .selectors import seller_status

        for seller in (_text(m) for m in self.client.zrange(self.keys.throttled(), 0, -1)):
            factor = seller_status(seller, guard=self).factor
            if factor >= 1.0:
                self.client.zrem(self.keys.throttled(), seller)
                _forget_factor(seller)
            else:
                report.throttled[seller] = factor
                metrics.ADAPTIVE_FACTOR.labels(seller).set(factor)
        metrics.THROTTLED_SELLERS.set(len(report.throttled))
        return report


def _forget_factor(seller_id: str) -> None:
    try:
        metrics.ADAPTIVE_FACTOR.remove(seller_id)
    except KeyError:
        pass


def _check_seller(seller_id: str) -> None:
    if not isinstance(seller_id, str) or not seller_id or len(seller_id) > 200:
        raise ValueError(f"seller_id must be a non-empty string, not {seller_id!r}")


# ---------------------------------------------------------------------- module-level services


def _guard(guard: RedisGuard | None) -> RedisGuard:
    if guard is not None:
        return guard
    from . import get_default_guard

    return get_default_guard()


def reset_breaker(name: str, *, guard: RedisGuard | None = None) -> None:
    """Close a seller's breaker (``name`` = seller id) or the shared one (``SHARED_TAG``)."""
    _guard(guard).reset_breaker(name)


def reset_bucket(seller_id: str, *, guard: RedisGuard | None = None) -> None:
    """Refill the seller's buckets and restore the nominal factor (after a plan change, say)."""
    _guard(guard).reset_bucket(seller_id)


def maintain_breakers(*, guard: RedisGuard | None = None) -> MaintenanceReport:
    return _guard(guard).maintain()
