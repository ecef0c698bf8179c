"""Webhook tasks (high-priority queue through CELERY_TASK_ROUTES): thin wrappers over services.

``acks_late`` is the project default: a worker killed mid-task leaves the message to be
redelivered, and the apply is idempotent, so a re-run is harmless.
"""
from __future__ import annotations

import random

from celery import shared_task
from django.db import InterfaceError, OperationalError

from syncops.services import orders, webhooks

__all__ = ["webhook_apply", "webhook_prune", "webhook_sweep"]


@shared_task(name="syncops.tasks.webhook_apply", bind=True, max_retries=5)
def webhook_apply(self, event_id: int) -> str:
    try:
        return orders.webhook_event_apply(event_id=event_id)
    except (OperationalError, InterfaceError) as exc:
        # Transient database trouble (a deadlock victim, a dropped connection): retry soon, with
        # jitter; past max_retries the delivery stays `received` and the sweeper picks it up.
        raise self.retry(exc=exc, countdown=min(30, 2**self.request.retries) + random.random())


@shared_task(name="syncops.tasks.webhook_sweep")
def webhook_sweep() -> int:
    return webhooks.webhook_sweep()


@shared_task(name="syncops.tasks.webhook_prune")
def webhook_prune() -> int:
    return webhooks.webhook_prune()
