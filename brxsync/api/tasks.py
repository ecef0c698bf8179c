"""Thin Celery tasks of the API layer."""
from celery import shared_task

from brxsync.api import idempotency


@shared_task(name="brxsync.api.tasks.prune_idempotency_records", ignore_result=True)
def prune_idempotency_records() -> int:
    return idempotency.prune_expired()
