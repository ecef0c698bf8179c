"""``mark_removed`` stays a cheap anti-join when PostgreSQL's statistics are behind the stock table.

Regression: with the stock table analysed before the seller's rows arrived (autovacuum behind, or
off as on this machine), the planner estimated one row and ran a nested loop over the unindexed
``seen`` table: seen-size × stock-size comparisons, ~50 s for a 30,000-product re-import. The plan
of the real statement is read with EXPLAIN (no timing)."""
from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from inventory.models import InventoryItem
from syncops.services.stock_stage import StageTables, mark_removed

N = 20_000


def _plan_of_mark_removed(stage: StageTables, seller_id: Any) -> str:
    plans: list[str] = []

    def explain(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("UPDATE"):
            execute("EXPLAIN " + sql, params, many, context)
            plans.append("\n".join(row[0] for row in context["cursor"].fetchall()))
            return None
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain):
        mark_removed(stage, seller_id, timezone.now())
    assert len(plans) == 1
    return plans[0]


@pytest.mark.django_db
def test_mark_removed_never_scans_seen_once_per_stock_row(seller):
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {InventoryItem._meta.db_table}")  # statistics from before the seller's rows
    InventoryItem.objects.bulk_create(
        InventoryItem(seller=seller, product_id=10_000_000 + k, blueprint_id=16253, quantity=1) for k in range(N))
    with StageTables(keep_rows=False) as stage:
        stage.add_seen(list(range(10_000_000, 10_000_000 + N)))
        stage.finish_seen()
        plan = _plan_of_mark_removed(stage, seller.pk)
    nested_scan = "Nested Loop" in plan and f"Seq Scan on {stage.seen}" in plan
    assert not nested_scan, plan
