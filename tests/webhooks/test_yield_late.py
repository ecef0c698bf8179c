"""Imports also pause while one delivery has waited too long (BULK_YIELD_LATE_MS), however short
the backlog (syncops/services/yielding.py)."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from syncops.models import WebhookEvent, WebhookState
from syncops.services.yielding import webhooks_waiting, yield_to_webhooks
from tests.webhooks.conftest import make_shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def yielding(settings):
    settings.BULK_YIELD_BACKLOG = 20
    settings.BULK_YIELD_MAX_SECONDS = 0.4
    settings.BULK_YIELD_LATE_MS = 250
    return settings


def waiting_delivery(seller, *, age_ms: float, attempts: int = 0) -> WebhookEvent:
    event = WebhookEvent.objects.create(delivery_id=uuid.uuid4().hex, seller=seller, cause="order.update",
                                        object_id=1, payload={}, state=WebhookState.RECEIVED, attempts=attempts)
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - timedelta(milliseconds=age_ms))
    return event


def test_one_late_delivery_pauses_an_import_up_to_the_bound(yielding):
    waiting_delivery(make_shop().user, age_ms=600)
    assert webhooks_waiting(20, 0.25)
    assert yield_to_webhooks() >= 0.4


@pytest.mark.parametrize("why", ["fresh", "already tried by its message", "late check off", "applied"])
def test_what_a_single_waiting_delivery_does_not_pause(yielding, why):
    seller = make_shop().user
    event = waiting_delivery(seller, age_ms=50 if why == "fresh" else 600,
                             attempts=1 if why == "already tried by its message" else 0)
    if why == "late check off":
        yielding.BULK_YIELD_LATE_MS = 0
    if why == "applied":
        WebhookEvent.objects.filter(pk=event.pk).update(state=WebhookState.APPLIED)
    assert yield_to_webhooks() < 0.1
