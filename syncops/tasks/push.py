"""Push tasks: thin wrappers that call one service and re-schedule with its countdown.

A run never sleeps waiting for rate-limit tokens: the service returns when it would have to, and
the task queues itself again with that countdown. Tasks are idempotent (a duplicate run finds
the seller's lock held, or nothing due) and acked late, so a killed worker's task is redelivered.
"""
from __future__ import annotations

from celery import shared_task

from syncops.models import SyncOperation
from syncops.services.dispatch import register_dispatcher
from syncops.services.push import PUSH_KINDS, push_seller_run, settle_uncertain
from syncops.services.push_dispatch import push_dispatch
from syncops.services.sweeper import sweep_push


@shared_task(name="syncops.tasks.push_seller", acks_late=True, ignore_result=True)
def push_seller(seller_id: str) -> dict:
    report = push_seller_run(seller_id)
    if report.countdown is not None:
        push_dispatch(seller_id, countdown=report.countdown if report.countdown > 0 else None)
    return {"claimed": report.claimed, "succeeded": report.succeeded, "failed": report.failed,
            "uncertain": report.uncertain, "retried": report.retried, "countdown": report.countdown}


@shared_task(name="syncops.tasks.push_sweep", acks_late=True, ignore_result=True)
def push_sweep() -> dict:
    return sweep_push()


@shared_task(name="syncops.tasks.push_settle", acks_late=True, ignore_result=True)
def push_settle(seller_id: str) -> dict:
    return settle_uncertain(seller_id)


def _dispatch_push(operation: SyncOperation) -> None:
    push_dispatch(str(operation.seller_id))


for _kind in PUSH_KINDS:
    register_dispatcher(_kind, _dispatch_push, replace=True)
