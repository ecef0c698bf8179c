"""Stock in the console: an edit goes through ``item_edit`` (same outbox row as the API's PATCH),
a bad edit is refused with the API's message and writes nothing; search and sync-state filters."""
from __future__ import annotations

import json

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from inventory.models import InventoryItem, ItemSyncState
from syncops.models import OperationKind, OperationState, SyncOperation
from tests.admin_console.conftest import messages_of, post_action

pytestmark = pytest.mark.django_db


def _form(item: InventoryItem, **changes) -> dict:
    data = {"quantity": item.quantity, "price_cents": item.price_cents, "description": item.description,
            "user_data_field": item.user_data_field, "properties": json.dumps(item.properties),
            # Rendered by the admin as a hidden input (the model field's default is callable).
            "initial-properties": json.dumps(item.properties)}
    if item.graded:
        data["graded"] = "on"
    data.update(changes)
    return data


def test_edit_queues_the_same_push_operation_as_the_api(staff_client, staff_user, make_seller, make_item,
                                                        django_capture_on_commit_callbacks):
    item = make_item(make_seller(), quantity=5, price_cents=250)
    url = reverse("admin:inventory_inventoryitem_change", args=[item.pk])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(url, _form(item, quantity="7", price_cents="300"))
    assert response.status_code == 302

    item.refresh_from_db()
    assert (item.quantity, item.price_cents, item.sync_state, item.version) == (7, 300, ItemSyncState.PENDING_PUSH, 2)
    op = SyncOperation.objects.get(item=item)
    assert op.kind == OperationKind.PUSH_UPDATE and op.state == OperationState.PENDING
    assert set(op.payload["fields"]) == {"quantity", "price_cents"}
    assert len(callbacks) == 1  # the push dispatch, after commit, as from the API
    assert LogEntry.objects.filter(user=staff_user, object_id=str(item.pk)).exists()


def test_unchanged_form_writes_nothing(staff_client, make_seller, make_item):
    item = make_item(make_seller())
    staff_client.post(reverse("admin:inventory_inventoryitem_change", args=[item.pk]), _form(item))
    item.refresh_from_db()
    assert item.version == 1 and not SyncOperation.objects.filter(item=item).exists()


def test_invalid_edit_is_refused_with_the_services_message(staff_client, make_seller, make_item):
    item = make_item(make_seller())
    url = reverse("admin:inventory_inventoryitem_change", args=[item.pk])
    response = staff_client.post(url, _form(item, price_cents="0"))
    assert response.status_code == 200
    assert "CardTrader refuses a zero price" in response.content.decode()
    bad_props = staff_client.post(url, _form(item, properties=json.dumps({"condition": "Shiny"})))
    assert bad_props.status_code == 200 and "condition" in bad_props.content.decode()
    item.refresh_from_db()
    assert item.price_cents == 250 and item.version == 1
    assert not SyncOperation.objects.filter(item=item).exists()


def test_delete_action_marks_pending_delete_through_the_service(staff_client, make_seller, make_item):
    seller = make_seller()
    item, gone = make_item(seller), make_item(seller)
    post_action(staff_client, reverse("admin:inventory_inventoryitem_changelist"), "delete_on_cardtrader",
                [item.pk])
    response = post_action(staff_client, reverse("admin:inventory_inventoryitem_changelist"),
                           "delete_on_cardtrader", [item.pk, gone.pk])
    assert "1 queued for deletion" in " ".join(messages_of(response))
    assert "item_pending_delete" in " ".join(messages_of(response))
    item.refresh_from_db()
    assert item.sync_state == ItemSyncState.PENDING_DELETE
    assert SyncOperation.objects.filter(item=item, kind=OperationKind.PUSH_DELETE).count() == 1


def _listed(client, **params) -> set[int]:
    response = client.get(reverse("admin:inventory_inventoryitem_changelist"), params)
    assert response.status_code == 200
    return {i.pk for i in response.context["cl"].result_list}


def test_search_and_sync_state_filters(staff_client, make_seller, make_item):
    seller = make_seller()
    bolt = make_item(seller, name="Lightning Bolt", blueprint_id=7001)
    island = make_item(seller, name="Island", blueprint_id=7002, sync_state=ItemSyncState.PENDING_PUSH)
    conflict = make_item(seller, name="Counterspell", sync_state=ItemSyncState.CONFLICT)
    removed = make_item(seller, name="Forest", sync_state=ItemSyncState.REMOVED_REMOTE, print_id=5)
    deleting = make_item(seller, name="Swamp", sync_state=ItemSyncState.PENDING_DELETE, print_id=6)
    mine = {bolt.pk, island.pk, conflict.pk, removed.pk, deleting.pk}

    assert _listed(staff_client, q="lightning") & mine == {bolt.pk}
    assert _listed(staff_client, q=str(island.product_id)) == {island.pk}
    assert _listed(staff_client, q="7001") & mine == {bolt.pk}
    assert _listed(staff_client, sync="pending", seller=str(seller.pk)) == {island.pk, deleting.pk}
    assert _listed(staff_client, sync="conflict", seller=str(seller.pk)) == {conflict.pk}
    assert _listed(staff_client, sync="removed", seller=str(seller.pk)) == {removed.pk}
    assert _listed(staff_client, sync="unmapped", seller=str(seller.pk)) == {bolt.pk, island.pk, conflict.pk}
