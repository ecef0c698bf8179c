"""Webhook tasks (high-priority queue through CELERY_TASK_ROUTES): thin wrappers over services.

``acks_late`` is the project default: a worker killed mid-task leaves the message to be
redelivered, and the apply is idempotent, so a re-run is harmless.
"""
from __future__ import annotations

import random

from celery import shared_task
from django.db import InterfaceError, OperationalError, close_old_connections

from syncops.services import orders, webhooks

__all__ = ["webhook_apply", "webhook_prune", "webhook_sweep"]


@shared_task(name="syncops.tasks.webhook_apply", bind=True, max_retries=5)
def webhook_apply(self, event_ids: list[int] | int) -> list[str]:
    """Apply a batch of deliveries (a plain id is a batch of one); see webhook_events_apply.

    Transient database trouble (a deadlock victim, a dropped connection) retries the batch soon,
    with jitter (already-applied deliveries are skipped); past max_retries they stay `received`
    and the sweeper picks them up.
    """
    ids = [event_ids] if isinstance(event_ids, int) else list(event_ids)
    try:
        return list(orders.webhook_events_apply(event_ids=ids).values())
    except (OperationalError, InterfaceError) as exc:
        close_old_connections()  # a broken connection must not fail the retry too
        raise self.retry(exc=exc, args=[ids], countdown=min(30, 2**self.request.retries) + random.random())


@shared_task(name="syncops.tasks.webhook_sweep")
def webhook_sweep() -> int:
    return webhooks.webhook_sweep()


@shared_task(name="syncops.tasks.webhook_prune")
def webhook_prune() -> int:
    return webhooks.webhook_prune()
