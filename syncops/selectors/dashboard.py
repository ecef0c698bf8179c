"""The staff dashboard's numbers (admin index and its JSON refresh).

Each figure is one grouped, index-served query or a read of a selector other parts already use:
queue depth comes from the metrics collector (``brxsync.metrics.SyncStateCollector``), breakers
and 429s from ``ratelimit.selectors``, webhook figures from ``syncops.selectors.webhooks``
(stored deliveries by state and the endpoint's answers of the day, rejections included), so the
dashboard, ``/metrics`` and the API never disagree about what a number means. A source that
fails (Redis down) yields ``None`` and an entry in ``errors``, never a failed page: the
dashboard is what staff open during an incident.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count
from django.utils import timezone

from inventory.models import SyncSettings, SyncStatus
from syncops.models import (
    Conflict,
    ConflictKind,
    OperationKind,
    OperationState,
    SyncOperation,
)
from syncops.selectors.webhooks import deliveries_by_state, utc_midnight, webhook_outcomes

logger = logging.getLogger(__name__)

ATTENTION_STATES = (OperationState.FAILED, OperationState.UNCERTAIN, OperationState.PARTIAL)
RUNNING_IMPORTS_SHOWN = 20
ATTENTION_SHOWN = 10
THROTTLED_SELLERS_READ = 200  # 429 and wait counts are summed over at most this many recently limited sellers


def sellers_by_status() -> dict[str, int]:
    """Every sync status with its count (zeros included, so the dashboard layout is stable)."""
    counts = dict(SyncSettings.objects.values_list("sync_status").annotate(n=Count("pk")).order_by())
    return {status: counts.get(status, 0) for status in SyncStatus.values}


def operations_by_state(*, since: datetime) -> dict[str, int]:
    """Operations created since ``since``, by current state (the (created_at) index bounds it)."""
    counts = dict(
        SyncOperation.objects.filter(created_at__gte=since).values_list("state").annotate(n=Count("pk")).order_by()
    )
    return {state: counts.get(state, 0) for state in OperationState.values}


def operations_needing_attention(*, limit: int = ATTENTION_SHOWN) -> dict[str, Any]:
    """Failed / uncertain / partial operations: how many in all and the newest few."""
    qs = SyncOperation.objects.filter(state__in=ATTENTION_STATES)
    recent = list(
        qs.order_by("-created_at", "-pk").values(
            "pk", "kind", "state", "seller_id", "error_code", "last_error", "created_at"
        )[:limit]
    )
    return {
        "count": qs.count(),
        "recent": [
            {"id": r["pk"], "kind": r["kind"], "state": r["state"], "seller_id": str(r["seller_id"]),
             "error_code": r["error_code"], "error": (r["last_error"] or "")[:200],
             "created_at": r["created_at"].isoformat()}
            for r in recent
        ],
    }


def running_imports(*, limit: int = RUNNING_IMPORTS_SHOWN) -> list[dict[str, Any]]:
    """Running imports and reconciles with their progress (percent None until the total is known)."""
    rows = (
        SyncOperation.objects.filter(kind__in=(OperationKind.IMPORT, OperationKind.RECONCILE),
                                     state=OperationState.RUNNING)
        .order_by("-started_at", "-pk")
        .values("pk", "kind", "seller_id", "progress_done", "progress_total", "started_at", "heartbeat_at")[:limit]
    )
    out = []
    for r in rows:
        total = r["progress_total"]
        out.append({
            "id": r["pk"], "kind": r["kind"], "seller_id": str(r["seller_id"]),
            "done": r["progress_done"], "total": total,
            "percent": round(100.0 * r["progress_done"] / total, 1) if total else None,
            "started_at": r["started_at"].isoformat() if r["started_at"] else None,
            "heartbeat_at": r["heartbeat_at"].isoformat() if r["heartbeat_at"] else None,
        })
    return out


def queue_depths() -> dict[str, int]:
    """Messages waiting per Celery queue, read by the same collector ``/metrics`` exports."""
    from brxsync.metrics import SyncStateCollector

    for family in SyncStateCollector()._queues():
        if family.name == "brxsync_celery_queue_length":
            return {sample.labels["queue"]: int(sample.value) for sample in family.samples}
    return {}


def rate_limits() -> dict[str, Any]:
    """429s CardTrader sent and rate-limit waits in the last hour, throttled sellers, and every
    breaker not closed."""
    from ratelimit import get_default_guard
    from ratelimit.selectors import breakers_not_closed, limited_last_hour, shared_breaker_status

    guard = get_default_guard()
    limited = limited_last_hour(most=THROTTLED_SELLERS_READ, guard=guard)
    shared = shared_breaker_status(guard=guard)
    return {
        "rate_limited_last_hour": limited.rate_limited,
        "waits_last_hour": limited.waits,
        "throttled_sellers": limited.throttled_sellers,
        "shared_breaker": shared.state.label,
        "breakers_not_closed": [
            {"name": b.name, "state": b.state.label, "failures": b.failures, "since": b.since}
            for b in breakers_not_closed(guard=guard)
        ],
    }


def conflicts_open() -> dict[str, int]:
    counts = dict(
        Conflict.objects.filter(resolved_at__isnull=True).values_list("kind").annotate(n=Count("pk")).order_by()
    )
    return {"oversell": counts.get(ConflictKind.OVERSELL, 0), "total": sum(counts.values())}


def _safe(name: str, fn: Callable[[], Any], errors: dict[str, str]) -> Any:
    try:
        return fn()
    except Exception as exc:  # one broken source must not take the dashboard down
        logger.warning("dashboard source %s failed", name, exc_info=True)
        errors[name] = f"{type(exc).__name__}: {exc}"[:200]
        return None


def dashboard_snapshot(*, now: datetime | None = None) -> dict[str, Any]:
    """Everything the dashboard shows, JSON-ready (the admin index renders it, the JS refreshes it)."""
    now = now or timezone.now()
    errors: dict[str, str] = {}
    snapshot = {
        "generated_at": now.isoformat(),
        "sellers": _safe("sellers", sellers_by_status, errors),
        "operations_24h": _safe("operations_24h", lambda: operations_by_state(since=now - timedelta(hours=24)),
                                errors),
        "attention": _safe("attention", operations_needing_attention, errors),
        "imports": _safe("imports", running_imports, errors),
        "queues": _safe("queues", queue_depths, errors),
        "rate_limits": _safe("rate_limits", rate_limits, errors),
        # Two sources, so Redis being down hides only the answers, never the stored deliveries.
        "webhooks_today": _safe("webhooks_today", lambda: deliveries_by_state(since=utc_midnight(now)), errors),
        "webhook_answers_today": _safe("webhook_answers_today",
                                       lambda: webhook_outcomes(day=utc_midnight(now).date()), errors),
        "conflicts": _safe("conflicts", conflicts_open, errors),
    }
    snapshot["errors"] = errors
    return snapshot
