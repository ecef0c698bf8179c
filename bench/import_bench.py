"""Import of N products (default 250,000) from the CardTrader sandbox into PostgreSQL.

Figures, each measured in a FRESH process so peak RSS (ru_maxrss) belongs to that stage alone:

- ``import``  the whole service path: ``import_run`` (streamed export through the metered client,
              producer thread, batched catalogue mapping, COPY + set-based upsert per 5,000-row
              chunk, removal anti-join). Wall time, products/s, peak RSS. Goals: < 10 s, < 250 MB.
- ``write``   the DB-write stage alone on rows already in memory (``StageTables.load`` +
              ``upsert_from_stage`` per chunk, inserting every row), next to the baseline: a plain
              ``COPY`` of the same rows into a scratch table. Goal: write ≥ 1/3 of COPY's rate.

Uses the database ``brxsync_bench`` on the local PostgreSQL (created and migrated if missing), the
MariaDB test catalogue (every sandbox blueprint mapped but every 7th), and a sandbox subprocess.

Run:  .venv/bin/python bench/import_bench.py [--products 250000]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brxsync.test_settings")
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/brxsync_bench")
os.environ.setdefault("BLUEPRINT_DATABASE_URL", "mysql://root@127.0.0.1:3306/test_brxsync_catalogue")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _setup_django() -> None:
    import django

    django.setup()
    from django.conf import settings

    settings.CATALOGUE_MAPPING_CACHE_PREFIX = os.environ.get("BENCH_CACHE_PREFIX", "bpmap-bench")
    settings.RATE_LIMIT_KEY_PREFIX = os.environ.get("BENCH_RL_PREFIX", "rl-bench")


def child_import(op_id: int) -> dict:
    _setup_django()
    from syncops.services.imports import import_run

    started = time.perf_counter()
    outcome = import_run(op_id)
    wall = time.perf_counter() - started
    return {"state": str(outcome.state), "wall": wall, "rss_mb": _rss_mb(), "result": outcome.result}


def child_write(api_base: str, token: str) -> dict:
    _setup_django()
    from django.db import connection, transaction
    from django.utils import timezone

    from inventory.models import User
    from syncops.cardtrader import CardTraderClient
    from syncops.services.stock_stage import STAGE_COLUMNS, StageTables, map_rows, product_row, upsert_from_stage

    with CardTraderClient(token=token, seller_id="bench", base_url=api_base, export_timeout=(5.0, 600.0)) as c:
        rows = [product_row(p) for p in c.export_products()]
    for i in range(0, len(rows), 5000):
        map_rows(rows[i:i + 5000])
    cols = ", ".join(STAGE_COLUMNS)
    with connection.cursor() as cur:  # baseline: plain COPY of the same rows into a scratch table
        cur.execute("DROP TABLE IF EXISTS bench_scratch")
        cur.execute("CREATE TABLE bench_scratch (product_id bigint, blueprint_id int, print_id bigint, "
                    "print_table varchar(32), name varchar(255), game_id int, category_id int, expansion_id int, "
                    "quantity int, price_cents int, currency varchar(3), properties jsonb, description text, "
                    "user_data_field text, graded boolean)")
        started = time.perf_counter()
        with transaction.atomic(), cur.cursor.copy(f"COPY bench_scratch ({cols}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(r)
        copy_s = time.perf_counter() - started
        cur.execute("DROP TABLE bench_scratch")
    seller = User.objects.create(username=f"bench-write-{uuid.uuid4().hex[:8]}")
    started = time.perf_counter()
    with StageTables(keep_rows=False) as stage:
        for i in range(0, len(rows), 5000):
            with transaction.atomic():
                stage.load(rows[i:i + 5000])
                upsert_from_stage(stage, seller.pk, timezone.now())
    write_s = time.perf_counter() - started
    seller.delete()
    return {"rows": len(rows), "copy_s": copy_s, "write_s": write_s, "rss_mb": _rss_mb()}


def _run_child(*args: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], env=env, capture_output=True, text=True,
                         check=False)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"child failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=250_000)
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        mode = args.child[0]
        result = child_import(int(args.child[1])) if mode == "import" else child_write(*args.child[1:3])
        print(json.dumps(result, default=str), flush=True)
        return

    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as pg:
        if not pg.execute("SELECT 1 FROM pg_database WHERE datname = 'brxsync_bench'").fetchone():
            pg.execute("CREATE DATABASE brxsync_bench")
    _setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from cardtrader_sandbox.catalogue import catalogue
    from cardtrader_sandbox.pytest_plugin import start_sandbox, stop_sandbox
    from inventory.models import InventoryItem, User
    from syncops.services.connection import connection_connect
    from syncops.services.imports import import_start
    from tests.catalogue_schema import create_catalogue_schema, load_prints

    create_catalogue_schema()
    bps = [bp.id for bp in catalogue().blueprints_for_game("mtg")]
    load_prints("cards_prints", [(100_000 + b, b, "") for i, b in enumerate(bps) if i % 7 != 3])
    sandbox = start_sandbox()
    env = dict(os.environ, CARDTRADER_API_BASE=sandbox.api_base,
               BENCH_CACHE_PREFIX=f"bpmap-bench-{uuid.uuid4().hex[:6]}",
               BENCH_RL_PREFIX=f"rl-bench-{uuid.uuid4().hex[:6]}")
    try:
        from django.conf import settings

        settings.CARDTRADER_API_BASE = sandbox.api_base
        settings.RATE_LIMIT_KEY_PREFIX = env["BENCH_RL_PREFIX"]
        acct = sandbox.control.create_account(name="Bench")
        t = time.perf_counter()
        sandbox.control.seed_products(acct.user_id, args.products, seed=1)
        seed_s = time.perf_counter() - t
        seller_id = uuid.uuid4()
        connection_connect(seller_id=seller_id, token=acct.token)
        seller = User.objects.get(pk=seller_id)
        op = import_start(seller=seller, dispatch=False)
        imp = _run_child("import", str(op.pk), env=env)
        count = InventoryItem.objects.filter(seller=seller).count()
        write = _run_child("write", sandbox.api_base, acct.token, env=env)
        seller.delete()
    finally:
        stop_sandbox(sandbox)

    n = imp["result"].get("processed", 0)
    print(f"import_bench  {time.strftime('%Y-%m-%d')}  {platform.platform()}  python {platform.python_version()}")
    print(f"  products seeded on the sandbox: {args.products:,} (seed {seed_s:.1f}s)")
    print(f"  import (whole path): {imp['state']}, {n:,} products, {count:,} rows, wall {imp['wall']:.2f}s, "
          f"{n / imp['wall']:,.0f} products/s, peak RSS {imp['rss_mb']:.0f} MB (goal < 10 s, < 250 MB)")
    w_rate, c_rate = write["rows"] / write["write_s"], write["rows"] / write["copy_s"]
    print(f"  write stage alone (COPY to stage + upsert, 5,000/chunk): {write['write_s']:.2f}s = {w_rate:,.0f} rows/s")
    print(f"  baseline plain COPY into a scratch table:               {write['copy_s']:.2f}s = {c_rate:,.0f} rows/s")
    print(f"  write/COPY = {w_rate / c_rate:.2f} (goal >= 0.33)")
    print(f"  reproduce: .venv/bin/python bench/import_bench.py {shlex.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
