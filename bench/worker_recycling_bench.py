"""What recycling gunicorn workers costs the webhook endpoint: ``max_requests`` at several values.

A new worker imports the app and warms up (~1.2 s of CPU here) while a webhook delivery costs
~1.5 ms, so how often workers are replaced decides a share of the web tier's CPU. One gunicorn
per value, each started as production starts it (``-c brxsync/gunicorn.conf.py``: gthread,
``--workers`` × 4 threads, production's settings at INFO, metrics in multiprocess mode, no
tracing), driven in turn by ``--conns`` closed-loop keep-alive clients sending signed test-mode
deliveries (verify, parse, store, answer), rounds alternated so drift hits every value alike.
Reported per value: the median of the rounds' requests/s and server CPU per request (recycled
workers included: their CPU is counted once the master reaps them). 0 is "never recycled".

Run:  .venv/bin/python bench/worker_recycling_bench.py [--values 2000,50000,0 --rounds 8 --seconds 4]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import time

from _proc import HostSteal
from observability_overhead import _cleanup, _closed_loop, _Server, prepare_gunicorn_bench


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--values", default="2000,50000,0", help="GUNICORN_MAX_REQUESTS values to compare")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=4.0, help="per value per round")
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    args.sample_ratio = "0"  # _Server reads it only for the "on" mode (tracing); not used here
    steal = HostSteal()
    user, url, make_body, workdir = prepare_gunicorn_bench("recycling-bench-")
    values = [int(v) for v in args.values.split(",")]
    servers = {v: _Server("no_tracing", workdir, 0, args, max_requests=v, name=f"max{v}") for v in values}
    rounds: dict[int, list[tuple[float, float]]] = {v: [] for v in values}
    try:
        for server in servers.values():
            server.wait_ready()
            _closed_loop(server.port, "webhook", url, make_body, args.conns, 1.0)
        for round_no in range(args.rounds):
            k = round_no % len(values)
            for value in values[k:] + values[:k]:  # who goes first rotates
                server = servers[value]
                cpu0 = server.cpu()
                n, elapsed, _ = _closed_loop(server.port, "webhook", url, make_body, args.conns, args.seconds)
                time.sleep(0.2)  # a worker that just exited is reaped (its CPU counted) before the reading
                rounds[value].append((n / elapsed, (server.cpu() - cpu0) / max(n, 1) * 1000))
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        _cleanup(user)
    print(f"command: .venv/bin/python bench/worker_recycling_bench.py --values {args.values} --rounds {args.rounds} "
          f"--seconds {args.seconds} --conns {args.conns} --workers {args.workers}")
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; {steal.line()}")
    never = statistics.median(rps for rps, _ in rounds[0]) if 0 in rounds else None
    for value in values:
        rps = statistics.median(r for r, _ in rounds[value])
        cpu = statistics.median(c for _, c in rounds[value])
        vs = f"; {rps / never - 1:+.1%} throughput against never recycled" if never and value else ""
        label = "never" if value == 0 else f"every {value:,}"
        print(f"max_requests {label:>14}: {rps:7.0f} req/s, server CPU {cpu:.2f} ms/request{vs}")


if __name__ == "__main__":
    main()
