"""Every periodic task the service needs, as code, so schedules are reproducible.

``manage.py setup_periodic_tasks`` turns this list into django-celery-beat rows (idempotent:
it creates missing rows and refreshes task/queue/description, but keeps an interval or an
enabled flag that staff changed in the admin). Add an entry here when a feature needs a beat.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodicTaskSpec:
    name: str
    task: str
    every_seconds: int
    queue: str = "default"
    description: str = ""


PERIODIC_TASKS: tuple[PeriodicTaskSpec, ...] = (
    PeriodicTaskSpec(
        name="refresh inventory stats view",
        task="inventory.tasks.refresh_inventory_stats",
        every_seconds=300,
        description="REFRESH MATERIALIZED VIEW CONCURRENTLY mv_user_inventory_stats (per-seller counts).",
    ),
    PeriodicTaskSpec(
        name="circuit breaker maintenance",
        task="ratelimit.tasks.maintain_breakers",
        every_seconds=15,
        description="Breakers past their open period → HALF_OPEN; closed ones leave the index; stuck-open ones "
        "logged and gauged; throttled sellers' factor gauges refreshed.",
    ),
    PeriodicTaskSpec(
        name="prune idempotency keys",
        task="brxsync.api.tasks.prune_idempotency_records",
        every_seconds=3600,
        description="Delete Idempotency-Key records older than IDEMPOTENCY_RETENTION_HOURS (at least 24 h).",
    ),
    PeriodicTaskSpec(
        name="sweep push outbox",
        task="syncops.tasks.push_sweep",
        every_seconds=30,
        queue="high-priority",
        description="Re-dispatch pushes never picked up or whose worker died; settle uncertain increments.",
    ),
    PeriodicTaskSpec(
        name="sweep webhook inbox",
        task="syncops.tasks.webhook_sweep",
        every_seconds=10,
        queue="high-priority",
        description="Re-dispatch stored CardTrader deliveries not applied within 15 s (broker outage, dead worker).",
    ),
    PeriodicTaskSpec(
        name="prune webhook inbox",
        task="syncops.tasks.webhook_prune",
        every_seconds=3600,
        description="Delete applied/ignored/stale deliveries older than WEBHOOK_RETENTION_DAYS; failed ones stay.",
    ),
    PeriodicTaskSpec(
        name="schedule seller reconciliations",
        task="syncops.tasks.schedule_reconciliations",
        every_seconds=3600,
        description="Queue each due seller's reconcile (RECONCILE_INTERVAL_SECONDS) at a hash-derived offset within "
        "the hour, so sellers never all hit CardTrader at once.",
    ),
)
