"""The Celery app: three queues, late acks, per-queue prefetch.

Run one worker per queue in production so each queue gets its own prefetch, e.g.
``celery -A brxsync worker -Q high-priority``; a worker consuming several queues uses the
smallest prefetch of them (a bulk import must never sit prefetched behind a webhook).
"""
from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import celeryd_init, task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brxsync.settings")

app = Celery("brxsync")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def prefetch_for_queues(queues: list[str] | None) -> int:
    """The prefetch multiplier for a worker consuming ``queues`` (all queues when None)."""
    from django.conf import settings

    table: dict[str, int] = settings.CELERY_QUEUE_PREFETCH
    chosen = [table[q] for q in (queues or table) if q in table]
    return min(chosen) if chosen else 1


@celeryd_init.connect
def _set_prefetch(sender: Any = None, conf: Any = None, options: dict | None = None, **_: Any) -> None:
    raw = (options or {}).get("queues")
    queues = raw.split(",") if isinstance(raw, str) else raw
    conf.worker_prefetch_multiplier = prefetch_for_queues(list(queues) if queues else None)


@task_prerun.connect(weak=False, dispatch_uid="brx-db-connections-prerun")
@task_postrun.connect(weak=False, dispatch_uid="brx-db-connections-postrun")
def _recycle_db_connections(task: Any = None, **_: Any) -> None:
    """Around each task in a worker, what Django does around each request: close a connection
    past CONN_MAX_AGE, left in a transaction or broken by an error, keep the rest (with
    CONN_HEALTH_CHECKS, checked on first use). Replaces the Django fix-up's close-everything per
    task, which CELERY_DB_REUSE_MAX (settings.py) turns down to once per that many tasks.
    Eager tasks (tests, the embedded run) run inside their caller's transaction: left alone.
    """
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections, connections

    if any(conn.in_atomic_block for conn in connections.all(initialized_only=True)):
        return
    close_old_connections()
