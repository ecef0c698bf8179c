"""The life of a bulk operation (import, reconcile): start, claim, heartbeat, finish, fail, defer.

Both flows share it so their rules cannot drift apart:

- **start** (API, admin, beat, command): the ``SyncOperation`` row and the seller's lease in ONE
  transaction. If the lease is held the transaction rolls back (no orphan row) and ``LeaseHeld``
  names the operation holding it (the API's 409). The task is dispatched only after commit.
- **claim** (the worker): pending → running in one conditional UPDATE. A row still "running" is
  claimable only once its heartbeat is older than the lease, i.e. its worker is dead; so a
  re-delivered task of a killed worker waits (re-scheduled) and then restarts the operation
  cleanly, while a duplicate delivery of a live one does nothing.
- **heartbeat** every chunk (and while waiting for CardTrader's first byte): renews the lease
  and the operation's ``heartbeat_at`` and progress. A lost lease stops the run before it writes.
- **outcomes**: succeeded (lease released, seller active, ``last_sync_at``); failed with a code
  and CardTrader's / the catalogue's message (lease released, seller ``error``); deferred when the
  rate limiter says wait or CardTrader had a transient failure (operation back to pending with
  ``next_attempt_at``, lease kept for the wait, the task re-scheduled with a countdown: no worker
  sleeps on a limiter).
"""
from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Greatest, Now
from django.utils import timezone

from inventory.catalogue_mapping import CatalogueUnavailable
from inventory.models import ConnectionState, SyncSettings, SyncStatus, User
from ratelimit.exceptions import CircuitOpen, LimiterUnavailable, RateLimitWait
from syncops.cardtrader import errors as ct
from syncops.models import OPEN_STATES, OperationKind, OperationState, SyncOperation
from syncops.services.dispatch import dispatch_operation
from syncops.services.lease import (
    LeaseHeld,
    LeaseLost,
    lease_acquire,
    lease_holder,
    lease_release,
    lease_renew,
    lease_seconds,
    operation_id_of,
    owner_for,
)

logger = logging.getLogger(__name__)

BULK_KINDS = (OperationKind.IMPORT, OperationKind.RECONCILE)
TRANSIENT = (ct.RateLimited, ct.ServerError, ct.Timeout, ct.ConnectionError, ct.UnexpectedResponse)


class SyncStartRefused(Exception):
    """The seller cannot start a bulk operation now (API: 409 with ``code``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SyncBusy(SyncStartRefused):
    """Another import/reconcile holds the seller's lease; ``operation`` is it (when known)."""

    def __init__(self, holder: LeaseHeld, operation: SyncOperation | None) -> None:
        super().__init__("sync_in_progress", "an import or reconcile is already running for this seller")
        self.holder = holder
        self.operation = operation


@dataclass
class RunOutcome:
    operation_id: int
    state: str
    countdown: float | None = None  # re-schedule the task after this many seconds
    result: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------- start

def start_operation(*, seller: User, kind: str, payload: dict[str, Any] | None = None, actor: str = "",
                    dispatch: bool = True) -> SyncOperation:
    """Create the operation and take the seller's lease in one transaction; dispatch on commit."""
    sync = SyncSettings.objects.filter(user=seller).first()
    if sync is None or not sync.is_connected:
        raise SyncStartRefused("not_connected", "connect a CardTrader account first")
    if sync.paused:
        raise SyncStartRefused("seller_paused", "the seller is paused; resume it first")
    with transaction.atomic():
        previous = sync.lease_owner
        op = SyncOperation.objects.create(
            operation_key=f"{kind}:{seller.pk}:{uuid.uuid4().hex}", seller=seller, kind=kind,
            payload={**(payload or {}), **({"requested_by": actor} if actor else {})},
            state=OperationState.PENDING,
        )
        if not lease_acquire(seller.pk, owner_for(op.pk)):
            holder = LeaseHeld(seller.pk, lease_holder(seller.pk))
            running = SyncOperation.objects.filter(pk=holder.operation_id).first() if holder.operation_id else None
            raise SyncBusy(holder, running)
        _fail_abandoned(previous, op.pk)
        if dispatch:
            transaction.on_commit(lambda: dispatch_operation(op.pk), robust=True)
    return op


def _fail_abandoned(previous_owner: str, new_operation_id: int) -> None:
    """The lease we just took had expired under another operation: its worker died. Close it."""
    old_id = operation_id_of(previous_owner or "")
    if old_id is None or old_id == new_operation_id:
        return
    SyncOperation.objects.filter(pk=old_id, state__in=OPEN_STATES).update(
        state=OperationState.FAILED, finished_at=Now(), error_code="lease_expired",
        last_error=f"its worker stopped renewing the seller's lease; superseded by operation #{new_operation_id}",
    )


# ----------------------------------------------------------------------------------- run

def _ago(seconds: float) -> ExpressionWrapper:
    return ExpressionWrapper(Now() - Value(timedelta(seconds=seconds)), output_field=DateTimeField())


class BulkRun:
    """A claimed operation while it runs: heartbeat and progress."""

    def __init__(self, operation: SyncOperation) -> None:
        self.operation = operation
        self.seller_id = operation.seller_id
        self.owner = owner_for(operation.pk)

    def heartbeat(self, done: int | None = None) -> None:
        """Renew the lease (raises ``LeaseLost``) and record liveness and progress."""
        lease_renew(self.seller_id, self.owner)
        fields: dict[str, Any] = {"heartbeat_at": Now()}
        if done is not None:  # never backwards: parallel chunk writers may commit out of order
            fields["progress_done"] = Greatest(F("progress_done"), Value(done))
        SyncOperation.objects.filter(pk=self.operation.pk).update(**fields)


Body = Callable[[BulkRun, SyncSettings], dict[str, Any]]


def _backoff(attempts: int) -> float:
    return min(300.0, 5.0 * 2 ** max(0, attempts - 1)) * random.uniform(0.5, 1.0)


def _claim(operation_id: int) -> SyncOperation | None:
    claimed = SyncOperation.objects.filter(pk=operation_id, kind__in=BULK_KINDS).filter(
        Q(state=OperationState.PENDING)
        | Q(state=OperationState.RUNNING, heartbeat_at__lt=_ago(lease_seconds()))
        | Q(state=OperationState.RUNNING, heartbeat_at__isnull=True)
    ).update(state=OperationState.RUNNING, started_at=Now(), heartbeat_at=Now(), attempts=F("attempts") + 1,
             next_attempt_at=None, error_code="", last_error="", progress_done=0, progress_total=None)
    return SyncOperation.objects.select_related("seller").get(pk=operation_id) if claimed else None


def run_operation(operation_id: int, body: Body, *, status_while_running: str | None = None) -> RunOutcome:
    """Claim the operation, run ``body`` under the lease, and land its outcome. Never raises for
    CardTrader, limiter or catalogue trouble: those become the operation's state."""
    op = SyncOperation.objects.filter(pk=operation_id).select_related("seller").first()
    if op is None:
        return RunOutcome(operation_id, "missing")
    sync = SyncSettings.objects.filter(user_id=op.seller_id).first()
    if op.state == OperationState.PENDING and sync is not None and sync.paused:
        return RunOutcome(operation_id, "paused")  # resume() dispatches it again
    claimed = _claim(operation_id)
    if claimed is None:
        op.refresh_from_db()
        if op.state == OperationState.RUNNING:  # a live worker has it, or had it until recently
            return RunOutcome(operation_id, "busy", countdown=lease_seconds())
        return RunOutcome(operation_id, str(op.state))
    op = claimed
    run = BulkRun(op)
    if op.attempts > op.max_attempts:
        return _fail(run, "attempts_exhausted", f"gave up after {op.max_attempts} attempts")
    if not lease_acquire(op.seller_id, run.owner):
        return _fail(run, "lease_lost", "another operation holds the seller's lease", release=False)
    sync = SyncSettings.objects.get(user_id=op.seller_id)
    if status_while_running and not sync.paused:
        SyncSettings.objects.filter(pk=sync.pk).update(sync_status=status_while_running)
    try:
        result = body(run, sync)
    except (RateLimitWait, CircuitOpen, LimiterUnavailable) as exc:
        wait = getattr(exc, "wait_seconds", None) or getattr(exc, "retry_after", 1.0)
        return _defer(run, float(wait), f"waiting for CardTrader's budget: {exc}", count_attempt=False)
    except CatalogueUnavailable as exc:
        return _fail(run, "catalogue_unavailable", str(exc))
    except ct.AuthError as exc:
        SyncSettings.objects.filter(pk=op.seller_id).update(connection_state=ConnectionState.TOKEN_INVALID)
        return _fail(run, "cardtrader_auth", f"CardTrader rejected the token: {exc.message}")
    except ct.NotConnected as exc:
        return _fail(run, "not_connected", str(exc))
    except TRANSIENT as exc:
        if op.attempts < op.max_attempts:
            delay = exc.retry_after if isinstance(exc, ct.RateLimited) else _backoff(op.attempts)
            return _defer(run, delay, f"CardTrader failed, will retry: {exc}")
        return _fail(run, "cardtrader_unavailable", f"CardTrader failed {op.attempts} times; last: {exc}")
    except ct.CardTraderError as exc:
        return _fail(run, "cardtrader_error", str(exc))
    except LeaseLost as exc:
        return _fail(run, "lease_lost", str(exc), release=False)
    except Exception as exc:
        logger.exception("%s operation #%s crashed", op.kind, op.pk)
        return _fail(run, "internal_error", f"{type(exc).__name__}: {exc}")
    return _succeed(run, result)


def _succeed(run: BulkRun, result: dict[str, Any]) -> RunOutcome:
    op = run.operation
    now = timezone.now()
    with transaction.atomic():
        done = int(result.get("progress_done", result.get("processed", 0)))
        SyncOperation.objects.filter(pk=op.pk).update(
            state=OperationState.SUCCEEDED, finished_at=now, heartbeat_at=now, result=result,
            progress_done=done, progress_total=done,
        )
        if not result.get("dry_run"):
            SyncSettings.objects.filter(pk=op.seller_id).exclude(sync_status=SyncStatus.PAUSED).update(
                sync_status=SyncStatus.ACTIVE, last_sync_at=now, last_error="")
        lease_release(op.seller_id, run.owner)
    return RunOutcome(op.pk, OperationState.SUCCEEDED, result=result)


def _fail(run: BulkRun, code: str, message: str, *, release: bool = True) -> RunOutcome:
    op = run.operation
    now = timezone.now()
    logger.warning("%s operation #%s failed (%s): %s", op.kind, op.pk, code, message)
    with transaction.atomic():
        SyncOperation.objects.filter(pk=op.pk).update(
            state=OperationState.FAILED, finished_at=now, error_code=code, last_error=message[:4000],
            attempt_log=[*op.attempt_log, {"event": "failed", "at": now.isoformat(), "code": code,
                                            "error": message[:500], "attempt": op.attempts}],
        )
        if release:
            SyncSettings.objects.filter(pk=op.seller_id).exclude(sync_status=SyncStatus.PAUSED).update(
                sync_status=SyncStatus.ERROR, last_error=f"{op.kind} #{op.pk}: {message}"[:4000])
            lease_release(op.seller_id, run.owner)
    return RunOutcome(op.pk, OperationState.FAILED, result={"error_code": code, "error": message})


def _defer(run: BulkRun, seconds: float, reason: str, *, count_attempt: bool = True) -> RunOutcome:
    op = run.operation
    cap = float(settings.CELERY_MAX_COUNTDOWN_SECONDS)
    seconds = max(0.5, min(cap, seconds))
    now = timezone.now()
    with transaction.atomic():
        SyncOperation.objects.filter(pk=op.pk).update(
            state=OperationState.PENDING, next_attempt_at=now + timedelta(seconds=seconds),
            attempts=F("attempts") if count_attempt else F("attempts") - 1, last_error=reason[:4000],
            attempt_log=[*op.attempt_log, {"event": "deferred", "at": now.isoformat(), "seconds": round(seconds, 3),
                                            "reason": reason[:500]}],
        )
        try:  # keep the seller reserved for the wait (it still expires if nobody comes back)
            lease_renew(op.seller_id, run.owner, seconds=seconds + lease_seconds())
        except LeaseLost:
            pass
    return RunOutcome(op.pk, OperationState.PENDING, countdown=seconds)


def resume_bulk_operations(seller_id: Any) -> int:
    """Dispatch the seller's pending imports/reconciles again (after a pause)."""
    ids = list(SyncOperation.objects.filter(seller_id=seller_id, kind__in=BULK_KINDS, state=OperationState.PENDING)
               .values_list("pk", flat=True))
    for pk in ids:
        transaction.on_commit(lambda pk=pk: dispatch_operation(pk), robust=True)
    return len(ids)
