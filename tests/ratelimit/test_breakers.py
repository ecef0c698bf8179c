"""Every breaker transition, table-driven, on the real Redis; storms that must open exactly the
right breaker; the half-open probe limit."""
from __future__ import annotations

import time

import pytest

from ratelimit.breakers import BreakerConfig, BreakerState
from ratelimit.buckets import SHARED_TAG
from ratelimit.exceptions import CircuitOpen
from ratelimit.guard import Outcome
from ratelimit.selectors import breakers_not_closed, seller_status, shared_breaker_status

OPEN_S = 0.2
CONFIG = BreakerConfig(failure_threshold=5, open_seconds=OPEN_S, success_threshold=2, max_probes=2,
                       probe_window_seconds=0.5, failure_window_seconds=5.0, stuck_after_seconds=0.5)
C, O, H = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN  # noqa: E741 (the table reads as C/O/H)


def seller_state(guard, seller="s") -> BreakerState:
    return seller_status(seller, guard=guard).breaker.state


def shared_state(guard) -> BreakerState:
    return shared_breaker_status(guard=guard).state


def record(guard, outcome, n=1, seller="s"):
    for _ in range(n):
        guard.record(seller_id=seller, outcome=outcome)


# Ways to put the seller's breaker in a starting state.
def closed(guard):
    pass


def closed_with_4_failures(guard):
    record(guard, Outcome.AUTH_ERROR, 4)


def open_(guard):
    record(guard, Outcome.AUTH_ERROR, 5)


def half_open(guard):
    open_(guard)
    time.sleep(OPEN_S)
    guard.decide(seller_id="s")  # the first request after the open period is a probe


def half_open_with_a_success(guard):
    half_open(guard)
    record(guard, Outcome.OK)


# (start, event, seller breaker after, shared breaker after)
TRANSITIONS = [
    (closed, lambda g: record(g, Outcome.AUTH_ERROR, 4), C, C),
    (closed_with_4_failures, lambda g: record(g, Outcome.AUTH_ERROR), O, C),
    (closed_with_4_failures, lambda g: record(g, Outcome.SERVER_ERROR), O, C),
    (closed_with_4_failures, lambda g: record(g, Outcome.OK), C, C),  # a success resets the count
    (closed_with_4_failures, lambda g: (record(g, Outcome.OK), record(g, Outcome.AUTH_ERROR)), C, C),
    (closed_with_4_failures, lambda g: record(g, Outcome.CLIENT_ERROR, 10), C, C),
    (closed_with_4_failures, lambda g: record(g, Outcome.RATE_LIMITED), C, C),
    (closed_with_4_failures, lambda g: record(g, Outcome.TIMEOUT), C, C),  # timeouts: shared only
    (closed, lambda g: record(g, Outcome.TIMEOUT, 5), C, O),
    (closed, lambda g: record(g, Outcome.SERVER_ERROR, 5), O, O),
    (closed, lambda g: record(g, Outcome.RATE_LIMITED, 10), C, C),
    (open_, lambda g: record(g, Outcome.AUTH_ERROR, 3), O, C),  # late failures don't extend it
    (open_, lambda g: time.sleep(OPEN_S), H, C),
    (half_open, lambda g: record(g, Outcome.OK), H, C),
    (half_open_with_a_success, lambda g: record(g, Outcome.OK), C, C),
    (half_open_with_a_success, lambda g: record(g, Outcome.CLIENT_ERROR), C, C),
    (half_open, lambda g: record(g, Outcome.AUTH_ERROR), O, C),
    (half_open_with_a_success, lambda g: record(g, Outcome.SERVER_ERROR), O, C),
    (half_open, lambda g: record(g, Outcome.RATE_LIMITED), H, C),
]


@pytest.mark.parametrize(("start", "event", "seller_after", "shared_after"), TRANSITIONS,
                         ids=[f"{i}-{t[0].__name__}" for i, t in enumerate(TRANSITIONS)])
def test_transition(make_guard, start, event, seller_after, shared_after):
    guard = make_guard(capacity=100, breakers=CONFIG)
    start(guard)
    event(guard)
    assert seller_state(guard) is seller_after
    assert shared_state(guard) is shared_after


def test_open_breaker_refuses_with_retry_after_then_lets_a_probe_through(make_guard):
    guard = make_guard(capacity=100, breakers=CONFIG)
    open_(guard)
    with pytest.raises(CircuitOpen) as info:
        guard.acquire(seller_id="s")
    assert info.value.name == "seller:s" and 0.1 < info.value.retry_after <= OPEN_S
    time.sleep(info.value.retry_after)
    guard.acquire(seller_id="s")  # a probe
    assert seller_state(guard) is H


def test_half_open_lets_only_max_probes_through_and_frees_leaked_slots(make_guard):
    guard = make_guard(capacity=100, breakers=CONFIG)
    open_(guard)
    time.sleep(OPEN_S)
    guard.acquire(seller_id="s")
    guard.acquire(seller_id="s")
    with pytest.raises(CircuitOpen):
        guard.acquire(seller_id="s")
    record(guard, Outcome.OK)  # one probe reports back: its slot frees
    guard.acquire(seller_id="s")
    with pytest.raises(CircuitOpen) as info:
        guard.acquire(seller_id="s")
    # probes that never report back (a killed worker) free their slots after the probe window
    time.sleep(info.value.retry_after)
    guard.acquire(seller_id="s")


def test_reopening_keeps_the_time_it_first_opened(make_guard):
    guard = make_guard(capacity=100, breakers=CONFIG)
    open_(guard)
    first = seller_status("s", guard=guard).breaker
    time.sleep(OPEN_S)
    guard.acquire(seller_id="s")
    record(guard, Outcome.AUTH_ERROR)
    again = seller_status("s", guard=guard).breaker
    assert again.state is O and again.opened_at > first.opened_at and again.since == first.since


def test_failures_older_than_the_window_are_forgotten(make_guard):
    guard = make_guard(capacity=100, breakers=BreakerConfig(failure_window_seconds=0.2))
    record(guard, Outcome.AUTH_ERROR, 4)
    time.sleep(0.25)
    record(guard, Outcome.AUTH_ERROR)
    status = seller_status("s", guard=guard).breaker
    assert status.state is C and status.failures == 1


def test_401_storm_from_one_seller_opens_only_that_sellers_breaker(make_guard):
    guard = make_guard(capacity=100, breakers=CONFIG)
    record(guard, Outcome.AUTH_ERROR, 20, seller="bad")
    assert seller_state(guard, "bad") is O and shared_state(guard) is C
    with pytest.raises(CircuitOpen):
        guard.acquire(seller_id="bad")
    for _ in range(10):
        guard.acquire(seller_id="good")
        guard.record(seller_id="good", outcome=Outcome.OK)
    assert seller_state(guard, "good") is C


def test_5xx_storm_across_sellers_opens_the_shared_breaker_for_everyone(make_guard):
    guard = make_guard(capacity=100, breakers=CONFIG)
    for i in range(5):
        guard.acquire(seller_id=f"s{i}")
        guard.record(seller_id=f"s{i}", outcome=Outcome.SERVER_ERROR)
    assert shared_state(guard) is O
    assert all(seller_state(guard, f"s{i}") is C for i in range(5))  # one failure each
    with pytest.raises(CircuitOpen) as info:
        guard.acquire(seller_id="bystander")
    assert info.value.name == "cardtrader"
    assert seller_status("bystander", guard=guard).tokens == 100  # refused before taking tokens
    # CardTrader recovers: probes go through, two successes close it
    time.sleep(OPEN_S)
    guard.acquire(seller_id="s0")
    guard.record(seller_id="s0", outcome=Outcome.OK)
    guard.acquire(seller_id="s1")
    guard.record(seller_id="s1", outcome=Outcome.OK)
    assert shared_state(guard) is C
    guard.acquire(seller_id="bystander")


def test_shared_probe_is_released_when_the_seller_cannot_go(make_guard):
    guard = make_guard(capacity=2, window_seconds=100.0, breakers=CONFIG)
    guard.acquire(seller_id="empty", cost=2)
    record(guard, Outcome.TIMEOUT, 5, seller="x")
    time.sleep(OPEN_S)
    for _ in range(3):  # each attempt takes a shared probe slot, is refused tokens, gives it back
        assert not guard.decide(seller_id="empty").granted
    guard.acquire(seller_id="a")
    guard.acquire(seller_id="b")
    with pytest.raises(CircuitOpen) as info:
        guard.acquire(seller_id="c")
    assert info.value.name == "cardtrader"


def test_beat_moves_expired_open_breakers_to_half_open_and_reports_stuck_ones(make_guard, redis_client):
    guard = make_guard(capacity=100, breakers=CONFIG)
    open_(guard)
    record(guard, Outcome.TIMEOUT, 5, seller="other")
    assert {s.name for s in breakers_not_closed(guard=guard)} == {"s", SHARED_TAG}
    report = guard.maintain()
    assert report.half_opened == [] and {s.name for s in report.not_closed} == {"s", SHARED_TAG}
    time.sleep(OPEN_S)
    report = guard.maintain()
    assert sorted(report.half_opened) == sorted(["s", SHARED_TAG])
    assert report.stuck == []
    time.sleep(CONFIG.stuck_after_seconds)
    report = guard.maintain()
    assert {s.name for s in report.stuck} == {"s", SHARED_TAG}
    # probes succeed: closed breakers leave the index
    guard.acquire(seller_id="s")
    guard.record(seller_id="s", outcome=Outcome.OK)
    guard.acquire(seller_id="s")
    guard.record(seller_id="s", outcome=Outcome.OK)
    report = guard.maintain()
    assert report.stuck == [] and report.not_closed == []
    assert redis_client.zcard(guard.keys.open_breakers()) == 0


def test_reset_breaker_closes_it(make_guard):
    guard = make_guard(capacity=100, breakers=CONFIG)
    open_(guard)
    record(guard, Outcome.TIMEOUT, 5)
    guard.reset_breaker("s")
    guard.reset_breaker(SHARED_TAG)
    guard.acquire(seller_id="s")
    assert seller_state(guard) is C and shared_state(guard) is C
