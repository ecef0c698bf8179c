"""The webhook endpoint under gunicorn, side by side with a trivial Django view on the same server.

One gunicorn (``-w 2``, by default ``gevent`` as ``brxsync/gunicorn.conf.py`` runs it in production;
``--worker-class gthread`` with ``--threads`` for the setup of the ninth session and before,
``sync`` for the first runs'), the real WSGI app and
middleware stack, on PostgreSQL database ``brxsync_whbench`` (created and migrated if absent) with
the pooled connections production uses (``DB_POOL=true``: no per-request health-check query), and
Redis database 12 as broker.
Each webhook request is a fresh signed ``order.create`` delivery carrying a real 3 KB order
(``/work/shared/cardtrader-samples/orders.json``) as ``data``, so every one is verified, parsed,
stored and handed to the broker — the full path, never the duplicate shortcut.

Phases, each for both endpoints (baseline ``GET /health/live``: the same middleware, no work):
1. fixed rate: ``--rate`` req/s (open loop, latency measured from the *scheduled* send time, so a
   stall is not hidden by the load generator waiting) for ``--seconds``: p50 / p99 / max;
2. throughput: ``--conns`` concurrent closed-loop clients (16: 8 per gevent worker; with 8 the
   webhook's workers still idled ~4 % waiting on PostgreSQL, the probe's 1 %) for ``--seconds`` per
   endpoint, in ``--rounds`` alternating slices (a neighbour's load hits both alike): requests/s, the
   server's and the database backends' CPU per request, and the ratio per round.
3. end to end (webhook only): a ``celery -A brxsync worker -Q high-priority -c 4`` (as in
   docker-compose.yml, with its ``DB_POOL=false``) applies the deliveries; delivery stored → stock updated (ledger row
   ``decremented_at``), p50 / p99, at ``--rate`` req/s, **while an import of another seller runs**
   (``--import-products`` from the CardTrader sandbox, ``import_run`` in a child process started
   with the phase; 0 turns it off).

Run:  .venv/bin/python bench/webhook_bench.py [--rate 100 --seconds 10 --conns 16]
"""
from __future__ import annotations

import argparse
import copy
import http.client
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from _proc import HostSteal, cpu_ticks, group_cpu_seconds, idle_share, pids_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "brxsync_whbench"
BROKER = os.environ.get("WEBHOOK_BENCH_BROKER_URL", "redis://127.0.0.1:6379/12")
ENV = dict(
    os.environ,
    DJANGO_SETTINGS_MODULE="brxsync.test_settings",
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    CELERY_BROKER_URL=BROKER,
    LOG_LEVEL="WARNING",
    PYTHONUNBUFFERED="1",
    DB_POOL="true",  # as in production (settings.py); test_settings would health-check per request
    # test_settings namespaces broker keys per process tree; gunicorn, the worker and this
    # process must share one namespace to see each other's messages.
    BRX_TEST_BROKER_NAMESPACE=f"whbench-{uuid.uuid4().hex[:8]}",
)
os.environ.update({k: ENV[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CELERY_BROKER_URL", "LOG_LEVEL",
                                      "BRX_TEST_BROKER_NAMESPACE", "DB_POOL")})
PRODUCTS, PRODUCT_BASE = 500, 500_000_000
SAMPLE = json.loads(Path("/work/shared/cardtrader-samples/orders.json").read_text())[0]


def ensure_database() -> None:
    """A new, migrated bench database for every run: each run's import leaves 250,000 rows behind,
    and after a few runs the tables and indexes outgrew PostgreSQL's cache and every figure drifted
    (1.5M items and 178k deliveries: request p99 3.7 → 58 ms, the import 10.8 → 17 s)."""
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as pg:
        pg.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        pg.execute(f"CREATE DATABASE {DB_NAME}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=ENV, check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_seller():
    from inventory.models import ConnectionState, InventoryItem, SyncSettings, User

    user = User.objects.create(username=f"whbench-{uuid.uuid4().hex[:8]}")
    sync = SyncSettings(user=user, connection_state=ConnectionState.CONNECTED)
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    sync.set_credentials(token="bench-token", shared_secret=secret)
    sync.save()
    InventoryItem.objects.bulk_create(
        InventoryItem(seller=user, product_id=PRODUCT_BASE + k, blueprint_id=16253, quantity=10**8)
        for k in range(PRODUCTS)
    )
    return user, sync, secret


def deliveries(secret: str, n: int, first_order: int) -> list[tuple[bytes, str]]:
    """n fresh signed deliveries: a real order (non-CT0, paid) under new order and item ids."""
    from syncops.webhook_signature import sign

    out = []
    for i in range(n):
        data = copy.deepcopy(SAMPLE)
        data.update(id=first_order + i, state="paid", via_cardtrader_zero=False)
        for k, it in enumerate(data["order_items"]):
            # spread over the seller's products, as real orders are (one hot item would
            # serialise every apply on its row lock and measure only that)
            it.update(id=(first_order + i) * 10 + k, hub_pending_order_id=None,
                      product_id=PRODUCT_BASE + (i * 7 + k * 101) % PRODUCTS)
        body = json.dumps({"id": str(uuid.uuid4()), "time": int(time.time()), "cause": "order.create",
                           "object_class": "Order", "object_id": data["id"], "mode": "live", "data": data},
                          separators=(",", ":")).encode()
        out.append((body, sign(body, secret)))
    return out


def child_import(op_id: int) -> None:
    """Run one import to completion (a child process, so its CPU is separate from the bench's)."""
    import django

    django.setup()
    from django.conf import settings

    settings.CATALOGUE_MAPPING_CACHE_PREFIX = os.environ["WHBENCH_CACHE_PREFIX"]
    settings.RATE_LIMIT_KEY_PREFIX = os.environ["WHBENCH_RL_PREFIX"]
    settings.CARDTRADER_API_BASE = os.environ["CARDTRADER_API_BASE"]
    from syncops.services.imports import import_run

    started = time.perf_counter()
    outcome = import_run(op_id)
    print(json.dumps({"state": str(outcome.state), "wall": time.perf_counter() - started,
                      "processed": (outcome.result or {}).get("processed")}), flush=True)


def prepare_import(products: int):
    """A second seller connected to a sandbox account holding ``products`` products, and its
    import operation (not yet run). Returns (sandbox, operation id, child env)."""
    from _sandbox_accounts import free_sandbox_account
    from django.conf import settings

    from cardtrader_sandbox.runner import start_sandbox
    from inventory.models import User
    from syncops.services.connection import connection_connect
    from syncops.services.imports import import_start
    from tests.catalogue_schema import create_catalogue_schema

    create_catalogue_schema()  # the test catalogue (IF NOT EXISTS); its prints are left as they are
    sandbox = start_sandbox()
    env = dict(ENV, CARDTRADER_API_BASE=sandbox.api_base, WHBENCH_CACHE_PREFIX=f"bpmap-whbench-{uuid.uuid4().hex[:6]}",
               WHBENCH_RL_PREFIX=f"rl-whbench-{uuid.uuid4().hex[:6]}")
    settings.CARDTRADER_API_BASE = sandbox.api_base
    settings.RATE_LIMIT_KEY_PREFIX = env["WHBENCH_RL_PREFIX"]
    acct = sandbox.control.create_account(name="Import bench")
    sandbox.control.seed_products(acct.user_id, products, seed=2)
    free_sandbox_account(acct.user_id)
    seller_id = uuid.uuid4()
    connection_connect(seller_id=seller_id, token=acct.token)
    op = import_start(seller=User.objects.get(pk=seller_id), dispatch=False)
    return sandbox, op.pk, env


def request(port: int, method: str, path: str, body: bytes | None = None, sig: str | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if sig:
            headers["Signature"] = sig
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def fixed_rate(port: int, make_call, rate: float, seconds: float, workers: int = 16) -> tuple[list[float], list[float]]:
    """Open-loop: request i is due at start + i/rate; latency counts from that due time."""
    n = int(rate * seconds)
    start = time.perf_counter() + 0.2
    slots = iter(range(n))
    lock = threading.Lock()
    lat: list[float] = []
    sent_at: list[float] = []
    errors: list[int] = []

    def run() -> None:
        while True:
            with lock:
                i = next(slots, None)
            if i is None:
                return
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t = time.time()
            status = make_call(i)
            done = time.perf_counter()
            with lock:
                lat.append((done - due) * 1000)
                sent_at.append(t)
                if status != 200:
                    errors.append(status)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{len(errors)} non-200 answers, e.g. {errors[:5]}")
    return lat, sent_at




def closed_loop(make_call, conns: int, seconds: float) -> tuple[int, float]:
    """(requests answered 200, seconds taken) by ``conns`` clients calling back to back."""
    stop = time.perf_counter() + seconds
    counter = iter(range(10**9))
    lock = threading.Lock()
    count = [0]

    def run() -> None:
        while time.perf_counter() < stop:
            with lock:
                i = next(counter)
            if make_call(i) == 200:
                with lock:
                    count[0] += 1

    began = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count[0], time.perf_counter() - began


def sample_backlog(app, user, started: float, stop: threading.Event,
                   out: list[tuple[float, int, int, int]]) -> None:
    """Every 0.5 s during the end-to-end phase: (seconds since start, apply messages waiting in the
    broker, messages a worker holds unacked, deliveries stored and not applied). Says where a backlog
    sits: in the broker (the worker is short of capacity), held (applies are slow), or neither
    (the hand-off from the web tier lags)."""
    from django.db import connection

    from syncops.models import WebhookEvent, WebhookState

    with app.connection_for_write() as conn:
        client = conn.default_channel.client
        while not stop.wait(0.5):
            waiting = WebhookEvent.objects.filter(seller=user, state=WebhookState.RECEIVED).count()
            out.append((time.time() - started, client.llen("high-priority"), client.hlen("unacked"), waiting))
    connection.close()


def database_commits() -> int:
    """Transactions committed in the bench database so far (every delivery stored is in one)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [DB_NAME])
        return cursor.fetchone()[0]


def database_backends() -> list[int]:
    """The PostgreSQL backends connected to the bench database now (gunicorn's pooled ones among
    them): their CPU is the database's share of each request, on the same 2 cores."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [DB_NAME])
        return [row[0] for row in cursor.fetchall()]


class WalWaits:
    """Samples the bench database's backends every ~5 ms while a phase runs and keeps the longest
    stretch in which one of them was seen waiting on the WAL's disk (``WALSync``, ``WALWrite``).

    A delivery is committed before its 200, so a slow fsync stalls every request in that group
    commit and the ones queued behind it; this says whether a bad p99 was the disk (this VM's
    fdatasync has a p99.9 of ~110 ms and outliers near 300 ms) or the code."""

    EVENTS = ("WALSync", "WALWrite", "WALInitSync")

    def __init__(self) -> None:
        self.longest_ms = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WalWaits:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(f"postgres://postgres@127.0.0.1:5432/{DB_NAME}", autocommit=True) as pg:
            since = None
            while not self._stop.is_set():
                now = time.perf_counter()
                waiting = pg.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event = ANY(%s)",
                    [DB_NAME, list(self.EVENTS)]).fetchone()[0]
                if waiting and since is None:
                    since = now
                elif not waiting and since is not None:
                    self.longest_ms, since = max(self.longest_ms, (now - since) * 1000), None
                time.sleep(0.005)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=4, help="alternating throughput slices per endpoint")
    ap.add_argument("--gunicorn-workers", type=int, default=2)
    ap.add_argument("--worker-class", default="gevent", choices=("gevent", "gthread", "sync"))
    ap.add_argument("--threads", type=int, default=4, help="gthread threads per gunicorn worker")
    ap.add_argument("--worker-concurrency", type=int, default=4, help="celery -c for the high-priority worker")
    ap.add_argument("--worker-db-pool", choices=("on", "off"), default="off",
                    help="DB_POOL for the worker (off = docker-compose's workers: persistent connections; on: "
                         "Celery's Django fix-up closes the pool after every task in a prefork worker, so each "
                         "task opens a new connection)")
    ap.add_argument("--import-products", type=int, default=250_000, help="concurrent import size; 0: none")
    ap.add_argument("--child-import", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_import is not None:
        child_import(args.child_import)
        return

    steal = HostSteal()
    ensure_database()
    import django

    django.setup()
    from brxsync.celery import app
    from syncops.models import OrderLedger

    user, sync, secret = make_seller()
    path = f"/api/v1/webhooks/cardtrader/{sync.webhook_id}/"
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("high-priority")
    port = free_port()
    server = ["-w", str(args.gunicorn_workers), "-k", args.worker_class]
    if args.worker_class == "gthread":
        server += ["--threads", str(args.threads)]
    if args.worker_class == "gevent":
        server += ["--worker-connections", "100"]  # as brxsync/gunicorn.conf.py
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "brxsync.wsgi:application", *server,
         "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=ENV, start_new_session=True,
    )
    worker = importer = sandbox = None
    import_result: dict = {}
    wal_waits: dict[str, float] = {}
    try:
        deadline = time.time() + 30
        while True:
            try:
                if request(port, "GET", "/health/live") == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise SystemExit("gunicorn did not start")
            time.sleep(0.2)

        n_fixed = int(args.rate * args.seconds)
        order_base = int(time.time()) * 1000
        pool = deliveries(secret, n_fixed * 2 + 20000, order_base)
        cursor = iter(range(len(pool)))
        cursor_lock = threading.Lock()

        def webhook(_: int) -> int:
            with cursor_lock:
                body, sig = pool[next(cursor)]
            return request(port, "POST", path, body, sig)

        def trivial(_: int) -> int:
            return request(port, "GET", "/health/live")

        for fn in (trivial, webhook):  # warm both code paths in every gunicorn worker
            for i in range(20):
                fn(i)
        endpoints = (("trivial GET /health/live", trivial), ("webhook POST", webhook))
        latencies = {}
        for name, fn in endpoints:
            with WalWaits() as wal:
                latencies[name] = fixed_rate(port, fn, args.rate, args.seconds)[0]
            wal_waits[name] = wal.longest_ms
        backends = database_backends()  # the pool's and the inbox's connections, opened by phase 1 and kept
        commits0 = database_commits()
        # Throughput in alternating slices (trivial, webhook, trivial, …), so a neighbour's load that
        # comes or goes during the phase hits both endpoints alike; the ratio is also given per round.
        # served, seconds, server CPU, db CPU, load generator CPU, idle seconds (machine-wide, both cores)
        totals = {name: [0, 0.0, 0.0, 0.0, 0.0, 0.0] for name, _ in endpoints}
        round_rps: dict[str, list[float]] = {name: [] for name, _ in endpoints}
        for _ in range(args.rounds):
            for name, fn in endpoints:
                cpu0, db0 = group_cpu_seconds(gunicorn.pid), pids_cpu_seconds(backends)
                client0, ticks0 = time.process_time(), cpu_ticks()
                served, elapsed = closed_loop(fn, args.conns, args.seconds / args.rounds)
                total = totals[name]
                total[0] += served
                total[1] += elapsed
                total[2] += group_cpu_seconds(gunicorn.pid) - cpu0
                total[3] += pids_cpu_seconds(backends) - db0
                total[4] += time.process_time() - client0
                total[5] += idle_share(ticks0, cpu_ticks()) * elapsed
                round_rps[name].append(served / elapsed)
        results = {
            name: (latencies[name], served / elapsed, cpu / max(served, 1) * 1000, db / max(served, 1) * 1000,
                   os.getloadavg()[0])
            for name, (served, elapsed, cpu, db, _, _) in totals.items()
        }
        # Where the rest of the two cores went: the load generator (this process), and idle time
        # (a server that waits instead of working leaves the machine idle at saturation).
        spent = {name: (client / max(served, 1) * 1000, idle / elapsed)
                 for name, (served, elapsed, _, _, client, idle) in totals.items()}
        round_ratios = [w / t for t, w in zip(*round_rps.values())]
        time.sleep(1.1)  # PostgreSQL flushes its statistics about once a second
        commits_per_delivery = (database_commits() - commits0) / max(totals["webhook POST"][0], 1)
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge("high-priority")  # the backlog of phase 1–2, never applied
        from syncops.models import WebhookEvent, WebhookState

        # ... and its deliveries set aside, or the worker (which takes a seller's waiting deliveries
        # along with each message, oldest first) would apply thousands of them first.
        WebhookEvent.objects.filter(seller=user, state=WebhookState.RECEIVED).update(
            state=WebhookState.IGNORED, error="webhook_bench: throughput phase, not applied")

        if args.import_products:
            sandbox, import_op, import_env = prepare_import(args.import_products)
        worker_env = dict(ENV, DB_POOL="true" if args.worker_db_pool == "on" else "false")
        worker_name = f"whbench-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "brxsync", "worker", "-Q", "high-priority",
             "-c", str(args.worker_concurrency),
             "-n", worker_name, "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-l", "WARNING"],
            cwd=ROOT, env=worker_env, start_new_session=True,
        )
        # Deliveries start only once the worker answers (a fixed sleep measured its start-up on a
        # loaded machine as delivery latency).
        started_wait = time.time()
        while not app.control.ping(destination=[worker_name], timeout=1.0):
            if time.time() - started_wait > 90 or worker.poll() is not None:
                raise SystemExit("the celery worker did not come up")
        print(f"worker ready after {time.time() - started_wait:.1f} s")
        if args.import_products:
            importer = subprocess.Popen([sys.executable, __file__, "--child-import", str(import_op)], cwd=ROOT,
                                        env=import_env, stdout=subprocess.PIPE, text=True, start_new_session=True)
            time.sleep(1.0)  # the export is streaming and rows are being written when deliveries start
        e2e_first = order_base + next(cursor)
        e2e_started = time.time()
        worker_cpu0 = group_cpu_seconds(worker.pid)
        timeline: list[tuple[float, int, int, int]] = []
        sampling = threading.Event()
        sampler = threading.Thread(target=sample_backlog, args=(app, user, e2e_started, sampling, timeline),
                                   daemon=True)
        sampler.start()
        lat, sent = fixed_rate(port, webhook, args.rate, args.seconds)
        e2e_ended = time.time()
        e2e_last = order_base + next(cursor)
        deadline = time.time() + 60
        rows = OrderLedger.objects.filter(seller=user, order_id__gte=e2e_first, order_id__lt=e2e_last)
        expected = len(sent) * len(SAMPLE["order_items"])
        while rows.filter(decremented_at__isnull=False).count() < expected and time.time() < deadline:
            time.sleep(0.5)
        events = WebhookEvent.objects.filter(seller=user, object_id__gte=e2e_first, object_id__lt=e2e_last)
        e2e = []
        first_in = last_done = None
        for ev in events.values("object_id", "received_at"):
            row = rows.filter(order_id=ev["object_id"]).order_by("-decremented_at").values("decremented_at").first()
            if row and row["decremented_at"]:
                e2e.append((row["decremented_at"] - ev["received_at"]).total_seconds() * 1000)
                first_in = min(first_in or ev["received_at"], ev["received_at"])
                last_done = max(last_done or row["decremented_at"], row["decremented_at"])
        worker_cpu = group_cpu_seconds(worker.pid) - worker_cpu0  # the applies of this phase, all settled
        sampling.set()
        sampler.join()
        if importer is not None:
            out, _ = importer.communicate(timeout=600)
            lines = [line for line in out.splitlines() if line.startswith("{")]
            import_result = json.loads(lines[-1]) if lines else {"state": f"child exit {importer.returncode}"}
            import_result["overlap"] = "whole phase" if import_result.get("wall", 0) + 1.0 >= e2e_ended - e2e_started \
                else f"first {import_result.get('wall', 0):.1f} s of {e2e_ended - e2e_started:.1f} s"
    finally:
        for proc in (importer, worker, gunicorn):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
        if sandbox is not None:
            from cardtrader_sandbox.runner import stop_sandbox

            stop_sandbox(sandbox)

    cmd = "  ".join(["command: .venv/bin/python bench/webhook_bench.py", f"--rate {args.rate:g}",
                     f"--seconds {args.seconds:g}", f"--conns {args.conns}", f"--rounds {args.rounds}",
                     f"--worker-class {args.worker_class}",
                     f"--threads {args.threads}", f"--worker-concurrency {args.worker_concurrency}",
                     f"--worker-db-pool {args.worker_db_pool}",
                     f"--import-products {args.import_products}"])
    print(cmd)
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(steal.line())
    print(f"gunicorn {' '.join(server)}, body {len(pool[0][0])} bytes")
    print(f"{'endpoint':28} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'req/s (closed loop)':>20} "
          f"{'server CPU ms/req':>18} {'db CPU ms/req':>14} {'load':>5}")
    for name, (lat, rps, cpu_ms, db_ms, load) in results.items():
        print(f"{name:28} {statistics.median(lat):8.2f} {pct(lat, 99):8.2f} {max(lat):8.2f} {rps:20.0f} "
              f"{cpu_ms:18.2f} {db_ms:14.2f} {load:5.1f}")
    trivial_r, webhook_r = results["trivial GET /health/live"], results["webhook POST"]
    print(f"webhook throughput / trivial: {webhook_r[1] / trivial_r[1]:.2f} "
          f"(per round: {', '.join(f'{r:.2f}' for r in round_ratios)}); "
          f"CPU per request trivial / webhook: {trivial_r[2] / webhook_r[2]:.2f} server, "
          f"{(trivial_r[2] + trivial_r[3]) / (webhook_r[2] + webhook_r[3]):.2f} server + database "
          "(the throughput ratio an otherwise idle machine would allow)")
    print("fixed rate, longest stretch a database backend was seen waiting on the WAL's disk: " + "; ".join(
        f"{name}: {ms:.0f} ms" for name, ms in wal_waits.items()))
    print("throughput phase, rest of the machine: " + "; ".join(
        f"{name}: load generator {client_ms:.2f} ms CPU/req, machine idle {idle:.0%}"
        for name, (client_ms, idle) in spent.items()))
    print(f"database commits per webhook delivery in the throughput phase: {commits_per_delivery:.2f} "
          "(below 1: the inbox's group commit stored concurrent deliveries together)")
    if e2e:
        print(f"end to end (stored → stock decremented, worker -c {args.worker_concurrency}, "
              f"DB pool {args.worker_db_pool}) at {args.rate:g} req/s: "
              f"n={len(e2e)}/{len(sent)} "
              f"min {min(e2e):.1f} ms  p50 {statistics.median(e2e):.1f} ms  p99 {pct(e2e, 99):.1f} ms  "
              f"max {max(e2e):.1f} ms; "
              f"request p50 {statistics.median(lat):.2f} ms p99 {pct(lat, 99):.2f} ms; "
              f"applied {len(e2e) / (last_done - first_in).total_seconds():.0f}/s from first stored to last applied; "
              f"worker CPU {worker_cpu / max(len(e2e), 1) * 1000:.2f} ms per delivery")
    if timeline:
        print("backlog timeline (s: broker queue / held unacked / stored not applied): " + ", ".join(
            f"{t:.0f}: {q}/{u}/{w}" for t, q, u, w in timeline[::2]))
    if import_result:
        print(f"concurrent import of another seller ({args.import_products:,} products): {import_result}")


if __name__ == "__main__":
    main()
