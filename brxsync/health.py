"""Liveness and readiness.

Readiness runs every check in parallel, each bounded by ``CHECK_TIMEOUT`` seconds, so a dead
dependency (a blackholed MariaDB, a Redis that stopped answering) makes the probe answer 503 in
under two seconds instead of hanging the load balancer.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import redis
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

CHECK_TIMEOUT = 1.5


def _native_thread_executor() -> ThreadPoolExecutor:
    """Real OS threads for the checks, in a gevent worker too (brxsync/gunicorn.conf.py).

    mysqlclient, and libpq while it connects, block inside C: on a greenlet "thread" a blackholed
    MariaDB would stop the worker's whole event loop, every request it holds (webhooks included)
    and this probe's own timeout, for up to the driver's connect timeout. gevent's executor runs the
    checks on native threads and lets the waiting greenlet yield.
    """
    try:
        from gevent import monkey
    except ImportError:
        monkey = None
    if monkey is not None and monkey.is_module_patched("threading"):
        from gevent.threadpool import ThreadPoolExecutor as GeventNativeThreadPoolExecutor

        return GeventNativeThreadPoolExecutor(max_workers=8)
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")


_executor = _native_thread_executor()


def _check_database(alias: str) -> Callable[[], None]:
    def check() -> None:
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        finally:
            connections[alias].close()  # this runs on a pool thread: never leave a connection behind

    return check


def _check_redis_url(url: str) -> Callable[[], None]:
    def check() -> None:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()

    return check


def _check_broker() -> None:
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://", "unix://")):
        _check_redis_url(url)()
        return
    from brxsync.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=1)


def readiness_checks() -> dict[str, Callable[[], None]]:
    return {
        "database": _check_database("default"),
        "blueprints": _check_database("blueprints"),
        "redis": _check_redis_url(settings.REDIS_URL),
        "broker": _check_broker,
    }


def run_checks(checks: dict[str, Callable[[], None]], timeout: float = CHECK_TIMEOUT) -> dict[str, dict]:
    started = time.monotonic()
    futures = {name: _executor.submit(fn) for name, fn in checks.items()}
    results: dict[str, dict] = {}
    for name, future in futures.items():
        remaining = max(0.0, timeout - (time.monotonic() - started))
        try:
            future.result(timeout=remaining)
            results[name] = {"ok": True}
        except FutureTimeout:
            results[name] = {"ok": False, "error": f"timed out after {timeout}s"}
        except Exception as exc:  # a readiness probe reports, it never raises
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return results


@require_GET
@never_cache
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    results = run_checks(readiness_checks())
    failing = [name for name, r in results.items() if not r["ok"]]
    body = {"status": "ok" if not failing else "unavailable", "failing": failing, "checks": results}
    return JsonResponse(body, status=503 if failing else 200)
