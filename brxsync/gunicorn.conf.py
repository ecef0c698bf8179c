"""gunicorn settings for the web container: ``gunicorn -c brxsync/gunicorn.conf.py brxsync.wsgi``.

SIGTERM (what Docker and Kubernetes send) is gunicorn's graceful stop: the arbiter stops
accepting, each worker finishes the requests it holds and exits, and whatever is still running
after ``graceful_timeout`` is killed. Keep ``graceful_timeout`` below the orchestrator's grace
period (compose ``stop_grace_period``, Kubernetes ``terminationGracePeriodSeconds``), and the
webhook endpoint's work short (it stores and answers; the apply runs on a worker).

Metrics: every worker writes its counters under ``PROMETHEUS_MULTIPROC_DIR`` (set here before
any worker imports prometheus_client); the directory is emptied when the arbiter starts and a
dead worker's live gauges are dropped when it exits.
"""
from __future__ import annotations

import multiprocessing
import os
import tempfile

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 8)))
# gevent: one event loop per worker, so a request waiting on PostgreSQL or Redis costs a greenlet
# switch instead of an OS thread hand-off and a GIL round trip. Measured on the webhook endpoint
# (docs/BENCHMARKS.md "Tenth session"): gthread left the machine ~10-20 % idle at saturation while
# its threads handed the GIL around; on the final code the webhook reached 0.41-0.52 of the trivial
# view's throughput with gthread (8 clients; 0.44 with 16), 0.50-0.55 with gevent (16 clients), at
# up to 1.5x the deliveries per second. psycopg (3.1.14+) waits cooperatively once gevent has
# patched `select`, which gunicorn's gevent worker does before it loads the app (never set
# preload_app with it). C drivers that block (mysqlclient) stay off the loop: brxsync/health.py.
# GUNICORN_WORKER_CLASS=gthread brings threads back (GUNICORN_THREADS each).
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))  # gthread only
# Requests one worker serves at once (gevent: greenlets). Bounded well below gunicorn's 1000 so a
# burst queues in the listen backlog rather than in the database pool (DB_POOL_MAX_SIZE per process).
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "100"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
keepalive = 5
# Recycle workers now and then (slow leaks in libraries), staggered so they never restart together.
# Rarely: a new worker costs ~1.2 s of CPU (imports, first requests) and a webhook delivery ~1.5 ms,
# so recycling every 2,000 requests cost 18–21 % of the webhook's throughput at saturation (measured,
# docs/BENCHMARKS.md "Ninth session"); every 50,000 it is ~2 %. 0 turns recycling off.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "50000"))
max_requests_jitter = max_requests // 10
# One access line per request comes from brxsync.observability (JSON, with the request id).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Heartbeat files on tmpfs: a worker blocked on a slow disk must not look dead.
_SHM = "/dev/shm"  # noqa: S108 - gunicorn's documented heartbeat location, not a data file
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or (_SHM if os.path.isdir(_SHM) else None)

os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), "brxsync-prometheus-web"))


def on_starting(server) -> None:
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
