"""Sending a seller's outbox to CardTrader: claim, coalesce, batch, verify, land outcomes.

One run per seller at a time (a PostgreSQL advisory lock held by the run's connection: if the
worker dies, PostgreSQL drops the connection and the lock with it, which is how the sweeper knows
the run is dead). A run:

1. claims due pending operations (``FOR UPDATE SKIP LOCKED``) together with a snapshot of their
   items, taken while the items are row-locked so no sale can slip between the two;
2. coalesces per item: a delete carries every other edit of the item; absolute fields go out once
   with the item's latest state; sales and restocks sum into one ``increment`` delta (or fold into
   an absolute quantity the seller set in the same run);
3. sends ``bulk_destroy`` / ``bulk_update`` in chunks of the seller's batch size, then increments;
   every request takes its tokens through the client's guard first;
4. reads each job through ``get_job`` (the 1 request/s jobs bucket) and lands each item's outcome
   on its operations and item. One item's failure never blocks the rest.

Failures: bulk writes are idempotent (absolute values, deletes), so a 5xx, a timeout or a 429
re-sends after an exponential backoff with jitter, up to the attempt cap. An increment is not
idempotent: if CardTrader may have applied it (read timeout, 5xx after sending), the operation
becomes ``uncertain`` and is settled by ``settle_uncertain`` / reconciliation, never re-sent
blindly. Validation errors and unknown products fail at once with CardTrader's message; a 404 on
delete counts as done. Limiter waits and open breakers put the operations back with a due time
and the task is re-scheduled with that countdown: no worker sleeps waiting for tokens.

Lists of ids are filtered with ``__any`` (brxsync/lookups.py: one array parameter on PostgreSQL),
since a run sends statements over hundreds of ids for every batch it claims, sends and lands.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, JSONField, Q, Value, When
from django.utils import timezone

from brxsync import features
from inventory.models import InventoryItem, ItemSyncState, SyncSettings
from inventory.properties import editable_view
from ratelimit.exceptions import CircuitOpen, LimiterUnavailable, RateLimitWait
from ratelimit.guard import Priority
from syncops.cardtrader import errors as ct
from syncops.models import Conflict, ConflictKind, OperationKind, OperationState, SyncOperation

logger = logging.getLogger(__name__)

PUSH_KINDS = (OperationKind.PUSH_UPDATE, OperationKind.PUSH_DELETE, OperationKind.ADJUST)
INCREMENT_MARK = "increment_sent_at"


def batch_size_for(sync: SyncSettings) -> int:
    return max(1, min(int(sync.batch_size or settings.PUSH_BATCH_SIZE), 1000))


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with full jitter on its upper half: base·2^(n-1), capped, × U(0.5, 1)."""
    base = settings.PUSH_RETRY_BASE_SECONDS
    cap = settings.PUSH_RETRY_MAX_SECONDS
    return min(cap, base * 2 ** max(0, attempts - 1)) * random.uniform(0.5, 1.0)


# ----------------------------------------------------------------------------------- the lock

def _lock_key(seller_id: str) -> int:
    digest = hashlib.blake2b(f"push:{seller_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def seller_lock(seller_id: str) -> Iterator[bool]:
    """A session advisory lock on this process's connection: held for the whole run, released
    by PostgreSQL if the process dies. Yields whether it was obtained (never waits)."""
    if connection.vendor != "postgresql":
        # The embedded SQLite run has no advisory locks: a Redis lock that expires on its own
        # if the process dies stands in (the push run's time budget bounds how long it is held).
        from django.core.cache import cache

        lock = cache.lock(f"push-seller-lock:{seller_id}", timeout=float(settings.PUSH_RUN_MAX_SECONDS) + 60)
        got = bool(lock.acquire(blocking=False))
        try:
            yield got
        finally:
            if got:
                lock.release()
        return
    key = _lock_key(seller_id)
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [key])
        got = bool(cur.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", [key])


# ----------------------------------------------------------------------------------- claiming

@dataclass
class ItemSnapshot:
    item_id: int
    product_id: int
    version: int
    game_id: int | None
    quantity: int
    price_cents: int
    description: str
    user_data_field: str
    graded: bool
    properties: dict[str, Any]


@dataclass
class Group:
    """Every claimed operation of one item, and what they amount to."""

    item: ItemSnapshot | None
    ops: list[SyncOperation] = field(default_factory=list)

    @property
    def delete(self) -> bool:
        return any(op.kind == OperationKind.PUSH_DELETE for op in self.ops)

    @property
    def update_fields(self) -> set[str]:
        out: set[str] = set()
        for op in self.ops:
            out.update(op.payload.get("fields") or ())
        return out

    @property
    def adjusts(self) -> list[SyncOperation]:
        return [op for op in self.ops if op.kind == OperationKind.ADJUST]

    @property
    def job_uuid(self) -> str:
        return next((op.cardtrader_job_uuid for op in self.ops if op.cardtrader_job_uuid), "")


# The item's columns in ItemSnapshot's order, after ``item_id`` (the primary key).
SNAPSHOT_FIELDS = tuple(f.name for f in dataclass_fields(ItemSnapshot))[1:]
# What a run reads of an operation (the attempt log and error texts stay in the database).
RUN_FIELDS = ("id", "seller_id", "item_id", "kind", "state", "payload", "result", "attempts", "max_attempts",
              "cardtrader_job_uuid", "created_at")


def _due(seller_id: str) -> Q:
    now = timezone.now()
    return Q(seller_id=seller_id, state=OperationState.PENDING, kind__in=PUSH_KINDS) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


def claim(seller_id: str, limit: int) -> list[Group]:
    """Claim up to ``limit`` items' worth of due operations and snapshot those items.

    Items with a running operation are busy: their job is in flight (this run holds the seller's
    lock, so every running operation is this run's, or a dead run's the sweeper has not seen
    yet). A later change of one waits for that job, because a sale sent as an increment now
    would be overwritten by the absolute quantity CardTrader applies when the older job runs.
    Read as a subquery on the open-operations index: a list of thousands of busy ids passed back
    on every claim cost more than the claim itself.

    Items with an uncertain increment are held too (for ``PUSH_UNCERTAIN_HOLD_SECONDS`` at
    most): settling compares CardTrader's quantity with ours, and a later sale sent meanwhile
    would both blur that comparison and, if the uncertain restock had not landed, take
    CardTrader's quantity to zero or below, where it deletes the listing.

    The items are locked before their operations are read again, so an edit or sale either
    committed before (its operation is claimed here and its effect is in the snapshot) or waits
    until after (neither is) — never half of each, which folding deltas into an absolute
    quantity relies on.
    """
    with transaction.atomic():
        # Candidates are read without locks (locking 4 × limit rows, most of them not claimed, was
        # half this query's time): the run holds the seller's lock, and the operations claimed are
        # locked below, after their items, which is what orders a claim against an edit.
        candidates = list(
            SyncOperation.objects
            .filter(_due(seller_id)).exclude(item_id__in=SyncOperation.objects.filter(
                seller_id=seller_id, state=OperationState.RUNNING, item__isnull=False).values("item_id"))
            .exclude(item_id__any=held_by_uncertain(seller_id)).order_by("id")
            .values_list("id", "item_id")[: limit * 4]
        )
        if not candidates:
            return []
        # The first ``limit`` distinct items in outbox order (a dict keeps order; a list's ``in`` made
        # this loop quadratic: 33 ms of a 500-item claim).
        item_ids = sorted(list(dict.fromkeys(item_id for _, item_id in candidates if item_id is not None))[:limit])
        orphan_ids = [op_id for op_id, item_id in candidates if item_id is None]
        # Rows, not model instances: building 1,000 instances per claim was a third of its time.
        items = {
            row[0]: ItemSnapshot(*row) for row in InventoryItem.objects.select_for_update()
            .filter(pk__any=item_ids).order_by("pk").values_list("pk", *SNAPSHOT_FIELDS)
        }
        # Every pending operation of a claimed item, due or not: the snapshot already carries
        # their effect (a sale waiting out a 429 back-off is in the snapshot's quantity), so an
        # absolute quantity sent without them and the increment sent after would count the sale
        # twice on CardTrader.
        ops = list(
            SyncOperation.objects.select_for_update(skip_locked=True)
            .filter(seller_id=seller_id, state=OperationState.PENDING, kind__in=PUSH_KINDS)
            .filter(Q(item_id__any=item_ids) | Q(pk__any=orphan_ids)).order_by("id").only(*RUN_FIELDS)
        )
        now = timezone.now()
        waits = _unrecorded_job_waits(ops, now)
        for item_id, due in waits.items():
            SyncOperation.objects.filter(pk__any=[op.pk for op in ops if op.item_id == item_id]).update(
                next_attempt_at=due)
        ops = [op for op in ops if op.item_id not in waits]
        SyncOperation.objects.filter(pk__any=[op.pk for op in ops]).update(
            state=OperationState.RUNNING, started_at=now, heartbeat_at=now, next_attempt_at=None
        )
    groups: dict[Any, Group] = {}
    for op in ops:
        op.state = OperationState.RUNNING
        item = items.get(op.item_id) if op.item_id else None
        key = op.item_id if item is not None else f"orphan-{op.pk}"
        if key not in groups:
            groups[key] = Group(item=item)
        groups[key].ops.append(op)
    return list(groups.values())


def _unrecorded_job_waits(ops: list[SyncOperation], now: datetime) -> dict[int, datetime]:
    """Items to leave alone until a job that may exist unrecorded has had time to run.

    An operation marked ``sending`` without a job uuid went out in a bulk call whose answer never
    came back (the worker died, the connection dropped, a 5xx or timeout after sending): CardTrader
    may have accepted it and may still apply it. Re-sending the same values is harmless whenever
    that job lands. A newer edit of the item is not: sent now, the unrecorded job's older values
    could be applied after it. So such an item waits ``PUSH_UNRECORDED_JOB_SECONDS`` from the
    send (longer than CardTrader takes to run a job) before anything goes out for it again.
    """
    sent_at: dict[int, float] = {}
    for op in ops:
        at = (op.result or {}).get(SENDING_AT)
        if op.item_id is not None and isinstance(at, (int, float)) and not op.cardtrader_job_uuid:
            sent_at[op.item_id] = max(sent_at.get(op.item_id, 0.0), float(at))
    waits: dict[int, datetime] = {}
    for op in ops:
        at = sent_at.get(op.item_id) if op.item_id is not None else None
        if at is None or SENDING_AT in (op.result or {}) or op.created_at.timestamp() <= at:
            continue
        due = datetime.fromtimestamp(at + settings.PUSH_UNRECORDED_JOB_SECONDS, tz=UTC)
        if due > now:
            waits[op.item_id] = due
    return waits


def held_by_uncertain(seller_id: str) -> list[int]:
    """Items whose uncertain increment is still inside the hold window, unless what waits is a
    delete or an absolute quantity: those make the increment's fate moot, so they go out."""
    since = timezone.now() - timedelta(seconds=settings.PUSH_UNCERTAIN_HOLD_SECONDS)
    items = set(SyncOperation.objects.filter(
        seller_id=seller_id, kind=OperationKind.ADJUST, state=OperationState.UNCERTAIN,
        item__isnull=False, finished_at__gt=since,
    ).values_list("item_id", flat=True))
    if not items:
        return []
    waiting = SyncOperation.objects.filter(
        seller_id=seller_id, state=OperationState.PENDING, item_id__any=items).values_list("item_id", "kind", "payload")
    return sorted(items - {item_id for item_id, kind, payload in waiting if _overrides_quantity(kind, payload)})


def _overrides_quantity(kind: str, payload: dict[str, Any]) -> bool:
    return kind == OperationKind.PUSH_DELETE or "quantity" in (payload.get("fields") or ())


def _snapshot(item: InventoryItem) -> ItemSnapshot:
    return ItemSnapshot(
        item_id=item.pk, product_id=item.product_id, version=item.version, game_id=item.game_id,
        quantity=item.quantity, price_cents=item.price_cents, description=item.description,
        user_data_field=item.user_data_field, graded=item.graded, properties=dict(item.properties or {}),
    )


def update_body(snap: ItemSnapshot, fields: Iterable[str]) -> dict[str, Any]:
    """The bulk_update item for these fields, from the item's latest state. Properties go out
    whole with explicit booleans, so un-setting foil reaches CardTrader as ``false``."""
    body: dict[str, Any] = {"id": snap.product_id}
    for name in sorted(fields):
        if name == "properties":
            body["properties"] = editable_view(snap.properties, game_id=snap.game_id)
        elif name in ("quantity", "price_cents", "description", "user_data_field", "graded"):
            body[name] = getattr(snap, name)
    return body


# ----------------------------------------------------------------------------------- landing outcomes

JOB_INDEX = "job_index"
SENDING_AT = "sending_at"  # epoch seconds of a bulk call whose answer has not been recorded yet


def _mark_sent(uuid: str, chunk: list[Group]) -> None:
    """Record the job on its operations, each with its item's index in the job's payload: job
    results are matched by that index, and a job read after a restart may be read for only some
    of its items (others were re-sent meanwhile), so the position in today's list means nothing.

    On PostgreSQL one ``UPDATE … FROM unnest(ids, indexes)``: the portable form, a CASE of one
    WHEN per item, cost ~150 ms of Django expression building per 100-item call, more than the
    call to CardTrader itself."""
    now = timezone.now()
    ids = [op.pk for g in chunk for op in g.ops]
    indexes = [index for index, g in enumerate(chunk) for _ in g.ops]
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(
                f"UPDATE {SyncOperation._meta.db_table} AS o SET cardtrader_job_uuid = %s, heartbeat_at = %s, "  # noqa: S608 - _meta
                "result = jsonb_build_object(%s::text, v.idx) "
                "FROM unnest(%s::bigint[], %s::int[]) AS v(id, idx) WHERE o.id = v.id",
                [uuid, now, JOB_INDEX, ids, indexes])
    else:
        whens = [When(pk=op_id, then=Value({JOB_INDEX: index}, output_field=JSONField()))
                 for op_id, index in zip(ids, indexes, strict=True)]
        SyncOperation.objects.filter(pk__any=ids).update(
            cardtrader_job_uuid=uuid, heartbeat_at=now, result=Case(*whens, output_field=JSONField()))
    for index, g in enumerate(chunk):
        for op in g.ops:
            op.cardtrader_job_uuid = uuid
            op.result = {JOB_INDEX: index}


def _job_index(g: Group) -> int | None:
    value = (g.ops[0].result or {}).get(JOB_INDEX)
    return int(value) if isinstance(value, int) else None


class Stop(Exception):
    """Stop the run; put every unsettled operation back, due in ``countdown`` seconds."""

    def __init__(self, countdown: float, reason: str) -> None:
        super().__init__(reason)
        self.countdown = countdown
        self.reason = reason


def _ids(ops: Iterable[SyncOperation]) -> list[int]:
    return [op.pk for op in ops]


def _log_entry(outcome: str, detail: str = "") -> dict[str, Any]:
    return {"at": timezone.now().isoformat(), "outcome": outcome, "detail": detail[:500]}


def _succeed(group: Group, result: dict[str, Any]) -> None:
    _succeed_many([(group, result)])


def _succeed_many(landed: list[tuple[Group, dict[str, Any]]]) -> None:
    """Land many successes in a handful of statements, whatever their number: one UPDATE per
    distinct result (a job's "ok" rows all share one), one DELETE for confirmed deletes, one
    UPDATE marking items in sync. Per-item statements cost ~3 round trips an item, which at
    CardTrader's 2,000 item updates per second and seller would keep a worker busy on the
    database rather than on CardTrader.

    An item goes back to ``in_sync`` only if it has not changed since the snapshot (same version)
    and no other operation of it is still open.
    """
    if not landed:
        return
    now = timezone.now()
    by_result: dict[str, tuple[dict[str, Any], list[int]]] = {}
    deleted: list[int] = []
    kept: dict[int, int] = {}  # item id -> version sent
    for group, result in landed:
        key = json.dumps(result, sort_keys=True, default=str)
        by_result.setdefault(key, (result, []))[1].extend(_ids(group.ops))
        for op in group.ops:
            op.state = OperationState.SUCCEEDED
        snap = group.item
        if snap is None:
            continue
        if group.delete:
            deleted.append(snap.item_id)
        else:
            kept[snap.item_id] = snap.version
    with transaction.atomic():
        for result, ids in by_result.values():
            SyncOperation.objects.filter(pk__any=ids).update(
                state=OperationState.SUCCEEDED, finished_at=now, heartbeat_at=now, progress_done=1,
                result=result, error_code="", last_error="",
            )
        if deleted:
            # CardTrader confirmed: the local rows go (operations keep product_id for the audit).
            InventoryItem.objects.filter(pk__any=deleted, sync_state=ItemSyncState.PENDING_DELETE).delete()
        if kept:
            # Items with another open operation stay pending: read by item id (its index), not as
            # a correlated NOT EXISTS, which PostgreSQL planned as a scan of every open operation.
            busy = set(SyncOperation.objects.filter(item_id__any=list(kept), state__in=(
                OperationState.PENDING, OperationState.RUNNING, OperationState.UNCERTAIN,
            )).values_list("item_id", flat=True))
            # Versions compared here under row locks (taken in pk order, as claim does), not as an
            # OR of (pk, version) pairs: Django built that expression at ~1 ms per item.
            candidates = sorted(i for i in kept if i not in busy)
            current = InventoryItem.objects.select_for_update().filter(pk__any=candidates).exclude(
                sync_state=ItemSyncState.PENDING_DELETE).order_by("pk").values_list("pk", "version")
            unchanged = [pk for pk, version in current if kept[pk] == version]
            if unchanged:
                InventoryItem.objects.filter(pk__any=unchanged).update(
                    sync_state=ItemSyncState.IN_SYNC, last_synced_at=now)


def _fail(group: Group, code: str, message: str, details: dict[str, Any] | None = None) -> None:
    now = timezone.now()
    with transaction.atomic():
        for op in group.ops:
            op.state = OperationState.FAILED
            SyncOperation.objects.filter(pk=op.pk).update(
                state=OperationState.FAILED, finished_at=now, heartbeat_at=now, error_code=code[:64],
                last_error=message[:2000], result={"errors": details or {}},
            )
        snap = group.item
        if snap is not None:
            InventoryItem.objects.filter(pk=snap.item_id).update(sync_state=ItemSyncState.CONFLICT)
            Conflict.objects.create(
                seller_id=group.ops[0].seller_id, kind=ConflictKind.PUSH_REJECTED, item_id=snap.item_id,
                product_id=snap.product_id,
                details={"operations": _ids(group.ops), "code": code, "message": message[:2000],
                         "errors": details or {}},
            )


def _uncertain(group: Group, message: str) -> None:
    SyncOperation.objects.filter(pk__any=_ids(group.ops)).update(
        state=OperationState.UNCERTAIN, finished_at=timezone.now(), error_code="outcome_unknown",
        last_error=message[:2000],
    )
    for op in group.ops:
        op.state = OperationState.UNCERTAIN


def _retry(group: Group, code: str, message: str, *, delay: float | None = None, count: bool = True) -> None:
    """Back to pending with a due time, or failed once the attempt cap is reached."""
    op_max = min(op.max_attempts for op in group.ops)
    attempts = max(op.attempts for op in group.ops)
    if count and attempts >= op_max:
        _fail(group, "attempts_exhausted", f"gave up after {attempts} attempts; last error: {message}")
        return
    wait = backoff_seconds(attempts) if delay is None else delay
    SyncOperation.objects.filter(pk__any=_ids(group.ops)).update(
        state=OperationState.PENDING, next_attempt_at=timezone.now() + timedelta(seconds=wait),
        error_code=code[:64], last_error=message[:2000],
    )
    for op in group.ops:
        op.state = OperationState.PENDING


def _count_attempt(groups: Iterable[Group], note: str, *, bulk: bool = False) -> None:
    """Count the attempt before sending, so a crash mid-request still counts against the cap.

    A bulk call also marks its operations ``sending`` (in the same statement): if its answer never
    arrives, the job may exist at CardTrader with its uuid recorded nowhere, and ``claim`` holds
    newer edits of those items back until such a job has had time to run."""
    ops = [op for g in groups for op in g.ops]
    now = timezone.now()
    extra: dict[str, Any] = {"result": {SENDING_AT: now.timestamp()}} if bulk else {}
    SyncOperation.objects.filter(pk__any=_ids(ops)).update(attempts=F("attempts") + 1, heartbeat_at=now, **extra)
    for op in ops:
        op.attempts += 1
        if bulk:
            op.result = extra["result"]


# ----------------------------------------------------------------------------------- the run

@dataclass
class RunReport:
    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    uncertain: int = 0
    retried: int = 0
    requests: int = 0
    countdown: float | None = None  # re-run after this many seconds (None: nothing due later)


def _limiter_wait(exc: Exception) -> float:
    if isinstance(exc, RateLimitWait):
        return max(0.05, exc.wait_seconds)
    if isinstance(exc, CircuitOpen):
        return max(0.5, exc.retry_after)
    if isinstance(exc, LimiterUnavailable):
        return max(0.5, exc.retry_after)
    return 1.0


LIMITER_EXCEPTIONS = (RateLimitWait, CircuitOpen, LimiterUnavailable)


class PushRun:
    """One run for one seller, holding the lock. ``client`` is a CardTraderClient."""

    def __init__(self, sync: SyncSettings, client: Any, report: RunReport) -> None:
        self.sync = sync
        self.seller_id = str(sync.user_id)
        self.client = client
        self.batch = batch_size_for(sync)
        self.report = report
        self.job_poll_seconds = settings.PUSH_JOB_POLL_SECONDS
        # Never faster than the jobs bucket: reading sooner would only wait inside the guard.
        self.job_poll_interval = max(settings.PUSH_JOB_POLL_INTERVAL,
                                     1.0 / settings.RATE_LIMIT_JOBS_PER_SECOND)
        self.send_max_wait = settings.PUSH_SEND_MAX_WAIT
        # A job is not read sooner than this after it was sent (it would still be pending).
        self.job_min_age = settings.PUSH_JOB_MIN_AGE_SECONDS
        # Jobs sent and not yet read: (uuid, groups in payload order, kind, sent at).
        self.inflight: list[tuple[str, list[Group], str, float]] = []
        self.open_groups: list[Group] = []
        self._last_poll = 0.0
        self._first_look: dict[str, float] = {}
        self._last_beat = time.monotonic()
        self.max_in_flight = settings.PUSH_MAX_JOBS_IN_FLIGHT

    # -- bulk calls ------------------------------------------------------------------------------
    def _send_bulk(self, kind: str, groups: list[Group]) -> Iterator[tuple[str, list[Group]]]:
        """Send chunks; yields (job uuid, groups in payload order) for each accepted chunk."""
        for start in range(0, len(groups), self.batch):
            chunk = sorted(groups[start:start + self.batch], key=lambda g: g.item.product_id)  # type: ignore[union-attr]
            _count_attempt(chunk, kind, bulk=True)
            try:
                if kind == "bulk_destroy":
                    uuid = self.client.bulk_destroy([g.item.product_id for g in chunk], priority=Priority.HIGH,  # type: ignore[union-attr]
                                                    max_wait=self.send_max_wait)
                else:
                    uuid = self.client.bulk_update(
                        [update_body(g.item, g.update_fields) for g in chunk],  # type: ignore[arg-type]
                        strict=True,  # we validated; CardTrader must refuse, not silently default
                        priority=Priority.HIGH, max_wait=self.send_max_wait,
                    )
                self.report.requests += 1
            except (*LIMITER_EXCEPTIONS, ct.CardTraderError) as exc:
                self._write_failed(exc, chunk)
                continue
            _mark_sent(uuid, chunk)
            yield uuid, chunk

    def _write_failed(self, exc: Exception, chunk: list[Group]) -> None:
        """Land a failed absolute write (bulk or one item): these are idempotent, so anything but a
        refusal is sent again later. Raises ``Stop`` when the whole run must wait."""
        ops = [op for g in chunk for op in g.ops]
        if isinstance(exc, LIMITER_EXCEPTIONS):  # nothing was sent: the attempt does not count
            SyncOperation.objects.filter(pk__any=_ids(ops)).update(attempts=F("attempts") - 1, result={})
            raise Stop(_limiter_wait(exc), str(exc)) from exc
        self.report.requests += 1
        if isinstance(exc, (ct.AuthError, ct.RateLimited)):  # refused before acting: no job exists
            SyncOperation.objects.filter(pk__any=_ids(ops)).update(result={})
        if isinstance(exc, ct.AuthError):
            for g in chunk:
                _retry(g, "auth_error", str(exc), delay=300.0, count=False)
            raise Stop(300.0, str(exc)) from exc
        if isinstance(exc, ct.ValidationError):
            for g in chunk:
                _fail(g, exc.error_code or "validation_error", str(exc), exc.field_errors)
            self.report.failed += len(ops)
            return
        if isinstance(exc, ct.RateLimited):
            for g in chunk:
                _retry(g, "rate_limited", str(exc), delay=exc.retry_after * random.uniform(1.0, 1.5))
            raise Stop(exc.retry_after, str(exc)) from exc
        for g in chunk:  # 5xx, timeouts, HTML pages
            _retry(g, type(exc).__name__.lower(), str(exc))
        self.report.retried += len(ops)

    def _send_single(self, kind: str, groups: list[Group]) -> None:
        """The ``batch_updates`` kill switch: one ``PUT`` / ``DELETE /products/:id`` per item,
        for when CardTrader's bulk jobs misbehave. Twenty times the requests, same outcomes."""
        for g in groups:
            snap = g.item
            assert snap is not None
            _count_attempt([g], kind)
            try:
                if kind == "bulk_destroy":
                    res = self.client.delete_product(snap.product_id, priority=Priority.HIGH,
                                                     max_wait=self.send_max_wait)
                else:
                    res = self.client.update_product(snap.product_id, update_body(snap, g.update_fields), strict=True,
                                                     priority=Priority.HIGH, max_wait=self.send_max_wait)
                self.report.requests += 1
            except ct.NotFound as exc:
                self.report.requests += 1
                if kind == "bulk_destroy":
                    _succeed(g, {"result": "not_found", "single": True})
                    self.report.succeeded += len(g.ops)
                else:
                    _fail(g, "not_found", f"CardTrader rejected the change: {exc}")
                    self.report.failed += len(g.ops)
                continue
            except (*LIMITER_EXCEPTIONS, ct.CardTraderError) as exc:
                self._write_failed(exc, [g])
                continue
            _succeed(g, {"result": "ok", "single": True, "warnings": res.warnings})
            self.report.succeeded += len(g.ops)

    def _land_job(self, job: Any, chunk: list[Group], kind: str) -> None:
        by_index = {r.index: r for r in job.results}
        if job.state == "unprocessable":
            for g in chunk:
                self._clear_job(g)
                _retry(g, "job_unprocessable", f"CardTrader job {job.uuid} was unprocessable")
                self.report.retried += len(g.ops)
            return
        landed: list[tuple[Group, dict[str, Any]]] = []
        for g in chunk:
            index = _job_index(g)
            res = by_index.get(index) if index is not None else None
            if res is None:
                self._clear_job(g)
                _retry(g, "job_result_missing", f"job {job.uuid} has no result for item {index}")
                self.report.retried += len(g.ops)
            elif res.result in ("ok", "warning"):
                landed.append((g, {"job": job.uuid, "result": res.result, "warnings": res.warnings}))
                self.report.succeeded += len(g.ops)
            elif kind == "bulk_destroy" and _is_not_found(res.errors):
                landed.append((g, {"job": job.uuid, "result": "not_found", "errors": res.errors}))
                self.report.succeeded += len(g.ops)
            else:
                if kind == "bulk_update" and _is_not_found(res.errors):
                    code = "not_found"
                else:
                    code = "rejected"
                _fail(g, code, f"CardTrader rejected the change: {_flatten(res.errors)}", res.errors)
                self.report.failed += len(g.ops)
        _succeed_many(landed)

    @staticmethod
    def _clear_job(g: Group) -> None:
        SyncOperation.objects.filter(pk__any=_ids(g.ops)).update(cardtrader_job_uuid="", result={})
        for op in g.ops:
            op.cardtrader_job_uuid = ""
            op.result = {}

    def poll(self, *, wait: bool) -> None:
        """Read the oldest job in flight, if one may be read now (``wait``: sleep until it may).

        Runs between sends, so bulk calls keep going out at the global rate while jobs are read
        at the jobs rate: that overlap is what lets one seller approach 20 requests/s × batch.
        A job still pending goes to the back; one unfinished ``job_poll_seconds`` after it was
        sent (or unreadable that long) stops the run, its operations resumed later by job uuid.
        """
        if not self.inflight:
            return
        now = time.monotonic()
        pause = max(self.job_poll_interval - (now - self._last_poll), self.inflight[0][3] + self.job_min_age - now)
        if pause > 0:
            if not wait:
                return
            time.sleep(pause)
        uuid, chunk, kind, sent_at = self.inflight.pop(0)
        # "Overdue" counts from the first time we looked: a job waiting its turn behind 100
        # others (one read per 1.1 s) is not late, only one CardTrader has not finished is.
        first_look = self._first_look.setdefault(uuid, time.monotonic())
        overdue = time.monotonic() - first_look > self.job_poll_seconds
        try:
            job = self.client.get_job(uuid, priority=Priority.HIGH, max_wait=1.5)
            self.report.requests += 1
            self._last_poll = time.monotonic()  # from the answer: the server saw the call before it
        except LIMITER_EXCEPTIONS as exc:
            self.inflight.insert(0, (uuid, chunk, kind, sent_at))
            raise Stop(_limiter_wait(exc), str(exc)) from exc
        except ct.NotFound:
            self.report.requests += 1
            self._last_poll = time.monotonic()
            for g in chunk:  # the job is gone: re-send (bulk writes are idempotent)
                self._clear_job(g)
                _retry(g, "job_not_found", f"CardTrader job {uuid} not found", delay=0.0, count=False)
            return
        except ct.CardTraderError as exc:  # reading a job changes nothing: try again shortly
            self.report.requests += 1
            self._last_poll = time.monotonic()
            self.inflight.append((uuid, chunk, kind, sent_at))
            if overdue:
                raise Stop(2.0, f"job {uuid} unreadable: {exc}") from exc
            return
        if job.finished:
            self._land_job(job, chunk, kind)
            self._beat()
        else:
            self.inflight.append((uuid, chunk, kind, sent_at))
            if overdue:
                raise Stop(2.0, f"job {uuid} still {job.state}")

    def _beat(self) -> None:
        """Heartbeat of the operations in flight (shown in admin), at most every 15 s: with 100
        jobs in flight, touching 10,000 rows after every job read was most of a run's time."""
        if time.monotonic() - self._last_beat < 15.0:
            return
        self._last_beat = time.monotonic()
        ids = [op.pk for _, chunk, _, _ in self.inflight for g in chunk for op in g.ops]
        if ids:
            SyncOperation.objects.filter(pk__any=ids).update(heartbeat_at=timezone.now())

    # -- increments ------------------------------------------------------------------------------
    def _increment(self, g: Group, delta: int) -> None:
        snap = g.item
        assert snap is not None
        _count_attempt([g], f"increment {delta:+d}")
        SyncOperation.objects.filter(pk__any=_ids(g.ops)).update(
            result={INCREMENT_MARK: timezone.now().isoformat(), "delta": delta})
        try:
            res = self.client.increment_product(snap.product_id, delta, priority=Priority.HIGH)
            self.report.requests += 1
        except LIMITER_EXCEPTIONS as exc:  # nothing was sent
            SyncOperation.objects.filter(pk__any=_ids(g.ops)).update(attempts=F("attempts") - 1, result={})
            raise Stop(_limiter_wait(exc), str(exc)) from exc
        except ct.NotFound as exc:
            self.report.requests += 1
            self.report.failed += len(g.ops)
            _fail(g, "not_found", f"product {snap.product_id} does not exist on CardTrader "
                                  f"(sold out or removed there); reconcile decides: {exc}")
            return
        except ct.ValidationError as exc:
            self.report.requests += 1
            self.report.failed += len(g.ops)
            _fail(g, exc.error_code or "validation_error", str(exc), exc.field_errors)
            return
        except ct.CardTraderError as exc:
            self.report.requests += 1
            if exc.outcome_unknown:
                self.report.uncertain += len(g.ops)
                _uncertain(g, f"increment {delta:+d} may or may not have been applied: {exc}")
                return
            SyncOperation.objects.filter(pk__any=_ids(g.ops)).update(result={})
            if isinstance(exc, ct.RateLimited):
                _retry(g, "rate_limited", str(exc), delay=exc.retry_after * random.uniform(1.0, 1.5))
                raise Stop(exc.retry_after, str(exc)) from exc
            if isinstance(exc, ct.AuthError):
                _retry(g, "auth_error", str(exc), delay=300.0, count=False)
                raise Stop(300.0, str(exc)) from exc
            self.report.retried += len(g.ops)
            _retry(g, type(exc).__name__.lower(), str(exc))
            return
        quantity = res.product.quantity if res.product is not None else 0
        _succeed(g, {"delta": delta, "remote_quantity": quantity, "warnings": res.warnings})
        self.report.succeeded += len(g.ops)

    def _resume_sent(self, g: Group, resume: dict[str, list[Group]]) -> None:
        by_job: dict[str, list[SyncOperation]] = defaultdict(list)
        for op in g.ops:
            by_job[op.cardtrader_job_uuid].append(op)
        later = by_job.pop("", [])
        for uuid, ops in by_job.items():
            resume[uuid].append(Group(item=g.item, ops=ops))
        if later:
            SyncOperation.objects.filter(pk__any=_ids(later), state=OperationState.RUNNING).update(
                state=OperationState.PENDING, next_attempt_at=None)
            for op in later:
                op.state = OperationState.PENDING

    # -- one claimed set -------------------------------------------------------------------------
    def process(self, groups: list[Group]) -> None:
        deletes: list[Group] = []
        updates: list[Group] = []
        increments: list[tuple[Group, int]] = []
        resume: dict[str, list[Group]] = defaultdict(list)
        for g in groups:
            if g.item is None:  # the item row is gone (deleted after a confirmed delete)
                _succeed(g, {"skipped": "item no longer exists locally"})
                self.report.succeeded += len(g.ops)
                continue
            if g.job_uuid:
                # Sent before a crash, a pause or a spent budget: read that job to its end first.
                # Newer changes of the item wait for it (the item is busy while the job is in
                # flight): sent now, they could be applied before the old job, whose older
                # absolute values would then land last.
                self._resume_sent(g, resume)
                continue
            if g.delete:
                deletes.append(g)
                continue
            fields = g.update_fields
            adjusts = g.adjusts
            if "quantity" in fields or not adjusts:
                updates.append(g)  # any sales are folded into the absolute quantity of the snapshot
                continue
            if g.item.quantity == 0:
                # The one absolute write for a sale: CardTrader deletes a product that an increment
                # takes to 0, and a later restock could then never reach it. Setting 0 keeps the
                # listing (empty) under its product id while the local row exists.
                # Persisted: if this send fails or is forgotten for a newer one, whatever carries
                # these sales later must be absolute too — CardTrader may have applied the 0
                # (a 5xx after the job was made, a job sent before a restart), and a restock
                # folded with them into a zero delta would then never reach it.
                for op in adjusts:
                    op.payload = {**op.payload, "fields": ["quantity"]}
                    SyncOperation.objects.filter(pk=op.pk).update(payload=op.payload)
                updates.append(g)
                continue
            delta = sum(int(op.payload.get("delta") or 0) for op in adjusts)
            if fields:
                updates.append(Group(item=g.item, ops=[op for op in g.ops if op.kind != OperationKind.ADJUST]))
                g = Group(item=g.item, ops=adjusts)
            if delta == 0:
                _succeed(g, {"delta": 0, "note": "sales and restocks cancelled out"})
                self.report.succeeded += len(g.ops)
            else:
                increments.append((g, delta))
        now = time.monotonic()
        for uuid, chunk in resume.items():
            kind = "bulk_destroy" if chunk[0].delete else "bulk_update"
            self.inflight.append((uuid, chunk, kind, now))
        batched = features.enabled("batch_updates")
        for kind, todo in (("bulk_destroy", deletes), ("bulk_update", updates)):
            if todo and not batched:
                self._send_single(kind, todo)
            elif todo:
                for uuid, chunk in self._send_bulk(kind, todo):
                    self.inflight.append((uuid, chunk, kind, time.monotonic()))
                    self.poll(wait=False)
        for g, delta in increments:
            self._increment(g, delta)
            self.poll(wait=False)


def _is_not_found(errors: dict[str, Any]) -> bool:
    return "not found" in _flatten(errors).lower() or "not_found" in _flatten(errors).lower()


def _flatten(errors: dict[str, Any]) -> str:
    parts = []
    for key, value in (errors or {}).items():
        text = " ".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(text if key == "base" else f"{key}: {text}")
    return "; ".join(parts) or "no message"


def _release_unsettled(groups: list[Group], countdown: float, reason: str) -> None:
    ids = [op.pk for g in groups for op in g.ops if op.state == OperationState.RUNNING]
    if ids:
        SyncOperation.objects.filter(pk__any=ids, state=OperationState.RUNNING).update(
            state=OperationState.PENDING, next_attempt_at=timezone.now() + timedelta(seconds=countdown),
            last_error=reason[:2000],
        )


def seller_can_push(sync: SyncSettings | None) -> bool:
    return bool(sync and sync.is_connected and not sync.paused)


def make_client(sync: SyncSettings) -> Any:
    """The seller's CardTrader client, metered by the default guard (the Redis limiter)."""
    from syncops.cardtrader.factory import client_for_seller

    return client_for_seller(sync)


def next_due_in(seller_id: str) -> float | None:
    """Seconds until the seller's next pending push is due (0 if now), None if nothing pending."""
    row = (
        SyncOperation.objects.filter(seller_id=seller_id, state=OperationState.PENDING, kind__in=PUSH_KINDS)
        .order_by(F("next_attempt_at").asc(nulls_first=True)).values_list("next_attempt_at", flat=True).first()
    )
    exists = SyncOperation.objects.filter(
        seller_id=seller_id, state=OperationState.PENDING, kind__in=PUSH_KINDS).exists()
    if not exists:
        return None
    if row is None:
        return 0.0
    return max(0.0, (row - timezone.now()).total_seconds())


def push_seller_run(seller_id: str, *, client: Any = None, max_seconds: float | None = None) -> RunReport:
    """Drain the seller's due pushes. Returns a report whose ``countdown`` says when to run again."""
    from syncops.services.push_dispatch import clear_queued_marker

    report = RunReport()
    sync = SyncSettings.objects.filter(user_id=seller_id).first()
    if not seller_can_push(sync):
        return report  # paused or disconnected: operations stay pending until resumed
    assert sync is not None
    budget = float(max_seconds if max_seconds is not None else settings.PUSH_RUN_MAX_SECONDS)
    with seller_lock(seller_id) as got:
        if not got:
            return report  # another run holds the seller; it re-checks the outbox before it ends
        clear_queued_marker(seller_id)
        own_client = client is None
        client = client or make_client(sync)
        started = time.monotonic()
        try:
            run = PushRun(sync, client, report)
            claim_size = run.batch * settings.PUSH_CLAIM_BATCHES
            try:
                while time.monotonic() - started < budget:
                    full = len(run.inflight) >= run.max_in_flight
                    groups = [] if full else claim(seller_id, claim_size)
                    if not groups:
                        if not run.inflight:
                            break
                        run.poll(wait=True)  # nothing to send: read what is in flight
                        continue
                    report.claimed += sum(len(g.ops) for g in groups)
                    run.open_groups.extend(groups)
                    run.process(groups)
                    run.open_groups = [g for g in run.open_groups
                                       if any(op.state == OperationState.RUNNING for op in g.ops)]
                if run.inflight:  # budget spent: the next run resumes these jobs by uuid
                    raise Stop(0.0, "push run budget spent; jobs in flight resumed by the next run")
            except Stop as stop:
                _release_unsettled(run.open_groups, stop.countdown, stop.reason)
                report.countdown = stop.countdown
                return report
            except BaseException:
                _release_unsettled(run.open_groups, 1.0, "push run crashed")
                raise
        finally:
            if own_client:
                client.close()
    report.countdown = next_due_in(seller_id)
    return report


# ----------------------------------------------------------------------------------- uncertain ops

def settle_uncertain(seller_id: str, *, client: Any = None, min_age_seconds: float = 5.0) -> dict[str, int]:
    """Settle uncertain increments by reading the product back (``export?blueprint_id=``).

    With no other open operation on the item, CardTrader should hold the local quantity if every
    uncertain increment landed. Each increment request landed whole or not at all, so the ones
    that did not are those whose deltas make up the difference: they go back to pending and are
    sent again; the rest succeeded. No explanation → left to reconciliation. Waiting
    ``min_age_seconds`` first lets a request that hung on CardTrader's side finish.

    Runs under the seller's push lock: a push run sending a later sale of the same item between
    our read of CardTrader and our comparison would make the numbers match for the wrong reason.
    The item row is locked for the comparison, so a sale committed after the read shows up as an
    open operation (→ left for the next pass), never as a wrong quantity. An item CardTrader cannot
    answer for (5xx, timeout, HTML page) is left for the next pass; an empty bucket or an open
    breaker ends the pass (the sweeper calls again).
    """
    counts = {"applied": 0, "resent": 0, "left": 0}
    sync = SyncSettings.objects.filter(user_id=seller_id).first()
    if not seller_can_push(sync):
        return counts
    assert sync is not None
    # The item is gone only after CardTrader confirmed its delete: whatever the increment did, the
    # product exists neither there nor here, so there is nothing left to settle.
    counts["applied"] += SyncOperation.objects.filter(
        seller_id=seller_id, kind=OperationKind.ADJUST, state=OperationState.UNCERTAIN, item__isnull=True,
    ).update(state=OperationState.SUCCEEDED, error_code="", last_error="",
             result={"settled": "the item was deleted on CardTrader and locally afterwards"})
    cutoff = timezone.now() - timedelta(seconds=min_age_seconds)
    uncertain = SyncOperation.objects.filter(
        seller_id=seller_id, kind=OperationKind.ADJUST, state=OperationState.UNCERTAIN,
        finished_at__lte=cutoff, item__isnull=False)
    by_item: dict[int, list[int]] = defaultdict(list)
    for op_id, item_id in uncertain.values_list("pk", "item_id"):
        by_item[item_id].append(op_id)
    if not by_item:
        return counts
    with seller_lock(seller_id) as got:
        if not got:  # a run holds the seller; the next sweep settles
            counts["left"] += sum(len(v) for v in by_item.values())
            return counts
        own_client = client is None
        client = client or make_client(sync)
        try:
            items = list(by_item.items())
            for index, (item_id, op_ids) in enumerate(items):
                try:
                    outcome = _settle_item(client, item_id, op_ids)
                except LIMITER_EXCEPTIONS:
                    counts["left"] += sum(len(ids) for _, ids in items[index:])
                    break
                except ct.CardTraderError as exc:
                    logger.info("settling item %s: CardTrader did not answer (%s); next pass", item_id, exc)
                    outcome = "left"
                counts[outcome] += len(op_ids)
        finally:
            if own_client:
                client.close()
    redispatch_if_due(seller_id)
    return counts


def redispatch_if_due(seller_id: str) -> None:
    """After holding the seller's lock for something other than a push run (settling, the
    sweeper), queue a run if anything is due: a push task that found the lock taken meanwhile
    ended without running, trusting the holder to look at the outbox when it lets go."""
    from syncops.services.push_dispatch import push_dispatch

    due = next_due_in(seller_id)
    if due is not None:
        push_dispatch(seller_id, countdown=due or None, force=due == 0)


def _settle_item(client: Any, item_id: int, op_ids: list[int]) -> str:
    item = InventoryItem.objects.filter(pk=item_id).only("blueprint_id", "product_id").first()
    if item is None:
        return "left"
    rows = list(client.export_products(blueprint_id=item.blueprint_id, max_wait=1.0))  # whole: no dangling stream
    remote = next((p for p in rows if p.id == item.product_id), None)
    with transaction.atomic():
        item = InventoryItem.objects.select_for_update().filter(pk=item_id).first()
        ops = list(SyncOperation.objects.select_for_update().filter(pk__any=op_ids, state=OperationState.UNCERTAIN))
        if item is None or not ops:
            return "left"
        # Later sales and restocks of the item wait for this (``held_by_uncertain``), so a pending
        # one has not been sent: CardTrader's quantity lacks its delta. A running one might have
        # been; a pending absolute quantity or delete is about to go out and make the increment
        # moot: next pass, which then finds the numbers equal.
        later = list(SyncOperation.objects.filter(item_id=item_id, state__in=(
            OperationState.PENDING, OperationState.RUNNING)).values_list("state", "kind", "payload"))
        if any(state == OperationState.RUNNING or _overrides_quantity(kind, payload) for state, kind, payload in later):
            return "left"
        expected = item.quantity - sum(int(payload.get("delta") or 0) for _, kind, payload in later
                                       if kind == OperationKind.ADJUST)
        missing = expected - remote.quantity if remote is not None else None
        unapplied = _unapplied_requests(ops, missing, local_zero=expected == 0)
        if unapplied is None:
            return "left"
        landed = [op for op in ops if _request_key(op) not in unapplied]
        resend = [op for op in ops if _request_key(op) in unapplied]
        if landed:
            _succeed(Group(item=_snapshot(item), ops=landed), {
                "delta": sum(_op_delta(op) for op in landed),
                "verified_remote_quantity": remote.quantity if remote is not None else 0})
        if resend:
            SyncOperation.objects.filter(pk__any=_ids(resend)).update(
                state=OperationState.PENDING, next_attempt_at=None, result={}, finished_at=None,
                last_error="verified not applied; re-sending")
            return "resent"
        return "applied"


def _op_delta(op: SyncOperation) -> int:
    return int(op.payload.get("delta") or 0)


def _request_key(op: SyncOperation) -> str:
    """Operations sent in one increment request share its mark, and landed or not together."""
    return str((op.result or {}).get(INCREMENT_MARK) or f"op-{op.pk}")


def _unapplied_requests(ops: list[SyncOperation], missing: int | None, *, local_zero: bool) -> set[str] | None:
    """Which increment requests did NOT land, given ``missing`` = local − remote quantity.

    The unapplied requests are a subset whose deltas sum to ``missing``; subsets are tried
    smallest first (when two fit, re-sending either ends at the same quantity). ``missing`` None
    means the product is gone on CardTrader, which only "every request landed and took it to 0"
    explains (local 0). Returns None when nothing explains the numbers.
    """
    by_request: dict[str, int] = defaultdict(int)
    for op in ops:
        by_request[_request_key(op)] += _op_delta(op)
    if missing is None:
        return set() if local_zero else None
    keys = sorted(by_request)
    if len(keys) > 10:  # beyond 2^10 subsets, reconciliation decides
        return set() if missing == 0 else None
    for size in range(len(keys) + 1):
        for subset in combinations(keys, size):
            if sum(by_request[k] for k in subset) == missing:
                return set(subset)
    return None
