"""Writes on operations that staff and services trigger: retry and cancel.

The REST API and the admin both call these (never their own copy), so the rules — which
states may be retried, what the audit log records, when the task is dispatched — live once.
"""
from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from brxsync.errors import ServiceError
from syncops.models import OperationState, SyncOperation
from syncops.services.dispatch import dispatch_operation

RETRYABLE_STATES = frozenset(
    {OperationState.FAILED, OperationState.UNCERTAIN, OperationState.PARTIAL, OperationState.CANCELLED}
)
# A running operation is not cancellable here: its worker would carry on regardless. Stop it
# by pausing the seller; cancel what is waiting or what should no longer be retried.
CANCELLABLE_STATES = frozenset({OperationState.PENDING, OperationState.FAILED, OperationState.UNCERTAIN})


class OperationStateError(ServiceError):
    """The operation's state does not allow the transition."""

    status = 409

    def __init__(self, operation: SyncOperation, action: str, allowed: frozenset[str]) -> None:
        self.operation = operation
        self.action = action
        self.allowed = sorted(str(s) for s in allowed)
        adjective, past = _ACTIONS[action]
        self.code = f"operation_not_{adjective}"
        super().__init__(f"Only {', '.join(self.allowed)} operations can be {past}; this one is {operation.state}.",
                         {"state": operation.state, f"{adjective}_states": self.allowed})


_ACTIONS = {"retry": ("retryable", "retried"), "cancel": ("cancellable", "cancelled")}


def _log_entry(event: str, operation: SyncOperation, actor: str, **extra: Any) -> dict[str, Any]:
    return {
        "event": event,
        "at": timezone.now().isoformat(),
        "by": actor,
        "previous_state": operation.state,
        "attempts": operation.attempts,
        **({"error_code": operation.error_code} if operation.error_code else {}),
        **({"error": operation.last_error[:500]} if operation.last_error else {}),
        **extra,
    }


@transaction.atomic
def operation_retry(*, operation_id: int, actor: str = "") -> SyncOperation:
    """Put a failed / uncertain / partial / cancelled operation back to pending and dispatch it.

    The attempt budget is extended by a full ``max_attempts`` from where it stands, so a retry
    of an operation that exhausted its attempts gets a real chance, while ``attempts`` keeps
    counting every try for the audit. The previous error moves into ``attempt_log``. The task
    is dispatched only after commit (on the row as committed), so a rolled-back retry sends
    nothing and a worker never sees the old state.
    """
    operation = SyncOperation.objects.select_for_update().get(pk=operation_id)
    if operation.state not in RETRYABLE_STATES:
        raise OperationStateError(operation, "retry", RETRYABLE_STATES)
    budget = SyncOperation._meta.get_field("max_attempts").default
    operation.attempt_log = [*operation.attempt_log, _log_entry("retry_requested", operation, actor)]
    operation.state = OperationState.PENDING
    operation.next_attempt_at = None
    operation.max_attempts = operation.attempts + budget
    operation.error_code = ""
    operation.last_error = ""
    operation.dispatched_at = None
    operation.started_at = None
    operation.heartbeat_at = None
    operation.finished_at = None
    operation.save()
    transaction.on_commit(lambda: dispatch_operation(operation.pk), robust=True)
    return operation


@transaction.atomic
def operation_cancel(*, operation_id: int, actor: str = "", reason: str = "") -> SyncOperation:
    """Stop a waiting operation (or give up on a failed one) for good; retry can revive it."""
    operation = SyncOperation.objects.select_for_update().get(pk=operation_id)
    if operation.state not in CANCELLABLE_STATES:
        raise OperationStateError(operation, "cancel", CANCELLABLE_STATES)
    operation.attempt_log = [
        *operation.attempt_log, _log_entry("cancelled", operation, actor, **({"reason": reason} if reason else {}))
    ]
    operation.state = OperationState.CANCELLED
    operation.next_attempt_at = None
    operation.finished_at = timezone.now()
    operation.save()
    return operation
