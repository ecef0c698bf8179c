"""Reads for the webhook inbox: which seller a webhook URL belongs to, what an order has seen,
and what the endpoint answered today."""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from django.db.models import Count
from django.utils import timezone

from inventory.models import ConnectionState, SyncSettings
from syncops.models import WebhookEvent, WebhookState

# Deliveries that count as knowledge about an order: stored and meant to be applied. Test-mode
# (ignored) and stale deliveries are records only, so they never move stock.
KNOWLEDGE_STATES = (WebhookState.RECEIVED, WebhookState.APPLIED, WebhookState.FAILED)


@dataclass(frozen=True)
class WebhookTarget:
    """The seller a webhook URL routes to (by the unguessable id in the URL, never by payload).

    ``confirmed`` is True when it was just read from the database, False when it came from this
    process's cache. The inbox never trusts a cached target for what it writes: the insert is
    guarded by these same facts (services/webhooks.py), and any refusal is re-checked fresh.
    """

    webhook_id: str
    seller_id: Any
    connected: bool
    secret_ciphertext: str
    confirmed: bool = True

    @classmethod
    def of(cls, sync_settings: SyncSettings) -> WebhookTarget:
        return cls(
            webhook_id=sync_settings.webhook_id,
            seller_id=sync_settings.user_id,
            connected=sync_settings.is_connected,
            secret_ciphertext=sync_settings.shared_secret_encrypted,
        )


# webhook id -> (expires at, target). Per process (gunicorn workers each have their own); a
# stale entry can never admit a delivery (the insert re-checks it), so the TTL only bounds how
# long a process keeps a seller it no longer hears from. Unknown ids are never cached.
TARGET_TTL_SECONDS = 30.0
_TARGETS_MAX = 10_000
_targets: dict[str, tuple[float, WebhookTarget]] = {}


def webhook_target(webhook_id: str, *, fresh: bool = False) -> WebhookTarget | None:
    """The target of ``webhook_id``: from the cache unless ``fresh``; None for an unknown id.

    Saves the endpoint a round trip per delivery; correctness never rests on the cache.
    """
    now = time.monotonic()
    if not fresh:
        hit = _targets.get(webhook_id)
        if hit is not None and hit[0] > now:
            return hit[1]
    rows = list(
        SyncSettings.objects.filter(webhook_id=webhook_id).values_list(
            "user_id", "connection_state", "token_encrypted", "shared_secret_encrypted"
        )[:1]
    )
    if not rows:
        _targets.pop(webhook_id, None)
        return None
    seller_id, state, token_ciphertext, secret_ciphertext = rows[0]
    target = WebhookTarget(
        webhook_id=webhook_id,
        seller_id=seller_id,
        # the same rule as SyncSettings.is_connected, and as the insert's guard
        connected=state == ConnectionState.CONNECTED and bool(token_ciphertext),
        secret_ciphertext=secret_ciphertext,
    )
    if len(_targets) >= _TARGETS_MAX:
        _targets.clear()
    _targets[webhook_id] = (now + TARGET_TTL_SECONDS, replace(target, confirmed=False))
    return target


def order_deliveries(*, seller_id: Any, order_ids: Iterable[int]) -> list[dict[str, Any]]:
    """Every live delivery stored for these orders, oldest CardTrader time first."""
    return list(
        WebhookEvent.objects.filter(
            seller_id=seller_id, object_id__in=list(order_ids), mode="live", state__in=KNOWLEDGE_STATES
        )
        .order_by("sent_at", "id")
        .values("id", "object_id", "cause", "payload", "state", "sent_at")
    )


# --- what the endpoint answered, per UTC day (written by services.webhooks.webhook_outcome_count)


def outcomes_key(day: date) -> str:
    """The Redis hash of one day's endpoint outcomes, in the cache's key namespace."""
    from django.core.cache import cache

    return cache.make_key(f"webhooks:outcomes:{day.isoformat()}")


def webhook_outcomes(*, day: date) -> dict[str, Any]:
    """The endpoint's answers on ``day`` (UTC) that stored no row: ``duplicate`` (already stored:
    200, no effect) and ``rejected`` by error code (``invalid_signature``, ``malformed_json``,
    ``invalid_delivery``, ``payload_too_large``, ``not_found``, ``seller_disconnected``, …), with
    ``rejected_total``. Accepted deliveries are rows: ``deliveries_by_state``. One HGETALL;
    raises if Redis is unreachable."""
    from django_redis import get_redis_connection

    raw = get_redis_connection("default").hgetall(outcomes_key(day))
    counts = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
    rejected = {field.split(":", 1)[1]: n for field, n in sorted(counts.items()) if field.startswith("rejected:")}
    return {"duplicate": counts.get("duplicate", 0), "rejected": rejected, "rejected_total": sum(rejected.values())}


def deliveries_by_state(*, since: datetime) -> dict[str, int]:
    """Deliveries stored since ``since``, by their state now. ``state IN (every state)`` lets the
    (state, received_at) index serve the range instead of a scan of the whole inbox."""
    counts = dict(
        WebhookEvent.objects.filter(state__in=WebhookState.values, received_at__gte=since)
        .values_list("state").annotate(n=Count("pk")).order_by()
    )
    return {state: counts.get(state, 0) for state in WebhookState.values}


def utc_midnight(now: datetime | None = None) -> datetime:
    """The start of ``now``'s UTC day: what "today" means for every webhook figure."""
    return (now or timezone.now()).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
