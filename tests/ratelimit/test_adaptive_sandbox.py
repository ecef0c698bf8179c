"""End to end: the adaptive factor against the CardTrader sandbox (issue 4, "Done means").

Real parts only: the service's CardTrader client, ``RedisGuard`` on the real Redis (a unique key
prefix), and the sandbox over HTTP enforcing a strict sliding window. The budget is scaled down
(20 requests per 2 s instead of 200 per 10 s, the same settings the service reads, the sandbox
configured to match) so the test takes seconds; the factor's cut and recovery are the production
defaults.

The guard runs with ``RATE_LIMIT_BURST`` = 2: a strict sliding window answers a full token bucket
(20 at once, then 10/s) with 429s for up to a window after an idle start, and the first phase
here asserts that the configured burst sends none (see docs/RATE_LIMITING.md).
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from ratelimit.buckets import BucketConfig
from ratelimit.selectors import seller_status
from ratelimit.services import RedisGuard
from syncops.cardtrader import RateLimited, client_for_token

LIMIT, WINDOW, BURST = 20, 2.0, 2
FORCED_429S = 3
RECOVERY_DEADLINE = 60.0


@pytest.fixture
def strict_small_budget(control_sandbox, settings) -> Iterator[None]:
    """The service's budget settings and the sandbox's limit, both 20 per 2 s (sliding window)."""
    before = control_sandbox.config()
    settings.RATE_LIMIT_REQUESTS = LIMIT
    settings.RATE_LIMIT_WINDOW_SECONDS = WINDOW
    settings.RATE_LIMIT_BURST = BURST
    control_sandbox.set_config(global_limit=LIMIT, global_window_seconds=WINDOW, rate_limit_algorithm="sliding",
                               count_rejected=False)
    yield
    control_sandbox.set_config(**before)
    control_sandbox.clear_faults()


@pytest.fixture
def control_sandbox(cardtrader_sandbox):
    return cardtrader_sandbox.control


def _drive(client, stop: Callable[[int], bool], seconds: float) -> int:
    """Steady demand: one request after another, as fast as the guard lets them go (it sleeps
    in-process for short waits), until ``stop(429s so far)`` or time is up. Returns the 429s."""
    limited = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop(limited):
        try:
            client.info(max_wait=5.0)
        except RateLimited:
            limited += 1
    return limited


def _ok_rate(log: list[dict], now: float) -> float:
    """Successful requests per second over the last window, from the sandbox's own log."""
    return sum(1 for e in log if e["status"] == 200 and now - WINDOW < e["time"] <= now) / WINDOW


def test_a_429_burst_cuts_the_factor_no_429_follows_and_the_rate_recovers(
        sandbox_settings, sandbox_account, control_sandbox, strict_small_budget, redis_client):
    uid = sandbox_account.user_id
    prefix = f"t-rl-adaptive-{uuid.uuid4().hex[:10]}"
    buckets = BucketConfig.from_settings(reserved_share=0.0)
    nominal = buckets.refill_per_second  # 9/s: (20 - 2) per 2 s at factor 1
    guard = RedisGuard(prefix=prefix, buckets=buckets)
    try:
        with client_for_token(sandbox_account.token, guard=guard) as client:
            seller = client.seller_id
            # 1. steady traffic from an idle start: a full window and a half, not one 429
            assert _drive(client, lambda n: False, WINDOW * 1.5) == 0
            log = control_sandbox.request_log(uid)
            assert log and all(e["status"] == 200 for e in log)
            assert _ok_rate(log, log[-1]["time"]) >= 0.9 * nominal  # and the budget is used
            assert seller_status(seller, guard=guard).factor == 1.0

            # 2. CardTrader answers the next requests with 429s
            control_sandbox.set_faults(rate_limit_burst=FORCED_429S, user_id=uid)
            burst_at = time.time()
            assert _drive(client, lambda n: n >= FORCED_429S, 10.0) == FORCED_429S
            factor_after = seller_status(seller, guard=guard).factor
            assert factor_after <= 0.75 + 0.01  # cut once (0.75) per cooldown: in-flight 429s don't compound

            # 3. steady traffic again until the rate is back above 90 % of nominal
            def recovered() -> bool:
                entries = control_sandbox.request_log(uid, since=burst_at)
                return bool(entries) and _ok_rate(entries, entries[-1]["time"]) >= 0.9 * nominal

            checks = iter(range(1_000_000))
            later_429s = _drive(client, lambda n: next(checks) % 10 == 9 and recovered(), RECOVERY_DEADLINE)
            recovered_at = time.time()
            factor_recovered = seller_status(seller, guard=guard).factor
    finally:
        for key in redis_client.scan_iter(match=f"{prefix}:*"):
            redis_client.delete(key)

    after = control_sandbox.request_log(uid, since=burst_at)
    statuses = [e["status"] for e in after]
    assert statuses[:FORCED_429S] == [429] * FORCED_429S
    assert later_429s == 0 and 429 not in statuses[FORCED_429S:]  # no new 429 after the burst
    assert recovered(), "the rate did not come back above 90 % of nominal"
    assert recovered_at - burst_at <= RECOVERY_DEADLINE
    assert factor_after < factor_recovered <= 1.0
