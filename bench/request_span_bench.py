"""CPU of the request span per web request: tracing off, the SDK's span for every request, and
``request_span``'s own draw (no SDK span for a request that is not sampled).

Production samples 0.1 of traces (``--ratio``), so nine requests in ten start a trace that records
nothing; through the SDK each still paid for the sampler chain, a span object and the context
manager layers. The three modes run ``ObservabilityMiddleware`` around a bare view that answers as
the webhook endpoint does, in one process, rounds alternated; the access line is off (WARNING) so
the figures are the middleware, its metrics and the span. Sampled spans go to an in-memory
exporter (no collector exists here), so their export costs less than production's OTLP batches.

Run:  .venv/bin/python bench/request_span_bench.py [--requests 20000 --rounds 5 --ratio 0.1]
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _proc import HostSteal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brxsync.test_settings")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="spanbench-metrics-")  # as gunicorn runs it


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ratio", default="0.1", help="OTEL_TRACES_SAMPLE_RATIO (production's default 0.1)")
    args = ap.parse_args()
    os.environ["OTEL_TRACES_SAMPLE_RATIO"] = args.ratio
    steal = HostSteal()
    import django

    django.setup()
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.urls import resolve
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from brxsync import tracing
    from brxsync.observability.context import ObservabilityMiddleware

    logging.getLogger().setLevel(logging.WARNING)
    request = RequestFactory().post("/api/v1/webhooks/cardtrader/00000000-0000-0000-0000-000000000000/",
                                    data=b"{}", content_type="application/json")
    request.request_id = "bench"
    match = resolve(request.path)

    def view(req: object) -> HttpResponse:
        req.resolver_match = match  # type: ignore[attr-defined]
        response = HttpResponse(b'{"duplicate":false}', content_type="application/json")
        response.webhook_outcome = ("accepted", "")  # type: ignore[attr-defined]
        return response

    middleware = ObservabilityMiddleware(view)
    exporter = InMemorySpanExporter()

    def per_request() -> float:
        for _ in range(500):
            middleware(request)
        exporter.clear()
        started = time.process_time()
        for _ in range(args.requests):
            middleware(request)
        return (time.process_time() - started) / args.requests * 1e6

    tracing.configure(exporter)
    own_draw = tracing._root_sampler
    modes = ("tracing off", "SDK span for every request (before)", "request_span's own draw")
    results: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(args.rounds):
        tracing.disable()
        results[modes[0]].append(per_request())
        tracing.configure(exporter)
        tracing._root_sampler = None  # request_span then leaves every decision to the SDK
        results[modes[1]].append(per_request())
        tracing._root_sampler = own_draw
        results[modes[2]].append(per_request())
    tracing.disable()
    print(f"command: .venv/bin/python bench/request_span_bench.py --requests {args.requests} "
          f"--rounds {args.rounds} --ratio {args.ratio}")
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; {steal.line()}")
    base = statistics.median(results[modes[0]])
    for mode, values in results.items():
        median = statistics.median(values)
        print(f"{mode:38} {median:6.1f} µs per request (rounds {', '.join(f'{v:.1f}' for v in values)}; "
              f"span {median - base:+.1f} µs)")


if __name__ == "__main__":
    main()
