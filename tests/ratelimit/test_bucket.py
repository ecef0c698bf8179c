"""The token bucket with controlled timings: refill, cost N, exact waits, expiry, the jobs
bucket, the reserved share, and what acquire() does with a wait."""
from __future__ import annotations

import time

import pytest

from ratelimit.exceptions import RateLimitWait
from ratelimit.guard import Bucket, Priority
from ratelimit.selectors import seller_status


def drain(guard, seller="s", priority=Priority.HIGH) -> int:
    granted = 0
    while guard.decide(seller_id=seller, priority=priority).granted:
        granted += 1
    return granted


def test_fresh_bucket_grants_capacity_then_the_exact_wait(make_guard):
    guard = make_guard(capacity=10, window_seconds=1.0)  # 10 tokens/s
    assert drain(guard) == 10
    denied = guard.decide(seller_id="s", priority=Priority.HIGH)
    assert not denied.granted
    assert 0.0 < denied.wait_seconds <= 0.1  # one token at 10/s, minus what refilled meanwhile
    time.sleep(denied.wait_seconds * 0.5)
    assert not guard.decide(seller_id="s", priority=Priority.HIGH).granted
    again = guard.decide(seller_id="s", priority=Priority.HIGH)
    time.sleep(again.wait_seconds)
    assert guard.decide(seller_id="s", priority=Priority.HIGH).granted


def test_cost_n_takes_n_tokens_and_waits_for_all_of_them(make_guard):
    guard = make_guard(capacity=10, window_seconds=1.0)
    first = guard.decide(seller_id="s", cost=7, priority=Priority.HIGH)
    assert first.granted and first.tokens_left == pytest.approx(3.0, abs=0.05)
    second = guard.decide(seller_id="s", cost=6, priority=Priority.HIGH)
    assert not second.granted
    # 3 tokens left (+ whatever refilled in between) → 3 more at 10/s ≈ 0.3 s
    assert 0.25 <= second.wait_seconds <= 0.3
    time.sleep(second.wait_seconds)
    assert guard.decide(seller_id="s", cost=6, priority=Priority.HIGH).granted


def test_refill_is_continuous_and_never_above_capacity(make_guard):
    guard = make_guard(capacity=10, window_seconds=1.0)
    drain(guard)
    time.sleep(0.5)
    assert seller_status("s", guard=guard).tokens == pytest.approx(5.0, abs=0.6)
    time.sleep(0.8)
    assert seller_status("s", guard=guard).tokens == 10.0


def test_state_expires_when_indistinguishable_from_a_fresh_bucket(make_guard, redis_client):
    guard = make_guard(capacity=10, window_seconds=1.0)
    for _ in range(4):
        assert guard.decide(seller_id="s").granted
    pttl = redis_client.pttl(guard.keys.bucket("s"))
    assert 1300 <= pttl <= 1401  # 4 tokens at 10/s = 400 ms to full, + 1 s margin
    time.sleep(pttl / 1000 + 0.05)
    assert redis_client.exists(guard.keys.bucket("s")) == 0
    assert seller_status("s", guard=guard).tokens == 10.0


def test_sellers_have_separate_buckets_in_their_own_slot(make_guard):
    guard = make_guard(capacity=5, window_seconds=10.0)
    assert drain(guard, "a") == 5
    assert drain(guard, "b") == 5
    assert guard.keys.bucket("a").count("{a}") == 1 and guard.keys.breaker("a").count("{a}") == 1


def test_jobs_bucket_grants_one_per_second_and_also_costs_a_global_token(make_guard):
    guard = make_guard(capacity=100, window_seconds=10.0, jobs_per_second=1.0)
    first = guard.decide(seller_id="s", bucket=Bucket.JOBS)
    assert first.granted and first.tokens_left == pytest.approx(99.0, abs=0.05)
    second = guard.decide(seller_id="s", bucket=Bucket.JOBS)
    assert not second.granted and 0.95 <= second.wait_seconds <= 1.0
    # the global bucket is untouched by the refusal and still serves other endpoints
    assert guard.decide(seller_id="s").granted
    started = time.monotonic()
    guard.acquire(seller_id="s", bucket=Bucket.JOBS, max_wait=1.5)
    assert 0.9 <= time.monotonic() - started <= 1.2
    with pytest.raises(RateLimitWait) as info:
        guard.acquire(seller_id="s", bucket=Bucket.JOBS)
    assert info.value.bucket == "jobs" and 0.95 <= info.value.wait_seconds <= 1.0


def test_reserved_share_is_left_for_high_priority(make_guard):
    guard = make_guard(capacity=10, window_seconds=10.0, reserved_share=0.3)
    assert drain(guard, priority=Priority.NORMAL) == 7
    normal = guard.decide(seller_id="s", priority=Priority.NORMAL)
    assert not normal.granted and normal.wait_seconds > 0
    assert drain(guard, priority=Priority.HIGH) == 3


def test_per_seller_reserved_share_override(make_guard):
    guard = make_guard(capacity=10, window_seconds=10.0, reserved_share=0.3)
    guard._reserved_share_for = {"vip": 0.5}.get
    assert drain(guard, "vip", priority=Priority.NORMAL) == 5
    assert drain(guard, "other", priority=Priority.NORMAL) == 7


@pytest.mark.django_db
def test_reserved_share_override_comes_from_sync_settings(seller):
    from ratelimit.selectors import reserved_share_override

    assert reserved_share_override(str(seller.pk)) is None
    seller.sync_settings.reserved_share = 0.4
    seller.sync_settings.save()
    assert reserved_share_override(str(seller.pk)) == 0.4
    assert reserved_share_override("token:abc") is None


def test_acquire_sleeps_within_max_wait_and_hands_back_longer_waits(make_guard):
    guard = make_guard(capacity=2, window_seconds=1.0)  # 2 tokens/s
    guard.acquire(seller_id="s", cost=2)
    started = time.monotonic()
    guard.acquire(seller_id="s", max_wait=1.0)  # ~0.5 s for one token: slept in-process
    assert 0.4 <= time.monotonic() - started <= 0.7
    with pytest.raises(RateLimitWait) as info:
        guard.acquire(seller_id="s", max_wait=0.1)  # needs ~0.5 s: a countdown for the task
    assert 0.4 <= info.value.wait_seconds <= 0.5
    assert info.value.seller_id == "s"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cost": 0}, "positive integer"),
        ({"cost": 1.5}, "positive integer"),
        ({"cost": 11}, "can never be granted"),
        ({"cost": 2, "bucket": Bucket.JOBS}, "can never be granted"),
        ({"seller_id": ""}, "non-empty"),
    ],
)
def test_bad_requests_are_refused_without_touching_the_bucket(make_guard, redis_client, kwargs, message):
    guard = make_guard(capacity=10, window_seconds=1.0)
    with pytest.raises(ValueError, match=message):
        guard.decide(**{"seller_id": "s", **kwargs})
    assert redis_client.exists(guard.keys.bucket("s")) == 0
