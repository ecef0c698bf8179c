"""Prometheus metrics of BRX Sync that no other module owns.

Owned elsewhere: limiter and breaker families (``ratelimit/metrics.py``). Here:

* pushed from code paths: web requests by route, method and status with their latency
  (``observe_http_request``, called by ``ObservabilityMiddleware`` for every request), CardTrader
  requests (``observe_cardtrader_request``, called by the client), webhook deliveries
  (``record_webhook_delivery`` / ``observe_webhook_response``, called by the same middleware for
  the webhook route), DB connections opened (``connection_created``) and pool use (sampled when a
  request or task starts);
* read at scrape time (``SyncStateCollector``): Celery queue depth (Redis LLEN of the broker
  lists), operations by kind and state, and running imports' progress, straight from the
  source of truth, so they are right however many processes exist and whichever one scrapes.

Multiprocess: gunicorn workers and Celery's prefork children each keep their own counters,
so production runs prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, one
directory per container, wiped at start). The web container serves them at ``/metrics``
(``metrics_view``); each worker container serves its own on ``METRICS_WORKER_PORT``
(``start_worker_exporter``). Scrape-time collectors are added by ``metrics_view`` only, so
queue depth and operation counts are exported once, by the web, never once per worker.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import REGISTRY, Collector

logger = logging.getLogger(__name__)

CARDTRADER_REQUESTS = Counter(
    "brxsync_cardtrader_requests_total", "Requests sent to CardTrader by endpoint, method and outcome.",
    ["endpoint", "method", "outcome"],  # outcome: ratelimit.guard.Outcome values
)
CARDTRADER_LATENCY = Histogram(
    "brxsync_cardtrader_request_seconds", "CardTrader request latency (send to last byte read).",
    ["endpoint", "method"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180),
)
WEBHOOK_DELIVERIES = Counter(
    "brxsync_webhook_deliveries_total", "CardTrader webhook deliveries by result (accepted, duplicate, rejected).",
    ["result", "reason"],  # reason: the error code for rejections, "" otherwise
)
DB_CONNECTIONS_OPENED = Counter(
    "brxsync_db_connections_opened_total", "New database connections opened (churn: should stay low with pooling).",
    ["alias"],
)
DB_POOL = Gauge(
    "brxsync_db_pool_connections", "Pooled PostgreSQL connections per state, summed over live processes.",
    ["alias", "state"], multiprocess_mode="livesum",  # state: open | in_use | max | waiting
)

HTTP_REQUESTS = Counter(
    "brxsync_http_requests_total", "Web requests answered, by route (URL pattern), method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "brxsync_http_request_seconds",
    "Web request latency by route and method, measured by ObservabilityMiddleware (all but the request-id "
    "middleware included).",
    ["route", "method"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# Labelled children, looked up once: ``metric.labels(...)`` validates and locks on every call
# (~3 µs, ×2 per metric in multiprocess mode), and the hot paths ask for the same few children
# all day. Bounded: past the cap, children are looked up the slow way.
_children: dict[tuple[Any, ...], Any] = {}
_MAX_CHILDREN = 20_000


def _child(metric: Any, *labels: str) -> Any:
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = metric.labels(*labels)
        if len(_children) < _MAX_CHILDREN:
            _children[key] = child
    return child


_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_http_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered web request. ``route`` is the URL pattern (``<unresolved>`` for a 404 no
    pattern matched), so labels stay a fixed set; an unknown method is counted as ``other``."""
    method = method if method in _HTTP_METHODS else "other"
    _child(HTTP_REQUESTS, route, method, str(status)).inc()
    _child(HTTP_LATENCY, route, method).observe(seconds)


# CardTrader path segments that are ids become placeholders, so labels stay a small fixed set.
_ID_SEGMENT = re.compile(r"/(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F-]{27,}|[0-9a-fA-F]{32})(?=/|$)")


def cardtrader_endpoint(path: str) -> str:
    """``/products/123/increment?x=1`` -> ``/products/:id/increment``."""
    return _ID_SEGMENT.sub("/:id", path.split("?", 1)[0]) or "/"


def observe_cardtrader_request(*, method: str, path: str, outcome: str, seconds: float) -> None:
    """Count one CardTrader exchange. The client calls this once per request, in the same
    ``finally`` that records the outcome with the limiter (ok, client_error, auth_error,
    rate_limited, server_error, timeout)."""
    endpoint = cardtrader_endpoint(path)
    method = method.upper()
    CARDTRADER_REQUESTS.labels(endpoint, method, str(outcome)).inc()
    CARDTRADER_LATENCY.labels(endpoint, method).observe(seconds)


def record_webhook_delivery(result: str, reason: str = "") -> None:
    """``result`` is accepted, duplicate or rejected; ``reason`` the rejection's error code."""
    _child(WEBHOOK_DELIVERIES, result, reason).inc()


def observe_webhook_response(response: Any) -> None:
    """Classify the webhook endpoint's answer. The endpoint's contract (DESIGN §4) makes the
    response say it all: 200 with ``duplicate`` true or false, or an error envelope."""
    status = response.status_code
    try:
        body = json.loads(response.content) if not getattr(response, "streaming", False) else {}
    except (ValueError, TypeError):
        body = {}
    if 200 <= status < 300:
        record_webhook_delivery("duplicate" if body.get("duplicate") else "accepted")
        return
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    record_webhook_delivery("rejected", str(code or f"http_{status}")[:40])


# --- DB connections ---------------------------------------------------------------------------


def on_connection_created(sender: Any = None, connection: Any = None, **_: Any) -> None:
    if connection is not None:
        _child(DB_CONNECTIONS_OPENED, connection.alias).inc()


# Last value set per (pid, alias, state): a gauge write in multiprocess mode is an mmap write
# under a lock, and between two requests the pool's numbers rarely change.
_pool_sampled: dict[tuple[int, str, str], int] = {}


# At most one pool sample per process per this many seconds from request_started: the numbers are
# scraped every 15-30 s, and a sample (every alias's pool stats under its lock) cost ~12 µs of each
# web request's ~1.5 ms of CPU (docs/BENCHMARKS.md, fifth pass).
POOL_SAMPLE_SECONDS = 0.5
_next_request_sample = 0.0


def sample_db_pools_on_request(**_: Any) -> None:
    """``request_started`` receiver: ``sample_db_pools`` at most every ``POOL_SAMPLE_SECONDS``. A
    busy process still samples twice a second; an idle one samples at its next request, as before."""
    global _next_request_sample
    now = time.monotonic()
    if now < _next_request_sample:
        return
    _next_request_sample = now + POOL_SAMPLE_SECONDS  # threads racing here sample twice at worst
    sample_db_pools()


def sample_db_pools(**_: Any) -> None:
    """Record this process's pool use. Connected to task_prerun (and, throttled, to request_started
    through ``sample_db_pools_on_request``): a dict read, and a gauge write only for a number that
    changed, frequent exactly when the pool is busy."""
    from django.db import connections

    pid = os.getpid()  # in the key: a forked child starts with its own (zeroed) gauge values
    for conn in connections.all(initialized_only=True):
        pool = getattr(conn, "pool", None) if conn.vendor == "postgresql" else None
        if pool is None:
            continue
        try:
            stats = pool.get_stats()
        except Exception:  # noqa: S112 - the pool may be closing; the next sample will do
            continue
        size = stats.get("pool_size", 0)
        for state, number in (("open", size), ("in_use", max(0, size - stats.get("pool_available", 0))),
                              ("max", stats.get("pool_max", 0)), ("waiting", stats.get("requests_waiting", 0))):
            key = (pid, conn.alias, state)
            if _pool_sampled.get(key) != number:
                _child(DB_POOL, conn.alias, state).set(number)
                _pool_sampled[key] = number


# --- scrape-time state ------------------------------------------------------------------------

# kombu's Redis transport keeps a queue's priority levels in separate lists (priority_steps
# 0, 3, 6, 9): the level-0 list is the bare name, the others "<name>\x06\x16<level>".
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
_ATTENTION_STATES = ("pending", "running", "uncertain", "failed")


class SyncStateCollector(Collector):
    """Queue depth, operations and import progress, read when Prometheus scrapes.

    Every read is bounded (Redis socket timeouts, one grouped query per family) and a failing
    source is reported in ``brxsync_scrape_errors`` instead of failing the whole scrape.
    """

    def collect(self) -> Iterator[Metric]:
        errors = GaugeMetricFamily("brxsync_scrape_errors", "Sources that failed during this scrape.",
                                   labels=["source"])
        for source, reader in (("broker", self._queues), ("operations", self._operations),
                               ("imports", self._imports)):
            try:
                yield from reader()
                errors.add_metric([source], 0)
            except Exception as exc:
                logger.warning("metrics source %s failed: %s", source, type(exc).__name__)
                errors.add_metric([source], 1)
        yield errors

    def _queues(self) -> Iterable[Metric]:
        import redis
        from django.conf import settings

        url = settings.CELERY_BROKER_URL
        if not url.startswith(("redis://", "rediss://", "unix://")):
            return []
        depth = GaugeMetricFamily("brxsync_celery_queue_length", "Messages waiting in each Celery queue.",
                                  labels=["queue"])
        unacked = GaugeMetricFamily(
            "brxsync_celery_unacked_messages",
            "Messages delivered to workers and not yet acknowledged (running, prefetched or countdown).",
        )
        names = [q.name for q in settings.CELERY_TASK_QUEUES]
        # kombu prefixes every key it writes when the transport has a global_keyprefix.
        prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            pipe = client.pipeline(transaction=False)
            for name in names:
                for suffix in _PRIORITY_SUFFIXES:
                    pipe.llen(prefix + name + suffix)
            pipe.hlen(prefix + "unacked")
            values = pipe.execute()
        finally:
            client.close()
        n = len(_PRIORITY_SUFFIXES)
        for i, name in enumerate(names):
            depth.add_metric([name], sum(values[i * n:(i + 1) * n]))
        unacked.add_metric([], values[-1])
        return [depth, unacked]

    def _operations(self) -> Iterable[Metric]:
        from datetime import timedelta

        from django.db.models import Count
        from django.utils import timezone

        from syncops.models import SyncOperation

        attention = GaugeMetricFamily(
            "brxsync_operations", "Operations waiting, running or needing attention, by kind and state.",
            labels=["kind", "state"],
        )
        rows = (SyncOperation.objects.filter(state__in=_ATTENTION_STATES)
                .values_list("kind", "state").annotate(n=Count("id")).order_by())
        for kind, state, n in rows:
            attention.add_metric([kind, state], n)
        recent = GaugeMetricFamily(
            "brxsync_operations_created_last_hour", "Operations created in the last hour, by kind and current state.",
            labels=["kind", "state"],
        )
        since = timezone.now() - timedelta(hours=1)
        rows = (SyncOperation.objects.filter(created_at__gte=since)
                .values_list("kind", "state").annotate(n=Count("id")).order_by())
        for kind, state, n in rows:
            recent.add_metric([kind, state], n)
        return [attention, recent]

    def _imports(self) -> Iterable[Metric]:
        from syncops.models import OperationKind, OperationState, SyncOperation

        done = GaugeMetricFamily("brxsync_import_items_done", "Items processed by each running import.",
                                 labels=["seller_id", "operation_id"])
        total = GaugeMetricFamily("brxsync_import_items_total",
                                  "Items each running import expects (absent until known).",
                                  labels=["seller_id", "operation_id"])
        running = (SyncOperation.objects.filter(kind=OperationKind.IMPORT, state=OperationState.RUNNING)
                   .values_list("seller_id", "pk", "progress_done", "progress_total")[:100])
        for seller_id, pk, n_done, n_total in running:
            labels = [str(seller_id), str(pk)]
            done.add_metric(labels, n_done)
            if n_total is not None:
                total.add_metric(labels, n_total)
        return [done, total]


def _multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def process_registry() -> CollectorRegistry:
    """What this process (and, in multiprocess mode, its siblings) counted."""
    if _multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def render_web_metrics() -> bytes:
    """The web's exposition: every process's counters plus the scrape-time state."""
    registry = CollectorRegistry()
    registry.register(_Chain(process_registry()))
    registry.register(SyncStateCollector())
    return generate_latest(registry)


class _Chain(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        return self._registry.collect()


def metrics_view(request: Any) -> Any:
    """``GET /metrics`` (Prometheus text format)."""
    from django.http import HttpResponse

    return HttpResponse(render_web_metrics(), content_type=CONTENT_TYPE_LATEST)


def start_worker_exporter(port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - a container port
    """Serve this worker container's counters on ``port`` (called in Celery's main process)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=addr, registry=process_registry())
    logger.info("worker metrics exporter listening on %s:%s", addr, port)


def mark_process_dead(pid: int) -> None:
    """Drop a dead process's live gauges (multiprocess mode only)."""
    if _multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def wipe_multiprocess_dir() -> None:
    """At container start: files left by a previous run would be summed as if alive."""
    path = _multiprocess_dir()
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))
