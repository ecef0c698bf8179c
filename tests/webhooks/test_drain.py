"""An apply takes along the seller's backlog (``WEBHOOK_DRAIN_ORDERS``, off by default, on here):
which pending deliveries it takes, which it leaves, and that the messages it overtook then change
nothing."""
from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from inventory.models import InventoryItem
from syncops.models import OrderLedger, WebhookEvent, WebhookState
from syncops.selectors.webhooks import WebhookTarget
from syncops.services import orders
from syncops.services.orders import webhook_events_apply
from syncops.services.webhooks import webhook_receive
from tests.webhooks import builders
from tests.webhooks.builders import order
from tests.webhooks.conftest import Shop, add_stock, make_shop

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _drain_on(settings):
    settings.WEBHOOK_DRAIN_ORDERS = 32


def store(shop: Shop, doc: dict) -> int:
    """Stored and handed to the queue (auto-apply on: ``dispatched_at`` set), not applied: the
    on-commit hand-off does not run inside the test's transaction."""
    body, sig = builders.signed(doc, shop.secret)
    return webhook_receive(target=WebhookTarget.of(shop.settings), body=body, signature=sig).event_id


def state(event_id: int) -> str:
    return WebhookEvent.objects.get(pk=event_id).state


def qty(shop: Shop, product_id: int) -> int:
    return InventoryItem.objects.get(seller=shop.user, product_id=product_id).quantity


def test_an_apply_takes_the_sellers_waiting_orders_along_and_leaves_the_rest(shop):
    other = make_shop()
    add_stock(shop, 111, 100)
    add_stock(other, 111, 100)
    own = store(shop, builders.delivery(order(1, "paid", [(111, 1)])))
    waiting = [store(shop, builders.delivery(order(n, "paid", [(111, 1)]))) for n in (2, 3, 4)]
    claimed_before = store(shop, builders.delivery(order(5, "paid", [(111, 1)])))
    never_handed_off = store(shop, builders.delivery(order(6, "paid", [(111, 1)])))
    test_mode = store(shop, builders.delivery(order(7, "paid", [(111, 1)]), mode="test"))
    other_seller = store(other, builders.delivery(order(2, "paid", [(111, 1)])))
    # a delivery its own message already tried (and failed): left to that message and the sweeper
    WebhookEvent.objects.filter(pk=claimed_before).update(attempts=1)
    # stored while auto-apply was off: the sweeper hands it off, not a drain
    WebhookEvent.objects.filter(pk=never_handed_off).update(dispatched_at=None)

    assert webhook_events_apply(event_ids=[own]) == {own: "applied"}

    assert [state(e) for e in waiting] == ["applied"] * 3
    assert qty(shop, 111) == 96
    assert state(claimed_before) == state(never_handed_off) == WebhookState.RECEIVED
    assert state(test_mode) == WebhookState.IGNORED
    assert state(other_seller) == WebhookState.RECEIVED and qty(other, 111) == 100
    # the messages the drain overtook: nothing left to claim, nothing moves twice
    assert webhook_events_apply(event_ids=waiting) == dict.fromkeys(waiting, "applied")
    assert qty(shop, 111) == 96
    assert OrderLedger.objects.filter(seller=shop.user).count() == 4
    assert WebhookEvent.objects.filter(pk__in=waiting, attempts=0).count() == 3, "never claimed: not counted"


def test_a_drain_takes_at_most_drain_orders_oldest_first(shop, settings):
    settings.WEBHOOK_DRAIN_ORDERS = 2
    add_stock(shop, 111, 100)
    own = store(shop, builders.delivery(order(1, "paid", [(111, 1)])))
    waiting = [store(shop, builders.delivery(order(n, "paid", [(111, 1)]))) for n in (2, 3, 4, 5)]
    webhook_events_apply(event_ids=[own])
    assert [state(e) for e in waiting] == ["applied", "applied", "received", "received"]


@pytest.mark.parametrize("why", ["claimed by its message", "not handed off yet"])
def test_a_drain_never_overtakes_an_older_delivery_it_may_not_take(shop, why):
    """Order 2 was sold, then cancelled (its stock given back), then order 3 sold that stock. If
    the cancellation is in flight elsewhere (or not handed off yet), applying order 3 before it
    would find no stock and record an oversell CardTrader never had: the drain stops there."""
    add_stock(shop, 111, 1)
    sold = store(shop, builders.delivery(order(2, "paid", [(111, 1)])))
    assert webhook_events_apply(event_ids=[sold]) == {sold: "applied"} and qty(shop, 111) == 0
    own = store(shop, builders.delivery(order(9, "paid", [(222, 1)])))
    cancelled = store(shop, builders.delivery(order(2, "canceled", [(111, 1)])))
    newer = store(shop, builders.delivery(order(3, "paid", [(111, 1)])))
    if why == "claimed by its message":
        WebhookEvent.objects.filter(pk=cancelled).update(attempts=1)
    else:
        WebhookEvent.objects.filter(pk=cancelled).update(dispatched_at=None)

    webhook_events_apply(event_ids=[own])
    assert state(newer) == WebhookState.RECEIVED, "the drain overtook the older cancellation"

    webhook_events_apply(event_ids=[cancelled])
    webhook_events_apply(event_ids=[newer])
    assert qty(shop, 111) == 0
    assert not OrderLedger.objects.filter(seller=shop.user, oversold__gt=0).exists()


def test_a_drain_skips_an_order_another_apply_holds(shop):
    """The order's advisory lock is held by another session (another worker applying it): a
    drain does not wait for it and does not take it; the holder applies it."""
    add_stock(shop, 111, 100)
    own = store(shop, builders.delivery(order(1, "paid", [(111, 1)])))
    held = store(shop, builders.delivery(order(2, "paid", [(111, 1)])))
    free = store(shop, builders.delivery(order(3, "paid", [(111, 1)])))
    dsn = {k: v for k, v in connection.get_connection_params().items() if k in ("dbname", "host", "port", "user")}
    with psycopg.connect(**dsn, autocommit=True) as other_worker:
        other_worker.execute("SELECT pg_advisory_lock(%s)", [orders._lock_key(shop.user.pk, 2)])
        webhook_events_apply(event_ids=[own])
    assert (state(held), state(free)) == (WebhookState.RECEIVED, WebhookState.APPLIED)
    assert qty(shop, 111) == 98


def test_a_waiting_order_that_breaks_the_batch_does_not_fail_the_messages_own(shop, monkeypatch):
    """If a drained order breaks the batch, the message's own deliveries are applied without it."""
    add_stock(shop, 111, 100)
    real = orders.order_view

    def broken_for_order_9(order_id, deliveries):
        if order_id == 9:
            raise RuntimeError("injected fault")
        return real(order_id, deliveries)

    own = store(shop, builders.delivery(order(1, "paid", [(111, 1)])))
    broken = store(shop, builders.delivery(order(9, "paid", [(111, 1)])))
    monkeypatch.setattr(orders, "order_view", broken_for_order_9)
    assert webhook_events_apply(event_ids=[own]) == {own: "applied"}
    assert state(broken) == WebhookState.RECEIVED
    assert qty(shop, 111) == 99
