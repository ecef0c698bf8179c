"""Per-process setup, run by Django as ``LOGGING_CONFIG`` inside ``django.setup()``.

Everything that must happen once in every process (gunicorn worker, Celery worker and its
children, beat, manage.py, the test runner) and before apps and middleware load is here, so no
app needs to remember it and nothing depends on INSTALLED_APPS order.
"""
from __future__ import annotations

import os
from typing import Any

_connected = False


def configure(logging_settings: dict[str, Any]) -> None:
    from brxsync.observability import logs

    logs.configure(logging_settings)
    _connect_signals()
    from django.conf import settings

    if settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        from brxsync import tracing

        tracing.configure()


def _connect_signals() -> None:
    global _connected
    if _connected:
        return
    _connected = True
    from celery.signals import (
        before_task_publish,
        setup_logging,
        task_postrun,
        task_prerun,
        worker_init,
        worker_process_shutdown,
    )
    from django.core.signals import request_started
    from django.db.backends.signals import connection_created

    from brxsync import metrics
    from brxsync.observability import context

    # A receiver on setup_logging tells Celery that logging is configured (by Django, above):
    # without one, a worker installs its own handlers and formats beside ours.
    setup_logging.connect(_logging_already_configured, weak=False, dispatch_uid="brx-celery-logging")
    before_task_publish.connect(context.on_before_task_publish, weak=False, dispatch_uid="brx-log-publish")
    task_prerun.connect(context.on_task_prerun, weak=False, dispatch_uid="brx-log-prerun")
    task_postrun.connect(context.on_task_postrun, weak=False, dispatch_uid="brx-log-postrun")
    task_prerun.connect(metrics.sample_db_pools, weak=False, dispatch_uid="brx-db-sample-task")
    request_started.connect(metrics.sample_db_pools_on_request, weak=False, dispatch_uid="brx-db-sample-request")
    connection_created.connect(metrics.on_connection_created, weak=False, dispatch_uid="brx-db-opened")
    worker_init.connect(_on_worker_init, weak=False, dispatch_uid="brx-worker-metrics")
    worker_process_shutdown.connect(_on_worker_process_shutdown, weak=False, dispatch_uid="brx-worker-dead")


def _logging_already_configured(**_: Any) -> None:
    return None


def _on_worker_init(**_: Any) -> None:
    """Celery's main process, before the pool forks: clean the metrics dir, start the exporter."""
    from django.conf import settings

    from brxsync import metrics

    metrics.wipe_multiprocess_dir()
    if settings.METRICS_WORKER_PORT:
        metrics.start_worker_exporter(settings.METRICS_WORKER_PORT)


def _on_worker_process_shutdown(pid: int | None = None, **_: Any) -> None:
    from brxsync import metrics

    metrics.mark_process_dead(pid or os.getpid())
