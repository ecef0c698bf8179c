"""The webhook inbox: verify, store first, dispatch on commit; the sweeper and retention.

Nothing is written unless the signature is right and the delivery is well formed, and a
delivery is stored *before* the 200 so CardTrader's retry is the only thing that can ever be
lost upstream of us. Applying happens later, on the high-priority queue (services/orders.py).
"""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DataError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from inventory.models import SyncSettings
from syncops import webhook_signature
from syncops.models import WebhookEvent, WebhookState

logger = logging.getLogger(__name__)

# A day either side: CardTrader's retry policy is unknown, so the window must admit slow retries
# (Stripe's 300 s would drop them); the signed `time` still stops an old capture being replayed
# under a fresh delivery id months later. Outside it a delivery is stored as `stale`, not applied.
FRESHNESS_SECONDS: int = getattr(settings, "WEBHOOK_FRESHNESS_SECONDS", 24 * 3600)
# A stored delivery not applied this long after its last dispatch is dispatched again.
SWEEP_AFTER_SECONDS: int = getattr(settings, "WEBHOOK_SWEEP_AFTER_SECONDS", 15)
# After this many failed applies the sweeper stops and leaves the delivery `failed` for staff.
MAX_ATTEMPTS: int = getattr(settings, "WEBHOOK_MAX_ATTEMPTS", 10)

PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}

REQUIRED_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str, int),
    "time": (int, float),
    "cause": (str,),
    "object_class": (str,),
    "object_id": (int,),
    "mode": (str,),
}
KNOWN_CAUSES = frozenset({"order.create", "order.update", "order.destroy"})


class WebhookRejected(Exception):
    """A delivery refused with an HTTP status; nothing was stored."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    time: float
    sent_at: datetime
    cause: str
    object_class: str
    object_id: int
    mode: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Receipt:
    event_id: int | None  # None for a duplicate
    delivery_id: str
    state: str
    duplicate: bool


def parse_delivery(body: bytes) -> Delivery:
    """The delivery in ``body``, or WebhookRejected(400) naming what is wrong."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise WebhookRejected(400, "malformed_json", "The body is not valid JSON.")
    if not isinstance(doc, dict):
        raise WebhookRejected(400, "invalid_delivery", "The body must be a JSON object.")
    missing = [name for name in (*REQUIRED_FIELDS, "data") if name not in doc]
    if missing:
        raise WebhookRejected(400, "invalid_delivery", "Required fields are missing.", {"missing": missing})
    wrong = [
        name
        for name, types in REQUIRED_FIELDS.items()
        # bool is an int in Python, never a valid id, time or order id.
        if isinstance(doc[name], bool) or not isinstance(doc[name], types)
    ]
    if doc["data"] is not None and not isinstance(doc["data"], dict):
        wrong.append("data")
    if wrong:
        raise WebhookRejected(400, "invalid_delivery", "Fields have the wrong type.", {"wrong_type": wrong})
    delivery_id = str(doc["id"]).strip()
    if not delivery_id or len(delivery_id) > WebhookEvent._meta.get_field("delivery_id").max_length:
        raise WebhookRejected(400, "invalid_delivery", "The delivery id is empty or too long.")
    if doc["mode"] not in ("live", "test"):
        raise WebhookRejected(400, "invalid_delivery", "mode must be 'live' or 'test'.")
    if doc["cause"] in ("order.create", "order.update") and not isinstance(doc["data"], dict):
        raise WebhookRejected(400, "invalid_delivery", "An order.create/update delivery carries the order in data.")
    try:
        sent_at = datetime.fromtimestamp(doc["time"], tz=UTC)
    except (OverflowError, ValueError, OSError):
        raise WebhookRejected(400, "invalid_delivery", "time is not a usable epoch.")
    return Delivery(
        delivery_id=delivery_id,
        time=float(doc["time"]),
        sent_at=sent_at,
        cause=doc["cause"],
        object_class=doc["object_class"],
        object_id=doc["object_id"],
        mode=doc["mode"],
        payload=doc,
    )


def _initial_state(delivery: Delivery, now: datetime) -> tuple[str, str]:
    """The state a delivery is stored in, and why when it will not be applied."""
    if delivery.mode == "test":
        return WebhookState.IGNORED, "test-mode delivery: recorded, not applied"
    if delivery.object_class != "Order" or delivery.cause not in KNOWN_CAUSES:
        return WebhookState.IGNORED, f"unhandled event {delivery.object_class}/{delivery.cause}: recorded only"
    if abs(now.timestamp() - delivery.time) > FRESHNESS_SECONDS:
        return WebhookState.STALE, f"delivery time more than {FRESHNESS_SECONDS} s from receipt"
    return WebhookState.RECEIVED, ""


def _insert_if_new(values: dict[str, Any]) -> int | None:
    """INSERT ... ON CONFLICT (delivery_id) DO NOTHING RETURNING id: the new row's id, or None.

    One statement, so two concurrent copies of a delivery race on the unique index and exactly
    one wins, without an IntegrityError or a savepoint on the hot path.
    """
    meta = WebhookEvent._meta
    fields = [meta.get_field(name) for name in values]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    params = [f.get_db_prep_save(values[f.name], connection) for f in fields]
    delivery_column = connection.ops.quote_name(meta.get_field("delivery_id").column)
    sql = (
        f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) "  # noqa: S608 - names from _meta
        f"VALUES ({', '.join(['%s'] * len(params))}) "
        f"ON CONFLICT ({delivery_column}) DO NOTHING RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def webhook_receive(*, sync_settings: SyncSettings, body: bytes, signature: str | None) -> Receipt:
    """Verify and store one delivery for the seller the URL names; dispatch it on commit.

    Order of checks: disconnected (410: stop sending, we hold no usable secret), signature (401),
    shape (400). Only then is anything written.
    """
    if not sync_settings.is_connected:
        raise WebhookRejected(410, "seller_disconnected", "This seller is no longer connected to BRX Sync.")
    if not webhook_signature.verify(body, sync_settings.get_shared_secret(), signature):
        raise WebhookRejected(401, "invalid_signature", "Missing or invalid Signature header.")
    delivery = parse_delivery(body)
    now = timezone.now()
    state, note = _initial_state(delivery, now)
    values = {
        "delivery_id": delivery.delivery_id,
        "seller": sync_settings.user_id,
        "cause": delivery.cause[:32],
        "object_class": delivery.object_class[:32],
        "object_id": delivery.object_id,
        "mode": delivery.mode,
        "sent_at": delivery.sent_at,
        "payload": delivery.payload,
        "state": state,
        "attempts": 0,
        "error": note,
        "received_at": now,
        "dispatched_at": now if state == WebhookState.RECEIVED else None,
        "applied_at": None,
    }
    try:
        with transaction.atomic():
            event_id = _insert_if_new(values)
            if event_id is not None and state == WebhookState.RECEIVED:
                transaction.on_commit(lambda: hand_off.submit([event_id]))
    except DataError:
        # e.g. a NUL character, which PostgreSQL's jsonb refuses: nothing was stored.
        raise WebhookRejected(400, "invalid_delivery", "The payload cannot be stored (bad characters or range).")
    return Receipt(event_id=event_id, delivery_id=delivery.delivery_id, state=state, duplicate=event_id is None)


class _HandOff:
    """A per-process background publisher, so no webhook response waits on the broker.

    With Redis unreachable a publish takes seconds (client retries); CardTrader's request must
    not. The delivery is already committed, so anything this drops — a full queue, a broker
    marked down after a failure, a process that dies with items queued — the sweeper re-sends.
    Started lazily and per pid, so gunicorn's forked workers each get their own thread.
    """

    MAX_QUEUED = 10_000
    DOWN_FOR_SECONDS = 5.0

    def __init__(self) -> None:
        self._pid = 0
        self._queue: queue.Queue[list[int]] = queue.Queue(self.MAX_QUEUED)
        self._lock = threading.Lock()
        self._down_until = 0.0

    def submit(self, event_ids: list[int]) -> None:
        if time.monotonic() < self._down_until:
            return  # broker known down: the sweeper will dispatch these
        self._ensure_thread()
        try:
            self._queue.put_nowait(event_ids)
        except queue.Full:
            logger.warning("webhook hand-off queue full; %d deliveries left to the sweeper", len(event_ids))

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._queue = queue.Queue(self.MAX_QUEUED)
                threading.Thread(target=self._run, name="webhook-hand-off", daemon=True).start()
                self._pid = os.getpid()

    def _run(self) -> None:
        while True:
            event_ids = self._queue.get()
            if time.monotonic() < self._down_until or not dispatch_apply(event_ids):
                self._down_until = max(self._down_until, time.monotonic() + self.DOWN_FOR_SECONDS)


hand_off = _HandOff()


def dispatch_apply(event_ids: list[int]) -> bool:
    """Publish apply tasks; False (logged, never raised) when the broker refused one.

    The deliveries are stored, so a failed hand-off only delays them until the sweeper runs.
    A short retry lets kombu replace a pooled connection a Redis restart left dead (with no
    retry at all every later publish on it would fail); callers are off the request path.
    """
    from syncops.tasks.webhooks import webhook_apply

    for event_id in event_ids:
        try:
            webhook_apply.apply_async(args=[event_id], retry=True, retry_policy=PUBLISH_RETRY)
        except Exception:
            logger.warning("webhook %s: broker hand-off failed; the sweeper will retry", event_id, exc_info=True)
            return False
    return True


def webhook_sweep(*, older_than_seconds: int = SWEEP_AFTER_SECONDS, limit: int = 1000) -> int:
    """Re-dispatch stored deliveries still not applied; give up on ones that keep failing.

    Claims rows with SKIP LOCKED so two beats never dispatch the same row twice in one pass, and
    stamps ``dispatched_at`` so a row is re-sent at most once per ``older_than_seconds``.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=older_than_seconds)
    due = Q(dispatched_at__lt=cutoff) | Q(dispatched_at__isnull=True, received_at__lt=cutoff)
    with transaction.atomic():
        rows = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(due, state=WebhookState.RECEIVED)
            .order_by("id")
            .values_list("id", "attempts")[:limit]
        )
        exhausted = [pk for pk, attempts in rows if attempts >= MAX_ATTEMPTS]
        retry = [pk for pk, attempts in rows if attempts < MAX_ATTEMPTS]
        if exhausted:
            WebhookEvent.objects.filter(id__in=exhausted).update(state=WebhookState.FAILED)
        if retry:
            WebhookEvent.objects.filter(id__in=retry).update(dispatched_at=now)
            transaction.on_commit(lambda: dispatch_apply(retry))
    return len(retry)


def webhook_prune(*, days: int | None = None, batch: int = 5000) -> int:
    """Delete applied / ignored / stale deliveries older than the retention; keep failed ones.

    Failed (and still-received) deliveries stay until staff act on them. Deleted in batches so
    a large backlog never holds one long lock on the inbox.
    """
    keep_days = settings.WEBHOOK_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=keep_days)
    prunable = WebhookEvent.objects.filter(
        state__in=(WebhookState.APPLIED, WebhookState.IGNORED, WebhookState.STALE), received_at__lt=cutoff
    )
    total = 0
    while True:
        ids = list(prunable.order_by("id").values_list("id", flat=True)[:batch])
        if not ids:
            return total
        total += WebhookEvent.objects.filter(id__in=ids).delete()[0]
