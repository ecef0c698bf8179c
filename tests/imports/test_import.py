"""Import end to end: the sandbox over HTTP, the real MariaDB catalogue, PostgreSQL."""
from __future__ import annotations

import pytest

from inventory.models import InventoryItem, ItemSyncState, SyncSettings, SyncStatus
from syncops.models import OperationState
from syncops.services.export_process import last_stats
from syncops.services.imports import import_run, import_start
from tests.imports.conftest import assert_within_budget, export_by_id

pytestmark = pytest.mark.django_db(databases=["default", "blueprints"])


def _assert_local_equals_export(seller, export: dict[int, dict], mapping) -> None:
    items = {i.product_id: i for i in InventoryItem.objects.filter(seller=seller)}
    assert set(items) == set(export)
    for pid, row in export.items():
        item = items[pid]
        ref = mapping[row["blueprint_id"]]
        assert (item.blueprint_id, item.quantity, item.price_cents, item.currency) == (
            row["blueprint_id"], row["quantity"], row["price_cents"], row["price_currency"]), pid
        assert item.properties == row["properties_hash"], pid
        assert (item.description, item.user_data_field, item.graded) == (
            row["description"], row["user_data_field"], row["graded"]), pid
        assert (item.name, item.game_id, item.category_id, item.expansion_id) == (
            row["name_en"], row["game_id"], row["category_id"], row["expansion"]["id"]), pid
        assert (item.print_table, item.print_id) == (ref if ref else ("", None)), pid
        assert item.sync_state == ItemSyncState.IN_SYNC


@pytest.mark.parametrize("parse_process", [True, False], ids=["parser-process", "in-process"])
def test_import_of_20000_products_equals_the_export_and_a_second_import_changes_nothing(
        connected_seller, sandbox_account, control, catalogue_prints, settings, parse_process):
    settings.IMPORT_PARSE_PROCESS = parse_process
    control.seed_products(sandbox_account.user_id, 20_000, seed=6)
    export = export_by_id(control, sandbox_account.user_id)

    op = import_start(seller=connected_seller, dispatch=False)
    last_stats.clear()
    outcome = import_run(op.pk)
    assert last_stats.get("rows") == (20_000 if parse_process else None)  # the path asked for was taken

    assert outcome.state == OperationState.SUCCEEDED, outcome.result
    _assert_local_equals_export(connected_seller, export, catalogue_prints)
    op.refresh_from_db()
    unmapped = sum(1 for r in export.values() if catalogue_prints[r["blueprint_id"]] is None)
    assert unmapped > 0
    assert op.result["inserted"] == 20_000 and op.result["unmapped"] == unmapped
    assert (op.progress_done, op.progress_total, op.attempts) == (20_000, 20_000, 1)
    sync = SyncSettings.objects.get(user=connected_seller)
    assert sync.sync_status == SyncStatus.ACTIVE and sync.last_sync_at is not None and sync.lease_owner == ""

    before = dict(InventoryItem.objects.filter(seller=connected_seller).values_list("product_id", "updated_at"))
    second = import_run(import_start(seller=connected_seller, dispatch=False).pk)
    assert second.state == OperationState.SUCCEEDED
    assert (second.result["inserted"], second.result["updated"], second.result["removed"]) == (0, 0, 0)
    assert second.result["unchanged"] == 20_000
    after = dict(InventoryItem.objects.filter(seller=connected_seller).values_list("product_id", "updated_at"))
    assert after == before
    assert set(InventoryItem.objects.filter(seller=connected_seller).values_list("version", flat=True)) == {1}
    assert_within_budget(control, sandbox_account.user_id)


def test_import_seller_command_shows_progress_and_imports(connected_seller, sandbox_account, control,
                                                         catalogue_prints, settings):
    from io import StringIO

    from django.core.management import call_command

    settings.IMPORT_CHUNK_SIZE = 100
    control.seed_products(sandbox_account.user_id, 250, seed=4)
    out = StringIO()
    call_command("import_seller", str(connected_seller.pk), stdout=out)
    text = out.getvalue()
    assert text.count("%") >= 3 and "100.0%" in text  # one line per chunk, finishing at 100 %
    assert "250 products (250 new" in text
    assert InventoryItem.objects.filter(seller=connected_seller).count() == 250
