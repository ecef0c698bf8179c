"""The adaptive factor: cut on 429s (inside the record script), recovery over time, the floor,
the cooldown against in-flight 429s, and its metric."""
from __future__ import annotations

import time

from prometheus_client import REGISTRY

from ratelimit.guard import Bucket, Outcome, Priority
from ratelimit.selectors import seller_status


def gauge(seller: str) -> float | None:
    return REGISTRY.get_sample_value("ratelimit_adaptive_factor", {"seller": seller})


def test_each_429_cuts_the_factor_down_to_the_floor_and_drains_the_bucket(make_guard):
    guard = make_guard(capacity=10, window_seconds=1.0, cut=0.5, floor=0.2, recovery_per_second=0.0,
                       cut_cooldown_seconds=0.0)
    before = REGISTRY.get_sample_value("ratelimit_429_total", {"bucket": "global"}) or 0.0
    factors = []
    for _ in range(4):
        guard.record(seller_id="s", outcome=Outcome.RATE_LIMITED)
        factors.append(seller_status("s", guard=guard).factor)
    drained_at = time.monotonic()
    assert factors == [0.5, 0.25, 0.2, 0.2]
    status = seller_status("s", guard=guard)
    assert status.tokens < 0.05 and status.rate_limited_last_hour == 4
    assert gauge("s") == 0.2
    assert REGISTRY.get_sample_value("ratelimit_429_total", {"bucket": "global"}) == before + 4
    # the budget shrinks with the factor: 10/s * 0.2 = 2 tokens/s, so one token takes ~0.5 s
    wait = guard.decide(seller_id="s", priority=Priority.HIGH).wait_seconds
    # Less what refilled since the bucket was drained (the status above allows 0.05 tokens = 25 ms,
    # and each second that passed is a second less to wait): CI on a slow machine saw 0.4486.
    assert 0.47 - (time.monotonic() - drained_at) <= wait <= 0.5


def test_429s_already_in_flight_cut_only_once_per_cooldown(make_guard):
    guard = make_guard(capacity=10, window_seconds=1.0, cut=0.5, recovery_per_second=0.0, cut_cooldown_seconds=0.3)
    for _ in range(3):
        guard.record(seller_id="s", outcome=Outcome.RATE_LIMITED)
    status = seller_status("s", guard=guard)
    assert status.factor == 0.5 and status.rate_limited_last_hour == 3
    time.sleep(0.3)
    guard.record(seller_id="s", outcome=Outcome.RATE_LIMITED)
    assert seller_status("s", guard=guard).factor == 0.25


def test_factor_recovers_gradually_to_nominal_and_never_above(make_guard, redis_client):
    guard = make_guard(capacity=10, window_seconds=1.0, cut=0.5, recovery_per_second=1.0)
    guard.record(seller_id="s", outcome=Outcome.RATE_LIMITED)
    # Recovery runs on Redis's clock from the cut: bounded below by the time slept, above by it plus
    # however long a loaded machine takes between the calls.
    assert 0.5 <= seller_status("s", guard=guard).factor < 0.65
    time.sleep(0.25)
    assert 0.749 <= seller_status("s", guard=guard).factor < 0.9
    time.sleep(0.4)
    assert seller_status("s", guard=guard).factor == 1.0
    # the key outlives refill at the cut rate (10 tokens at 5/s) plus recovery (0.5 s) plus 1 s,
    # measured from the cut: long enough never to forget a cut, bounded so idle sellers expire
    assert 2_000 < redis_client.pttl(guard.keys.bucket("s")) <= 3_500 - 600
    for _ in range(20):
        guard.record(seller_id="s", outcome=Outcome.OK)
    assert seller_status("s", guard=guard).factor == 1.0


def test_a_jobs_429_drains_only_the_jobs_bucket(make_guard):
    guard = make_guard(capacity=10, window_seconds=1.0, cut=0.5, recovery_per_second=0.0)
    guard.record(seller_id="s", outcome=Outcome.RATE_LIMITED, bucket=Bucket.JOBS)
    status = seller_status("s", guard=guard)
    assert status.jobs_tokens < 0.01 and status.tokens == 5.0  # clipped to the halved capacity
    assert guard.decide(seller_id="s", priority=Priority.HIGH).granted
    assert not guard.decide(seller_id="s", bucket=Bucket.JOBS).granted


def test_beat_refreshes_the_factor_gauge_and_forgets_recovered_sellers(make_guard, redis_client):
    guard = make_guard(capacity=10, window_seconds=1.0, cut=0.5, recovery_per_second=2.0)
    guard.record(seller_id="s", outcome=Outcome.RATE_LIMITED)
    report = guard.maintain()
    # Cut to 0.5 and already recovering at 2/s: what is read depends on how long the machine took
    # between the two calls (0.68 seen in CI), so only "still throttled" is asserted here.
    assert 0.5 <= report.throttled["s"] < 1.0
    time.sleep(0.3)
    report = guard.maintain()
    assert "s" not in report.throttled
    assert gauge("s") is None
    assert redis_client.zcard(guard.keys.throttled()) == 0
