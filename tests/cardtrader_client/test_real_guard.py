"""The seam with the real limiter plugged in: ``RedisGuard`` on the real Redis (a unique key
prefix per test) in front of the sandbox. Proves the client honours what the guard decides:
what the guard refuses never reaches CardTrader."""
from __future__ import annotations

import pytest
from django.conf import settings

from ratelimit.exceptions import CircuitOpen, RateLimitWait
from ratelimit.services import RedisGuard
from syncops.cardtrader import ServerError, client_for_token


@pytest.fixture
def redis_guard(redis_client, unique_prefix):
    guard = RedisGuard(prefix=unique_prefix)
    yield guard
    for key in redis_client.scan_iter(match=f"{unique_prefix}:*"):
        redis_client.delete(key)


def _jobs_requests(control, user_id):
    return [e for e in control.request_log(user_id) if "/jobs/" in e["path"]]


def test_the_jobs_bucket_stops_the_second_poll_before_cardtrader_sees_it(
        sandbox_settings, sandbox_account, control, redis_guard):
    with client_for_token(sandbox_account.token, guard=redis_guard) as client:
        bp = client.blueprints_export(1)[0].id
        uuid = client.bulk_create([{"blueprint_id": bp, "price_cents": 100, "quantity": 1}])
        client.get_job(uuid)
        with pytest.raises(RateLimitWait) as err:
            client.get_job(uuid)
    assert 0 < err.value.wait_seconds <= 1.0 / settings.RATE_LIMIT_JOBS_PER_SECOND and err.value.bucket == "jobs"
    assert len(_jobs_requests(control, sandbox_account.user_id)) == 1  # no 429 earned from CardTrader


def test_server_errors_open_the_breaker_and_then_nothing_is_sent(
        sandbox_settings, sandbox_account, control, redis_guard):
    control.set_faults(error_5xx_rate=1.0, user_id=sandbox_account.user_id)
    failures = 0
    try:
        with client_for_token(sandbox_account.token, guard=redis_guard) as client:
            with pytest.raises(CircuitOpen):
                for _ in range(50):
                    try:
                        client.info()
                    except ServerError:
                        failures += 1
    finally:
        control.clear_faults(user_id=sandbox_account.user_id)
    assert 1 <= failures < 50
    assert len(control.request_log(sandbox_account.user_id)) == failures
