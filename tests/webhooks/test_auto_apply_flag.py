"""The ``webhook_auto_apply`` kill switch: off, deliveries are verified and stored (200) but never
applied — not on commit, not by a queued task, not by the sweeper — and once it is back on the
sweeper applies them, once.

Tasks run eagerly here (in this thread and transaction: the real ``webhook_apply`` task body,
only the broker hop skipped), so a dispatch that should not happen would move stock visibly.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from inventory.models import InventoryItem
from syncops.models import OrderLedger, WebhookEvent, WebhookState
from syncops.services import webhooks as inbox
from syncops.tasks.webhooks import webhook_apply
from tests.webhooks import builders
from tests.webhooks.builders import order
from tests.webhooks.conftest import add_stock

pytestmark = pytest.mark.django_db


def set_auto_apply(settings, on: bool) -> None:
    settings.FEATURE_FLAGS = {**settings.FEATURE_FLAGS, "webhook_auto_apply": on}


@pytest.fixture
def auto_apply_off(settings) -> None:
    set_auto_apply(settings, False)


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Celery runs published tasks in the caller (the project's real app and tasks)."""
    from brxsync.celery import app

    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = False


def paid(order_id: int, product_id: int = 111, quantity: int = 1) -> dict:
    return builders.delivery(order(order_id, "paid", [(product_id, quantity)]), cause="order.create")


def age(event_ids: list[int], seconds: float) -> None:
    """As if received ``seconds`` ago (the sweeper only takes deliveries older than its interval)."""
    WebhookEvent.objects.filter(pk__in=event_ids).update(received_at=timezone.now() - timedelta(seconds=seconds))


def test_off_a_delivery_is_stored_and_answered_200_but_not_dispatched(
        shop, post, auto_apply_off, django_capture_on_commit_callbacks):
    item = add_stock(shop, 111, 5)
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(shop, paid(1))
    assert response.status_code == 200
    assert response.json()["state"] == WebhookState.RECEIVED and response.json()["duplicate"] is False
    event = WebhookEvent.objects.get(seller=shop.user)
    assert (event.state, event.dispatched_at, event.attempts) == (WebhookState.RECEIVED, None, 0)
    assert callbacks == [], "nothing handed to the queue while the flag is off"
    item.refresh_from_db()
    assert item.quantity == 5


def test_off_a_signature_is_still_checked(shop, post, auto_apply_off):
    response = post(shop, paid(1), secret="not-the-shops-secret")
    assert response.status_code == 401
    assert not WebhookEvent.objects.filter(seller=shop.user).exists()


def test_off_an_apply_task_already_queued_applies_nothing(shop, post, auto_apply_off, eager_tasks):
    """A message published before the switch (or a worker restarted with it off) is consumed
    without effect: the delivery stays received, no attempt is spent, no ledger row appears."""
    item = add_stock(shop, 111, 5)
    assert post(shop, paid(1, quantity=2)).status_code == 200
    event = WebhookEvent.objects.get(seller=shop.user)
    result = webhook_apply.apply_async(args=[[event.pk]]).get()
    assert result == [WebhookState.RECEIVED]
    event.refresh_from_db()
    item.refresh_from_db()
    assert (event.state, event.attempts, item.quantity) == (WebhookState.RECEIVED, 0, 5)
    assert not OrderLedger.objects.filter(seller=shop.user).exists()


def test_off_the_sweeper_skips_and_on_again_it_applies_each_once(
        shop, post, settings, auto_apply_off, eager_tasks, django_capture_on_commit_callbacks):
    item = add_stock(shop, 111, 10)
    for order_id, quantity in ((1, 2), (2, 3)):
        assert post(shop, paid(order_id, quantity=quantity)).status_code == 200
    duplicate = paid(3, quantity=1)
    assert post(shop, duplicate).status_code == 200
    assert post(shop, duplicate).json()["duplicate"] is True
    ids = list(WebhookEvent.objects.filter(seller=shop.user).values_list("pk", flat=True))
    age(ids, 3600)  # long past the sweep interval: only the flag holds them back

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert inbox.webhook_sweep() == 0
    assert callbacks == []
    assert set(WebhookEvent.objects.filter(pk__in=ids).values_list("state", "attempts", "dispatched_at")) == {
        (WebhookState.RECEIVED, 0, None)}
    item.refresh_from_db()
    assert item.quantity == 10

    set_auto_apply(settings, True)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert inbox.webhook_sweep() == 3
    assert len(callbacks) == 1, "one dispatch for the backlog"
    assert set(WebhookEvent.objects.filter(pk__in=ids).values_list("state", flat=True)) == {WebhookState.APPLIED}
    item.refresh_from_db()
    assert item.quantity == 10 - 2 - 3 - 1

    age(ids, 3600)
    with django_capture_on_commit_callbacks(execute=True):
        assert inbox.webhook_sweep() == 0, "applied deliveries are not swept again"
    item.refresh_from_db()
    assert item.quantity == 4


def test_on_a_delivery_is_dispatched_and_applied_on_commit(shop, post, eager_tasks):
    """The control for the tests above: with the flag on, the same path does apply (through the
    sweeper's dispatch here, the hand-off thread being asynchronous)."""
    item = add_stock(shop, 111, 5)
    assert post(shop, paid(1, quantity=2)).status_code == 200
    event = WebhookEvent.objects.get(seller=shop.user)
    assert event.dispatched_at is not None
    assert inbox.dispatch_apply([event.pk]) is True
    event.refresh_from_db()
    item.refresh_from_db()
    assert (event.state, item.quantity) == (WebhookState.APPLIED, 3)


def test_off_re_apply_resets_a_failed_delivery_and_the_sweeper_applies_it_later(
        shop, post, settings, auto_apply_off, eager_tasks, django_capture_on_commit_callbacks):
    item = add_stock(shop, 111, 5)
    assert post(shop, paid(1, quantity=2)).status_code == 200
    event = WebhookEvent.objects.get(seller=shop.user)
    WebhookEvent.objects.filter(pk=event.pk).update(state=WebhookState.FAILED, attempts=10, error="db down")

    with django_capture_on_commit_callbacks(execute=True):
        inbox.webhook_reapply(event_id=event.pk)
    event.refresh_from_db()
    assert (event.state, event.attempts) == (WebhookState.RECEIVED, 0)
    assert InventoryItem.objects.get(pk=item.pk).quantity == 5

    set_auto_apply(settings, True)
    age([event.pk], 3600)
    with django_capture_on_commit_callbacks(execute=True):
        assert inbox.webhook_sweep() == 1
    event.refresh_from_db()
    assert event.state == WebhookState.APPLIED
    assert InventoryItem.objects.get(pk=item.pk).quantity == 3
