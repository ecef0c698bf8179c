"""The two kill switches (brxsync.features) as the limiter honours them, on the real Redis.

Each test runs the same sequence with the flag on and off: the "on" half is what the flag
changes, so a guard that ignored the flag would fail the "off" half.
"""
from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from ratelimit.breakers import BreakerConfig, BreakerState
from ratelimit.exceptions import CircuitOpen
from ratelimit.guard import Bucket, Outcome, Priority
from ratelimit.selectors import seller_status, shared_breaker_status

BREAKERS = BreakerConfig(failure_threshold=3, open_seconds=60.0)


def flags(settings, **values: bool) -> None:
    settings.FEATURE_FLAGS = {**settings.FEATURE_FLAGS, **values}


def count_429s() -> float:
    return REGISTRY.get_sample_value("ratelimit_429_total", {"bucket": "global"}) or 0.0


@pytest.mark.parametrize("adaptive", [True, False])
def test_adaptive_off_keeps_the_nominal_budget_and_still_counts_429s(make_guard, settings, adaptive):
    flags(settings, adaptive_rate_limiting=adaptive)
    guard = make_guard(capacity=10, window_seconds=1.0, cut=0.5, recovery_per_second=0.0, cut_cooldown_seconds=0.0)
    before = count_429s()
    for _ in range(2):
        guard.record(seller_id="s", outcome=Outcome.RATE_LIMITED)
    status = seller_status("s", guard=guard)
    assert status.rate_limited_last_hour == 2 and count_429s() == before + 2  # counted either way
    if adaptive:
        assert status.factor == 0.25 and status.tokens < 0.05  # cut twice and drained
        assert not guard.decide(seller_id="s", priority=Priority.HIGH).granted
    else:
        assert status.factor == 1.0 and status.tokens == 10.0  # nominal, nothing drained
        assert [guard.decide(seller_id="s", priority=Priority.HIGH).granted for _ in range(11)] == [True] * 10 + [False]


def test_turning_adaptive_off_restores_a_cut_seller_to_nominal(make_guard, settings):
    guard = make_guard(capacity=10, window_seconds=1.0, cut=0.5, recovery_per_second=0.0)
    guard.record(seller_id="s", outcome=Outcome.RATE_LIMITED)
    assert seller_status("s", guard=guard).factor == 0.5
    flags(settings, adaptive_rate_limiting=False)
    assert seller_status("s", guard=guard).factor == 1.0
    time.sleep(0.12)  # the drained bucket refills at the nominal 10/s (1.2 tokens), not 5/s (0.6)
    decision = guard.decide(seller_id="s", priority=Priority.HIGH)
    assert decision.factor == 1.0 and decision.granted
    flags(settings, adaptive_rate_limiting=True)  # the cut does not come back: the grant's save dropped it
    assert seller_status("s", guard=guard).factor == 1.0


def test_adaptive_off_a_jobs_429_does_not_drain_the_jobs_bucket(make_guard, settings):
    flags(settings, adaptive_rate_limiting=False)
    guard = make_guard(capacity=10, window_seconds=1.0)
    guard.record(seller_id="s", outcome=Outcome.RATE_LIMITED, bucket=Bucket.JOBS)
    assert guard.decide(seller_id="s", bucket=Bucket.JOBS).granted


@pytest.mark.parametrize("enabled", [True, False])
def test_breakers_off_never_open_but_count_failures(make_guard, settings, enabled):
    flags(settings, circuit_breaker=enabled)
    guard = make_guard(breakers=BREAKERS)
    for _ in range(4):
        guard.record(seller_id="s", outcome=Outcome.AUTH_ERROR)
    for _ in range(4):
        guard.record(seller_id="other", outcome=Outcome.TIMEOUT)
    seller, shared = seller_status("s", guard=guard).breaker, shared_breaker_status(guard=guard)
    if enabled:
        assert seller.state is BreakerState.OPEN and shared.state is BreakerState.OPEN
        with pytest.raises(CircuitOpen):
            guard.decide(seller_id="s")
        with pytest.raises(CircuitOpen):
            guard.decide(seller_id="third")
    else:
        assert (seller.state, seller.failures) == (BreakerState.CLOSED, 4)
        assert (shared.state, shared.failures) == (BreakerState.CLOSED, 4)
        assert guard.decide(seller_id="s").granted and guard.decide(seller_id="third").granted


def test_breakers_off_an_open_breaker_does_not_block_until_the_flag_is_back(make_guard, settings):
    guard = make_guard(breakers=BREAKERS)
    for _ in range(3):
        guard.record(seller_id="s", outcome=Outcome.SERVER_ERROR)  # opens the seller's and the shared one
    assert seller_status("s", guard=guard).breaker.state is BreakerState.OPEN
    assert shared_breaker_status(guard=guard).state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        guard.decide(seller_id="s")

    flags(settings, circuit_breaker=False)
    assert all(guard.decide(seller_id="s").granted for _ in range(3))
    guard.record(seller_id="s", outcome=Outcome.SERVER_ERROR)  # a late failure is counted, nothing moves
    assert seller_status("s", guard=guard).breaker.state is BreakerState.OPEN

    flags(settings, circuit_breaker=True)
    with pytest.raises(CircuitOpen):
        guard.decide(seller_id="s")
