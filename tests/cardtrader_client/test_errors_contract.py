"""Contract tests: each error kind from the sandbox's fault switches, and the guard outcome
each one is recorded as (the seam)."""
from __future__ import annotations

import time

import pytest

from ratelimit.exceptions import CircuitOpen, LimiterUnavailable, RateLimitWait
from ratelimit.guard import Bucket, Outcome, Priority
from syncops.cardtrader import (
    AuthError,
    NotFound,
    RateLimited,
    ServerError,
    Timeout,
    ValidationError,
    client_for_token,
)

from .conftest import RecordingGuard


def _blueprint(client):
    return client.blueprints_export(1)[0].id


def test_acquire_happens_before_every_request_and_record_after(client, guard, control, sandbox_account):
    client.info()
    client.games()
    with pytest.raises(NotFound):
        client.delete_product(1)
    kinds = [e[0] for e in guard.events]
    assert kinds == ["acquire", "record"] * 3
    # at each acquire the sandbox had logged exactly the requests before it: nothing sent yet
    assert [e[6] for e in guard.events if e[0] == "acquire"] == [0, 1, 2]
    assert len(control.request_log(sandbox_account.user_id)) == 3
    assert {e[1] for e in guard.events} == {client.seller_id}


def test_priority_and_max_wait_pass_through_the_seam(client, guard):
    client.info(priority=Priority.HIGH, max_wait=2.5)
    acquire = guard.events[0]
    assert acquire[4] == Priority.HIGH and acquire[5] == 2.5 and acquire[3] == 1


@pytest.mark.parametrize("exc", [RateLimitWait(3.0), CircuitOpen("seller", 60.0), LimiterUnavailable()])
def test_a_refused_acquire_sends_nothing(client, guard, control, sandbox_account, exc):
    guard.raise_on_acquire = exc
    with pytest.raises(type(exc)):
        client.info()
    with pytest.raises(type(exc)):
        list(client.export_products())
    assert control.request_log(sandbox_account.user_id) == []
    assert [e[0] for e in guard.events] == ["acquire", "acquire"]  # no record: nothing happened


def test_outcome_ok_and_not_found(client, guard):
    client.info()
    with pytest.raises(NotFound) as err:
        client.update_product(123, {"quantity": 1})
    assert err.value.status == 404 and err.value.request_id
    assert guard.outcomes == [Outcome.OK, Outcome.CLIENT_ERROR]


def test_validation_error_outcome(client, guard):
    with pytest.raises(ValidationError) as err:
        client.create_product({"blueprint_id": _blueprint(client), "price_cents": 100, "quantity": 1,
                               "properties": {"condition": "Plaied"}}, strict=True)
    assert err.value.field_errors
    assert err.value.outcome == Outcome.CLIENT_ERROR
    assert guard.outcomes[-1] == Outcome.CLIENT_ERROR


def test_auth_error_outcome(sandbox_settings, cardtrader_sandbox):
    guard = RecordingGuard()
    with client_for_token("revoked", guard=guard) as bad, pytest.raises(AuthError):
        bad.games()
    assert guard.outcomes == [Outcome.AUTH_ERROR]


def test_server_error_5xx(client, guard, control, sandbox_account):
    control.set_faults(error_5xx_rate=1.0, user_id=sandbox_account.user_id)
    with pytest.raises(ServerError) as err:
        client.info()
    assert err.value.status >= 500 and not err.value.outcome_unknown  # a GET
    with pytest.raises(ServerError) as err:
        client.update_product(1, {"quantity": 1})
    assert err.value.outcome_unknown  # a write that may have been applied
    assert guard.outcomes == [Outcome.SERVER_ERROR, Outcome.SERVER_ERROR]


def test_html_error_page_is_never_put_whole_into_the_message(client, guard, control, sandbox_account):
    control.set_faults(html_error_rate=1.0, user_id=sandbox_account.user_id)
    with pytest.raises(ServerError) as err:  # the sandbox's proxy page is a 502
        client.info()
    message = str(err.value)
    assert "<" not in message and len(message) < 400
    assert "HTML page" in message and err.value.status == 502
    assert guard.outcomes == [Outcome.SERVER_ERROR]


def test_html_error_page_during_the_export(client, control, sandbox_account):
    control.seed_products(sandbox_account.user_id, 10)
    control.set_faults(html_error_rate=1.0, user_id=sandbox_account.user_id)
    with pytest.raises(ServerError):
        list(client.export_products())


def test_rate_limited_with_the_documented_default_and_no_retry(client, guard, control, sandbox_account):
    control.set_faults(rate_limit_burst=2, user_id=sandbox_account.user_id)
    with pytest.raises(RateLimited) as err:
        client.info()
    assert err.value.status == 429
    assert err.value.scope == "global" and err.value.retry_after == 10.0
    assert "200 requests per 10 seconds" in err.value.message
    assert len(control.request_log(sandbox_account.user_id)) == 1  # raised, not retried
    assert guard.outcomes == [Outcome.RATE_LIMITED]


def test_rate_limited_reads_retry_after_when_sent(client, control, sandbox_account):
    control.set_config(retry_after_header=True)
    try:
        control.set_faults(rate_limit_burst=1, user_id=sandbox_account.user_id)
        with pytest.raises(RateLimited) as err:
            client.info()
    finally:
        control.set_config(retry_after_header=False)
    assert 0 < err.value.retry_after <= 10


def test_the_real_jobs_limit_is_per_second(client, control, sandbox_account):
    bp = _blueprint(client)
    uuid = client.bulk_create([{"blueprint_id": bp, "price_cents": 100, "quantity": 1}])
    client.get_job(uuid)
    with pytest.raises(RateLimited) as err:
        client.get_job(uuid)
    assert err.value.scope == "per_second" and err.value.retry_after == 1.0


def test_read_timeout_on_a_write_is_an_unknown_outcome(sandbox_settings, sandbox_account, control, settings):
    settings.CARDTRADER_WRITE_TIMEOUT = 0.5
    guard = RecordingGuard()
    control.set_faults(timeout_rate=1.0, timeout_seconds=2, user_id=sandbox_account.user_id)
    try:
        with client_for_token(sandbox_account.token, guard=guard) as c:
            started = time.monotonic()
            with pytest.raises(Timeout) as err:
                c.increment_product(1, 1)
            assert time.monotonic() - started < 1.8
            assert err.value.request_sent and err.value.outcome_unknown
            with pytest.raises(Timeout) as err:
                c.info()
            assert err.value.request_sent and not err.value.outcome_unknown  # a read: safe to repeat
    finally:
        control.clear_faults()
    assert guard.outcomes == [Outcome.TIMEOUT, Outcome.TIMEOUT]
    assert [e[2] for e in guard.events if e[0] == "acquire"] == [Bucket.GLOBAL, Bucket.GLOBAL]


class _FailingRecordGuard(RecordingGuard):
    def record(self, **kwargs):
        super().record(**kwargs)
        raise LimiterUnavailable()


def test_a_failing_record_never_hides_the_result(sandbox_settings, sandbox_account, control):
    """A write CardTrader applied must not surface as 'limiter unavailable' (= nothing sent)."""
    guard = _FailingRecordGuard()
    with client_for_token(sandbox_account.token, guard=guard) as c:
        bp = c.blueprints_export(1)[0].id
        created = c.create_product({"blueprint_id": bp, "price_cents": 100, "quantity": 1})
        assert created.product.quantity == 1
        with pytest.raises(NotFound):  # the request's own error, not the guard's
            c.delete_product(created.product.id + 10_000_000)
    assert guard.outcomes == [Outcome.OK, Outcome.OK, Outcome.CLIENT_ERROR]
