"""What observability costs per request: logging + metrics + tracing on vs off, same run.

In-process (Django's test ``Client``: no network, so the figure is the server-side cost alone,
the worst case for the ratio) against the real PostgreSQL (database ``brxsync_obsbench``,
created and migrated if absent). Endpoints:

- ``webhook``: ``POST /api/v1/webhooks/cardtrader/<id>/``, a signed test-mode delivery with a
  fresh id each time (verify, parse, INSERT ... ON CONFLICT, answer): the hot path CardTrader hits.
- ``health``: ``GET /health/live``: the framework floor, where any fixed cost weighs most.

Modes, alternated round by round so drift (other work on the machine) hits both alike:

- ``off``: no django-prometheus or observability middleware, root logger at WARNING (no access
  line), tracing not installed.
- ``no_tracing``: ``on`` without OpenTelemetry (what logs + metrics cost alone).
- ``on``: the production stack: both middlewares (route/status/latency histograms, the JSON
  access line with request id, webhook outcome counter), JSON logs at INFO written to a file,
  and OpenTelemetry (Django, Redis, SQL spans) exported over OTLP/HTTP by the batch processor to
  a local collector stub (a stdlib HTTP server answering 200), sampling ``--sample-ratio`` of the
  traces (production's default 0.1; 1.0 records every request).

Run:  .venv/bin/python bench/observability_overhead.py [--requests 400] [--rounds 4]
"""
from __future__ import annotations

import argparse
import http.server
import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brxsync.test_settings")
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/brxsync_obsbench")
os.environ["LOG_FORMAT"] = "json"


class _Sink(http.server.BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Sink.received += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


MODES = ("off", "no_tracing", "on")


def _ensure_database() -> None:
    import psycopg

    name = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as pg:
        if not pg.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            pg.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400, help="per mode per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--sample-ratio", default="0.1",
                        help="OTEL_TRACES_SAMPLE_RATIO for 'on' (production default 0.1; 1.0 traces every request)")
    args = parser.parse_args()
    os.environ["OTEL_TRACES_SAMPLE_RATIO"] = args.sample_ratio

    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink.server_port}"
    os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = f"http://127.0.0.1:{sink.server_port}/v1/traces"
    _ensure_database()

    import django

    django.setup()  # configures tracing too (the endpoint is set): disabled below for "off"
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import override_settings

    from brxsync import tracing
    from brxsync.observability.logs import make_formatter
    from inventory.models import ConnectionState, SyncSettings, User
    from syncops import webhook_signature
    from syncops.models import WebhookEvent

    call_command("migrate", verbosity=0)
    user = User.objects.create(username=f"obsbench-{uuid.uuid4().hex[:8]}")
    sync = SyncSettings(user=user)
    secret = uuid.uuid4().hex
    sync.set_credentials(token=f"tok-{uuid.uuid4().hex}", shared_secret=secret)
    sync.connection_state = ConnectionState.CONNECTED
    sync.save()
    webhook_url = f"/api/v1/webhooks/cardtrader/{sync.webhook_id}/"

    log_file = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    root = logging.getLogger()
    file_handler = logging.StreamHandler(log_file)
    file_handler.setFormatter(make_formatter("json"))
    for f in root.handlers[0].filters:
        file_handler.addFilter(f)
    original_handlers = list(root.handlers)

    bare = [m for m in settings.MIDDLEWARE
            if not m.startswith("django_prometheus.") and m != "brxsync.observability.context.ObservabilityMiddleware"]
    counter = iter(range(10**9))

    def webhook_body() -> tuple[bytes, str]:
        n = next(counter)
        body = (b'{"id":"%s","time":%d,"cause":"order.update","object_class":"Order","object_id":%d,'
                b'"mode":"test","data":{"id":%d,"state":"paid","order_items":[]}}'
                % (uuid.uuid4().hex.encode(), int(time.time()), n, n))
        return body, webhook_signature.sign(body, secret)

    def run(mode: str, endpoint: str, n: int) -> list[float]:
        if mode in ("on", "no_tracing"):
            if mode == "on":
                tracing.configure()
            else:
                tracing.disable()
            root.handlers = [file_handler]
            root.setLevel(logging.INFO)
            ctx = override_settings()
        else:
            tracing.disable()
            root.handlers = original_handlers
            root.setLevel(logging.WARNING)
            ctx = override_settings(MIDDLEWARE=bare)
        timings = []
        with ctx:
            client = Client()
            for _ in range(n):
                if endpoint == "webhook":
                    body, sig = webhook_body()
                    started = time.perf_counter()
                    r = client.post(webhook_url, data=body, content_type="application/json", HTTP_SIGNATURE=sig)
                else:
                    started = time.perf_counter()
                    r = client.get("/health/live")
                timings.append(time.perf_counter() - started)
                assert r.status_code == 200, r.content
        return timings

    results: dict[tuple[str, str], list[float]] = {}
    for endpoint in ("health", "webhook"):
        run("on", endpoint, 50)  # warm-up: imports, connections, instrumentation
        run("off", endpoint, 50)
        for _ in range(args.rounds):
            for mode in MODES:
                results.setdefault((endpoint, mode), []).extend(run(mode, endpoint, args.requests))
    tracing.disable()
    root.handlers = original_handlers
    log_file.close()
    lines = sum(1 for _ in open(log_file.name))
    os.unlink(log_file.name)
    WebhookEvent.objects.filter(seller=user).delete()
    user.delete()

    print(f"# {time.strftime('%Y-%m-%d')} {platform.platform()} python {platform.python_version()} "
          f"cores={os.cpu_count()}")
    print(f"# command: .venv/bin/python bench/observability_overhead.py --requests {args.requests} "
          f"--rounds {args.rounds} --sample-ratio {args.sample_ratio}   (load average {os.getloadavg()[0]:.1f})")
    print("| endpoint | mode | requests | req/s | median ms | p95 ms | overhead (req/s) | overhead (median) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for endpoint in ("health", "webhook"):
        base = base_median = None
        for mode in MODES:
            t = results[(endpoint, mode)]
            rate = len(t) / sum(t)
            p95 = statistics.quantiles(t, n=20)[18] * 1000
            median = statistics.median(t)
            over = "baseline" if base is None else f"{(base / rate - 1) * 100:+.1f}%"
            over_median = "baseline" if base_median is None else f"{(median / base_median - 1) * 100:+.1f}%"
            base, base_median = base or rate, base_median or median
            print(f"| {endpoint} | {mode} | {len(t)} | {rate:,.0f} | {median * 1000:.2f} | "
                  f"{p95:.2f} | {over} | {over_median} |")
    print(f"# on: {lines} log lines written, {_Sink.received} OTLP export batches received by the stub")


if __name__ == "__main__":
    main()
