"""Server time of the staff console's pages with 1,000,000 inventory items and 1,000,000 operations
(goal: every page under 300 ms).

A scratch PostgreSQL database is created and migrated, filled with ``generate_series`` (1,000
sellers; items 1,000 per seller; operations spread over 30 days in realistic proportions of
states and kinds; 100,000 webhook deliveries), analysed, then each admin page is requested
through Django's full stack in-process (test ``Client``, middleware included) and timed: the
median of ``--repeat`` requests after one warm-up, with the number of SQL queries.

Baseline in the same run: the same changelists with Django's defaults for what the console turns
off — the full result count (``show_full_result_count = True``) and, for operations, the
``date_hierarchy`` on ``created_at`` — to show what those defaults cost at this size.

Run:  .venv/bin/python bench/admin_pages_bench.py [--items 1000000] [--operations 1000000] [--repeat 5]
      (add --keep to leave the scratch database for EXPLAIN; it is dropped by default)
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _create_db(name: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def _drop_db(name: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _setup_django(db_name: str) -> None:
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{db_name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brxsync.test_settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


FILL_SQL = """
INSERT INTO brx_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active,
                      date_joined)
SELECT md5('seller' || g)::uuid, '', false, 'seller-' || g, '', '', '', false, true, now()
FROM generate_series(1, %(sellers)s) g;

INSERT INTO inventory_syncsettings (user_id, token_encrypted, shared_secret_encrypted, connection_state,
    cardtrader_app_id, cardtrader_app_name, cardtrader_user_id, webhook_id, sync_status, paused, last_sync_at,
    last_error, lease_owner, connected_at, created_at, updated_at)
SELECT md5('seller' || g)::uuid, 'x', 'x', 'connected', g, 'app', g, md5('wh' || g),
       (ARRAY['idle','active','active','active','paused','error'])[1 + g %% 6], g %% 6 = 4,
       now() - (g || ' minutes')::interval, CASE WHEN g %% 6 = 5 THEN 'CardTrader 502' ELSE '' END, '',
       now(), now(), now() - (g || ' seconds')::interval
FROM generate_series(1, %(sellers)s) g;

INSERT INTO inventory_inventoryitem (seller_id, product_id, blueprint_id, print_id, print_table, name, game_id,
    category_id, expansion_id, quantity, price_cents, currency, properties, description, user_data_field, graded,
    sync_state, version, last_synced_at, created_at, updated_at)
SELECT md5('seller' || (1 + g %% %(sellers)s))::uuid, 100000000 + g, 1 + g %% 50000,
       CASE WHEN g %% 50 = 0 THEN NULL ELSE g END, CASE WHEN g %% 50 = 0 THEN '' ELSE 'cards_prints' END,
       'Card ' || (g %% 50000), 1, 1, 1 + g %% 300, g %% 9, 10 + g %% 5000, 'EUR',
       '{"condition": "Near Mint"}'::jsonb, '', '', false,
       CASE WHEN g %% 1000 = 1 THEN 'pending_push' WHEN g %% 5000 = 2 THEN 'conflict'
            WHEN g %% 2000 = 3 THEN 'removed_remote' WHEN g %% 10000 = 4 THEN 'pending_delete' ELSE 'in_sync' END,
       1, now(), now() - (g || ' seconds')::interval, now() - (g || ' seconds')::interval
FROM generate_series(1, %(items)s) g;

INSERT INTO syncops_syncoperation (operation_key, seller_id, kind, state, item_id, product_id, payload, result,
    attempts, max_attempts, progress_done, progress_total, cardtrader_job_uuid, error_code, last_error,
    attempt_log, created_at, updated_at, finished_at)
SELECT 'bench:' || g, md5('seller' || (1 + g %% %(sellers)s))::uuid,
       (ARRAY['push_update','push_update','push_update','adjust','push_delete','webhook_apply','reconcile',
              'import'])[1 + g %% 8],
       CASE WHEN g %% 100 < 88 THEN 'succeeded' WHEN g %% 100 < 94 THEN 'failed' WHEN g %% 100 < 96 THEN 'pending'
            WHEN g %% 100 < 97 THEN 'running' WHEN g %% 100 < 98 THEN 'uncertain' WHEN g %% 100 < 99 THEN 'partial'
            ELSE 'cancelled' END,
       NULL, 100000000 + (g %% %(items)s), '{}'::jsonb, '{}'::jsonb, 1 + g %% 3, 8, 1, 1,
       CASE WHEN g %% 4 = 0 THEN md5('job' || g) ELSE '' END, '', '', '[]'::jsonb,
       now() - ((g::float / %(operations)s) * interval '30 days'), now(), now()
FROM generate_series(1, %(operations)s) g;

INSERT INTO syncops_webhookevent (delivery_id, seller_id, cause, object_class, object_id, mode, payload, state,
    attempts, error, received_at)
SELECT md5('delivery' || g), md5('seller' || (1 + g %% %(sellers)s))::uuid,
       (ARRAY['order.create','order.update','order.update','order.destroy'])[1 + g %% 4], 'Order', 5000000 + g / 3,
       'live', '{"id": "x"}'::jsonb,
       (ARRAY['applied','applied','applied','applied','ignored','failed','stale','received'])[1 + g %% 8], 1, '',
       now() - ((g::float / %(webhooks)s) * interval '14 days')
FROM generate_series(1, %(webhooks)s) g;

INSERT INTO syncops_conflict (seller_id, kind, product_id, details, resolved_note, created_at)
SELECT md5('seller' || (1 + g %% %(sellers)s))::uuid, (ARRAY['oversell','drift'])[1 + g %% 2], g, '{}'::jsonb, '', now()
FROM generate_series(1, 2000) g;
"""


def fill(sizes: dict[str, int]) -> float:
    from django.db import connection

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(FILL_SQL, sizes)
        cursor.execute("REFRESH MATERIALIZED VIEW mv_user_inventory_stats")
    with connection.cursor() as cursor:  # ANALYZE outside the transaction block of the fill
        cursor.execute("ANALYZE")
    return time.monotonic() - started


def measure(client, url: str, repeat: int) -> tuple[float, int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)  # warm-up (templates, plan caches)
    times = []
    queries = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        queries = len(ctx.captured_queries)
    return statistics.median(times), queries, response.status_code


def pages(seller: uuid.UUID, op_pk: int, item_pk: int, op_g: int, product: int) -> list[tuple[str, str]]:
    ops = "/admin/syncops/syncoperation/"
    items = "/admin/inventory/inventoryitem/"
    return [
        ("dashboard (admin index)", "/admin/"),
        ("dashboard JSON refresh", "/admin/syncops/syncoperation/dashboard.json"),
        ("operations: list", ops),
        ("operations: state=failed", ops + "?state__exact=failed"),
        ("operations: state=uncertain", ops + "?state__exact=uncertain"),
        ("operations: kind=import", ops + "?kind__exact=import"),
        ("operations: seller", ops + f"?seller={seller}"),
        ("operations: failed, one seller", ops + f"?state__exact=failed&seller={seller}"),
        ("operations: past 7 days", ops + "?created_at__gte=" + _days_ago(7)),
        ("operations: search op key", ops + f"?q=bench:{op_g}"),
        ("operations: search job uuid", ops + "?q=" + _md5(f"job{op_g}")),
        ("operations: search product id", ops + f"?q={product}"),
        ("operations: detail", ops + f"{op_pk}/change/"),
        ("inventory: list", items),
        ("inventory: pending", items + "?sync=pending"),
        ("inventory: conflict", items + "?sync=conflict"),
        ("inventory: unmapped", items + "?sync=unmapped"),
        ("inventory: removed", items + "?sync=removed"),
        ("inventory: seller", items + f"?seller={seller}"),
        ("inventory: search product id", items + f"?q={product}"),
        ("inventory: search name", items + "?q=Card+4242"),
        ("inventory: detail", items + f"{item_pk}/change/"),
        ("sellers: list", "/admin/inventory/syncsettings/"),
        ("sellers: status=error", "/admin/inventory/syncsettings/?sync_status__exact=error"),
        ("sellers: detail", f"/admin/inventory/syncsettings/{seller}/change/"),
        ("webhooks: list", "/admin/syncops/webhookevent/"),
        ("webhooks: state=failed", "/admin/syncops/webhookevent/?state__exact=failed"),
        ("conflicts: open", "/admin/syncops/conflict/?open=yes"),
    ]


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode()).hexdigest()  # mirrors the SQL md5() ids


def _days_ago(days: int) -> str:
    from datetime import timedelta
    from urllib.parse import quote

    from django.utils import timezone

    return quote(str(timezone.now() - timedelta(days=days)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--operations", type=int, default=1_000_000)
    parser.add_argument("--sellers", type=int, default=1_000)
    parser.add_argument("--webhooks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    db_name = f"brx_admin_bench_{os.getpid()}"
    print(f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} cores, "
          f"{platform.platform()}, Python {platform.python_version()}; load average {_load()} at start")
    _create_db(db_name)
    try:
        _setup_django(db_name)
        from django.contrib import admin
        from django.core.management import call_command
        from django.test import Client

        from inventory.models import InventoryItem, User
        from syncops.models import SyncOperation, WebhookEvent

        t = time.monotonic()
        call_command("migrate", verbosity=0)
        print(f"migrated scratch database {db_name} in {time.monotonic() - t:.1f} s")
        sizes = {"sellers": args.sellers, "items": args.items, "operations": args.operations,
                 "webhooks": args.webhooks}
        print(f"filled {sizes} in {fill(sizes):.1f} s")

        staff = User.objects.create_superuser(username="bench-staff", password="x")
        client = Client()
        client.force_login(staff)
        seller = uuid.UUID(_md5(f"seller{1 + 42 % args.sellers}"))
        op_g = args.operations // 2 // 4 * 4  # a multiple of 4 carries a job uuid
        product = 100_000_000 + args.items // 2
        op_pk = SyncOperation.objects.filter(operation_key=f"bench:{op_g}").values_list("pk", flat=True).get()
        item_pk = InventoryItem.objects.filter(product_id=product).values_list("pk", flat=True).get()

        print(f"\nserver time per page, median of {args.repeat} (ms), goal < 300")
        print(f"{'page':40} {'console':>9} {'queries':>8} {'status':>7}")
        worst = 0.0
        for label, url in pages(seller, op_pk, item_pk, op_g, product):
            ms, queries, status = measure(client, url, args.repeat)
            worst = max(worst, ms)
            flag = "" if ms < 300 and status == 200 else "  <-- over goal" if status == 200 else f"  <-- HTTP {status}"
            print(f"{label:40} {ms:9.1f} {queries:8d} {status:7d}{flag}")

        print("\nbaseline: Django's defaults the console turns off (same run, same data)")
        print(f"{'page':40} {'console':>9} {'defaults':>9} {'ratio':>6}")
        op_admin = admin.site._registry[SyncOperation]
        item_admin = admin.site._registry[InventoryItem]
        hook_admin = admin.site._registry[WebhookEvent]
        for label, model_admin, url, hierarchy in (
            ("operations: list", op_admin, "/admin/syncops/syncoperation/", "created_at"),
            ("operations: state=failed", op_admin, "/admin/syncops/syncoperation/?state__exact=failed",
             "created_at"),
            ("inventory: list", item_admin, "/admin/inventory/inventoryitem/", None),
            ("inventory: pending", item_admin, "/admin/inventory/inventoryitem/?sync=pending", None),
            ("webhooks: list", hook_admin, "/admin/syncops/webhookevent/", None),
        ):
            console, _, _ = measure(client, url, args.repeat)
            model_admin.show_full_result_count = True
            model_admin.date_hierarchy = hierarchy
            try:
                default, _, _ = measure(client, url, max(1, args.repeat // 2))
            finally:
                model_admin.show_full_result_count = False
                model_admin.date_hierarchy = None
            print(f"{label:40} {console:9.1f} {default:9.1f} {default / console:5.1f}x")
        print(f"\nworst console page: {worst:.1f} ms; load average {_load()} at the end")
        print("reproduce: .venv/bin/python bench/admin_pages_bench.py " + " ".join(sys.argv[1:]))
        return 0 if worst < 300 else 1
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            _drop_db(db_name)


if __name__ == "__main__":
    raise SystemExit(main())
