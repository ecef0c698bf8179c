"""Bulk work (imports, reconciles) yields to webhook applies.

An order paid on CardTrader must come off Ebartex's stock within seconds, or the last copy sells
twice. On a small machine an import's writes and the webhook worker's applies compete for the same
PostgreSQL CPU: measured on 2 cores, a 250k import cut the apply rate from ~150/s to 46/s and a
stream of 100 deliveries/s queued for the whole import (bench/webhook_bench.py, p99 9 s). So
before each chunk an import looks at the inbox: while recent deliveries wait to be applied, it
pauses a little, bounded per chunk so an import is slowed, never stopped; likewise while any
delivery has waited longer than ``BULK_YIELD_LATE_MS`` for its apply. Deliveries older than the
window do not count (a stopped worker is not helped by pausing imports), nor do any while
``webhook_auto_apply`` is off (nothing would apply them).
"""
from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from syncops.models import WebhookEvent, WebhookState
from syncops.services.webhooks import auto_apply_enabled

RECENT_SECONDS = 60.0
POLL_SECONDS = 0.1


def webhook_backlog(limit: int) -> int:
    """Recent deliveries stored and not yet applied, counted up to ``limit`` (the index on
    (state, received_at) serves it; a bounded count never scans a large backlog)."""
    since = timezone.now() - timedelta(seconds=RECENT_SECONDS)
    return len(WebhookEvent.objects.filter(state=WebhookState.RECEIVED, received_at__gte=since)
               .values_list("pk", flat=True)[:limit])


def webhooks_waiting(threshold: int, late_seconds: float) -> bool:
    """Whether applies are behind: at least ``threshold`` recent deliveries wait, or one whose
    apply message has not run yet (attempts = 0) was stored more than ``late_seconds`` ago.

    The second catches a worker that keeps the backlog short but late (measured: ~20–80 waiting
    and p99 0.8 s from stored to applied at 100/s during an import). A delivery its message
    already tried and could not apply (attempts > 0) does not count: it is waiting for the
    sweeper, and pausing imports would not help it. One query on the (state, received_at) index.
    """
    now = timezone.now()
    since = now - timedelta(seconds=RECENT_SECONDS)
    waiting = list(
        WebhookEvent.objects.filter(state=WebhookState.RECEIVED, received_at__gte=since)
        .order_by("received_at")
        .values_list("received_at", "attempts")[:threshold]
    )
    if len(waiting) >= threshold:
        return True
    late = now - timedelta(seconds=late_seconds)
    return late_seconds > 0 and any(at <= late and attempts == 0 for at, attempts in waiting)


def yield_to_webhooks() -> float:
    """Pause while applies are behind (``webhooks_waiting``: ``BULK_YIELD_BACKLOG`` deliveries,
    or one older than ``BULK_YIELD_LATE_MS``), for at most ``BULK_YIELD_MAX_SECONDS``. Returns
    the seconds paused."""
    threshold = settings.BULK_YIELD_BACKLOG
    if threshold <= 0 or not auto_apply_enabled():
        return 0.0
    late_seconds = settings.BULK_YIELD_LATE_MS / 1000
    started = time.monotonic()
    deadline = started + settings.BULK_YIELD_MAX_SECONDS
    while time.monotonic() < deadline and webhooks_waiting(threshold, late_seconds):
        time.sleep(POLL_SECONDS)
    return time.monotonic() - started
