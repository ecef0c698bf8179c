"""The sweeper (re-dispatch what the broker lost), retention, and applying under real concurrency."""
from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from inventory.models import InventoryItem
from syncops.models import OrderLedger, WebhookEvent, WebhookState
from syncops.selectors.webhooks import WebhookTarget
from syncops.services import webhooks as inbox
from syncops.services.orders import webhook_events_apply
from tests.webhooks import builders
from tests.webhooks.builders import order
from tests.webhooks.conftest import add_stock, make_shop


def stored(shop, doc: dict, *, age_s: float = 0, state: str = WebhookState.RECEIVED, dispatched: bool = True,
           attempts: int = 0) -> WebhookEvent:
    body, sig = builders.signed(doc, shop.secret)
    receipt = inbox.webhook_receive(target=WebhookTarget.of(shop.settings), body=body, signature=sig)
    past = timezone.now() - timedelta(seconds=age_s)
    WebhookEvent.objects.filter(pk=receipt.event_id).update(
        received_at=past, dispatched_at=past if dispatched else None, state=state, attempts=attempts
    )
    return WebhookEvent.objects.get(pk=receipt.event_id)


@pytest.mark.django_db
def test_sweeper_redispatches_only_old_unapplied_deliveries(shop, django_capture_on_commit_callbacks):
    old = stored(shop, builders.delivery(order(1, "paid", [(111, 1)])), age_s=60)
    lost = stored(shop, builders.delivery(order(2, "paid", [(111, 1)])), age_s=60, dispatched=False)
    fresh = stored(shop, builders.delivery(order(3, "paid", [(111, 1)])), age_s=1)
    done = stored(shop, builders.delivery(order(4, "paid", [(111, 1)])), age_s=60, state=WebhookState.APPLIED)
    stale = stored(shop, builders.delivery(order(5, "paid", [(111, 1)])), age_s=60, state=WebhookState.STALE)
    hopeless = stored(shop, builders.delivery(order(6, "paid", [(111, 1)])), age_s=60,
                      attempts=settings.WEBHOOK_MAX_ATTEMPTS)

    with django_capture_on_commit_callbacks() as callbacks:
        assert inbox.webhook_sweep(older_than_seconds=15) == 2
    assert len(callbacks) == 1
    swept = set(WebhookEvent.objects.filter(dispatched_at__gte=timezone.now() - timedelta(seconds=5))
                .values_list("pk", flat=True))
    assert {old.pk, lost.pk} <= swept
    assert done.pk not in swept and stale.pk not in swept
    fresh.refresh_from_db()
    hopeless.refresh_from_db()
    assert fresh.state == WebhookState.RECEIVED and hopeless.state == WebhookState.FAILED

    with django_capture_on_commit_callbacks() as callbacks:
        assert inbox.webhook_sweep(older_than_seconds=15) == 0, "re-sent at most once per interval"


@pytest.mark.django_db
def test_retention_prunes_settled_deliveries_and_keeps_failed_ones(shop, settings):
    settings.WEBHOOK_RETENTION_DAYS = 30
    month = 31 * 86400
    pruned = [stored(shop, builders.delivery(order(i, "paid", [(111, 1)])), age_s=month, state=s)
              for i, s in enumerate((WebhookState.APPLIED, WebhookState.IGNORED, WebhookState.STALE))]
    kept = [
        stored(shop, builders.delivery(order(10, "paid", [(111, 1)])), age_s=month, state=WebhookState.FAILED),
        stored(shop, builders.delivery(order(11, "paid", [(111, 1)])), age_s=month, state=WebhookState.RECEIVED),
        stored(shop, builders.delivery(order(12, "paid", [(111, 1)])), age_s=29 * 86400, state=WebhookState.APPLIED),
    ]
    inbox.webhook_prune(batch=2)
    remaining = set(WebhookEvent.objects.filter(seller=shop.user).values_list("pk", flat=True))
    assert remaining == {e.pk for e in kept}
    assert not remaining & {e.pk for e in pruned}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batch", [1, 5], ids=["one-by-one", "batches-of-5"])
def test_concurrent_applies_with_redelivery_are_exact(batch):
    """8 threads apply 40 orders' deliveries (each twice, shuffled) on 3 shared items, one per
    call or in batches (one transaction for several orders, as the worker does)."""
    shop = make_shop()
    for pid in (111, 222, 333):
        add_stock(shop, pid, 50)
    rng = random.Random(3)
    expected = {111: 50, 222: 50, 333: 50}
    event_ids = []
    for n in range(40):
        pid_a, pid_b = rng.sample([111, 222, 333], 2)
        sold = order(1000 + n, "paid", [(pid_a, 2), (pid_b, 1)])
        docs = [builders.delivery(sold), builders.delivery(dict(sold, state="sent"))]
        if n % 4 == 0:
            docs.append(builders.delivery(dict(sold, state="canceled")))
        else:
            expected[pid_a] -= 2
            expected[pid_b] -= 1
        for doc in docs:
            body, sig = builders.signed(doc, shop.secret)
            receipt = inbox.webhook_receive(target=WebhookTarget.of(shop.settings), body=body, signature=sig)
            event_ids.append(receipt.event_id)
    work = event_ids * 2
    rng.shuffle(work)

    def apply(event_ids: list[int]) -> dict[int, str]:
        # No retry: orders without CardTrader Zero merges take their locks in one global order,
        # so a deadlock here would be a bug.
        try:
            return webhook_events_apply(event_ids=event_ids)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(apply, [work[i:i + batch] for i in range(0, len(work), batch)]))
    got = dict(InventoryItem.objects.filter(seller=shop.user).values_list("product_id", "quantity"))
    assert got == expected
    assert set(WebhookEvent.objects.filter(seller=shop.user).values_list("state", flat=True)) == {"applied"}
    rows = OrderLedger.objects.filter(seller=shop.user)
    assert rows.count() == 80
    assert sum(r.decremented - r.restored for r in rows) == 150 - sum(expected.values())
