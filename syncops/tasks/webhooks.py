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
    """Apply deliveries, each in its own transaction (a plain id is a batch of one).

    Transient database trouble (a deadlock victim, a dropped connection) retries the rest of the
    batch soon, with jitter; past max_retries they stay `received` and the sweeper picks them up.
    Any other error is recorded on its delivery (services) and re-raised once the batch is done,
    so one bad delivery never holds back the others in its message.
    """
    ids = [event_ids] if isinstance(event_ids, int) else list(event_ids)
    states: list[str] = []
    failure: Exception | None = None
    for position, event_id in enumerate(ids):
        try:
            states.append(orders.webhook_event_apply(event_id=event_id))
        except (OperationalError, InterfaceError) as exc:
            close_old_connections()  # a broken connection must not fail the retry too
            countdown = min(30, 2**self.request.retries) + random.random()
            raise self.retry(exc=exc, args=[ids[position:]], countdown=countdown)
        except Exception as exc:
            failure = failure or exc
    if failure is not None:
        raise failure
    return states


@shared_task(name="syncops.tasks.webhook_sweep")
def webhook_sweep() -> int:
    return webhooks.webhook_sweep()


@shared_task(name="syncops.tasks.webhook_prune")
def webhook_prune() -> int:
    return webhooks.webhook_prune()
