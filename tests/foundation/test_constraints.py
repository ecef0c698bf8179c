"""The database itself refuses bad rows: invariants hold whatever process writes them."""
import pytest
from django.db import IntegrityError, connection, transaction

from inventory.models import InventoryItem, SyncSettings, User
from syncops.models import OrderLedger, SyncOperation, WebhookEvent


def _item(seller, **kw):
    defaults = {"seller": seller, "product_id": 100, "blueprint_id": 1, "quantity": 1}
    defaults.update(kw)
    return InventoryItem.objects.create(**defaults)


@pytest.mark.django_db
def test_negative_quantity_refused(seller):
    with pytest.raises(IntegrityError, match="item_quantity_non_negative"), transaction.atomic():
        _item(seller, quantity=-1)


@pytest.mark.django_db
def test_negative_quantity_refused_even_by_raw_update(seller):
    item = _item(seller, quantity=2)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE inventory_inventoryitem SET quantity = quantity - 5 WHERE id = %s", [item.pk])
    item.refresh_from_db()
    assert item.quantity == 2


@pytest.mark.django_db
def test_duplicate_product_per_seller_refused_but_allowed_across_sellers(seller):
    _item(seller, product_id=7)
    with pytest.raises(IntegrityError, match="item_unique_seller_product"), transaction.atomic():
        _item(seller, product_id=7)
    other = User.objects.create(username="other")
    _item(other, product_id=7)
    assert InventoryItem.objects.filter(product_id=7).count() == 2


@pytest.mark.django_db
def test_duplicate_operation_key_refused(seller):
    SyncOperation.objects.create(operation_key="k1", seller=seller, kind="push_update")
    with pytest.raises(IntegrityError), transaction.atomic():
        SyncOperation.objects.create(operation_key="k1", seller=seller, kind="push_delete")


@pytest.mark.django_db
def test_duplicate_webhook_delivery_refused(seller):
    WebhookEvent.objects.create(delivery_id="d-1", seller=seller, cause="order.create", object_id=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookEvent.objects.create(delivery_id="d-1", seller=seller, cause="order.update", object_id=1)


@pytest.mark.django_db
def test_ledger_cannot_restore_more_than_taken(seller):
    with pytest.raises(IntegrityError, match="ledger_restore_le_taken"), transaction.atomic():
        OrderLedger.objects.create(
            seller=seller, order_id=1, order_item_id=1, product_id=1, quantity=2, decremented=1, restored=2
        )


@pytest.mark.django_db
def test_reserved_share_range_enforced(seller):
    settings_row = SyncSettings.objects.get(user=seller)
    settings_row.reserved_share = 1.5
    with pytest.raises(IntegrityError), transaction.atomic():
        settings_row.save()


@pytest.mark.django_db
def test_open_operations_partial_index_exists():
    with connection.cursor() as cur:
        cur.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'op_seller_open_idx'")
        (indexdef,) = cur.fetchone()
    assert "WHERE" in indexdef and "pending" in indexdef and "running" in indexdef


@pytest.mark.django_db
def test_webhook_ids_are_unguessable_and_distinct():
    a = SyncSettings.objects.create(user=User.objects.create(username="a"))
    b = SyncSettings.objects.create(user=User.objects.create(username="b"))
    assert a.webhook_id != b.webhook_id
    assert len(a.webhook_id) >= 32
    assert str(a.user_id) not in a.webhook_url
