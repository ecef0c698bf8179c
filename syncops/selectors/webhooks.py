"""Reads for the webhook inbox: which seller a webhook URL belongs to, what an order has seen."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from inventory.models import SyncSettings
from syncops.models import WebhookEvent, WebhookState

# Deliveries that count as knowledge about an order: stored and meant to be applied. Test-mode
# (ignored) and stale deliveries are records only, so they never move stock.
KNOWLEDGE_STATES = (WebhookState.RECEIVED, WebhookState.APPLIED, WebhookState.FAILED)


def sync_settings_for_webhook(webhook_id: str) -> SyncSettings | None:
    """The seller a webhook URL routes to (by the unguessable id in the URL, never by payload)."""
    return SyncSettings.objects.filter(webhook_id=webhook_id).first()


def order_deliveries(*, seller_id: Any, order_ids: Iterable[int]) -> list[dict[str, Any]]:
    """Every live delivery stored for these orders, oldest CardTrader time first."""
    return list(
        WebhookEvent.objects.filter(
            seller_id=seller_id, object_id__in=list(order_ids), mode="live", state__in=KNOWLEDGE_STATES
        )
        .order_by("sent_at", "id")
        .values("id", "object_id", "cause", "payload", "state", "sent_at")
    )
