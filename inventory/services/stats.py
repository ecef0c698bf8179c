"""The per-seller stats materialized view."""
from __future__ import annotations

from django.db import connection


def inventory_stats_refresh() -> bool:
    """Refresh ``mv_user_inventory_stats`` without blocking readers. False where there is none."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY mv_user_inventory_stats")
    return True
