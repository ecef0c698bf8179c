"""What each part of the stock table's schema costs a first import: interleaved A/B on one connection.

The sandbox's export of N products (default 250,000) is parsed once, then COPYed (binary, as
``copy_new_items`` sends it, 5,000 rows a transaction, ``synchronous_commit`` off) into a scratch
copy of ``inventory_inventoryitem`` built per variant; variants alternate, ``--rounds`` times each,
and the figure is the PostgreSQL backend's CPU seconds (from /proc: neighbours on a shared machine
cannot inflate it), min and all rounds. Variants:

- ``before``      the fourth pass's schema: seed (seller, blueprint, product), (product), (blueprint),
                  trigram GIN on UPPER(name), foreign key to ``brx_user``
- ``after``       the fifth pass's (migration inventory/0005): (blueprint, seller, product), (product),
                  the name table and its insert trigger, foreign key
- ``after_nofk``  ``after`` without the foreign key (what the RI check costs)
- ``after_stmtfk``  ``after`` with a statement-level seller check (transition table, FOR KEY SHARE)
                  in place of the foreign key: a sketch of its cost only, not a full replacement
- ``sixth``       the sixth pass's (migration inventory/0006): ``after`` with the migration's own
                  insert trigger function (``inventory_check_new_item_sellers``) in place of the key
- ``bare``        primary key only (heap + one btree)

All keep the primary key, the unique (seller, product_id) key and the three partial indexes.
``--many-names`` rewrites blueprint ids and names to ~50,000 distinct ones (the sandbox has 79),
which is what the name table's cost depends on.

Run:  flock /tmp/brx/bench.lock .venv/bin/python bench/import_schema_ab.py [--products N] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brxsync.test_settings")
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/brxsync_bench")

BASE = """CREATE TABLE ab_items (LIKE inventory_inventoryitem INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE ab_items ALTER COLUMN id DROP DEFAULT;
CREATE SEQUENCE ab_items_seq; ALTER TABLE ab_items ALTER COLUMN id SET DEFAULT nextval('ab_items_seq');
ALTER TABLE ab_items ADD PRIMARY KEY (id);
CREATE INDEX ab_state ON ab_items (seller_id, sync_state) WHERE sync_state <> 'in_sync';
CREATE INDEX ab_upd ON ab_items (seller_id, updated_at DESC) WHERE sync_state <> 'in_sync';
CREATE INDEX ab_unmapped ON ab_items (seller_id) WHERE print_id IS NULL;
"""
FK = "ALTER TABLE ab_items ADD FOREIGN KEY (seller_id) REFERENCES brx_user(id) DEFERRABLE INITIALLY DEFERRED;"
UNIQ = "ALTER TABLE ab_items ADD UNIQUE (seller_id, product_id);"
SEED = "CREATE INDEX ab_seed ON ab_items (seller_id, blueprint_id, product_id);"
MERGED = "CREATE INDEX ab_bp_seller ON ab_items (blueprint_id, seller_id, product_id);"
PROD = "CREATE INDEX ab_prod ON ab_items (product_id);"
BP = "CREATE INDEX ab_bp ON ab_items (blueprint_id);"
TRGM = "CREATE INDEX ab_trgm ON ab_items USING gin (UPPER(name::text) gin_trgm_ops);"
NAMES = """CREATE TABLE ab_names (blueprint_id int NOT NULL, name varchar(255) NOT NULL,
                       PRIMARY KEY (blueprint_id, name));
CREATE INDEX ab_names_trgm ON ab_names USING gin (UPPER(name::text) gin_trgm_ops);
CREATE FUNCTION ab_names_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  INSERT INTO ab_names (blueprint_id, name) SELECT DISTINCT blueprint_id, name FROM new_rows WHERE name <> ''
  ORDER BY 1, 2 ON CONFLICT DO NOTHING;
  RETURN NULL; END $$;
CREATE TRIGGER ab_names_ins AFTER INSERT ON ab_items REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION ab_names_fn();
"""
STMTFK = """CREATE FUNCTION ab_fk_fn() RETURNS trigger LANGUAGE plpgsql AS $$ DECLARE locked int; wanted int; BEGIN
  SELECT count(*) INTO locked FROM (SELECT 1 FROM brx_user u WHERE u.id IN (SELECT seller_id FROM new_rows)
                                    ORDER BY u.id FOR KEY SHARE OF u) l;
  SELECT count(DISTINCT seller_id) INTO wanted FROM new_rows;
  IF locked < wanted THEN RAISE foreign_key_violation; END IF;
  RETURN NULL; END $$;
CREATE TRIGGER ab_fk_ins AFTER INSERT ON ab_items REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION ab_fk_fn();
"""
SIXTH = """CREATE TRIGGER ab_seller_ins AFTER INSERT ON ab_items REFERENCING NEW TABLE AS new_items
  FOR EACH STATEMENT EXECUTE FUNCTION inventory_check_new_item_sellers();"""
VARIANTS = {
    "before": [FK, UNIQ, SEED, PROD, BP, TRGM],
    "after": [FK, UNIQ, MERGED, PROD, NAMES],
    "after_nofk": [UNIQ, MERGED, PROD, NAMES],
    "after_stmtfk": [STMTFK, UNIQ, MERGED, PROD, NAMES],
    "sixth": [SIXTH, UNIQ, MERGED, PROD, NAMES],
    "bare": [],
}
DROP = ("DROP TABLE IF EXISTS ab_items; DROP TABLE IF EXISTS ab_names; DROP SEQUENCE IF EXISTS ab_items_seq; "
        "DROP FUNCTION IF EXISTS ab_names_fn(); DROP FUNCTION IF EXISTS ab_fk_fn()")


def _backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rows(products: int, many_names: bool) -> list[list]:
    from cardtrader_sandbox.pytest_plugin import start_sandbox, stop_sandbox
    from syncops.cardtrader import CardTraderClient
    from syncops.services.stage_rows import export_row

    sandbox = start_sandbox()
    try:
        acct = sandbox.control.create_account(name="Schema AB")
        sandbox.control.seed_products(acct.user_id, products, seed=1)
        with CardTraderClient(token=acct.token, seller_id="ab", base_url=sandbox.api_base,
                              export_timeout=(5.0, 600.0)) as client:
            rows = list(client.export_products(convert=export_row))
    finally:
        stop_sandbox(sandbox)
    for r in rows:
        if r[1] % 7 != 3:  # mapped, as the import bench's catalogue maps all but every 7th blueprint
            r[2], r[3] = 100_000 + r[1], "cards_prints"
        if many_names:
            r[1] = r[0] % 50_000
            r[4] = f"Card of the realm {r[1]}"
    return rows


def _run(variant: str, rows: list[list], seller: uuid.UUID) -> tuple[float, float]:
    from django.db import connection, transaction
    from django.utils import timezone

    from syncops.services.stock_stage import _NEW_TAIL, _NEW_TAIL_TYPES, copy_rows

    with connection.cursor() as cur:
        cur.execute(DROP)
        cur.execute(BASE)
        for statement in VARIANTS[variant]:
            cur.execute(statement)
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    now = timezone.now()
    cpu, started = _backend_cpu(pid), time.perf_counter()
    for i in range(0, len(rows), 5000):
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit TO OFF")
            copy_rows(cur, "ab_items", rows[i:i + 5000], tail=(seller, "in_sync", 1, now, now, now),
                      tail_columns=_NEW_TAIL, tail_types=_NEW_TAIL_TYPES)
    return time.perf_counter() - started, _backend_cpu(pid) - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=250_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default="before,after,after_nofk,after_stmtfk,sixth,bare")
    parser.add_argument("--many-names", action="store_true")
    args = parser.parse_args()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from inventory.models import User

    call_command("migrate", verbosity=0)
    load_before = os.getloadavg()
    rows = _rows(args.products, args.many_names)
    seller = User.objects.create(username=f"schema-ab-{uuid.uuid4().hex[:8]}")
    names = args.variants.split(",")
    results: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    try:
        for _ in range(args.rounds):
            for n in names:
                results[n].append(_run(n, rows, seller.pk))
    finally:
        with connection.cursor() as cur:
            cur.execute(DROP)
        seller.delete()
    print(f"import_schema_ab  {time.strftime('%Y-%m-%d %H:%M')}  {len(rows):,} rows, "
          f"{len({(r[1], r[4]) for r in rows}):,} distinct (blueprint, name); load average before "
          f"{load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    base = min(cpu for _, cpu in results[names[0]])
    for n in names:
        cpus = sorted(cpu for _, cpu in results[n])
        print(f"  {n:14s} backend CPU min {cpus[0]:5.2f} s ({cpus[0] / base:4.2f} of {names[0]}), "
              f"all {', '.join(f'{c:.2f}' for c in cpus)}; wall min {min(w for w, _ in results[n]):.2f} s")
    print(f"  reproduce: .venv/bin/python bench/import_schema_ab.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
