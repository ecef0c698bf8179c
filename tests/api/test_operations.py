"""Status, operation detail, operation list (filters, cursor pages) and retry (issue 5)."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from inventory.models import ConnectionState, SyncSettings
from syncops.models import Conflict, OperationKind, OperationState, SyncOperation
from syncops.services import dispatch
from syncops.services.operations import OperationStateError, operation_cancel, operation_retry
from tests.api.conftest import assert_envelope

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def dispatchers():
    """The registry as the tests here leave it is the registry they found: whether a kind has a
    dispatcher must not depend on which task modules earlier tests happened to import."""
    saved = dict(dispatch._DISPATCHERS)
    yield dispatch._DISPATCHERS
    dispatch._DISPATCHERS.clear()
    dispatch._DISPATCHERS.update(saved)


@pytest.fixture
def recorded_dispatches():
    """A real dispatcher for the RECONCILE kind that records what it was handed."""
    calls: list[tuple[int, str]] = []
    dispatch.register_dispatcher(OperationKind.RECONCILE, lambda op: calls.append((op.pk, op.state)), replace=True)
    return calls


def test_status_of_a_new_seller(seller_client):
    seller_id = uuid.uuid4()
    body = seller_client(seller_id).get(f"/api/v1/sellers/{seller_id}/status").json()
    assert body["sync_status"] == "idle"
    assert body["connection"]["state"] == "disconnected"
    assert body["connection"]["webhook_url"] is None
    assert body["running_operation"] is None
    assert body["pending_operations"] == 0 and body["open_conflicts"] == 0
    assert body["last_error"] is None and body["last_sync_at"] is None
    assert "rate_limit" in body
    assert body["features"]["circuit_breaker"] is True


def test_status_shows_flags_switched_off(seller_client, settings):
    settings.FEATURE_FLAGS = {**settings.FEATURE_FLAGS, "batch_updates": False}
    seller_id = uuid.uuid4()
    body = seller_client(seller_id).get(f"/api/v1/sellers/{seller_id}/status").json()
    assert body["features"]["batch_updates"] is False
    assert body["features"]["adaptive_rate_limiting"] is True


def test_status_shows_progress_conflicts_and_never_the_token(seller_client, seller, make_operation):
    settings_row = SyncSettings.objects.get(user=seller)
    settings_row.set_credentials(token="ct-secret-token-123", shared_secret="shh-secret-456")
    settings_row.connection_state = ConnectionState.CONNECTED
    settings_row.connected_at = timezone.now()
    settings_row.sync_status = "importing"
    settings_row.last_error = "CardTrader said no"
    settings_row.save()
    make_operation(seller, kind=OperationKind.IMPORT, state=OperationState.RUNNING, progress_done=250,
                   progress_total=1000, started_at=timezone.now())
    make_operation(seller, state=OperationState.PENDING)
    make_operation(seller, state=OperationState.PENDING)
    Conflict.objects.create(seller=seller, kind="oversell")
    Conflict.objects.create(seller=seller, kind="oversell", resolved_at=timezone.now())

    response = seller_client(seller.pk).get(f"/api/v1/sellers/{seller.pk}/status")
    assert response.status_code == 200
    body = response.json()
    assert body["sync_status"] == "importing"
    assert body["connection"]["state"] == "connected"
    assert body["connection"]["webhook_url"].endswith(f"/api/v1/webhooks/cardtrader/{settings_row.webhook_id}/")
    assert body["last_error"] == "CardTrader said no"
    running = body["running_operation"]
    assert running["kind"] == "import" and running["progress"] == {"done": 250, "total": 1000, "percent": 25.0}
    assert body["pending_operations"] == 2
    assert body["open_conflicts"] == 1
    text = response.content.decode()
    assert "ct-secret-token-123" not in text and "shh-secret-456" not in text
    assert settings_row.token_encrypted not in text


def test_status_shows_the_real_rate_limiter(seller_client, seller, settings, monkeypatch):
    """ratelimit.selectors over the real Redis, under keys of this test alone."""
    import ratelimit

    settings.RATE_LIMIT_KEY_PREFIX = f"rl-apitest-{uuid.uuid4().hex[:10]}"
    monkeypatch.setattr(ratelimit, "_default", None)
    body = seller_client(seller.pk).get(f"/api/v1/sellers/{seller.pk}/status").json()
    summary = body["rate_limit"]
    assert summary is not None, body
    assert summary["seller"]["seller_id"] == str(seller.pk)
    assert summary["seller"]["tokens"] == pytest.approx(settings.RATE_LIMIT_BURST or settings.RATE_LIMIT_REQUESTS,
                                                        rel=0.01)  # a fresh bucket
    assert "state" in summary["seller"]["breaker"]
    assert "state" in summary["shared_breaker"]


def test_status_degrades_when_the_rate_limiter_fails(seller_client, seller, monkeypatch):
    """ratelimit.selectors is someone else's module: an error in it must not break the status."""
    import sys
    import types

    from inventory.selectors import sellers

    broken = types.ModuleType("ratelimit.selectors")

    def seller_status(seller_id: str) -> dict:
        raise ConnectionError("redis down")

    broken.seller_status = seller_status
    monkeypatch.setitem(sys.modules, "ratelimit.selectors", broken)
    body = seller_client(seller.pk).get(f"/api/v1/sellers/{seller.pk}/status").json()
    assert body["rate_limit"] is None
    broken.seller_status = lambda seller_id: {"tokens": 12.5, "breaker": "closed"}
    assert sellers.rate_limit_summary(seller.pk) == {"seller": {"tokens": 12.5, "breaker": "closed"}}
    monkeypatch.setitem(sys.modules, "ratelimit.selectors", types.ModuleType("ratelimit.selectors"))
    assert sellers.rate_limit_summary(seller.pk) is None  # module without the functions


def test_operation_detail(service_client, seller, make_operation):
    op = make_operation(seller, attempts=3, error_code="server_error", last_error="HTTP 502",
                        progress_done=5, progress_total=10, attempt_log=[{"event": "attempt", "n": 1}])
    body = service_client.get(f"/api/v1/operations/{op.pk}").json()
    assert body["id"] == op.pk and body["kind"] == "push_update" and body["state"] == "failed"
    assert body["attempts"] == 3
    assert body["error"] == {"code": "server_error", "message": "HTTP 502"}
    assert body["progress"] == {"done": 5, "total": 10, "percent": 50.0}
    assert body["attempt_log"] == [{"event": "attempt", "n": 1}]
    assert body["seller_id"] == str(seller.pk)
    clean = make_operation(seller, state=OperationState.SUCCEEDED)
    assert service_client.get(f"/api/v1/operations/{clean.pk}").json()["error"] is None


def test_list_filters(seller_client, seller, make_operation):
    old = make_operation(seller, state=OperationState.FAILED, kind=OperationKind.IMPORT)
    SyncOperation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    failed_push = make_operation(seller, state=OperationState.FAILED, product_id=777)
    done_push = make_operation(seller, state=OperationState.SUCCEEDED, product_id=777)
    uncertain = make_operation(seller, state=OperationState.UNCERTAIN, kind=OperationKind.RECONCILE)
    other_seller_op = make_operation(__import__("inventory.models", fromlist=["User"]).User.objects.create(
        username=f"o-{uuid.uuid4().hex[:6]}"))
    client = seller_client(seller.pk)
    url = f"/api/v1/sellers/{seller.pk}/operations"

    def ids(**params) -> list[int]:
        response = client.get(url, params)
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["results"]]

    assert ids() == [uncertain.pk, done_push.pk, failed_push.pk, old.pk]  # newest first, own only
    assert other_seller_op.pk not in ids()
    assert ids(state="failed") == [failed_push.pk, old.pk]
    assert ids(state=["failed", "uncertain"]) == [uncertain.pk, failed_push.pk, old.pk]
    assert ids(kind="import") == [old.pk]
    assert ids(product_id=777) == [done_push.pk, failed_push.pk]
    cutoff = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(created_before=cutoff) == [old.pk]
    assert old.pk not in ids(created_after=cutoff)
    assert_envelope(client.get(url, {"created_after": cutoff, "created_before": cutoff}), 400, "validation_error")


def test_cursor_pages_walk_everything_once(service_client, seller, make_operation):
    made = [make_operation(seller).pk for _ in range(7)]
    url = f"/api/v1/sellers/{seller.pk}/operations?limit=3"
    seen: list[int] = []
    pages = 0
    while url:
        body = service_client.get(url).json()
        assert set(body) == {"next", "previous", "results"}
        assert len(body["results"]) <= 3
        seen += [r["id"] for r in body["results"]]
        url = body["next"]
        pages += 1
    assert pages == 3
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))


def test_retry_puts_a_failed_operation_back_and_dispatches_after_commit(
    service_client, seller, make_operation, recorded_dispatches, django_capture_on_commit_callbacks
):
    op = make_operation(seller, kind=OperationKind.RECONCILE, attempts=8, max_attempts=8,
                        error_code="server_error", last_error="HTTP 503", next_attempt_at=timezone.now(),
                        finished_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = service_client.post(f"/api/v1/operations/{op.pk}/retry")
        assert recorded_dispatches == []  # nothing is sent before commit
    assert response.status_code == 202
    assert response.json() == {"operation_id": op.pk}
    assert response["Location"] == f"/api/v1/operations/{op.pk}"
    for callback in callbacks:
        callback()
    assert recorded_dispatches == [(op.pk, "pending")]
    op.refresh_from_db()
    assert op.state == "pending" and op.next_attempt_at is None and op.finished_at is None
    assert op.error_code == "" and op.last_error == ""
    assert op.attempts == 8 and op.max_attempts == 16  # a fresh budget; the count is kept for the audit
    assert op.dispatched_at is not None
    entry = op.attempt_log[-1]
    assert entry["event"] == "retry_requested" and entry["previous_state"] == "failed"
    assert entry["error"] == "HTTP 503" and entry["by"].startswith("apikey:")


@pytest.mark.parametrize("state", ["failed", "uncertain", "partial", "cancelled"])
def test_retryable_states(service_client, seller, make_operation, state, django_capture_on_commit_callbacks):
    dispatch.unregister_dispatcher(OperationKind.PUSH_UPDATE)
    op = make_operation(seller, state=state)
    with django_capture_on_commit_callbacks(execute=True):
        assert service_client.post(f"/api/v1/operations/{op.pk}/retry").status_code == 202
    op.refresh_from_db()
    assert op.state == "pending"
    assert op.dispatched_at is None  # no dispatcher for push_update: left for the sweeper


@pytest.mark.parametrize("state", ["pending", "running", "succeeded"])
def test_retry_of_other_states_is_409(service_client, seller, make_operation, state):
    op = make_operation(seller, state=state)
    error = assert_envelope(service_client.post(f"/api/v1/operations/{op.pk}/retry"), 409, "operation_not_retryable")
    assert error["details"]["state"] == state
    assert "failed" in error["details"]["retryable_states"]
    op.refresh_from_db()
    assert op.state == state and op.attempt_log == []


def test_seller_retries_own_operation(seller_client, seller, make_operation):
    op = make_operation(seller)
    assert seller_client(seller.pk).post(f"/api/v1/operations/{op.pk}/retry").status_code == 202
    op.refresh_from_db()
    assert op.attempt_log[-1]["by"] == f"seller:{seller.pk}"


def test_cancel_service(seller, make_operation):
    op = make_operation(seller, state=OperationState.PENDING)
    operation_cancel(operation_id=op.pk, actor="staff:x", reason="duplicate")
    op.refresh_from_db()
    assert op.state == "cancelled" and op.finished_at is not None
    assert op.attempt_log[-1]["reason"] == "duplicate"
    running = make_operation(seller, state=OperationState.RUNNING)
    with pytest.raises(OperationStateError):
        operation_cancel(operation_id=running.pk)
    # Cancelled can be revived by retry.
    operation_retry(operation_id=op.pk)
    op.refresh_from_db()
    assert op.state == "pending"


def test_dispatcher_registry_rules(seller, make_operation):
    with pytest.raises(ValueError):
        dispatch.register_dispatcher("adjust", print)
        dispatch.register_dispatcher("adjust", repr)
    dispatch.unregister_dispatcher("adjust")

    def failing(op):
        raise ConnectionError("broker down")

    dispatch.register_dispatcher("adjust", failing)
    try:
        op = make_operation(seller, kind="adjust", state=OperationState.PENDING)
        assert dispatch.dispatch_operation(op.pk) is False  # logged, left pending for the sweeper
        op.refresh_from_db()
        assert op.state == "pending" and op.dispatched_at is None
        done = make_operation(seller, kind="adjust", state=OperationState.SUCCEEDED)
        assert dispatch.dispatch_operation(done.pk) is False  # never restarts finished work
    finally:
        dispatch.unregister_dispatcher("adjust")  # the autouse fixture puts back whatever was there
