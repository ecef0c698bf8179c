"""Which task runs an operation of each kind: a small registry other features register into.

The outbox (``SyncOperation``) does not know the Celery tasks of every feature, and features
should not import each other; so each feature registers, in its ``AppConfig.ready`` or at
import of its tasks module, how to get one of its operations running::

    register_dispatcher(OperationKind.PUSH_UPDATE, lambda op: push_dispatch(str(op.seller_id)))

``dispatch_operation`` is what retry (and the sweeper) call after commit. With no dispatcher
registered for a kind, the operation simply stays pending for the sweeper; a dispatcher that
raises (broker down) is logged, and the row is likewise left pending: the outbox loses nothing.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.utils import timezone

if TYPE_CHECKING:
    from syncops.models import SyncOperation

logger = logging.getLogger(__name__)

Dispatcher = Callable[["SyncOperation"], object]
_DISPATCHERS: dict[str, Dispatcher] = {}


def register_dispatcher(kind: str, fn: Dispatcher, *, replace: bool = False) -> None:
    """Make ``fn(operation)`` the way to start operations of ``kind`` (queue a task; do not run it)."""
    kind = str(kind)
    if kind in _DISPATCHERS and _DISPATCHERS[kind] is not fn and not replace:
        raise ValueError(f"a dispatcher for {kind!r} is already registered")
    _DISPATCHERS[kind] = fn


def unregister_dispatcher(kind: str) -> None:
    _DISPATCHERS.pop(str(kind), None)


def dispatcher_for(kind: str) -> Dispatcher | None:
    return _DISPATCHERS.get(str(kind))


def dispatch_operation(operation_id: int) -> bool:
    """Hand a pending operation to its feature's task. True if a dispatcher accepted it.

    Reads the row afresh (this runs after commit, possibly much later) and does nothing unless
    it is still pending, so a late or repeated call never restarts finished work.
    """
    from syncops.models import OperationState, SyncOperation

    operation = SyncOperation.objects.filter(pk=operation_id, state=OperationState.PENDING).first()
    if operation is None:
        return False
    fn = dispatcher_for(operation.kind)
    if fn is None:
        logger.info("no dispatcher for %s operations; #%s waits for the sweeper", operation.kind, operation_id)
        return False
    try:
        fn(operation)
    except Exception:
        logger.warning("dispatching operation #%s failed; the sweeper will retry", operation_id, exc_info=True)
        return False
    SyncOperation.objects.filter(pk=operation_id).update(dispatched_at=timezone.now())
    return True
