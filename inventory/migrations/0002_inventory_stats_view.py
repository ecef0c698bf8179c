"""The per-seller stats materialized view (PostgreSQL only; skipped cleanly elsewhere).

The unique index on ``seller_id`` is what allows ``REFRESH MATERIALIZED VIEW CONCURRENTLY``,
so readers are never blocked while beat refreshes it every five minutes.
"""
from django.db import migrations

CREATE = """
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_user_inventory_stats AS
SELECT seller_id,
       COUNT(*) AS total_items,
       COALESCE(SUM(quantity), 0) AS total_quantity,
       AVG(price_cents)::numeric(14, 2) AS avg_price_cents,
       COUNT(*) FILTER (WHERE print_id IS NULL) AS unmapped_items,
       now() AS refreshed_at
FROM inventory_inventoryitem
GROUP BY seller_id;
CREATE UNIQUE INDEX IF NOT EXISTS mv_user_inventory_stats_seller ON mv_user_inventory_stats (seller_id);
"""
DROP = "DROP MATERIALIZED VIEW IF EXISTS mv_user_inventory_stats;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
