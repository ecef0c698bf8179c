"""Peak memory and throughput of streaming GET /products/export through the CardTrader client.

Starts the CardTrader sandbox (a subprocess), seeds N products (default 250,000) on a fresh
account, then reads the export in a FRESH process per mode, so each peak RSS (ru_maxrss) belongs
to that mode alone:

- ``client``      the service's client: ``CardTraderClient.export_products()`` (ijson yajl2_c, one
                  typed ``Product`` at a time). Goal: under 150 MB resident for the whole process.
- ``json_loads``  baseline: ``requests.get`` + ``json.loads`` of the whole body (what the earlier
                  implementation did), then the same typed ``Product`` per row.
- ``raw_read``    baseline: the bare transfer (``iter_content`` discarded), the floor for wall time.
- ``idle``        baseline: the process with the same imports and nothing read.

Run:  .venv/bin/python bench/export_stream_memory.py [--products 250000] [--modes client,json_loads,raw_read,idle]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(mode: str, api_base: str, token: str) -> None:
    import requests

    from syncops.cardtrader import CardTraderClient, Product

    count = 0
    quantity = 0
    started = time.perf_counter()
    if mode == "client":
        with CardTraderClient(token=token, seller_id="bench", base_url=api_base,
                              timeout=(5.0, 30.0), export_timeout=(5.0, 600.0)) as client:
            for product in client.export_products():
                count += 1
                quantity += product.quantity
    elif mode == "json_loads":
        resp = requests.get(f"{api_base}/products/export", headers={"Authorization": f"Bearer {token}"},
                            timeout=(5.0, 600.0))
        resp.raise_for_status()
        rows = json.loads(resp.content)
        for row in rows:
            product = Product.from_json(row)
            count += 1
            quantity += product.quantity
    elif mode == "raw_read":
        with requests.get(f"{api_base}/products/export", headers={"Authorization": f"Bearer {token}"},
                          timeout=(5.0, 600.0), stream=True) as resp:
            resp.raise_for_status()
            for chunk in resp.iter_content(64 * 1024):
                count += len(chunk)  # bytes here, not products
    elif mode != "idle":
        raise SystemExit(f"unknown mode {mode}")
    elapsed = time.perf_counter() - started
    print(json.dumps({"mode": mode, "count": count, "quantity": quantity, "seconds": elapsed,
                      "peak_rss_mb": _rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=250_000)
    parser.add_argument("--modes", default="client,json_loads,raw_read,idle")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--api-base", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.api_base, args.token)
        return

    from cardtrader_sandbox.pytest_plugin import start_sandbox, stop_sandbox

    sandbox = start_sandbox()  # a subprocess on a free port, the same helper the tests use
    try:
        control = sandbox.control
        account = control.create_account(name="Bench shop")
        t0 = time.perf_counter()
        seeded = control.seed_products(account.user_id, args.products, seed=0)
        seed_s = time.perf_counter() - t0
        results = []
        for mode in args.modes.split(","):
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--api-base", sandbox.api_base,
                 "--token", account.token], cwd=ROOT, capture_output=True, text=True, check=True,
            )
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        stop_sandbox(sandbox)

    print(f"export streaming, {seeded:,} products seeded in {seed_s:.1f} s "
          f"(Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()})")
    print(f"{'mode':<12}{'wall s':>9}{'products/s':>13}{'peak RSS MB':>13}  note")
    for r in results:
        if r["mode"] in ("client", "json_loads"):
            rate = f"{r['count'] / r['seconds']:,.0f}" if r["seconds"] else "-"
            note = "all products read" if r["count"] == seeded else f"COUNT MISMATCH {r['count']}"
        elif r["mode"] == "raw_read":
            rate, note = "-", f"{r['count'] / 1e6:.1f} MB body, transfer only"
        else:
            rate, note = "-", "imports only"
        print(f"{r['mode']:<12}{r['seconds']:>9.2f}{rate:>13}{r['peak_rss_mb']:>13.1f}  {note}")
    client_rss = next((r["peak_rss_mb"] for r in results if r["mode"] == "client"), None)
    if client_rss is not None:
        print(f"goal: client peak RSS < 150 MB -> {'MET' if client_rss < 150 else 'MISSED'} ({client_rss:.1f} MB)")
    print("reproduce: " + shlex.join([".venv/bin/python", "bench/export_stream_memory.py",
                                      "--products", str(args.products), "--modes", args.modes]))


if __name__ == "__main__":
    main()
