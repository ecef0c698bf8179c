"""The Celery app: three queues, late acks, per-queue prefetch.

Run one worker per queue in production so each queue gets its own prefetch, e.g.
``celery -A brxsync worker -Q high-priority``; a worker consuming several queues uses the
smallest prefetch of them (a bulk import must never sit prefetched behind a webhook).
"""
from __future__ import annotations

import os
from typing import Any

from celery import Celery, bootsteps
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
def _set_prefetch(sender: Any = None, instance: Any = None, conf: Any = None, options: dict | None = None,
                  **_: Any) -> None:
    """Choose the worker's prefetch from the queues it consumes, unless its command line set one.

    Setting ``conf`` alone had no effect: the CLI hands the worker its ``--prefetch-multiplier``,
    whose default it read from the config *before* this signal, and that value wins over the
    config (a high-priority worker ran with Celery's 4, holding 16 messages for 4 processes). So
    the choice is also kept on the worker and applied by ``_QueuePrefetch``. A command-line value
    other than the config's is the operator's and is honoured.
    """
    options = options or {}
    raw = options.get("queues")
    queues = raw.split(",") if isinstance(raw, str) else raw
    chosen = prefetch_for_queues(list(queues) if queues else None)
    given = options.get("prefetch_multiplier")
    if given is not None and int(given) != int(conf.worker_prefetch_multiplier):
        chosen = int(given)
    conf.worker_prefetch_multiplier = chosen
    if instance is not None:
        instance.brx_prefetch_multiplier = chosen


class _QueuePrefetch(bootsteps.Step):
    """Puts ``_set_prefetch``'s choice on the worker. Every step of the worker's blueprint is built
    before any creates its component, so the consumer, which reads the value, sees it."""

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        chosen = getattr(worker, "brx_prefetch_multiplier", None)
        if chosen is not None:
            worker.prefetch_multiplier = chosen


app.steps["worker"].add(_QueuePrefetch)


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
