"""The import's stage rows are built straight from the export's dicts (no ``Product``); they must be
exactly what ``product_row(Product.from_json(row))`` gives, for the export's shape and any other."""
from __future__ import annotations

import pytest

from syncops.cardtrader.types import Product
from syncops.services.stage_rows import export_row, product_row

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
