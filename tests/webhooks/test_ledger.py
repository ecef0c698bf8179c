"""CardTrader's order rules through the ledger, applied by the same service the worker runs.

Deliveries go in through ``webhook_receive`` (verify + store, the endpoint's service) and are
applied with ``webhook_event_apply`` (the task's body), so only the broker hop is skipped here;
tests/webhooks/test_worker.py covers that hop with a real worker.
"""
from __future__ import annotations

import itertools
import random

import pytest

from inventory.models import InventoryItem
from syncops.models import Conflict, ConflictKind, OperationKind, OrderLedger, SyncOperation, WebhookEvent
from syncops.selectors.webhooks import WebhookTarget
from syncops.services.orders import webhook_event_apply, webhook_events_apply
from syncops.services.webhooks import webhook_receive
from tests.webhooks import builders
from tests.webhooks.builders import destroy, order
from tests.webhooks.conftest import Shop, add_stock, make_shop

pytestmark = pytest.mark.django_db


def feed(shop: Shop, *docs: dict) -> list[str]:
    """Store and apply each delivery in turn; returns each delivery's final state."""
    states = []
    for doc in docs:
        body, sig = builders.signed(doc, shop.secret)
        receipt = webhook_receive(target=WebhookTarget.of(shop.settings), body=body, signature=sig)
        event_id = receipt.event_id or WebhookEvent.objects.get(delivery_id=receipt.delivery_id).pk
        states.append(webhook_event_apply(event_id=event_id))
    return states


def qty(shop: Shop, product_id: int) -> int:
    return InventoryItem.objects.get(seller=shop.user, product_id=product_id).quantity


def ledger(shop: Shop) -> list[tuple]:
    return list(
        OrderLedger.objects.filter(seller=shop.user)
        .order_by("order_id", "product_id")
        .values_list("order_id", "product_id", "quantity", "decremented", "oversold", "restored")
    )


def net(shop: Shop) -> dict[tuple[int, int], int]:
    """(order, product) → stock taken and not given back: the order-independent part of the ledger."""
    out: dict[tuple[int, int], int] = {}
    for row in OrderLedger.objects.filter(seller=shop.user):
        key = (row.order_id, row.product_id)
        out[key] = out.get(key, 0) + row.decremented - row.restored
    return out


def assert_no_echo(*shops: Shop) -> None:
    pushes = SyncOperation.objects.filter(
        seller__in=[s.user for s in shops],
        kind__in=[OperationKind.PUSH_UPDATE, OperationKind.PUSH_DELETE, OperationKind.ADJUST],
    )
    assert not pushes.exists(), "a webhook-driven change must never be pushed back to CardTrader"


@pytest.fixture
def stocked(shop) -> Shop:
    add_stock(shop, 111, 10)
    add_stock(shop, 222, 10)
    return shop


def test_paid_without_ct0_decrements_once_across_later_states(stocked):
    sold = order(1, "paid", [(111, 3), (222, 1)])
    later = [dict(sold, state=s) for s in ("sent", "arrived", "done")]
    feed(stocked, builders.delivery(sold, cause="order.create"), *[builders.delivery(o) for o in later])
    assert (qty(stocked, 111), qty(stocked, 222)) == (7, 9)
    assert ledger(stocked) == [(1, 111, 3, 3, 0, 0), (1, 222, 1, 1, 0, 0)]
    assert set(OrderLedger.objects.values_list("last_order_state", flat=True)) == {"done"}
    assert_no_echo(stocked)


def test_redelivery_of_the_same_delivery_has_no_second_effect(stocked):
    doc = builders.delivery(order(1, "paid", [(111, 3)]), cause="order.create")
    assert feed(stocked, doc, doc, doc) == ["applied", "applied", "applied"]
    assert qty(stocked, 111) == 7 and WebhookEvent.objects.filter(seller=stocked.user).count() == 1


def test_same_state_under_new_delivery_ids_decrements_once(stocked):
    sold = order(1, "paid", [(111, 3)])
    feed(stocked, builders.delivery(sold), builders.delivery(sold), builders.delivery(sold))
    assert qty(stocked, 111) == 7


def test_ct0_week_hub_pending_then_merged_paid_decrements_once(stocked):
    h1 = order(10, "hub_pending", [(111, 2)], ct0=True)
    h2 = order(11, "hub_pending", [(222, 1), (111, 1)], ct0=True)
    feed(stocked, builders.delivery(h1, cause="order.create"), builders.delivery(h2, cause="order.create"))
    assert (qty(stocked, 111), qty(stocked, 222)) == (7, 9), "CT0 sales count at hub_pending, not a week later"
    merged_items = [
        {**it, "id": it["id"] + 1_000_000, "hub_pending_order_id": o["id"]}  # new item ids, like the sandbox
        for o in (h1, h2) for it in o["order_items"]
    ]
    merged = order(99, "paid", merged_items, ct0=True, merged_ids=[10, 11])
    feed(
        stocked,
        builders.delivery(merged, cause="order.create"),
        builders.delivery(dict(h1, state="closed")),
        builders.delivery(dict(h2, state="closed")),
        builders.delivery(dict(merged, state="sent")),
    )
    assert (qty(stocked, 111), qty(stocked, 222)) == (7, 9)
    assert {r[0] for r in ledger(stocked)} == {10, 11}, "the merged order has no rows of its own"
    assert_no_echo(stocked)


def test_merged_ct0_paid_alone_never_decrements(stocked):
    merged = order(99, "paid", [{"id": 5, "product_id": 111, "quantity": 2, "hub_pending_order_id": 10}], ct0=True)
    feed(stocked, builders.delivery(merged, cause="order.create"))
    assert qty(stocked, 111) == 10 and OrderLedger.objects.filter(seller=stocked.user).count() == 0


def test_ct0_paid_without_hub_pending_ids_never_decrements(stocked):
    feed(stocked, builders.delivery(order(98, "paid", [(111, 2)], ct0=True), cause="order.create"))
    assert qty(stocked, 111) == 10


def test_cancelling_the_merged_order_restores_the_originals(stocked):
    h1 = order(10, "hub_pending", [(111, 2)], ct0=True)
    merged_items = [{**h1["order_items"][0], "id": 77, "hub_pending_order_id": 10}]
    merged = order(99, "paid", merged_items, ct0=True, merged_ids=[10])
    feed(stocked, builders.delivery(h1), builders.delivery(merged), builders.delivery(dict(merged, state="canceled")))
    assert qty(stocked, 111) == 10
    assert net(stocked) == {(10, 111): 0}


def test_merged_order_cancelled_before_its_original_is_seen_never_decrements(stocked):
    h1 = order(10, "hub_pending", [(111, 2)], ct0=True)
    merged = order(99, "canceled", [{**h1["order_items"][0], "id": 77, "hub_pending_order_id": 10}], ct0=True)
    feed(stocked, builders.delivery(merged), builders.delivery(h1), builders.delivery(dict(h1, state="closed")))
    assert qty(stocked, 111) == 10


def test_presale_decrements_only_the_items_of_their_own_hub_pending_order(stocked):
    mine = {"id": 1, "product_id": 111, "quantity": 1, "hub_pending_order_id": 20}
    elsewhere = {"id": 2, "product_id": 222, "quantity": 1, "hub_pending_order_id": 19}
    feed(stocked, builders.delivery(order(20, "hub_pending", [mine, elsewhere], ct0=True, presale=True)))
    assert (qty(stocked, 111), qty(stocked, 222)) == (9, 10)


def test_request_for_cancel_alone_restores_nothing(stocked):
    sold = order(1, "paid", [(111, 3)])
    feed(stocked, builders.delivery(sold), builders.delivery(dict(sold, state="request_for_cancel")))
    assert qty(stocked, 111) == 7, "CardTrader may refuse the request; the sale stands until canceled"
    feed(stocked, builders.delivery(dict(sold, state="sent")))
    assert qty(stocked, 111) == 7


def test_request_for_cancel_then_canceled_restores_once(stocked):
    sold = order(1, "paid", [(111, 3)])
    feed(
        stocked,
        builders.delivery(sold),
        builders.delivery(dict(sold, state="request_for_cancel")),
        builders.delivery(dict(sold, state="canceled")),
        builders.delivery(dict(sold, state="canceled")),
    )
    assert qty(stocked, 111) == 10
    assert ledger(stocked) == [(1, 111, 3, 3, 0, 3)]


def test_destroy_after_cancel_changes_nothing_more(stocked):
    sold = order(1, "paid", [(111, 3)])
    feed(stocked, builders.delivery(sold), builders.delivery(dict(sold, state="canceled")))
    before = (qty(stocked, 111), ledger(stocked))
    assert feed(stocked, destroy(1)) == ["applied"]
    assert (qty(stocked, 111), ledger(stocked)) == before == (10, [(1, 111, 3, 3, 0, 3)])


def test_destroy_with_empty_data_restores_a_paid_order(stocked):
    sold = order(1, "paid", [(111, 3)])
    feed(stocked, builders.delivery(sold), destroy(1))
    assert qty(stocked, 111) == 10


def test_destroy_before_the_order_is_seen_blocks_its_decrement(stocked):
    sold = order(1, "paid", [(111, 3)])
    feed(stocked, destroy(1), builders.delivery(sold, cause="order.create"))
    assert qty(stocked, 111) == 10
    row = OrderLedger.objects.get(seller=stocked.user)
    assert row.restored_at is not None and row.decremented == 0


def test_deleted_item_is_restored_alone(stocked):
    sold = order(1, "paid", [(111, 3), (222, 2)])
    after = dict(sold, order_items=[dict(sold["order_items"][0], deleted_at="2025-11-22T04:00:19.000Z"),
                                    sold["order_items"][1]])
    feed(stocked, builders.delivery(sold), builders.delivery(after))
    assert (qty(stocked, 111), qty(stocked, 222)) == (10, 8)


def test_oversell_clamps_at_zero_and_records_a_conflict(stocked):
    InventoryItem.objects.filter(product_id=111).update(quantity=1)
    sold = order(1, "paid", [(111, 3)])
    feed(stocked, builders.delivery(sold))
    assert qty(stocked, 111) == 0
    assert ledger(stocked) == [(1, 111, 3, 1, 2, 0)]
    conflict = Conflict.objects.get(seller=stocked.user, kind=ConflictKind.OVERSELL)
    details = conflict.details
    assert (conflict.order_id, conflict.product_id, details["sold"], details["held"]) == (1, 111, 3, 1)
    feed(stocked, builders.delivery(dict(sold, state="canceled")))
    assert qty(stocked, 111) == 1, "a cancellation gives back what was actually taken"
    conflict.refresh_from_db()
    assert conflict.resolved_at is not None and "cancel" in conflict.resolved_note, \
        "a cancelled order owes nothing: its oversell is no longer staff's to chase"


def test_cancelling_one_oversold_line_leaves_the_other_lines_oversell_open(stocked):
    """Two lines of one order sell the same product; one line is deleted (cancelled on its own):
    only that line's oversell is resolved."""
    InventoryItem.objects.filter(product_id=111).update(quantity=1)
    sold = order(1, "paid", [(111, 2), (111, 3)])
    feed(stocked, builders.delivery(sold))
    assert Conflict.objects.filter(seller=stocked.user, kind=ConflictKind.OVERSELL, resolved_at=None).count() == 2
    first, second = sold["order_items"]
    feed(stocked, builders.delivery(dict(sold, order_items=[first, dict(second, deleted_at="2025-11-22T04:00:19Z")])))
    still_open = Conflict.objects.filter(seller=stocked.user, kind=ConflictKind.OVERSELL, resolved_at=None)
    assert [c.details["order_item_id"] for c in still_open] == [first["id"]]


@pytest.mark.parametrize(("held", "expected"), [(2, 0), (3, 1)])
def test_a_cancellation_applied_after_a_later_sale_covers_that_sales_shortfall(stocked, held, expected):
    """CardTrader: order 1 takes 2, is cancelled (2 back), order 2 takes 2. Here order 1's
    cancellation is applied last (held up by a dead worker or a broker outage): order 2 first finds
    too little and records an oversell, then the returned units cover it, as CardTrader sold them."""
    InventoryItem.objects.filter(seller=stocked.user, product_id=111).update(quantity=held)
    first, second = order(1, "paid", [(111, 2)]), order(2, "paid", [(111, 2)])
    feed(stocked, builders.delivery(first), builders.delivery(second))
    assert qty(stocked, 111) == 0
    assert Conflict.objects.filter(seller=stocked.user, kind=ConflictKind.OVERSELL, resolved_at=None).count() == 1
    feed(stocked, builders.delivery(dict(first, state="canceled")))
    assert qty(stocked, 111) == expected == held - 2
    assert ledger(stocked) == [(1, 111, 2, 2, 0, 2), (2, 111, 2, 2, 0, 0)]
    assert not Conflict.objects.filter(seller=stocked.user, kind=ConflictKind.OVERSELL, resolved_at=None).exists()
    feed(stocked, builders.delivery(dict(second, state="canceled")))
    assert qty(stocked, 111) == held, "order 2's cancellation gives back all it now holds"


def test_a_shortfall_no_cancellation_covers_stays_an_oversell(stocked):
    InventoryItem.objects.filter(seller=stocked.user, product_id=111).update(quantity=1)
    feed(stocked, builders.delivery(order(1, "paid", [(111, 2)])))
    feed(stocked, builders.delivery(order(2, "paid", [(222, 1)])), builders.delivery(order(2, "canceled", [(222, 1)])))
    assert qty(stocked, 111) == 0 and ledger(stocked)[0] == (1, 111, 2, 1, 1, 0)
    assert Conflict.objects.filter(seller=stocked.user, kind=ConflictKind.OVERSELL, resolved_at=None).count() == 1


def test_unknown_product_is_recorded_not_dropped(stocked):
    feed(stocked, builders.delivery(order(1, "paid", [(111, 1), (999, 2)])))
    assert qty(stocked, 111) == 9
    row = OrderLedger.objects.get(seller=stocked.user, product_id=999)
    assert row.item_id is None and row.quantity == 2 and row.decremented == 0
    conflict = Conflict.objects.get(seller=stocked.user, kind=ConflictKind.UNKNOWN_PRODUCT)
    assert (conflict.product_id, conflict.order_id) == (999, 1)


def test_an_unreadable_order_fails_alone_and_the_order_still_applies(stocked):
    sold = order(1, "paid", [(111, 3)])
    broken = builders.delivery({"id": 1, "state": "sent"})  # no order_items
    assert feed(stocked, broken, builders.delivery(sold)) == ["failed", "applied"]
    assert qty(stocked, 111) == 7
    assert "order_items" in WebhookEvent.objects.get(seller=stocked.user, state="failed").error


def test_sellers_are_isolated(db):
    a, b = make_shop(), make_shop()
    add_stock(a, 111, 5)
    add_stock(b, 111, 5)
    feed(a, builders.delivery(order(1, "paid", [(111, 2)])))
    feed(b, builders.delivery(order(1, "canceled", [(111, 2)])))
    assert (qty(a, 111), qty(b, 111)) == (3, 5)


CANCELLED_LIFE = ("paid", "request_for_cancel", "canceled", "destroy")


@pytest.mark.parametrize("permutation", list(itertools.permutations(CANCELLED_LIFE)), ids="-".join)
def test_every_order_of_a_cancelled_orders_events_nets_to_nothing(stocked, permutation):
    sold = order(1, "paid", [(111, 3), (222, 2)])
    docs = [destroy(1) if s == "destroy" else builders.delivery(dict(sold, state=s)) for s in permutation]
    feed(stocked, *docs)
    assert (qty(stocked, 111), qty(stocked, 222)) == (10, 10)
    assert net(stocked) == {(1, 111): 0, (1, 222): 0}
    assert OrderLedger.objects.filter(seller=stocked.user, restored_at__isnull=True).count() == 0
    assert_no_echo(stocked)


def test_shuffled_ct0_weeks_and_cancellations_give_the_same_result(db):
    """25 random delivery orders (seeded) of one week: two CT0 sales, the merge, a direct sale
    that is cancelled, one that stands, duplicates; each must end exactly where in-order ends."""
    rng = random.Random(8)

    def week() -> list[dict]:
        h1 = order(10, "hub_pending", [(111, 2)], ct0=True)
        h2 = order(11, "hub_pending", [(222, 1)], ct0=True)
        merged = order(99, "paid", [{**it, "id": it["id"] + 10**6, "hub_pending_order_id": o["id"]}
                                    for o in (h1, h2) for it in o["order_items"]], ct0=True, merged_ids=[10, 11])
        direct = order(20, "paid", [(111, 1), (333, 4)])
        kept = order(21, "paid", [(333, 1)])
        docs = [builders.delivery(h1), builders.delivery(h2), builders.delivery(merged),
                builders.delivery(dict(h1, state="closed")), builders.delivery(dict(h2, state="closed")),
                builders.delivery(direct), builders.delivery(dict(direct, state="request_for_cancel")),
                builders.delivery(dict(direct, state="canceled")), destroy(20),
                builders.delivery(kept), builders.delivery(dict(kept, state="sent"))]
        return docs + rng.sample(docs, 3)  # duplicates: same delivery id, same bytes

    shops: list[Shop] = []

    def run(docs: list[dict]) -> tuple:
        shop = make_shop()
        shops.append(shop)
        for pid in (111, 222, 333):
            add_stock(shop, pid, 10)
        feed(shop, *docs)
        return (qty(shop, 111), qty(shop, 222), qty(shop, 333)), net(shop)

    expected = ((8, 9, 9), {(10, 111): 2, (11, 222): 1, (20, 111): 0, (20, 333): 0, (21, 333): 1})
    assert run(week()) == expected
    for _ in range(25):
        docs = week()
        rng.shuffle(docs)
        assert run(docs) == expected
    assert_no_echo(*shops)


def store(shop: Shop, *docs: dict) -> list[int]:
    """Store deliveries without applying them; the stored row ids (a duplicate's is the original's)."""
    ids = []
    for doc in docs:
        body, sig = builders.signed(doc, shop.secret)
        receipt = webhook_receive(target=WebhookTarget.of(shop.settings), body=body, signature=sig)
        ids.append(receipt.event_id or WebhookEvent.objects.get(delivery_id=receipt.delivery_id).pk)
    return ids


def test_batched_applies_across_sellers_give_the_in_order_result(db):
    """The worker applies several deliveries (of several orders and sellers) in one transaction:
    shuffled CT0 weeks with cancellations and duplicates, stored and applied in random batches
    interleaved with arrival, must end exactly where one-by-one in-order applying ends."""
    rng = random.Random(21)
    expected_qty, expected_net = (8, 9, 9), {(10, 111): 2, (11, 222): 1, (20, 111): 0, (20, 333): 0, (21, 333): 1}
    for _ in range(12):
        shops = [make_shop() for _ in range(2)]
        pending: list[int] = []
        arrivals = []
        for shop in shops:
            for pid in (111, 222, 333):
                add_stock(shop, pid, 10)
            h1 = order(10, "hub_pending", [(111, 2)], ct0=True)
            h2 = order(11, "hub_pending", [(222, 1)], ct0=True)
            merged = order(99, "paid", [{**it, "id": it["id"] + 10**6, "hub_pending_order_id": o["id"]}
                                        for o in (h1, h2) for it in o["order_items"]], ct0=True, merged_ids=[10, 11])
            direct, kept = order(20, "paid", [(111, 1), (333, 4)]), order(21, "paid", [(333, 1)])
            docs = [builders.delivery(h1), builders.delivery(h2), builders.delivery(merged),
                    builders.delivery(dict(h1, state="closed")), builders.delivery(dict(h2, state="closed")),
                    builders.delivery(direct), builders.delivery(dict(direct, state="canceled")), destroy(20),
                    builders.delivery(kept), builders.delivery(dict(kept, state="sent"))]
            arrivals += [(shop, doc) for doc in docs + rng.sample(docs, 3)]
        rng.shuffle(arrivals)
        for shop, doc in arrivals:
            pending += store(shop, doc)
            if rng.random() < 0.3:
                size = rng.randint(1, 6)
                webhook_events_apply(event_ids=pending[:size] + pending[:1])  # a repeated id, too
                pending = pending[size:]
        while pending:
            webhook_events_apply(event_ids=pending[:5])
            pending = pending[5:]
        for shop in shops:
            assert (qty(shop, 111), qty(shop, 222), qty(shop, 333)) == expected_qty
            assert net(shop) == expected_net
            assert set(WebhookEvent.objects.filter(seller=shop.user).values_list("state", flat=True)) == {"applied"}
        assert_no_echo(*shops)


def test_a_delivery_that_breaks_its_batch_is_isolated(stocked, monkeypatch):
    """An unexpected error while applying one order (a bug: none can be produced through the
    real inputs, hence the injected fault) must not hold back the other deliveries of its batch:
    they are applied one by one, the broken one keeps its error and stays `received` for the
    sweeper, and the error is raised for the task to report."""
    from syncops.services import orders

    real = orders.order_view

    def broken_for_order_31(order_id, deliveries):
        if order_id == 31:
            raise RuntimeError("injected fault")
        return real(order_id, deliveries)

    ids = store(stocked, builders.delivery(order(30, "paid", [(111, 1)])),
                builders.delivery(order(31, "paid", [(111, 2)])), builders.delivery(order(32, "paid", [(222, 3)])))
    monkeypatch.setattr(orders, "order_view", broken_for_order_31)
    with pytest.raises(RuntimeError, match="injected fault"):
        webhook_events_apply(event_ids=ids)
    assert (qty(stocked, 111), qty(stocked, 222)) == (9, 7)
    states = dict(WebhookEvent.objects.filter(pk__in=ids).values_list("object_id", "state"))
    assert states == {30: "applied", 31: "received", 32: "applied"}
    assert "injected fault" in WebhookEvent.objects.get(pk=ids[1]).error
    monkeypatch.setattr(orders, "order_view", real)
    assert webhook_events_apply(event_ids=[ids[1]]) == {ids[1]: "applied"}
    assert qty(stocked, 111) == 7
