"""A worker keeps its database connection from task to task (brxsync/celery.py).

Celery's Django fix-up closed every connection around every task, so each webhook apply opened a
new PostgreSQL session. Now the fix-up recycles only every CELERY_DB_REUSE_MAX tasks and
``_recycle_db_connections`` applies Django's per-request rule around each task.
"""
from __future__ import annotations

import time

import pytest
from celery.signals import task_postrun, task_prerun
from django.db import connection, transaction

from brxsync.celery import app
from syncops.tasks.webhooks import webhook_sweep as a_task


def around_task(signal, *, eager: bool = False) -> None:
    """Fire a task signal as a worker (or an eager call) would, for a real task."""
    a_task.push_request(is_eager=eager, id="t")
    try:
        signal.send(sender=a_task, task=a_task, task_id="t", args=(), kwargs={})
    finally:
        a_task.pop_request()


def test_the_django_fixup_no_longer_closes_connections_after_every_task():
    assert app.conf.get("CELERY_DB_REUSE_MAX", 0) >= 100


@pytest.mark.django_db(transaction=True)
def test_a_connection_is_kept_across_tasks_and_dropped_once_obsolete():
    connection.ensure_connection()
    raw = connection.connection
    around_task(task_prerun)
    around_task(task_postrun)
    assert connection.connection is raw, "a healthy connection within CONN_MAX_AGE is reused"

    connection.close_at = time.monotonic() - 1  # past CONN_MAX_AGE
    around_task(task_postrun)
    assert connection.connection is None


@pytest.mark.django_db(transaction=True)
def test_an_eager_task_or_an_open_transaction_is_left_alone():
    connection.ensure_connection()
    connection.close_at = time.monotonic() - 1
    raw = connection.connection
    around_task(task_postrun, eager=True)
    assert connection.connection is raw
    with transaction.atomic():
        around_task(task_postrun)
        assert connection.connection is raw
