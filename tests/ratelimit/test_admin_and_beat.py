"""The admin status page and its reset actions, and the beat task, on the real Redis and the
real database; the process-wide guard is swapped for one under a test prefix."""
from __future__ import annotations

import pytest
from django.urls import reverse

import ratelimit
from ratelimit.breakers import BreakerConfig, BreakerState
from ratelimit.buckets import SHARED_TAG
from ratelimit.guard import Outcome
from ratelimit.selectors import seller_status, shared_breaker_status
from ratelimit.tasks import maintain_breakers

URL = "admin:ratelimit_sellerratelimit_changelist"


@pytest.fixture
def guard(make_guard, monkeypatch):
    g = make_guard(capacity=200, window_seconds=10.0, breakers=BreakerConfig(open_seconds=60),
                   recovery_per_second=0.0)
    monkeypatch.setattr(ratelimit, "_default", g)
    return g


@pytest.mark.django_db
def test_status_page_shows_tokens_factor_429s_and_breakers(admin_client, guard, seller):
    sid = str(seller.pk)
    for _ in range(30):
        guard.acquire(seller_id=sid)
    guard.record(seller_id=sid, outcome=Outcome.RATE_LIMITED)
    for _ in range(5):
        guard.record(seller_id=sid, outcome=Outcome.AUTH_ERROR)
    response = admin_client.get(reverse(URL))
    assert response.status_code == 200
    body = response.content.decode()
    # tokens left of the effective capacity (200 × 0.75)
    assert "/ 150" in body, body[body.find("<tbody>"):body.find("</tbody>")]
    assert "0.75" in body and "open" in body
    assert 'id="shared-breaker-state">closed' in body
    assert sid in body  # listed among breakers not closed


@pytest.mark.django_db
def test_reset_actions_go_through_the_services(admin_client, guard, seller):
    sid = str(seller.pk)
    guard.record(seller_id=sid, outcome=Outcome.RATE_LIMITED)
    for _ in range(5):
        guard.record(seller_id=sid, outcome=Outcome.AUTH_ERROR)
    for action in ("reset_breakers", "reset_buckets"):
        response = admin_client.post(reverse(URL), {"action": action, "_selected_action": [sid]})
        assert response.status_code == 302
    status = seller_status(sid, guard=guard)
    assert status.breaker.state is BreakerState.CLOSED and status.factor == 1.0 and status.tokens == 200

    for _ in range(5):
        guard.record(seller_id=sid, outcome=Outcome.TIMEOUT)
    assert shared_breaker_status(guard=guard).state is BreakerState.OPEN
    assert admin_client.post(reverse("admin:ratelimit_reset_shared_breaker")).status_code == 302
    assert shared_breaker_status(guard=guard).state is BreakerState.CLOSED


@pytest.mark.django_db
def test_non_staff_cannot_see_or_reset(client, guard, seller, django_user_model):
    user = django_user_model.objects.create_user(username="plain", password="pw")
    client.force_login(user)
    assert client.get(reverse(URL)).status_code == 302  # to the admin login
    for _ in range(5):
        guard.record(seller_id="x", outcome=Outcome.TIMEOUT)
    client.post(reverse("admin:ratelimit_reset_shared_breaker"))
    assert shared_breaker_status(guard=guard).state is BreakerState.OPEN


def test_beat_task_reports_through_the_default_guard(guard):
    for _ in range(5):
        guard.record(seller_id="x", outcome=Outcome.SERVER_ERROR)
    result = maintain_breakers.apply().get()
    assert result["not_closed"] == 2 and result["stuck"] == [] and result["half_opened"] == []
    guard.reset_breaker("x")
    guard.reset_breaker(SHARED_TAG)
    assert maintain_breakers.apply().get()["not_closed"] == 0
