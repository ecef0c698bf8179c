"""Import and reconcile tasks (bulk-sync queue, routed by name) and the reconcile beat.

Thin: each calls one service and re-schedules itself with the countdown the service returns
(rate-limit wait, CardTrader backoff, or a dead worker's lease still running out). Acked late:
a killed worker's task is redelivered and the service's claim decides whether to resume.
"""
from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from syncops.models import OperationKind, SyncOperation
from syncops.services.dispatch import register_dispatcher
from syncops.services.imports import import_run
from syncops.services.reconcile import (
    reconcile_due_sellers,
    reconcile_offset,
    reconcile_run,
    reconcile_scheduled,
    reconcile_spread,
)


@shared_task(name="syncops.tasks.import_run", acks_late=True, ignore_result=True)
def import_run_task(operation_id: int) -> dict:
    outcome = import_run(operation_id)
    if outcome.countdown is not None:
        import_run_task.apply_async(args=[operation_id], countdown=outcome.countdown)
    return asdict(outcome)


@shared_task(name="syncops.tasks.reconcile_run", acks_late=True, ignore_result=True)
def reconcile_run_task(operation_id: int) -> dict:
    outcome = reconcile_run(operation_id)
    if outcome.countdown is not None:
        reconcile_run_task.apply_async(args=[operation_id], countdown=outcome.countdown)
    return asdict(outcome)


@shared_task(name="syncops.tasks.reconcile_seller", acks_late=True, ignore_result=True)
def reconcile_seller_task(seller_id: str) -> dict | None:
    outcome = reconcile_scheduled(seller_id)
    if outcome is not None and outcome.countdown is not None:
        reconcile_run_task.apply_async(args=[outcome.operation_id], countdown=outcome.countdown)
    return asdict(outcome) if outcome else None


@shared_task(name="syncops.tasks.schedule_reconciliations", ignore_result=True)
def schedule_reconciliations() -> int:
    """Beat: queue each due seller's reconcile at its own offset within the spread window."""
    spread = reconcile_spread()
    sellers = reconcile_due_sellers()
    for seller_id in sellers:
        reconcile_seller_task.apply_async(args=[str(seller_id)], countdown=reconcile_offset(seller_id, spread))
    return len(sellers)


def _dispatch_import(operation: SyncOperation) -> None:
    import_run_task.apply_async(args=[operation.pk])


def _dispatch_reconcile(operation: SyncOperation) -> None:
    reconcile_run_task.apply_async(args=[operation.pk])


register_dispatcher(OperationKind.IMPORT, _dispatch_import, replace=True)
register_dispatcher(OperationKind.RECONCILE, _dispatch_reconcile, replace=True)
