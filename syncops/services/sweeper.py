"""The push sweeper (beat): nothing in the outbox is left behind.

- Runs whose worker died: a run holds its seller's advisory lock on its own database
  connection, and PostgreSQL drops that lock when the process dies. So running operations of a
  seller whose lock is free belong to a dead run. They go back to pending (an operation that
  already has a CardTrader job is resumed by reading that job, not re-sent), except an increment
  that may have been sent: it becomes ``uncertain`` (re-sending could apply a sale twice).
- Operations never picked up (the broker lost the task, the commit hook never ran, the seller
  was paused and resumed): pending and due for longer than a grace period → dispatch again.
- Uncertain increments old enough to settle → queue ``push_settle`` for their seller.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db.models.functions import Coalesce
from django.utils import timezone

from inventory.models import ConnectionState
from syncops.models import OperationKind, OperationState, SyncOperation
from syncops.services.push import INCREMENT_MARK, PUSH_KINDS, redispatch_if_due, seller_lock
from syncops.services.push_dispatch import push_dispatch

logger = logging.getLogger(__name__)


def recover_dead_runs() -> dict[str, int]:
    counts = {"requeued": 0, "uncertain": 0}
    sellers = set(
        SyncOperation.objects.filter(state=OperationState.RUNNING, kind__in=PUSH_KINDS)
        .values_list("seller_id", flat=True).distinct()
    )
    for seller_id in sellers:
        with seller_lock(str(seller_id)) as got:
            if not got:
                continue  # a live run holds it
            running = SyncOperation.objects.filter(
                seller_id=seller_id, state=OperationState.RUNNING, kind__in=PUSH_KINDS)
            maybe_sent = running.filter(kind=OperationKind.ADJUST, result__has_key=INCREMENT_MARK)
            counts["uncertain"] += maybe_sent.update(
                state=OperationState.UNCERTAIN, finished_at=timezone.now(), error_code="outcome_unknown",
                last_error="the worker died while the increment was being sent; settled by verification",
            )
            counts["requeued"] += running.update(
                state=OperationState.PENDING, next_attempt_at=None,
                last_error="the worker running this push died; re-queued",
            )
        redispatch_if_due(str(seller_id))  # also covers edits whose task found our lock taken
    if sellers:
        logger.info("push sweeper recovered dead runs: %s", counts)
    return counts


def _active_sellers(qs: Any) -> set[str]:
    return {
        str(s) for s in qs.filter(
            seller__sync_settings__paused=False,
            seller__sync_settings__connection_state=ConnectionState.CONNECTED,
        ).values_list("seller_id", flat=True).distinct()
    }


def sweep_push(*, grace_seconds: float = 30.0, settle_after_seconds: float = 10.0) -> dict[str, Any]:
    from syncops.tasks.push import push_settle

    report: dict[str, Any] = recover_dead_runs()
    now = timezone.now()
    stranded = SyncOperation.objects.filter(state=OperationState.PENDING, kind__in=PUSH_KINDS).annotate(
        due_at=Coalesce("next_attempt_at", "created_at")
    ).filter(due_at__lte=now - timedelta(seconds=grace_seconds))
    dispatched = 0
    for seller_id in _active_sellers(stranded):
        dispatched += int(push_dispatch(seller_id, force=True))
    report["dispatched"] = dispatched
    settle = _active_sellers(SyncOperation.objects.filter(
        state=OperationState.UNCERTAIN, kind=OperationKind.ADJUST,
        finished_at__lte=now - timedelta(seconds=settle_after_seconds)))
    for seller_id in settle:
        push_settle.apply_async(args=[seller_id])
    report["settle"] = len(settle)
    return report
