"""The ``batch_updates`` kill switch, in this process against the sandbox over HTTP."""
from __future__ import annotations

import pytest

from inventory.models import InventoryItem
from inventory.services.edits import item_delete, item_edit
from syncops.models import OperationState, SyncOperation
from syncops.services.push import push_seller_run
from tests.push.helpers import connect_seller, mismatches

pytestmark = pytest.mark.django_db(transaction=True)

@pytest.mark.parametrize("batched", [True, False])
def test_batch_updates_flag_chooses_bulk_jobs_or_one_call_per_item(
        cardtrader_sandbox, sandbox_settings, fast_jobs, settings, batched):
    settings.FEATURE_FLAGS = {**settings.FEATURE_FLAGS, "batch_updates": batched}
    control = cardtrader_sandbox.control
    account, user = connect_seller(control, products=5, seed=7)
    items = list(InventoryItem.objects.filter(seller=user).order_by("pk"))
    for n, item in enumerate(items[:3]):
        item_edit(seller=user, item_id=item.pk, changes={"price_cents": 1000 + n, "description": f"box {n}"})
    item_delete(seller=user, item_id=items[3].pk)
    gone = items[3].product_id

    push_seller_run(str(user.pk))

    writes = [e for e in control.request_log(account.user_id) if e["method"] in ("PUT", "DELETE", "POST")]
    bulk = [e for e in writes if "bulk_" in e["path"]]
    single = [e for e in writes if "bulk_" not in e["path"]]
    if batched:
        assert len(bulk) == 2 and not single
    else:
        assert not bulk
        assert sorted(e["method"] for e in single) == ["DELETE", "PUT", "PUT", "PUT"]
    assert not SyncOperation.objects.filter(seller=user).exclude(state=OperationState.SUCCEEDED).exists()
    assert mismatches(control, account, user) == []
    assert gone not in {p["id"] for p in control.products(account.user_id)}
    assert not InventoryItem.objects.filter(pk=items[3].pk).exists()

def test_single_item_writes_land_refusals_and_missing_products(cardtrader_sandbox, sandbox_settings, settings):
    """With bulk jobs off, CardTrader's per-item answers still land per item: a product gone on
    CardTrader fails its update (reconcile decides) and counts as done for a delete."""
    settings.FEATURE_FLAGS = {**settings.FEATURE_FLAGS, "batch_updates": False}
    control = cardtrader_sandbox.control
    account, user = connect_seller(control, products=3, seed=9)
    a, b, c = InventoryItem.objects.filter(seller=user).order_by("pk")
    control.delete_product(account.user_id, a.product_id)
    control.delete_product(account.user_id, b.product_id)
    item_edit(seller=user, item_id=a.pk, changes={"price_cents": 321})
    item_delete(seller=user, item_id=b.pk)
    item_edit(seller=user, item_id=c.pk, changes={"price_cents": 654})

    push_seller_run(str(user.pk))

    states = dict(SyncOperation.objects.filter(seller=user).values_list("item_id", "state"))
    assert states[a.pk] == OperationState.FAILED
    assert SyncOperation.objects.get(product_id=b.product_id, seller=user).state == OperationState.SUCCEEDED
    assert states[c.pk] == OperationState.SUCCEEDED
    assert {p["id"]: p["price_cents"] for p in control.products(account.user_id)}[c.product_id] == 654
