"""Webhook deliveries on the dashboard: applied / duplicated / rejected by cause today.

Rejected deliveries store no row (by design), so the figures come from the endpoint's per-day
counts in Redis (``services.webhooks.webhook_outcome_count``, called where the view tags its
answer for the Prometheus counter) read by ``selectors.webhooks.webhook_outcomes``, the one
selector the dashboard, its JSON refresh and anything else use. Each test counts under a cache
key prefix of its own: the Redis server is shared with other suites.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from prometheus_client import REGISTRY

from syncops.models import WebhookEvent, WebhookState
from syncops.selectors import dashboard
from syncops.selectors.webhooks import deliveries_by_state, outcomes_key, utc_midnight, webhook_outcomes
from syncops.services import webhooks as inbox
from tests.webhooks import builders
from tests.webhooks.conftest import make_shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_counts(settings) -> Iterator[None]:
    """The cache (and so the outcome counts) under a key prefix no other run uses."""
    from django_redis import get_redis_connection

    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"brxtest-whcount-{uuid.uuid4().hex}"}}
    yield
    today = utc_midnight().date()
    get_redis_connection("default").delete(outcomes_key(today), outcomes_key(today - timedelta(days=1)))


def paid(order_id: int) -> dict:
    return builders.delivery(builders.order(order_id, "paid", [(111, 1)]), cause="order.create")


def post(client: Client, url: str, body: bytes, signature: str | None, **extra) -> int:
    headers = {"HTTP_SIGNATURE": signature} if signature is not None else {}
    return client.post(url, data=body, content_type="application/json", **headers, **extra).status_code


def prometheus(result: str, reason: str = "") -> float:
    return REGISTRY.get_sample_value("brxsync_webhook_deliveries_total", {"result": result, "reason": reason}) or 0.0


def send_a_mixed_day(client: Client) -> dict[str, int]:
    """One of each answer the endpoint gives (two bad signatures); returns status → count."""
    shop = make_shop()
    gone = make_shop(connected=False)
    url = f"/api/v1/webhooks/cardtrader/{shop.settings.webhook_id}/"
    good = paid(1)
    body, sig = builders.signed(good, shop.secret)
    statuses = [
        post(client, url, body, sig),  # 200 accepted
        post(client, url, body, sig),  # 200 duplicate
        post(client, url, body, builders.signed(good, "wrong-secret")[1]),  # 401
        post(client, url, body, None),  # 401 (missing header)
        post(client, url, b"{not json", builders.signed(b"{not json", shop.secret)[1]),  # 400 malformed_json
        post(client, url, *builders.signed({k: v for k, v in paid(2).items() if k != "mode"}, shop.secret)),  # 400
        post(client, url, b"x", sig, CONTENT_LENGTH=str(2 * 1024 * 1024)),  # 413 by header
        post(client, "/api/v1/webhooks/cardtrader/no-such-webhook/", body, sig),  # 404
        post(client, f"/api/v1/webhooks/cardtrader/{gone.settings.webhook_id}/", body, sig),  # 410
    ]
    assert statuses == [200, 200, 401, 401, 400, 400, 413, 404, 410]
    return {"shop": shop}


EXPECTED = {
    "duplicate": 1,
    "rejected": {"invalid_delivery": 1, "invalid_signature": 2, "malformed_json": 1, "not_found": 1,
                 "payload_too_large": 1, "seller_disconnected": 1},
    "rejected_total": 7,
}


def test_bad_deliveries_change_the_selector_and_the_prometheus_counter_alike(client, own_counts):
    today = utc_midnight().date()
    assert webhook_outcomes(day=today) == {"duplicate": 0, "rejected": {}, "rejected_total": 0}
    before = {reason: prometheus("rejected", reason) for reason in EXPECTED["rejected"]}
    before_ok = (prometheus("accepted"), prometheus("duplicate"))

    send_a_mixed_day(client)

    assert webhook_outcomes(day=today) == EXPECTED
    assert deliveries_by_state(since=utc_midnight())[WebhookState.RECEIVED] == 1, "the accepted one is a row"
    # Both counts are fed from the one place the view classifies its answer.
    assert {reason: prometheus("rejected", reason) - before[reason] for reason in before} == EXPECTED["rejected"]
    assert (prometheus("accepted") - before_ok[0], prometheus("duplicate") - before_ok[1]) == (1, 1)
    assert webhook_outcomes(day=today - timedelta(days=1))["rejected_total"] == 0, "today only"


def test_bad_deliveries_show_on_the_dashboard_page_and_its_refresh(client, staff_client, own_counts):
    page = staff_client.get(reverse("admin:index")).content.decode()
    assert 'data-dash="webhook_answers_today.rejected_total">0<' in page
    assert "webhook_answers_today.rejected.invalid_signature" not in page

    shop = send_a_mixed_day(client)["shop"]
    WebhookEvent.objects.filter(seller=shop.user).update(state=WebhookState.APPLIED, applied_at=timezone.now())

    page = staff_client.get(reverse("admin:index")).content.decode()
    assert 'data-dash="webhook_answers_today.duplicate">1<' in page
    assert 'data-dash="webhook_answers_today.rejected_total">7<' in page
    for cause, n in EXPECTED["rejected"].items():
        assert f'data-dash="webhook_answers_today.rejected.{cause}">{n}<' in page
    assert 'data-dash="webhooks_today.applied">1<' in page

    data = staff_client.get(reverse("admin:syncops_dashboard_json")).json()
    assert data["webhook_answers_today"] == EXPECTED
    assert data["webhooks_today"]["applied"] == 1
    assert data["errors"] == {}


def test_a_count_lands_on_its_own_utc_day(own_counts):
    now = timezone.now()
    inbox.webhook_outcome_count("rejected", "invalid_signature", now=now - timedelta(days=1))
    assert webhook_outcomes(day=utc_midnight(now).date())["rejected_total"] == 0
    assert webhook_outcomes(day=(utc_midnight(now) - timedelta(days=1)).date())["rejected"] == {
        "invalid_signature": 1}


def test_redis_down_never_fails_a_delivery_and_the_dashboard_keeps_the_stored_figures(
        client, staff_client, settings, monkeypatch):
    """The counts' Redis unreachable (a port where nothing listens): an accepted delivery never
    touches it (it is a row), a refused one is still answered, counting pauses, and the dashboard
    reports the one missing source."""
    monkeypatch.setattr(inbox, "_outcomes_down_until", 0.0)
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    shop = make_shop()
    url = f"/api/v1/webhooks/cardtrader/{shop.settings.webhook_id}/"
    body, sig = builders.signed(paid(1), shop.secret)
    assert post(client, url, body, sig) == 200
    assert WebhookEvent.objects.filter(seller=shop.user).count() == 1
    assert inbox._outcomes_down_until == 0.0, "the accepted path made no Redis call"
    assert post(client, url, body, "bad-signature") == 401
    assert inbox._outcomes_down_until > 0, "counting paused after the failure"
    assert post(client, url, body, "bad-signature") == 401, "and the next refusal does not wait on Redis"

    snap = dashboard.dashboard_snapshot()
    assert snap["webhook_answers_today"] is None and "webhook_answers_today" in snap["errors"]
    assert snap["webhooks_today"]["received"] >= 1
    page = staff_client.get(reverse("admin:index")).content.decode()
    assert "unavailable (see the error above)" in page
