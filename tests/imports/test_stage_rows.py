"""The import's stage rows are built straight from the export's dicts (no ``Product``); they must be
exactly what ``product_row(Product.from_json(row))`` gives, for the export's shape and any other."""
from __future__ import annotations

import pytest

from syncops.cardtrader.types import Product
from syncops.services.stock_stage import export_row, product_row

EXPORT_ROW = {
    "id": 108455069, "name_en": "Ghalta, Primal Hunger", "quantity": 7, "bundle_size": 1, "bundled_quantity": 7,
    "description": "", "price_cents": 78, "price_currency": "EUR", "game_id": 1, "category_id": 1,
    "blueprint_id": 6, "user_id": 1001,
    "properties_hash": {"mtg_rarity": "Rare", "condition": "Poor", "mtg_foil": True, "signed": False},
    "graded": False, "tag": "", "user_data_field": "seed-1-0", "uploaded_images": [],
    "expansion": {"id": 1, "code": "gnt", "name_en": "Game Night"},
}


@pytest.mark.parametrize("changes", [
    {},  # the export's own shape: the fast path
    {"name_en": "N" * 300, "price_currency": "EURO"},  # cut to the column sizes
    {"id": "108455069", "quantity": 7.0},  # strings / integral floats: through Product.from_json
    {"graded": 1, "description": None, "user_data_field": None},
    {"price": {"cents": 99, "currency": "USD"}, "price_cents": None},  # the write-resource shape
    {"properties_hash": None, "properties": {"condition": "Near Mint"}, "expansion": None, "expansion_id": 4},
    {"game_id": None, "category_id": None},
])
def test_export_row_equals_the_product_path(changes):
    row = {**EXPORT_ROW, **changes}
    assert export_row(dict(row)) == product_row(Product.from_json(dict(row)))


@pytest.mark.parametrize("changes", [{"id": None}, {"quantity": True}, {"price_cents": 1.5}])
def test_a_malformed_row_raises_like_the_product_path(changes):
    row = {**EXPORT_ROW, **changes}
    with pytest.raises((KeyError, TypeError, ValueError)) as product_error:
        Product.from_json(dict(row))
    with pytest.raises(product_error.type):
        export_row(dict(row))


@pytest.mark.django_db(transaction=True)
def test_a_first_import_chunk_that_meets_an_existing_product_falls_back_to_the_upsert():
    """``insert_new`` (COPY straight into stock) refuses a chunk holding a product the seller
    already has (a duplicate id across chunks): nothing of that chunk is written, and the staged
    upsert then writes it whole."""
    from django.db import connection, transaction
    from django.utils import timezone

    from inventory.models import InventoryItem, User
    from syncops.services.stock_stage import StageTables, upsert_from_stage

    if connection.vendor != "postgresql":
        pytest.skip("insert_new is the PostgreSQL COPY path")
    seller = User.objects.create(username="first-import-fallback")
    first = [export_row({**EXPORT_ROW, "id": 1, "quantity": 1}), export_row({**EXPORT_ROW, "id": 2, "quantity": 2})]
    again = [export_row({**EXPORT_ROW, "id": 3, "quantity": 3}), export_row({**EXPORT_ROW, "id": 2, "quantity": 9})]
    with StageTables(keep_rows=False) as stage:
        with transaction.atomic():
            assert stage.insert_new(first, seller.pk, timezone.now()) == 2
        with transaction.atomic():
            assert stage.insert_new(again, seller.pk, timezone.now()) is None
            assert set(InventoryItem.objects.filter(seller=seller).values_list("product_id", flat=True)) == {1, 2}
            stage.load(again)
            counts = upsert_from_stage(stage, seller.pk, timezone.now())
    assert (counts.inserted, counts.updated) == (1, 1)
    stock = dict(InventoryItem.objects.filter(seller=seller).values_list("product_id", "quantity"))
    assert stock == {1: 1, 2: 9, 3: 3}
