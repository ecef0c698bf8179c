"""Local writes: the item change and its outbox row commit together; bad input changes nothing."""
from __future__ import annotations

import threading

import pytest
from django.db import connection

from inventory.models import InventoryItem
from inventory.services.edits import (
    BatchEdit,
    EditInvalid,
    InsufficientStock,
    ItemBeingDeleted,
    ItemNotFound,
    item_adjust,
    item_delete,
    item_edit,
    items_batch,
)
from syncops.models import SyncOperation


def test_edit_writes_item_and_outbox_row_and_dispatches_on_commit(seller, make_item,
                                                                   django_capture_on_commit_callbacks):
    item = make_item(seller, description="old", properties={"condition": "Near Mint", "mtg_foil": True})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        op = item_edit(seller=seller, item_id=item.pk, changes={
            "price_cents": 399, "description": None, "properties": {"foil": False, "condition": "SP"}})
    item.refresh_from_db()
    assert (item.price_cents, item.description, item.sync_state, item.version) == (399, "", "pending_push", 2)
    assert item.properties == {"condition": "Slightly Played", "mtg_foil": False}
    assert op.kind == "push_update" and op.state == "pending" and op.item_id == item.pk
    assert op.payload == {"fields": ["description", "price_cents", "properties"], "version": 2}
    assert op.operation_key == f"push_update:{item.pk}:v2"
    assert len(callbacks) == 1


def test_invalid_edit_changes_nothing(seller, make_item):
    item = make_item(seller)
    with pytest.raises(EditInvalid) as err:
        item_edit(seller=seller, item_id=item.pk, changes={
            "price_cents": -1, "quantity": "3", "properties": {"language": "Klingon"}, "name": "x"})
    assert set(err.value.details) == {"price_cents", "quantity", "properties", "name"}
    with pytest.raises(EditInvalid):
        item_edit(seller=seller, item_id=item.pk, changes={"price_cents": 0})
    item.refresh_from_db()
    assert item.version == 1 and item.price_cents == 250
    assert not SyncOperation.objects.filter(item=item).exists()


def test_other_sellers_item_is_not_found(seller, make_item, django_user_model):
    other = django_user_model.objects.create(username="other-seller")
    item = make_item(other)
    with pytest.raises(ItemNotFound):
        item_edit(seller=seller, item_id=item.pk, changes={"quantity": 1})
    with pytest.raises(ItemNotFound):
        item_adjust(seller=seller, item_id=item.pk, delta=-1)


def test_delete_keeps_the_row_pending_and_blocks_further_edits(seller, make_item):
    item = make_item(seller)
    op = item_delete(seller=seller, item_id=item.pk)
    item.refresh_from_db()
    assert item.sync_state == "pending_delete" and op.kind == "push_delete"
    with pytest.raises(ItemBeingDeleted):
        item_edit(seller=seller, item_id=item.pk, changes={"quantity": 1})
    with pytest.raises(ItemBeingDeleted):
        item_adjust(seller=seller, item_id=item.pk, delta=1)


def test_adjust_refuses_to_go_below_zero_and_changes_nothing(seller, make_item):
    item = make_item(seller, quantity=2)
    op = item_adjust(seller=seller, item_id=item.pk, delta=-2, reason="sale")
    assert op.payload == {"delta": -2, "reason": "sale", "version": 2}
    with pytest.raises(InsufficientStock) as err:
        item_adjust(seller=seller, item_id=item.pk, delta=-1)
    assert err.value.status == 409
    item.refresh_from_db()
    assert item.quantity == 0 and item.version == 2
    assert SyncOperation.objects.filter(item=item).count() == 1
    with pytest.raises(EditInvalid):
        item_adjust(seller=seller, item_id=item.pk, delta=0)


def test_batch_is_all_or_nothing(seller, make_item):
    a, b = make_item(seller, quantity=1), make_item(seller, quantity=1)
    with pytest.raises(InsufficientStock) as err:
        items_batch(seller=seller, edits=[
            BatchEdit(item_id=a.pk, action="update", changes={"price_cents": 999}),
            BatchEdit(item_id=b.pk, action="adjust", delta=-5),
        ])
    assert err.value.details["index"] == 1
    a.refresh_from_db()
    assert a.price_cents == 250 and not SyncOperation.objects.filter(seller=seller).exists()
    ops = items_batch(seller=seller, edits=[
        BatchEdit(item_id=a.pk, action="update", changes={"price_cents": 999}),
        BatchEdit(item_id=a.pk, action="adjust", delta=-1),
        BatchEdit(item_id=b.pk, action="delete"),
    ])
    assert [op.kind for op in ops] == ["push_update", "adjust", "push_delete"]
    assert len({op.operation_key for op in ops}) == 3


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_sales_of_ten(seller, make_item):
    """Real threads, real PostgreSQL connections: exactly ten sales win, stock ends at zero."""
    item = make_item(seller, quantity=10)
    results: list[str] = []
    barrier = threading.Barrier(50)

    def sell():
        try:
            barrier.wait()
            item_adjust(seller=seller, item_id=item.pk, delta=-1, reason="sale")
            results.append("ok")
        except InsufficientStock:
            results.append("refused")
        finally:
            connection.close()

    from unittest import mock

    # Dispatch goes to the broker; no worker in this test, so it is stubbed out (the push itself
    # is exercised against the sandbox in test_push_e2e).
    with mock.patch("syncops.services.push_dispatch.push_dispatch"):
        threads = [threading.Thread(target=sell) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    item.refresh_from_db()
    assert results.count("ok") == 10 and results.count("refused") == 40
    assert item.quantity == 0 and item.version == 11
    assert SyncOperation.objects.filter(item=item, kind="adjust").count() == 10
    assert InventoryItem.objects.filter(pk=item.pk, quantity__lt=0).count() == 0
