"""Staff's "re-apply" of a failed webhook delivery.

A delivery ends ``failed`` when applying it kept raising (the sweeper gave up after
``MAX_ATTEMPTS``), e.g. during a database incident. Once the cause is fixed, staff put it back
to ``received`` and hand it to the same apply task the inbox uses (``webhooks.dispatch_apply`` →
``orders.webhook_event_apply``). Applying goes through the order ledger, so re-applying a
delivery whose order was meanwhile applied by a later delivery moves no stock twice.
"""
from __future__ import annotations

from django.db import transaction

from syncops.models import WebhookEvent, WebhookState


class WebhookNotFailed(Exception):
    """Only failed deliveries are re-applied; others are applied, pending or records only."""

    def __init__(self, event: WebhookEvent) -> None:
        super().__init__(f"delivery {event.delivery_id} is {event.state}, not failed")
        self.event = event


@transaction.atomic
def webhook_reapply(*, event_id: int) -> WebhookEvent:
    """Reset a failed delivery to ``received`` (attempts back to 0) and dispatch it after commit."""
    from syncops.services.webhooks import dispatch_apply

    event = WebhookEvent.objects.select_for_update().get(pk=event_id)
    if event.state != WebhookState.FAILED:
        raise WebhookNotFailed(event)
    event.state = WebhookState.RECEIVED
    event.attempts = 0
    event.error = ""  # the previous error stays in the admin log entry the caller writes
    event.dispatched_at = None
    event.save(update_fields=["state", "attempts", "error", "dispatched_at"])
    transaction.on_commit(lambda: dispatch_apply([event.pk]), robust=True)
    return event
