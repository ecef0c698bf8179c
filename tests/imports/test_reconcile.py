"""Reconcile end to end: changes made on CardTrader's side (sales, edits on its website, deletes,
new listings) are reported exactly by a dry run, which changes nothing, and fixed by a real run."""
from __future__ import annotations

import pytest

from inventory.models import InventoryItem, ItemSyncState
from syncops.models import OperationState
from syncops.services.imports import import_run, import_start
from syncops.services.reconcile import reconcile_run, reconcile_start
from tests.imports.conftest import assert_within_budget, export_by_id

pytestmark = pytest.mark.django_db(databases=["default", "blueprints"])


def _snapshot(seller):
    return list(InventoryItem.objects.filter(seller=seller).order_by("product_id").values())


def test_dry_run_reports_exactly_the_remote_changes_and_a_real_run_fixes_them(
        connected_seller, sandbox_account, control, catalogue_prints):
    uid = sandbox_account.user_id
    control.seed_products(uid, 400, seed=3)
    assert import_run(import_start(seller=connected_seller, dispatch=False).pk).state == OperationState.SUCCEEDED
    rows = sorted(control.products(uid), key=lambda r: r["id"])
    multi = [r for r in rows if r["quantity"] >= 2]
    sold, repriced, reconditioned, deleted = multi[0], multi[1], multi[2], multi[3]
    control.sell(uid, [{"product_id": sold["id"], "quantity": 1}])
    control.update_product(uid, repriced["id"], price=(repriced["price_cents"] + 123) / 100)
    new_condition = "Played" if reconditioned["properties_hash"].get("condition") != "Played" else "Poor"
    control.update_product(uid, reconditioned["id"], properties={"condition": new_condition})
    control.delete_product(uid, deleted["id"])
    added = control.add_product(uid, blueprint_id=rows[0]["blueprint_id"], price=99.99, quantity=3,
                                description="listed on the website")
    added_id = added["id"]
    # A local edit still waiting to be pushed is reported, never overwritten.
    pending = multi[4]
    control.update_product(uid, pending["id"], quantity=1)
    InventoryItem.objects.filter(seller=connected_seller, product_id=pending["id"]).update(
        sync_state=ItemSyncState.PENDING_PUSH, quantity=7)

    before = _snapshot(connected_seller)
    dry = reconcile_run(reconcile_start(seller=connected_seller, dry_run=True, dispatch=False).pk)
    assert dry.state == OperationState.SUCCEEDED, dry.result
    assert _snapshot(connected_seller) == before  # a dry run changes nothing
    counts = dry.result["counts"]
    assert counts == {
        "missing_locally": 1, "missing_remotely": 1, "quantity_drift": 1, "price_drift": 1,
        "property_drift": 1, "other_drift": 0, "drifted_items": 3, "pending_local": 1,
    }
    by_kind = {(i["kind"], i["product_id"]) for i in dry.result["items"]}
    assert by_kind == {
        ("missing_locally", added_id), ("missing_remotely", deleted["id"]), ("drift", sold["id"]),
        ("drift", repriced["id"]), ("drift", reconditioned["id"]), ("pending_local", pending["id"]),
    }
    sold_entry = next(i for i in dry.result["items"] if i["product_id"] == sold["id"])
    assert sold_entry["fields"] == ["quantity"]
    assert sold_entry["remote"]["quantity"] == sold_entry["local"]["quantity"] - 1
    assert dry.result["applied"] == {}

    real = reconcile_run(reconcile_start(seller=connected_seller, dispatch=False).pk)
    assert real.state == OperationState.SUCCEEDED
    assert real.result["applied"] == {"inserted": 1, "updated": 3, "removed": 1}
    export = export_by_id(control, uid)
    items = {i.product_id: i for i in InventoryItem.objects.filter(seller=connected_seller)}
    for pid, row in export.items():
        if pid == pending["id"]:
            continue
        item = items[pid]
        assert (item.quantity, item.price_cents, item.properties, item.description) == (
            row["quantity"], row["price_cents"], row["properties_hash"], row["description"]), pid
        assert item.sync_state == ItemSyncState.IN_SYNC
    gone = items[deleted["id"]]
    assert (gone.sync_state, gone.quantity) == (ItemSyncState.REMOVED_REMOTE, 0)
    assert (items[pending["id"]].quantity, items[pending["id"]].sync_state) == (7, ItemSyncState.PENDING_PUSH)

    again = reconcile_run(reconcile_start(seller=connected_seller, dry_run=True, dispatch=False).pk)
    assert {k: v for k, v in again.result["counts"].items() if k != "pending_local"} == dict.fromkeys(
        ("missing_locally", "missing_remotely", "quantity_drift", "price_drift", "property_drift", "other_drift",
         "drifted_items"), 0)
    assert_within_budget(control, uid)
