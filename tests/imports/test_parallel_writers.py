"""Imports written by several connections side by side (``IMPORT_WRITERS`` > 1, ``ChunkWriter``).

These tests run without a wrapping test transaction (``transaction=True``): the writers' own
connections must see the seller, exactly as in a worker. Inside a caller's transaction the writer
is inline (the other import tests cover that path)."""
from __future__ import annotations

import threading

import pytest

from inventory.models import InventoryItem, ItemSyncState
from syncops.models import OperationState, SyncOperation
from syncops.services.imports import import_run, import_start
from syncops.services.lease import lease_acquire, lease_release
from tests.imports.conftest import assert_within_budget, export_by_id
from tests.imports.test_import import _assert_local_equals_export

pytestmark = pytest.mark.django_db(databases=["default", "blueprints"], transaction=True)


def _writer_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("import-writer-")}


def test_parallel_writers_import_equals_the_export_with_exact_counts_and_resync_exactly(
        connected_seller, sandbox_account, control, catalogue_prints, settings):
    settings.IMPORT_WRITERS = 3
    settings.IMPORT_CHUNK_SIZE = 400
    uid = sandbox_account.user_id
    control.seed_products(uid, 6_000, seed=11)
    export = export_by_id(control, uid)
    seen_writers: set[str] = set()
    progress: list[int] = []

    def watch(p: dict) -> None:
        seen_writers.update(_writer_threads())
        progress.append(p["processed"])

    op = import_start(seller=connected_seller, dispatch=False)
    outcome = import_run(op.pk, progress=watch)

    assert outcome.state == OperationState.SUCCEEDED, outcome.result
    assert seen_writers == {"import-writer-0", "import-writer-1", "import-writer-2"}
    assert not _writer_threads()  # joined, connections closed
    _assert_local_equals_export(connected_seller, export, catalogue_prints)
    op.refresh_from_db()
    assert (op.result["processed"], op.result["inserted"], op.result["updated"]) == (6_000, 6_000, 0)
    assert (op.progress_done, op.progress_total) == (6_000, 6_000)
    assert progress == sorted(progress) and progress[-1] == 6_000

    # CardTrader-side changes: exactly those are written by the next import, nothing else.
    rows = sorted(control.products(uid), key=lambda r: r["id"])
    sold = next(r for r in rows if r["quantity"] >= 2)  # still listed after one is sold
    deleted = rows[4_000]
    control.sell(uid, [{"product_id": sold["id"], "quantity": 1}])
    control.delete_product(uid, deleted["id"])
    added = control.add_product(uid, blueprint_id=rows[0]["blueprint_id"], price=1.5, quantity=2)
    versions = dict(InventoryItem.objects.filter(seller=connected_seller).values_list("product_id", "version"))

    again = import_run(import_start(seller=connected_seller, dispatch=False).pk)

    assert again.state == OperationState.SUCCEEDED, again.result
    assert (again.result["inserted"], again.result["updated"], again.result["removed"]) == (1, 1, 1)
    assert again.result["unchanged"] == 6_000 - 2
    _assert_local_equals_export_kept(connected_seller, export_by_id(control, uid), catalogue_prints)
    gone = InventoryItem.objects.get(seller=connected_seller, product_id=deleted["id"])
    assert (gone.sync_state, gone.quantity) == (ItemSyncState.REMOVED_REMOTE, 0)
    after = dict(InventoryItem.objects.filter(seller=connected_seller).values_list("product_id", "version"))
    bumped = {pid for pid, v in after.items() if v != versions.get(pid)}
    assert bumped == {sold["id"], deleted["id"], added["id"]}
    assert InventoryItem.objects.filter(seller=connected_seller).count() == 6_001
    assert_within_budget(control, uid)


def _assert_local_equals_export_kept(seller, export: dict[int, dict], mapping) -> None:
    """The export equals the in-sync items; everything else is flagged removed."""
    listed = InventoryItem.objects.filter(seller=seller, product_id__in=list(export))
    assert listed.count() == len(export)
    assert not listed.exclude(sync_state=ItemSyncState.IN_SYNC).exists()
    rest = InventoryItem.objects.filter(seller=seller).exclude(product_id__in=list(export))
    assert set(rest.values_list("sync_state", flat=True)) <= {ItemSyncState.REMOVED_REMOTE}


def test_a_writer_that_loses_the_lease_fails_the_run_and_commits_nothing_more(
        connected_seller, sandbox_account, control, catalogue_prints, settings):
    settings.IMPORT_WRITERS = 2
    settings.IMPORT_CHUNK_SIZE = 300
    uid = sandbox_account.user_id
    control.seed_products(uid, 6_000, seed=12)
    op = import_start(seller=connected_seller, dispatch=False)
    stolen: list[int] = []

    def steal(p: dict) -> None:
        if not stolen and p["processed"] > 0:  # another operation takes the seller over
            assert lease_release(connected_seller.pk, f"op:{op.pk}")
            assert lease_acquire(connected_seller.pk, "op:999999", seconds=60)
            stolen.append(InventoryItem.objects.filter(seller=connected_seller).count())

    outcome = import_run(op.pk, progress=steal)

    assert outcome.state == OperationState.FAILED and outcome.result["error_code"] == "lease_lost", outcome.result
    assert not _writer_threads()
    written = InventoryItem.objects.filter(seller=connected_seller).count()
    # Chunks already past their heartbeat when the lease went may commit; nothing after them.
    assert stolen and written <= stolen[0] + 2 * 300 < 6_000, (stolen, written)
    op.refresh_from_db()
    assert op.state == OperationState.FAILED
    assert not SyncOperation.objects.filter(pk=op.pk, state=OperationState.SUCCEEDED).exists()
