"""Rate-limit waits (decisions refused for lack of tokens) counted per seller per minute like
429s, in the status selector, the dashboard selector and the admin dashboard card."""
from __future__ import annotations

import time

import pytest
from django.urls import reverse

import ratelimit
from ratelimit.exceptions import RateLimitWait
from ratelimit.guard import Bucket, Outcome, Priority
from ratelimit.selectors import limited_last_hour, seller_status
from syncops.selectors import dashboard


def wait_n(guard, seller: str, n: int) -> None:
    """Empty the seller's bucket, then make ``n`` refused decisions (decide and acquire alike)."""
    while guard.decide(seller_id=seller, priority=Priority.HIGH).granted:
        pass
    waited = 1  # the decision that found the bucket empty
    while waited < n:
        with pytest.raises(RateLimitWait):
            guard.acquire(seller_id=seller, priority=Priority.HIGH, max_wait=0.0)
        waited += 1


def test_waits_are_counted_per_seller_and_grants_are_not(make_guard, redis_client):
    guard = make_guard(capacity=10, window_seconds=100.0)  # 0.1 token/s: nothing refills meanwhile
    assert [guard.decide(seller_id="calm").granted for _ in range(5)] == [True] * 5
    wait_n(guard, "busy", 4)
    guard.decide(seller_id="jobs", bucket=Bucket.JOBS)
    assert not guard.decide(seller_id="jobs", bucket=Bucket.JOBS).granted  # jobs bucket: 1/s
    assert seller_status("busy", guard=guard).waits_last_hour == 4
    assert seller_status("jobs", guard=guard).waits_last_hour == 1
    assert seller_status("calm", guard=guard).waits_last_hour == 0
    assert redis_client.exists(guard.keys.waits("calm")) == 0
    # the counts expire with their hour: set at the first wait of a minute to that minute + 61 min
    assert 60 * 60_000 <= redis_client.pttl(guard.keys.waits("busy")) <= 61 * 60_000


def test_an_in_process_sleep_counts_as_a_wait(make_guard):
    guard = make_guard(capacity=2, window_seconds=0.2)  # 10 tokens/s
    for _ in range(2):
        guard.acquire(seller_id="s", priority=Priority.HIGH)
    guard.acquire(seller_id="s", priority=Priority.HIGH, max_wait=1.0)  # sleeps ~0.1 s, then granted
    assert seller_status("s", guard=guard).waits_last_hour == 1


def test_dashboard_selector_sums_waits_and_429s_over_limited_sellers(make_guard):
    guard = make_guard(capacity=5, window_seconds=100.0, cut=0.5, recovery_per_second=0.0)
    wait_n(guard, "a", 3)
    wait_n(guard, "b", 2)
    guard.record(seller_id="c", outcome=Outcome.RATE_LIMITED)
    totals = limited_last_hour(guard=guard)
    assert (totals.waits, totals.rate_limited, totals.throttled_sellers, totals.sellers) == (5, 1, 1, 3)
    assert limited_last_hour(most=1, guard=guard).sellers == 1
    # beat keeps sellers of the last hour in the index and drops older ones
    guard.maintain()
    assert limited_last_hour(guard=guard).waits == 5
    guard.client.zadd(guard.keys.limited(), {"a": time.time() - 2 * 3600})
    guard.maintain()
    assert limited_last_hour(guard=guard).waits == 2


@pytest.mark.django_db
def test_admin_dashboard_card_shows_waits_next_to_429s(make_guard, monkeypatch, admin_client):
    guard = make_guard(capacity=5, window_seconds=100.0)
    monkeypatch.setattr(ratelimit, "_default", guard)
    wait_n(guard, "a", 7)
    guard.record(seller_id="a", outcome=Outcome.RATE_LIMITED)
    limits = dashboard.rate_limits()
    assert limits["waits_last_hour"] == 7 and limits["rate_limited_last_hour"] == 1
    body = admin_client.get(reverse("admin:index")).content.decode()
    assert '<span data-dash="rate_limits.waits_last_hour">7</span> rate-limit waits' in body
    assert '<span data-dash="rate_limits.rate_limited_last_hour">1</span> × 429' in body
