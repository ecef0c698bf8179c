"""The dashboard's numbers: each figure checked against rows this test wrote, on the admin index,
in the JSON refresh, and per source (Redis figures from a guard on keys of this test's own)."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from inventory.models import SyncStatus
from syncops.models import (
    Conflict,
    ConflictKind,
    OperationKind,
    OperationState,
    SyncOperation,
    WebhookEvent,
    WebhookState,
)
from syncops.selectors import dashboard

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_seller, make_operation, own_guard):
    """A small, known state of the service."""
    from ratelimit.guard import Outcome

    active = [make_seller(sync_status=SyncStatus.ACTIVE) for _ in range(3)]
    paused = make_seller(sync_status=SyncStatus.PAUSED, paused=True)
    errored = make_seller(sync_status=SyncStatus.ERROR)
    for _ in range(4):
        make_operation(active[0], state=OperationState.FAILED)
    make_operation(active[1], state=OperationState.UNCERTAIN)
    make_operation(active[1], state=OperationState.SUCCEEDED)
    old = make_operation(active[2], state=OperationState.FAILED)
    SyncOperation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=30))
    running = make_operation(active[2], kind=OperationKind.IMPORT, state=OperationState.RUNNING,
                             progress_done=250, progress_total=1000, started_at=timezone.now())
    now = timezone.now()
    for state, n in ((WebhookState.APPLIED, 3), (WebhookState.FAILED, 1), (WebhookState.IGNORED, 2)):
        for _ in range(n):
            WebhookEvent.objects.create(delivery_id=uuid.uuid4().hex, seller=active[0], cause="order.create",
                                        object_id=1, state=state)
    yesterday = WebhookEvent.objects.create(delivery_id=uuid.uuid4().hex, seller=active[0], cause="order.update",
                                            object_id=2, state=WebhookState.APPLIED)
    WebhookEvent.objects.filter(pk=yesterday.pk).update(received_at=now - timedelta(days=2))
    Conflict.objects.create(seller=active[0], kind=ConflictKind.OVERSELL)
    Conflict.objects.create(seller=active[0], kind=ConflictKind.OVERSELL, resolved_at=now)
    Conflict.objects.create(seller=active[1], kind=ConflictKind.DRIFT)
    for _ in range(3):
        own_guard.record(seller_id=str(active[0].pk), outcome=Outcome.RATE_LIMITED)
    own_guard.record(seller_id=str(active[1].pk), outcome=Outcome.RATE_LIMITED)
    for _ in range(5):
        own_guard.record(seller_id=str(errored.pk), outcome=Outcome.AUTH_ERROR)
    return {"running": running, "paused": paused, "errored": errored}


def test_snapshot_matches_the_database(world):
    snap = dashboard.dashboard_snapshot()
    assert snap["errors"] == {}
    assert snap["sellers"] == {"idle": 0, "importing": 0, "active": 3, "paused": 1, "error": 1}
    ops = snap["operations_24h"]
    assert (ops["failed"], ops["uncertain"], ops["succeeded"], ops["running"]) == (4, 1, 1, 1)
    assert snap["attention"]["count"] == 6  # the 30-hour-old failure still needs attention
    assert len(snap["attention"]["recent"]) == 6
    assert snap["imports"] == [{
        "id": world["running"].pk, "kind": "import", "seller_id": str(world["running"].seller_id), "done": 250,
        "total": 1000, "percent": 25.0, "started_at": world["running"].started_at.isoformat(), "heartbeat_at": None,
    }]
    assert snap["webhooks_today"] == {"received": 0, "applied": 3, "ignored": 2, "stale": 0, "failed": 1}
    assert snap["conflicts"] == {"oversell": 1, "total": 2}
    limits = snap["rate_limits"]
    assert limits["rate_limited_last_hour"] == 4 and limits["throttled_sellers"] == 2
    assert limits["shared_breaker"] == "closed"
    assert [(b["name"], b["state"]) for b in limits["breakers_not_closed"]] == [(str(world["errored"].pk), "open")]
    assert set(snap["queues"]) == {"high-priority", "bulk-sync", "default"}


def test_queue_depth_is_the_brokers(world, settings):
    """A message published to the broker shows up in its queue's depth (LLEN, with the prefix)."""
    from brxsync.celery import app

    before = dashboard.queue_depths()["bulk-sync"]
    with app.connection_for_write() as conn:
        producer = conn.Producer()
        producer.publish({"probe": True}, routing_key="bulk-sync", exchange="", declare=[])
        try:
            assert dashboard.queue_depths()["bulk-sync"] == before + 1
        finally:  # this session's own broker namespace: nothing else reads it
            conn.default_channel.queue_purge("bulk-sync")


def test_index_and_json_show_the_same_numbers(staff_client, world):
    page = staff_client.get(reverse("admin:index"))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-dash="operations_24h.failed">4<' in html
    assert 'data-dash="attention.count">6<' in html
    assert 'data-dash="webhooks_today.applied">3<' in html
    assert 'data-dash="conflicts.oversell">1<' in html
    assert 'data-dash="sellers.paused">1<' in html
    assert "250 / 1000 (25.0%)" in html

    data = staff_client.get(reverse("admin:syncops_dashboard_json")).json()
    assert data["operations_24h"]["failed"] == 4 and data["attention"]["count"] == 6
    assert data["imports"][0]["percent"] == 25.0


def test_an_unreachable_limiter_is_reported_not_fatal(staff_client, world, monkeypatch):
    import ratelimit
    from ratelimit.services import RedisGuard, limiter_client

    # A real client to a port where nothing listens: the limiter's Redis is down.
    monkeypatch.setattr(ratelimit, "_default", RedisGuard(client=limiter_client("redis://127.0.0.1:1/0")))
    data = staff_client.get(reverse("admin:syncops_dashboard_json")).json()
    assert data["rate_limits"] is None and "ConnectionError" in data["errors"]["rate_limits"]
    assert data["operations_24h"]["failed"] == 4
