"""Bulk work (imports, reconciles) yields to webhook applies.

An order paid on CardTrader must come off Ebartex's stock within seconds, or the last copy sells
twice. On a small machine an import's writes and the webhook worker's applies compete for the same
PostgreSQL CPU: measured on 2 cores, a 250k import cut the apply rate from ~150/s to 46/s and a
stream of 100 deliveries/s queued for the whole import (bench/webhook_bench.py, p99 9 s). So
before each chunk an import looks at the inbox: while recent deliveries wait to be applied, it
pauses a little, bounded per chunk so an import is slowed, never stopped. Deliveries older than
the window do not count (a stopped worker is not helped by pausing imports), nor do any while
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


def yield_to_webhooks() -> float:
    """Pause while at least ``BULK_YIELD_BACKLOG`` deliveries wait, for at most
    ``BULK_YIELD_MAX_SECONDS``. Returns the seconds paused."""
    threshold = settings.BULK_YIELD_BACKLOG
    if threshold <= 0 or not auto_apply_enabled():
        return 0.0
    started = time.monotonic()
    deadline = started + settings.BULK_YIELD_MAX_SECONDS
    while time.monotonic() < deadline and webhook_backlog(threshold) >= threshold:
        time.sleep(POLL_SECONDS)
    return time.monotonic() - started
