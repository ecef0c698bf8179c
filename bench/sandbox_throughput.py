"""How many small requests per second the CardTrader sandbox serves, so it is never the
bottleneck of another benchmark (goal: >= 1,000/s on this 2-core machine).

The sandbox runs as its own subprocess; clients are separate processes, each with a few threads
holding one keep-alive ``http.client`` connection apiece. Baseline in the same run: a bare
stdlib ThreadingHTTPServer (HTTP/1.1, one write per response, TCP_NODELAY) answering a constant
body, measured with the same clients — the ceiling for this server design on this machine.

Also timed: seeding 250,000 products and streaming their whole export.

Run:  .venv/bin/python bench/sandbox_throughput.py [--seconds 5] [--procs 2] [--threads 4]
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cardtrader_sandbox.runner import start_sandbox, stop_sandbox  # noqa: E402

BASELINE_SERVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
BODY = b'{"id":3001,"name":"Shop","shared_secret":"0123456789abcdef0123456789abcdef","user_id":1001}'
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *a): pass
    def do_GET(self):
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(BODY), BODY))
class S(ThreadingHTTPServer):
    daemon_threads = True
s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def _client_proc(port: int, requests_spec: list, seconds: float, threads: int, out: mp.Queue) -> None:
    counts = [0] * threads
    errors = [0] * threads
    deadline_box = [0.0]
    start = threading.Barrier(threads + 1)

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = bad = 0
        spec_len = len(requests_spec)
        start.wait()
        deadline = deadline_box[0]
        while time.perf_counter() < deadline:
            method, path, headers, body, expected = requests_spec[(i + n) % spec_len]
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != expected:
                bad += 1
            n += 1
        conn.close()
        counts[i], errors[i] = n, bad

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    deadline_box[0] = time.perf_counter() + seconds
    start.wait()
    for t in pool:
        t.join()
    out.put((sum(counts), sum(errors)))


def load(port: int, spec: list, *, seconds: float, procs: int, threads: int) -> tuple[float, int]:
    out: mp.Queue = mp.Queue()
    workers = [mp.Process(target=_client_proc, args=(port, spec, seconds, threads, out)) for _ in range(procs)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    results = [out.get() for _ in workers]
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    total = sum(r[0] for r in results)
    return total / elapsed, sum(r[1] for r in results)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--seed-count", type=int, default=250_000)
    args = ap.parse_args()
    print(f"command: .venv/bin/python bench/sandbox_throughput.py --seconds {args.seconds} --procs {args.procs} "
          f"--threads {args.threads} --seed-count {args.seed_count}")
    print(f"clients: {args.procs} processes x {args.threads} keep-alive connections, {args.seconds:.0f} s per run")

    base = subprocess.Popen([sys.executable, "-c", BASELINE_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(base.stdout.readline())
        rate, bad = load(port, [("GET", "/api/v2/info", {}, None, 200)], seconds=args.seconds, procs=args.procs,
                         threads=args.threads)
        print(f"baseline  bare stdlib server, constant body      {rate:8.0f} req/s  (unexpected statuses: {bad})")
    finally:
        base.terminate()
        base.wait()

    sb = start_sandbox()
    try:
        ctl = sb.control
        ctl.set_config(global_limit=10**9)  # measure serving, not the 200/10 s limit
        port = int(sb.base_url.rsplit(":", 1)[1])
        accounts = [ctl.create_account(name=f"bench-{i}") for i in range(args.procs * args.threads)]
        info = [("GET", "/api/v2/info", {"Authorization": f"Bearer {a.token}"}, None, 200) for a in accounts]
        rate, bad = load(port, info, seconds=args.seconds, procs=args.procs, threads=args.threads)
        print(f"sandbox   GET /info (auth, rate limit, log)      {rate:8.0f} req/s  (unexpected statuses: {bad})")

        writes = []
        for a in accounts:
            pid = ctl.add_product(a.user_id, blueprint_id=6, price=1.0, quantity=1)["id"]
            body = json.dumps({"quantity": 3, "properties": {"mtg_foil": False}}).encode()
            writes.append(("PUT", f"/api/v2/products/{pid}", {"Authorization": f"Bearer {a.token}",
                                                              "Content-Type": "application/json"}, body, 200))
        rate, bad = load(port, writes, seconds=args.seconds, procs=args.procs, threads=args.threads)
        print(f"sandbox   PUT /products/:id (validated write)     {rate:8.0f} req/s  (unexpected statuses: {bad})")

        limited = ctl.create_account(name="bench-limited")
        ctl.set_config(global_limit=200)
        spec = [("GET", "/api/v2/info", {"Authorization": f"Bearer {limited.token}"}, None, 429)]
        rate, bad = load(port, spec, seconds=min(args.seconds, 3), procs=1, threads=args.threads)
        print(f"sandbox   one token over its limit (429s)         {rate:8.0f} req/s  (200s inside the limit: {bad})")

        big = ctl.create_account(name="bench-big")
        t = time.perf_counter()
        ctl.seed_products(big.user_id, args.seed_count, seed=1)
        seed_s = time.perf_counter() - t
        t = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        conn.request("GET", "/api/v2/products/export", headers={"Authorization": f"Bearer {big.token}"})
        resp = conn.getresponse()
        size = 0
        first_byte = None
        while chunk := resp.read(1 << 16):
            first_byte = first_byte or time.perf_counter() - t
            size += len(chunk)
        export_s = time.perf_counter() - t
        conn.close()
        rss_kb = int(Path(f"/proc/{sb.process.pid}/status").read_text().split("VmRSS:")[1].split()[0])
        print(f"sandbox   seed {args.seed_count:,} products                  {seed_s:8.2f} s")
        print(f"sandbox   export {args.seed_count:,} products (streamed)     {export_s:8.2f} s  "
              f"({size / 1e6:.0f} MB, first byte after {first_byte:.3f} s)")
        print(f"sandbox   resident memory after that               {rss_kb / 1024:8.0f} MB")
    finally:
        stop_sandbox(sb)


if __name__ == "__main__":
    main()
