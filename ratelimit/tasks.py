"""Beat task for the breakers (default queue: no route needed)."""
from __future__ import annotations

from celery import shared_task

from ratelimit import services


@shared_task(name="ratelimit.tasks.maintain_breakers", ignore_result=True)
def maintain_breakers() -> dict:
    """OPEN → HALF_OPEN when due, closed breakers out of the index, stuck ones logged and gauged."""
    report = services.maintain_breakers()
    return {"half_opened": report.half_opened, "not_closed": len(report.not_closed),
            "stuck": [s.name for s in report.stuck], "throttled": len(report.throttled)}
