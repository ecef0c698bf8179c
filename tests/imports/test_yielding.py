"""Imports pause while webhook deliveries wait to be applied (syncops/services/yielding.py)."""
from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from syncops.models import OperationState, WebhookEvent, WebhookState
from syncops.services.imports import import_run, import_start
from syncops.services.yielding import webhook_backlog, yield_to_webhooks

pytestmark = pytest.mark.django_db(databases=["default", "blueprints"], transaction=True)


def _deliveries(seller, n: int, *, age_seconds: float = 0.0) -> list[int]:
    rows = WebhookEvent.objects.bulk_create([
        WebhookEvent(delivery_id=uuid.uuid4().hex, seller=seller, cause="order.update", object_id=i,
                     payload={}, state=WebhookState.RECEIVED) for i in range(n)])
    ids = [r.pk for r in rows]
    if age_seconds:
        WebhookEvent.objects.filter(pk__in=ids).update(received_at=timezone.now() - timedelta(seconds=age_seconds))
    return ids


@pytest.fixture
def short_pauses(settings):
    settings.BULK_YIELD_BACKLOG = 5
    settings.BULK_YIELD_MAX_SECONDS = 0.4
    return settings


def test_no_backlog_no_pause(seller, short_pauses):
    _deliveries(seller, 4)  # below the threshold
    assert webhook_backlog(5) == 4
    assert yield_to_webhooks() < 0.1


def test_a_backlog_pauses_up_to_the_bound(seller, short_pauses):
    _deliveries(seller, 5)
    assert yield_to_webhooks() >= 0.4


def test_the_pause_ends_when_the_backlog_is_applied(seller, short_pauses):
    short_pauses.BULK_YIELD_MAX_SECONDS = 30.0
    ids = _deliveries(seller, 8)

    def apply_later() -> None:
        time.sleep(0.3)
        WebhookEvent.objects.filter(pk__in=ids).update(state=WebhookState.APPLIED)
        connection.close()

    worker = threading.Thread(target=apply_later)
    worker.start()
    paused = yield_to_webhooks()
    worker.join()
    assert 0.3 <= paused < 5.0


@pytest.mark.parametrize("why", ["old deliveries", "auto-apply off", "yielding off"])
def test_what_does_not_make_bulk_work_wait(seller, short_pauses, why):
    """A stopped worker or a paused inbox is not helped by slowing imports down."""
    if why == "old deliveries":
        _deliveries(seller, 10, age_seconds=120)
    else:
        _deliveries(seller, 10)
    if why == "auto-apply off":
        short_pauses.FEATURE_FLAGS = {**short_pauses.FEATURE_FLAGS, "webhook_auto_apply": False}
    if why == "yielding off":
        short_pauses.BULK_YIELD_BACKLOG = 0
    assert yield_to_webhooks() < 0.1


def test_an_import_pauses_per_chunk_and_still_finishes(connected_seller, sandbox_account, control,
                                                       catalogue_prints, short_pauses):
    short_pauses.IMPORT_CHUNK_SIZE = 100
    short_pauses.IMPORT_WRITERS = 1  # with more, writers pause side by side
    short_pauses.BULK_YIELD_MAX_SECONDS = 0.25
    control.seed_products(sandbox_account.user_id, 500, seed=3)
    _deliveries(connected_seller, 6)  # never applied here: every chunk waits its full bound
    op = import_start(seller=connected_seller, dispatch=False)
    started = time.monotonic()
    outcome = import_run(op.pk)
    assert outcome.state == OperationState.SUCCEEDED, outcome.result
    assert op.__class__.objects.get(pk=op.pk).result["processed"] == 500
    assert time.monotonic() - started >= 5 * 0.25  # five chunks, each paused
