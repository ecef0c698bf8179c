"""Staff search across a million items must use indexes, not scan (issue 9's admin goal)."""
import pytest
from django.db import connection

from inventory.models import InventoryItem


@pytest.mark.django_db
def test_name_search_across_sellers_uses_the_trigram_index(seller):
    InventoryItem.objects.bulk_create(
        InventoryItem(seller=seller, product_id=i, blueprint_id=i % 50, name=f"Card {i}") for i in range(2000)
    )
    with connection.cursor() as cur:
        cur.execute("ANALYZE inventory_inventoryitem")
        cur.execute("SET LOCAL enable_seqscan = off")  # a tiny table: make the planner show what it can use
        sql, params = InventoryItem.objects.filter(name__icontains="lotus").query.sql_with_params()
        cur.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "item_name_trgm_idx" in plan, plan


@pytest.mark.django_db
def test_product_and_blueprint_lookups_without_a_seller_are_indexed():
    with connection.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'inventory_inventoryitem'")
        names = {row[0] for row in cur.fetchall()}
    assert {"item_product_idx", "item_blueprint_idx", "item_name_trgm_idx"} <= names
