"""The production budget against the sandbox's strict sliding window (200 per 10 s, counted when
a request arrives): with the default RATE_LIMIT_BURST, sustained demand at the limiter's maximum
for 25 s (an idle start, then two more window edges) gets no 429, and the budget is used.

Real parts: the service's CardTrader client, ``RedisGuard.from_settings`` on the real Redis, the
sandbox over HTTP. Several threads, one client each, as several workers of one seller would.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from ratelimit.buckets import BucketConfig
from ratelimit.exceptions import RateLimitWait
from ratelimit.services import RedisGuard
from syncops.cardtrader import RateLimited, client_for_token

DURATION = 25.0
THREADS = 4


@pytest.fixture
def production_window(cardtrader_sandbox) -> Iterator[dict]:
    """The sandbox at CardTrader's documented limit, as a strict sliding window."""
    control = cardtrader_sandbox.control
    before = control.config()
    cfg = control.set_config(global_limit=200, global_window_seconds=10.0, rate_limit_algorithm="sliding",
                             count_rejected=False)
    yield cfg
    control.set_config(**before)


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_default_burst_sends_no_429_under_sustained_max_load(
        sandbox_settings, sandbox_account, production_window, cardtrader_sandbox, settings):
    assert (settings.RATE_LIMIT_REQUESTS, settings.RATE_LIMIT_WINDOW_SECONDS) == (200, 10.0)
    buckets = BucketConfig.from_settings(reserved_share=0.0)
    assert buckets.burst == settings.RATE_LIMIT_BURST == 20  # the default under test
    guard = RedisGuard.from_settings()
    limited: list[int] = []
    errors: list[BaseException] = []
    started = time.time()
    deadline = time.monotonic() + DURATION

    def drive() -> None:
        try:
            with client_for_token(sandbox_account.token, guard=guard) as client:
                while time.monotonic() < deadline:
                    try:
                        client.info(max_wait=5.0)
                    except RateLimited:
                        limited.append(1)
                    except RateLimitWait as wait:  # another thread took the token: "re-schedule"
                        time.sleep(wait.wait_seconds)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=drive) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DURATION + 30)
    assert not errors, errors
    log = cardtrader_sandbox.control.request_log(sandbox_account.user_id, since=started)
    statuses = [e["status"] for e in log]
    assert not limited and 429 not in statuses
    assert max_in_window([e["time"] for e in log], 10.0) <= 200
    # the budget is used: the burst plus the refill over the run, give or take the last wait
    elapsed = max(e["time"] for e in log) - min(e["time"] for e in log)
    assert len(log) >= 0.95 * (buckets.bucket_size + buckets.refill_per_second * elapsed)
