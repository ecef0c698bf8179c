"""Redis killed and restarted under the guard: nothing goes out unmetered, work resumes by
itself. Runs against a redis-server of its own (the shared one must never be killed)."""
from __future__ import annotations

import time

import pytest

from ratelimit.exceptions import LimiterUnavailable, RateLimitWait
from ratelimit.guard import Outcome, Priority
from ratelimit.services import limiter_client
from tests.ratelimit.redis_servers import REDIS_SERVER, RedisProcess

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server binary not installed")


@pytest.fixture
def own_redis():
    server = RedisProcess().start()
    yield server
    server.close()


def test_redis_killed_mid_run_fails_safe_and_resumes(make_guard, own_redis):
    guard = make_guard(client=limiter_client(f"redis://127.0.0.1:{own_redis.port}/0"), capacity=5,
                       window_seconds=1.0)
    sent = 0  # requests the guard let through

    def attempt() -> str:
        nonlocal sent
        try:
            guard.acquire(seller_id="s", priority=Priority.HIGH, max_wait=0.3)
        except LimiterUnavailable as exc:
            assert exc.retry_after > 0
            return "unavailable"
        except RateLimitWait:
            return "wait"
        sent += 1
        guard.record(seller_id="s", outcome=Outcome.OK)
        return "sent"

    assert [attempt() for _ in range(3)] == ["sent"] * 3
    own_redis.kill()
    started = time.monotonic()
    outcomes = [attempt() for _ in range(5)]
    assert outcomes == ["unavailable"] * 5 and sent == 3
    assert time.monotonic() - started < 5  # fails fast: a worker learns at once and re-schedules
    guard.record(seller_id="s", outcome=Outcome.SERVER_ERROR)  # a report lost, not an exception

    own_redis.start()  # same port, empty: the script cache is gone too (NOSCRIPT → EVAL)
    restarted = time.monotonic()
    results = [attempt() for _ in range(10)]
    assert results[0] == "sent"  # no reconnect step, no new guard: the same object carries on
    assert "unavailable" not in results
    # the restarted Redis starts from a full bucket and meters again from there
    assert results.count("sent") <= 5 + 5 * (time.monotonic() - restarted) + 1
    assert guard.client.script_exists(guard.scripts.acquire.sha) == [True]
