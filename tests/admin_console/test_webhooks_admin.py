"""Webhook deliveries in the console: payload viewer (escaped) and "re-apply" of failed ones."""
from __future__ import annotations

import uuid

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from syncops.models import WebhookEvent, WebhookState
from tests.admin_console.conftest import messages_of, post_action

pytestmark = pytest.mark.django_db


def _event(seller, **fields) -> WebhookEvent:
    fields.setdefault("state", WebhookState.FAILED)
    fields.setdefault("cause", "order.create")
    fields.setdefault("object_id", 555)
    fields.setdefault("payload", {"id": "x", "data": {"note": "<b>hi</b>"}})
    return WebhookEvent.objects.create(delivery_id=uuid.uuid4().hex, seller=seller, **fields)


def test_payload_is_pretty_and_escaped(staff_client, make_seller):
    event = _event(make_seller())
    html = staff_client.get(reverse("admin:syncops_webhookevent_change", args=[event.pk])).content.decode()
    assert "&lt;b&gt;hi&lt;/b&gt;" in html and "<b>hi</b>" not in html
    assert '"note"' in html or "&quot;note&quot;" in html


def test_reapply_failed_resets_and_dispatches_and_skips_others(staff_client, staff_user, make_seller,
                                                               django_capture_on_commit_callbacks):
    seller = make_seller()
    failed = _event(seller, attempts=10, error="OperationalError('db down')")
    applied = _event(seller, state=WebhookState.APPLIED)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post_action(staff_client, reverse("admin:syncops_webhookevent_changelist"), "reapply_selected",
                               [failed.pk, applied.pk])
    text = " ".join(messages_of(response))
    assert "1 re-applied" in text and "1 skipped (1 applied" in text
    failed.refresh_from_db()
    assert (failed.state, failed.attempts, failed.error) == (WebhookState.RECEIVED, 0, "")
    assert len(callbacks) == 1
    entry = LogEntry.objects.get(user=staff_user, object_id=str(failed.pk))
    assert "db down" in entry.get_change_message()


def test_reapplied_delivery_is_applied_by_the_apply_service(staff_client, make_seller, make_item):
    """End to end without a broker: re-apply, then the task body (``webhook_event_apply``) applies
    the order through the ledger: stock drops once, and a second apply moves nothing."""
    from syncops.services.orders import webhook_event_apply

    seller = make_seller()
    item = make_item(seller, quantity=3)
    payload = {"id": "d1", "time": 1, "cause": "order.create", "object_class": "Order", "object_id": 9001,
               "mode": "live", "data": {"id": 9001, "state": "paid", "via_cardtrader_zero": False,
                                        "seller": {"id": 1}, "order_items": [
                                            {"id": 1, "product_id": item.product_id, "quantity": 1}]}}
    event = WebhookEvent.objects.create(delivery_id="d1-" + uuid.uuid4().hex[:6], seller=seller,
                                        cause="order.create", object_id=9001, payload=payload,
                                        state=WebhookState.FAILED, attempts=10)
    post_action(staff_client, reverse("admin:syncops_webhookevent_changelist"), "reapply_selected", [event.pk])
    webhook_event_apply(event_id=event.pk)
    webhook_event_apply(event_id=event.pk)
    item.refresh_from_db()
    event.refresh_from_db()
    assert event.state == WebhookState.APPLIED
    assert item.quantity == 2


def test_filters_by_state_cause_and_seller(staff_client, make_seller):
    a, b = make_seller(), make_seller()
    created = _event(a)
    updated = _event(a, cause="order.update", state=WebhookState.APPLIED)
    other = _event(b)
    url = reverse("admin:syncops_webhookevent_changelist")

    def listed(**params) -> set[int]:
        return {e.pk for e in staff_client.get(url, params).context["cl"].result_list}

    assert listed(seller=str(a.pk)) == {created.pk, updated.pk}
    assert listed(seller=str(a.pk), cause="order.update") == {updated.pk}
    assert listed(state__exact="failed") >= {created.pk, other.pk}
    assert updated.pk not in listed(state__exact="failed")
    assert listed(q=created.delivery_id) == {created.pk}
    assert listed(q="555", seller=str(b.pk)) == {other.pk}
    assert listed(q="no-such-delivery") == set()


def test_reapply_with_auto_apply_off_resets_and_says_it_waits_for_the_flag(staff_client, make_seller, make_item,
                                                                          settings,
                                                                          django_capture_on_commit_callbacks):
    """The same service as with the flag on; nothing is applied (the callbacks run, the stock
    stays), and the message tells staff why."""
    from brxsync.celery import app

    settings.FEATURE_FLAGS = {**settings.FEATURE_FLAGS, "webhook_auto_apply": False}
    seller = make_seller()
    item = make_item(seller, quantity=3)
    payload = {"id": "d2", "time": 1, "cause": "order.create", "object_class": "Order", "object_id": 9002,
               "mode": "live", "data": {"id": 9002, "state": "paid", "via_cardtrader_zero": False,
                                        "order_items": [{"id": 1, "product_id": item.product_id, "quantity": 1}]}}
    event = _event(seller, object_id=9002, payload=payload, attempts=10)
    app.conf.task_always_eager = True  # a dispatch, were there one, would apply right here
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = post_action(staff_client, reverse("admin:syncops_webhookevent_changelist"),
                                   "reapply_selected", [event.pk])
    finally:
        app.conf.task_always_eager = False
    text = " ".join(messages_of(response))
    assert "1 re-applied" in text and "webhook_auto_apply feature flag is off" in text
    event.refresh_from_db()
    item.refresh_from_db()
    assert (event.state, event.attempts, item.quantity) == (WebhookState.RECEIVED, 0, 3)
