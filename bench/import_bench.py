"""Import of N products (default 250,000) from the CardTrader sandbox into PostgreSQL.

Figures, each measured in a FRESH process so peak RSS (ru_maxrss) belongs to that stage alone:

- ``import``  the whole service path: ``import_run`` (streamed export through the metered client,
              producer thread, batched catalogue mapping, COPY + set-based upsert per 5,000-row
              chunk, removal anti-join). Wall time, products/s, peak RSS. Goals: < 10 s, < 250 MB.
- ``write``   the DB-write stage alone on rows already in memory (``ChunkWriter``, 5,000-row chunks,
              inserting every row): a first import (chunks COPYed into the stock table) with one
              connection and with ``IMPORT_WRITERS`` (what the import uses), and the staged
              COPY + set-based upsert (re-import / retry path), next to the baseline: a plain
              ``COPY`` of the same rows into a scratch table, in the same process (binary as the
              import sends it, and text; the faster counts). Goal: write ≥ 1/3 of COPY's rate.
              Each stage also reports its CPU seconds (this process + its PostgreSQL backends,
              from /proc), which the neighbours on a shared machine cannot inflate.

Uses the database ``brxsync_bench`` (or ``BENCH_DATABASE_URL``'s) on the local PostgreSQL (created
and migrated if missing), the
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
import threading
import time
import uuid
from pathlib import Path

from _proc import HostSteal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brxsync.test_settings")
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/brxsync_bench")
os.environ.setdefault("BLUEPRINT_DATABASE_URL", "mysql://root@127.0.0.1:3306/test_brxsync_catalogue")


class CpuMeter:
    """CPU seconds of this process plus the PostgreSQL backends serving its database.

    On two shared cores wall time mostly measures the neighbours: a stage's CPU does not. The
    backends are found by their process title (``postgres: <user> <database> ...``), sampled every
    0.1 s by pid and start time so a backend that exits mid-stage (a writer's connection) keeps its
    last figure. Needs the same machine as PostgreSQL and read access to its /proc entries; reports
    ``None`` otherwise.
    """

    def __init__(self, database: str) -> None:
        self.needle = f" {database} ".encode()
        self.seen: dict[tuple[str, str], int] = {}
        self.tick = os.sysconf("SC_CLK_TCK")
        self.ok = Path("/proc").is_dir()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        if self.ok:
            self._thread.start()

    def _scan(self) -> None:
        for d in Path("/proc").glob("[0-9]*"):
            try:
                if self.needle not in (d / "cmdline").read_bytes().replace(b"\0", b" "):
                    continue
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            self.seen[(d.name, fields[19])] = int(fields[11]) + int(fields[12])

    def _poll(self) -> None:
        while not self._stop.wait(0.1):
            self._scan()

    def read(self) -> tuple[float, float | None]:
        """(this process's CPU s, the backends' CPU s or None)."""
        own = sum(os.times()[:2])
        if not self.ok:
            return own, None
        time.sleep(0.15)  # let a finishing backend's last tick land
        self._scan()
        return (own, sum(self.seen.values()) / self.tick) if self.seen else (own, None)


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
    from syncops.services.export_process import last_stats

    times = os.times()
    # The parser process (IMPORT_PARSE_PROCESS): its CPU as a waited-for child, its peak RSS as it
    # reported it (VmHWM; ru_maxrss of a child counts the parent's size at the fork).
    return {"state": str(outcome.state), "wall": wall, "rss_mb": _rss_mb(), "result": outcome.result,
            "cpu_s": times[0] + times[1], "children_cpu_s": times[2] + times[3],
            "children_rss_mb": last_stats.get("peak_rss_kb", 0) / 1024}


def child_write(api_base: str, token: str) -> dict:
    _setup_django()
    from django.conf import settings
    from django.db import connection, transaction

    from inventory.models import User
    from syncops.cardtrader import CardTraderClient
    from syncops.services.stage_rows import COPY_TYPES, STAGE_COLUMNS, encode_chunk, export_row
    from syncops.services.stock_stage import (
        ChunkWriter,
        EncodedChunk,
        StageTables,
        copy_rows,
        map_rows,
    )

    with CardTraderClient(token=token, seller_id="bench", base_url=api_base, export_timeout=(5.0, 600.0)) as c:
        rows = list(c.export_products(convert=export_row))
    for i in range(0, len(rows), 5000):
        map_rows(rows[i:i + 5000])
    # What the writers get: with the parser process (IMPORT_PARSE_PROCESS, the default on PostgreSQL)
    # chunks arrive as binary COPY data made in that process, so the write stage is fed those (made
    # here, before the clock starts, as the rows are); otherwise the rows themselves.
    encoded = bool(settings.IMPORT_PARSE_PROCESS)
    chunks: list = []
    for i in range(0, len(rows), 5000):
        if encoded:
            chunk = EncodedChunk(encode_chunk(rows[i:i + 5000]))
            map_rows(chunk)
            chunks.append(chunk)
        else:
            chunks.append(rows[i:i + 5000])
    whole = EncodedChunk(encode_chunk(rows))  # the COPY baseline's ready-bytes variant
    map_rows(whole)
    meter = CpuMeter(connection.settings_dict["NAME"])
    cpu: dict[str, tuple[float, float | None]] = {}

    def measured(key: str, started_cpu: tuple[float, float | None]) -> None:
        now = meter.read()
        cpu[key] = (now[0] - started_cpu[0],
                    None if now[1] is None or started_cpu[1] is None else now[1] - started_cpu[1])

    with connection.cursor() as cur:  # baseline: plain COPY of the same rows into a scratch table
        cur.execute("DROP TABLE IF EXISTS bench_scratch")
        cur.execute("CREATE TABLE bench_scratch (product_id bigint, blueprint_id int, print_id bigint, "
                    "print_table varchar(32), name varchar(255), game_id int, category_id int, expansion_id int, "
                    "quantity int, price_cents int, currency varchar(3), properties jsonb, description text, "
                    "user_data_field text, graded boolean)")
        cols = ", ".join(STAGE_COLUMNS)
        text_types = [t if t != "jsonb" else "text" for t in COPY_TYPES]
        times: dict[str, list[float]] = {"copy_bin_s": [], "copy_text_s": [], "copy_ready_s": []}
        # Binary (psycopg's rows, as the in-process path sends them), text (typed, properties as
        # text) and ready binary bytes (made before the clock starts, as the parser process sends
        # them), twice each, interleaved; the baseline is the fastest of the six.
        for key in ("copy_bin_s", "copy_text_s", "copy_ready_s", "copy_ready_s", "copy_text_s", "copy_bin_s"):
            cur.execute("TRUNCATE bench_scratch")
            c0 = meter.read()
            started = time.perf_counter()
            with transaction.atomic():
                if key == "copy_bin_s":
                    copy_rows(cur, "bench_scratch", rows)
                elif key == "copy_ready_s":
                    copy_rows(cur, "bench_scratch", whole)
                else:
                    with cur.cursor.copy(f"COPY bench_scratch ({cols}) FROM STDIN") as copy:
                        copy.set_types(text_types)
                        for r in rows:
                            copy.write_row(r)
            times[key].append(time.perf_counter() - started)
            if times[key][-1] == min(times[key]):
                measured(key, c0)
        cur.execute("DROP TABLE bench_scratch")
    best = {key: min(v) for key, v in times.items()}
    fastest = min(best, key=best.__getitem__)
    copy_s = best[fastest]
    cpu["copy_s"] = cpu[fastest]
    del whole
    out = {"rows": len(rows), "copy_s": copy_s, "copy_bin_s": best["copy_bin_s"], "copy_text_s": best["copy_text_s"],
           "copy_ready_s": best["copy_ready_s"], "writers": settings.IMPORT_WRITERS, "encoded": encoded}
    # A first import as the import writes it (chunks COPYed into the stock table), with one
    # connection and with IMPORT_WRITERS; then the staged upsert (what a re-import or a crashed first
    # import's retry uses) inserting the same rows, with IMPORT_WRITERS.
    stages = [(f"write_s_{w}", w, True) for w in sorted({1, settings.IMPORT_WRITERS})]
    stages.append(("upsert_s", settings.IMPORT_WRITERS, False))
    for key, writers, first in stages:
        _fresh_items_table()
        seller = User.objects.create(username=f"bench-write-{uuid.uuid4().hex[:8]}")
        c0 = meter.read()
        started = time.perf_counter()
        with StageTables(keep_rows=False) as stage:
            with ChunkWriter(stage, seller.pk, writers=writers, first_import=first) as writer:
                for chunk in chunks:
                    writer.write(chunk)
                writer.finish()
            stage.finish_seen()
        out[key] = time.perf_counter() - started
        measured(key, c0)
        assert writer.counts.inserted == len(rows), writer.counts
        assert writer.copied == (len(rows) if first else 0), writer.copied
    out["write_s"] = out[f"write_s_{settings.IMPORT_WRITERS}"]
    out["cpu"] = cpu
    out["rss_mb"] = _rss_mb()
    return out


def _download(api_base: str, token: str) -> tuple[float, int]:
    import requests

    started = time.perf_counter()
    size = 0
    with requests.get(f"{api_base}/products/export", headers={"Authorization": f"Bearer {token}"}, stream=True,
                      timeout=(5, 600)) as resp:
        resp.raise_for_status()
        for piece in resp.iter_content(1 << 20):
            size += len(piece)
    return time.perf_counter() - started, size


def _fresh_items_table() -> None:
    """Empty the bench database's stock (and what references it) so every run and stage starts
    alike: this PostgreSQL runs without autovacuum, and dead rows of earlier runs (2.3 M after a
    few) made the same insert several times slower."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("TRUNCATE inventory_inventoryitem CASCADE")


def _run_child(*args: str, env: dict, profile: str = "") -> dict:
    cmd = [sys.executable, __file__, "--child", *args]
    if profile:  # py-spy's collapsed stacks (one line per stack, count last) of the child, all threads,
        # and of its own children (the import's parser process)
        cmd = [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw", "--threads", "--idle",
               "--subprocesses", "--rate", "250", "-o", f"{profile}/{args[0]}.txt", "--", *cmd]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"child failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=250_000)
    parser.add_argument("--child", nargs="+")
    parser.add_argument("--profile", default="", help="directory for py-spy raw profiles of the children")
    args = parser.parse_args()
    if args.child:
        mode = args.child[0]
        result = child_import(int(args.child[1])) if mode == "import" else child_write(*args.child[1:3])
        print(json.dumps(result, default=str), flush=True)
        return

    import psycopg

    steal = HostSteal()
    load_before = os.getloadavg()
    from psycopg import sql

    dbname = os.environ["DATABASE_URL"].rsplit("/", 1)[1].split("?")[0]  # BENCH_DATABASE_URL's, or brxsync_bench
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as pg:
        if not pg.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone():
            pg.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    _setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from _sandbox_accounts import free_sandbox_account

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
        # The transfer floor, and the sandbox's render cache filled (it is a test double: the
        # import should be measured, not the double's first JSON rendering). Both printed.
        transfer = [_download(sandbox.api_base, acct.token) for _ in range(2)]
        _fresh_items_table()
        free_sandbox_account(acct.user_id)
        seller_id = uuid.uuid4()
        connection_connect(seller_id=seller_id, token=acct.token)
        seller = User.objects.get(pk=seller_id)
        op = import_start(seller=seller, dispatch=False)
        spy = None
        if args.profile:  # the sandbox too, while it serves the import's export
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw",
                                    "--threads", "--rate", "250", "-o", f"{args.profile}/sandbox.txt",
                                    "--pid", str(sandbox.process.pid)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        from django.db import connection

        meter = CpuMeter(connection.settings_dict["NAME"])
        backends_before = meter.read()[1]
        imp = _run_child("import", str(op.pk), env=env, profile=args.profile)
        backends_after = meter.read()[1]
        imp["backend_cpu_s"] = None if backends_before is None else backends_after - backends_before
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=30)
        count = InventoryItem.objects.filter(seller=seller).count()
        seller.delete()
        write = _run_child("write", sandbox.api_base, acct.token, env=env, profile=args.profile)
    finally:
        stop_sandbox(sandbox)

    n = imp["result"].get("processed", 0)
    print(f"import_bench  {time.strftime('%Y-%m-%d')}  {platform.platform()}  python {platform.python_version()}")
    print(f"  products seeded on the sandbox: {args.products:,} (seed {seed_s:.1f}s); load average before "
          f"{load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"  baseline: bare download of the export (no parsing): first {transfer[0][0]:.2f}s "
          f"(the sandbox renders every row), then {transfer[1][0]:.2f}s (cached rows); {transfer[1][1] / 1e6:.0f} MB")
    print(f"  import (whole path): {imp['state']}, {n:,} products, {count:,} rows, wall {imp['wall']:.2f}s, "
          f"{n / imp['wall']:,.0f} products/s, peak RSS {imp['rss_mb']:.0f} MB, parser process "
          f"{imp.get('children_rss_mb', 0):.0f} MB (goal < 10 s, < 250 MB each)")
    if imp.get("backend_cpu_s") is not None:
        print(f"    CPU: import process {imp['cpu_s']:.2f} s (incl. start-up), parser process "
              f"{imp.get('children_cpu_s', 0):.2f} s, PostgreSQL backends "
              f"{imp['backend_cpu_s']:.2f} s; result copied={imp['result'].get('copied')}")
    w_rate, c_rate = write["rows"] / write["write_s"], write["rows"] / write["copy_s"]
    if write["writers"] != 1:
        one = write["rows"] / write["write_s_1"]
        print(f"  write stage, one connection (first import: COPY into the stock table, 5,000/chunk): "
              f"{write['write_s_1']:.2f}s = {one:,.0f} rows/s = {one / c_rate:.2f} of COPY")
    print(f"  write stage alone, IMPORT_WRITERS={write['writers']} (what a first import uses): "
          f"{write['write_s']:.2f}s = {w_rate:,.0f} rows/s")
    u_rate = write["rows"] / write["upsert_s"]
    print(f"  staged upsert of the same new rows, IMPORT_WRITERS={write['writers']} (re-import / retry path): "
          f"{write['upsert_s']:.2f}s = {u_rate:,.0f} rows/s = {u_rate / c_rate:.2f} of COPY")
    print(f"  baseline plain COPY into a scratch table:               {write['copy_s']:.2f}s = {c_rate:,.0f} rows/s "
          f"(the fastest of binary {write['copy_bin_s']:.2f}s, text {write['copy_text_s']:.2f}s and ready bytes "
          f"{write['copy_ready_s']:.2f}s); writers fed {'ready bytes' if write['encoded'] else 'rows'}")
    print(f"  write/COPY = {w_rate / c_rate:.2f} (goal >= 0.33)")
    cpu = write["cpu"]
    if all(b is not None for _, b in cpu.values()):
        def total(key: str) -> float:
            return cpu[key][0] + cpu[key][1]

        print("  CPU seconds (bench process + its PostgreSQL backends), what the neighbours cannot inflate:")
        first = f"write_s_{write['writers']}"
        for key, label in ((first, "write stage (first import)"), ("upsert_s", "staged upsert"),
                           ("copy_s", "plain COPY")):
            print(f"    {label:28s} {cpu[key][0]:5.2f} + {cpu[key][1]:5.2f} = {total(key):5.2f} s")
        print(f"    COPY's CPU / write stage's CPU = {total('copy_s') / total(first):.2f}")
    print(f"  {steal.line()}")
    print(f"  reproduce: .venv/bin/python bench/import_bench.py {shlex.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
