"""Asking a worker to push a seller's pending operations, without a task storm.

A thousand edits commit a thousand ``on_commit`` callbacks; one queued task per seller is enough,
because a push run drains everything due. A short-lived Redis marker ("a push task for this seller
is queued and has not started yet") suppresses the duplicates; the run deletes it when it starts,
so an edit committed after that always queues a fresh task. If Redis or the broker is down the
operation is still in the outbox and the sweeper dispatches it later.
"""
from __future__ import annotations

import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)

QUEUED_MARKER_TTL = 30  # seconds; only a safety net, the run clears it when it starts


def queued_marker(seller_id: str) -> str:
    return f"push:queued:{seller_id}"


def push_dispatch(seller_id: str, *, countdown: float | None = None, force: bool = False) -> bool:
    """Queue ``syncops.tasks.push_seller`` for the seller. Returns whether a task was sent.

    ``force`` (the sweeper) ignores the marker: the task it vouches for may have died with a
    killed worker, and its message may sit unacknowledged in the broker for a long time."""
    from syncops.tasks.push import push_seller

    try:
        if force:
            cache.set(queued_marker(seller_id), 1, timeout=QUEUED_MARKER_TTL)
        elif countdown is None and not cache.add(queued_marker(seller_id), 1, timeout=QUEUED_MARKER_TTL):
            return False
        push_seller.apply_async(args=[str(seller_id)], countdown=countdown or None)
        return True
    except Exception:  # broker/Redis outage: the outbox row stays pending; the sweeper re-dispatches
        logger.warning("push dispatch for seller %s failed; the sweeper will retry", seller_id, exc_info=True)
        return False


def clear_queued_marker(seller_id: str) -> None:
    try:
        cache.delete(queued_marker(seller_id))
    except Exception:
        logger.warning("could not clear the push marker of seller %s", seller_id, exc_info=True)
