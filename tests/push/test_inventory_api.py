"""The inventory endpoints: 202 with operation ids, Idempotency-Key, 409 below zero, filters."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from inventory.models import InventoryItem
from syncops.models import SyncOperation


@pytest.fixture
def client(db):
    from brxsync.api.models import ApiKey

    _, raw = ApiKey.generate("push-tests")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return api


def url(seller, suffix=""):
    return f"/api/v1/sellers/{seller.pk}/inventory{suffix}"


def test_patch_delete_adjust_answer_202_with_the_operation(client, seller, make_item):
    item = make_item(seller, quantity=1)
    r = client.patch(url(seller, f"/{item.pk}"), {"price_cents": 120, "description": None,
                                                  "properties": {"condition": "MP", "language": "Japanese"}},
                     format="json")
    assert r.status_code == 202, r.content
    op = SyncOperation.objects.get(pk=r.json()["operation_id"])
    assert op.kind == "push_update" and op.item_id == item.pk
    item.refresh_from_db()
    assert item.properties["condition"] == "Moderately Played" and item.properties["mtg_language"] == "jp"

    r = client.post(url(seller, f"/{item.pk}/adjust"), {"delta": -2, "reason": "sale"}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_stock"
    r = client.post(url(seller, f"/{item.pk}/adjust"), {"delta": -1}, format="json")
    assert r.status_code == 202
    item.refresh_from_db()
    assert item.quantity == 0

    r = client.delete(url(seller, f"/{item.pk}"))
    assert r.status_code == 202
    assert InventoryItem.objects.get(pk=item.pk).sync_state == "pending_delete"
    r = client.patch(url(seller, f"/{item.pk}"), {"price_cents": 5}, format="json")
    assert r.status_code == 409


def test_bad_input_is_a_field_error_and_changes_nothing(client, seller, make_item):
    item = make_item(seller)
    r = client.patch(url(seller, f"/{item.pk}"), {"properties": {"language": "Klingon"}, "quantity": -1},
                     format="json")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "validation_error"
    assert InventoryItem.objects.get(pk=item.pk).version == 1
    assert client.patch(url(seller, "/999999999"), {"quantity": 1}, format="json").status_code == 404


def test_idempotency_key_replays_without_a_second_operation(client, seller, make_item):
    item = make_item(seller, quantity=5)
    first = client.post(url(seller, f"/{item.pk}/adjust"), {"delta": -1}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post(url(seller, f"/{item.pk}/adjust"), {"delta": -1}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert InventoryItem.objects.get(pk=item.pk).quantity == 4
    assert SyncOperation.objects.filter(item=item).count() == 1


def test_batch_and_list(client, seller, make_item):
    a, b = make_item(seller, blueprint_id=6), make_item(seller, blueprint_id=7)
    r = client.post(url(seller, "/batch"), {"edits": [
        {"item_id": a.pk, "action": "update", "changes": {"price_cents": 77}},
        {"item_id": b.pk, "action": "adjust", "delta": -1},
    ]}, format="json")
    assert r.status_code == 202, r.content
    assert len(r.json()["operation_ids"]) == 2
    r = client.get(url(seller), {"blueprint_id": 7})
    assert [row["id"] for row in r.json()["results"]] == [b.pk]
    r = client.get(url(seller), {"sync_state": "pending_push", "limit": 1})
    assert len(r.json()["results"]) == 1 and r.json()["next"]
    assert client.get(url(seller), {"sync_state": "bogus"}).status_code == 400
