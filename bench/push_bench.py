"""Push throughput: local edits → CardTrader bulk jobs, through real Celery workers.

Starts its own CardTrader sandbox (``cardtrader_sandbox.runner``, CardTrader's default job timing:
1 s pending + 1 s running) and a ``celery -A brxsync worker -c 20 (prefork)`` (one push run per
seller holds a slot for its whole run, so 20 sellers need 20 slots) on PostgreSQL database
``brxsync_pushbench`` (created and migrated if absent), Redis DB 11 as broker, a fresh
rate-limit namespace per run, the production limiter settings.

Phases (each: the edits are committed through ``items_batch`` BEFORE the worker starts, so the
clock measures pushing, not editing):
1. one seller, a 10,000-item burst (price changes, 100 bulk calls of the default batch 100);
2. 20 sellers at once, ``--per-seller`` items each.

Figures, from the sandbox's own request log: item updates submitted per second (items in
accepted bulk calls between the first and the last), next to the ceiling in the same run
(20 requests/s × batch size per seller); 429s; time from worker ready until every operation's
outcome is known (succeeded / failed); and a field check that CardTrader holds the new prices.

Run:  .venv/bin/python bench/push_bench.py [--items 10000 --sellers 20 --per-seller 1000]
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "brxsync_pushbench"
BROKER = os.environ.get("PUSH_BENCH_BROKER_URL", "redis://127.0.0.1:6379/11")
ENV = dict(
    os.environ,
    DJANGO_SETTINGS_MODULE="brxsync.test_settings",
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    CELERY_BROKER_URL=BROKER,
    LOG_LEVEL="WARNING",
    PYTHONUNBUFFERED="1",
    BRX_TEST_BROKER_NAMESPACE=f"pushbench-{uuid.uuid4().hex[:8]}",
    RATE_LIMIT_KEY_PREFIX=f"pushbench-{uuid.uuid4().hex[:8]}",
)
os.environ.update({k: ENV[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CELERY_BROKER_URL", "LOG_LEVEL",
                                      "BRX_TEST_BROKER_NAMESPACE", "RATE_LIMIT_KEY_PREFIX")})
BATCH = 100
RATE = 20.0  # CardTrader: 200 requests / 10 s per token


def ensure_database() -> None:
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as pg:
        if not pg.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            pg.execute(f"CREATE DATABASE {DB_NAME}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=ENV, check=True)
    # Start from empty tables: this machine's PostgreSQL runs with autovacuum off, and the dead rows
    # of earlier runs (250k in the outbox after a few) made every UPDATE here several times slower.
    with psycopg.connect(f"postgres://postgres@127.0.0.1:5432/{DB_NAME}", autocommit=True) as pg:
        # The items in the same statement: they reference brx_user through triggers, not a foreign key
        # CASCADE would follow (inventory/0006), and a TRUNCATE of brx_user alone is refused.
        pg.execute("TRUNCATE brx_user, inventory_inventoryitem CASCADE")
        pg.execute("VACUUM ANALYZE")


def connect(control, products: int, name: str):
    """A sandbox account with ``products`` products, and a connected local seller holding them."""
    from inventory.models import ConnectionState, InventoryItem, SyncSettings, User

    account = control.create_account(name=name)
    control.seed_products(account.user_id, products, seed=account.user_id)
    user = User.objects.create(username=f"pushbench-{uuid.uuid4().hex[:10]}")
    sync = SyncSettings(user=user, connection_state=ConnectionState.CONNECTED, cardtrader_user_id=account.user_id)
    sync.set_credentials(token=account.token, shared_secret=account.shared_secret)
    sync.save()
    InventoryItem.objects.bulk_create([
        InventoryItem(seller=user, product_id=r["id"], blueprint_id=r["blueprint_id"], game_id=r["game_id"],
                      category_id=r["category_id"], quantity=r["quantity"], price_cents=r["price_cents"],
                      currency=r["price_currency"], properties=r["properties_hash"], name=r["name_en"])
        for r in control.products(account.user_id)
    ], batch_size=5000)
    return account, user


def edit_all(user) -> None:
    """A new price on every item, through the service the API uses (1,000 edits a transaction)."""
    from inventory.models import InventoryItem
    from inventory.services.edits import BatchEdit, items_batch

    rows = list(InventoryItem.objects.filter(seller=user).values_list("pk", "price_cents"))
    for start in range(0, len(rows), 1000):
        items_batch(seller=user, edits=[BatchEdit(item_id=pk, action="update", changes={"price_cents": price + 7})
                                        for pk, price in rows[start:start + 1000]])


def start_worker(api_base: str) -> tuple[subprocess.Popen, float]:
    log = open(f"/tmp/push-bench-worker-{os.getpid()}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "brxsync", "worker", "-Q", "high-priority,default", "-P", "prefork",
         "-c", "20", "-n", f"pushbench-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-l", "INFO"],
        cwd=ROOT, env=dict(ENV, CARDTRADER_API_BASE=api_base, LOG_LEVEL="INFO"), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    deadline = time.monotonic() + 60
    while "ready" not in Path(log.name).read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(Path(log.name).read_text()[-3000:])
        time.sleep(0.1)
    return proc, time.time()


def stop_worker(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, 9)  # every outcome is in: nothing left to drain
    proc.wait()


def wait_outcomes(users, timeout: float) -> float:
    from syncops.models import OperationState, SyncOperation

    deadline = time.monotonic() + timeout
    ops = SyncOperation.objects.filter(seller__in=users).exclude(
        state__in=(OperationState.SUCCEEDED, OperationState.FAILED))
    while ops.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{ops.count()} operations without an outcome after {timeout:.0f} s")
        time.sleep(0.25)
    return time.time()


def phase(sandbox, sellers: int, per_seller: int, label: str) -> dict:
    from syncops.models import OperationState, SyncOperation

    control = sandbox.control
    pairs = [connect(control, per_seller, f"{label} {i}") for i in range(sellers)]
    users = [u for _, u in pairs]
    for _, user in pairs:
        edit_all(user)
    proc, ready = start_worker(sandbox.api_base)
    try:
        done = wait_outcomes(users, timeout=600)
    finally:
        stop_worker(proc)
    rates, n429, bulk_calls, job_reads = [], 0, 0, 0
    for account, _ in pairs:
        log = control.request_log(account.user_id, since=ready - 1)
        n429 += sum(e["status"] == 429 for e in log)
        sends = sorted(e["time"] for e in log if e["path"].endswith("/bulk_update") and e["status"] == 200)
        job_reads += sum(e["path"].startswith("/api/v2/jobs/") for e in log)
        bulk_calls += len(sends)
        if len(sends) >= 2:
            rates.append((len(sends) - 1) * BATCH / (sends[-1] - sends[0]))
    wrong = 0
    for account, user in pairs:
        remote = {r["id"]: r["price_cents"] for r in control.products(account.user_id)}
        from inventory.models import InventoryItem
        wrong += sum(remote.get(pid) != price for pid, price in
                     InventoryItem.objects.filter(seller=user).values_list("product_id", "price_cents"))
    ops = SyncOperation.objects.filter(seller__in=users)
    return {
        "label": label, "sellers": sellers, "items": sellers * per_seller, "bulk_calls": bulk_calls,
        "job_reads": job_reads, "per_seller_rate": sum(rates) / len(rates) if rates else float("nan"),
        "aggregate_rate": sum(rates), "ceiling_per_seller": RATE * BATCH, "429s": n429,
        "outcomes_s": done - ready, "succeeded": ops.filter(state=OperationState.SUCCEEDED).count(),
        "failed": ops.filter(state=OperationState.FAILED).count(), "price_mismatches": wrong,
    }


def report(r: dict) -> None:
    ceiling = r["ceiling_per_seller"]
    print(f"\n== {r['label']}: {r['sellers']} seller(s), {r['items']} item updates, {r['bulk_calls']} bulk calls, "
          f"{r['job_reads']} job reads")
    print(f"  submitted per seller : {r['per_seller_rate']:8.0f} items/s   ceiling {ceiling:.0f} items/s "
          f"(20 req/s x batch {BATCH})  -> {100 * r['per_seller_rate'] / ceiling:.0f}% of ceiling")
    if r["sellers"] > 1:
        print(f"  submitted, all sellers: {r['aggregate_rate']:8.0f} items/s   ceiling {ceiling * r['sellers']:.0f}")
    print(f"  every outcome known  : {r['outcomes_s']:8.1f} s after the worker was ready "
          f"({r['succeeded']} succeeded, {r['failed']} failed)")
    print(f"  429s: {r['429s']}   CardTrader prices differing from local: {r['price_mismatches']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--sellers", type=int, default=20)
    parser.add_argument("--per-seller", type=int, default=1_000)
    args = parser.parse_args()
    ensure_database()
    import django

    django.setup()
    from cardtrader_sandbox.runner import start_sandbox, stop_sandbox

    sandbox = start_sandbox()
    try:
        results = [phase(sandbox, 1, args.items, "one seller, burst"),
                   phase(sandbox, args.sellers, args.per_seller, "sellers at once")]
    finally:
        stop_sandbox(sandbox)
    print(f"\nmachine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}")
    for r in results:
        report(r)
    print(f"\nreproduce: .venv/bin/python bench/push_bench.py --items {args.items} --sellers {args.sellers} "
          f"--per-seller {args.per_seller}")


if __name__ == "__main__":
    main()
