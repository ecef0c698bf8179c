"""Fixtures for the push tests: items, connected sellers on the sandbox, Celery workers."""
from __future__ import annotations

import itertools

import pytest

_product_ids = itertools.count(900_000_000)


@pytest.fixture
def make_item():
    def make(seller, **fields):
        from inventory.models import InventoryItem

        defaults = {"product_id": next(_product_ids), "blueprint_id": 6, "game_id": 1, "quantity": 5,
                    "price_cents": 250, "properties": {"condition": "Near Mint", "mtg_foil": False}}
        defaults.update(fields)
        return InventoryItem.objects.create(seller=seller, **defaults)

    return make
