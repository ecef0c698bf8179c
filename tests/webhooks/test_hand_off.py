"""The web process's hand-off: deliveries stored within ``WEBHOOK_HANDOFF_LINGER_MS`` of each other
share one apply message (at most APPLY_BATCH ids), so the worker pays its per-message cost once
per batch (docs/WEBHOOKS.md, "Hand-off batching"). Real publishes to the session's Redis broker,
observed through Celery's own ``before_task_publish`` signal."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from celery.signals import before_task_publish
from django.conf import settings as live

from syncops.services.webhooks import APPLY_BATCH, _HandOff


@pytest.fixture
def published(redis_client) -> Iterator[list[list[int]]]:
    """The id lists of every webhook_apply message published meanwhile (for no worker: the queue is
    emptied afterwards)."""
    messages: list[list[int]] = []
    lock = threading.Lock()

    def record(sender: str = "", body: tuple | None = None, **_) -> None:
        if sender.endswith("webhook_apply"):
            args, _kwargs, _embed = body
            with lock:
                messages.append(list(args[0]))

    before_task_publish.connect(record, weak=False)
    try:
        yield messages
    finally:
        before_task_publish.disconnect(record)
        redis_client.delete(f"{live.CELERY_BROKER_TRANSPORT_OPTIONS['global_keyprefix']}high-priority")


def _wait_for(messages: list[list[int]], ids: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(map(len, messages)) < ids:
        assert time.monotonic() < deadline, messages
        time.sleep(0.01)


def test_deliveries_within_the_linger_share_one_message_and_a_later_one_gets_its_own(settings, published):
    settings.WEBHOOK_HANDOFF_LINGER_MS = 400
    hand_off = _HandOff()
    for event_id in (11, 12, 13):  # 100 ms apart: further apart than a 25 ms linger would join
        hand_off.submit(event_id)
        time.sleep(0.1)
    _wait_for(published, 3)
    time.sleep(0.2)  # past the linger: the next delivery starts a new message
    hand_off.submit(14)
    _wait_for(published, 4)
    assert published == [[11, 12, 13], [14]]


def test_a_full_batch_goes_out_without_waiting_for_the_linger(settings, published):
    settings.WEBHOOK_HANDOFF_LINGER_MS = 5000
    hand_off = _HandOff()
    started = time.monotonic()
    for event_id in range(1, APPLY_BATCH + 2):
        hand_off.submit(event_id)
    _wait_for(published, APPLY_BATCH)
    assert time.monotonic() - started < 2.5  # well before the 5 s linger
    assert published[0] == list(range(1, APPLY_BATCH + 1))


def test_with_no_linger_each_delivery_is_its_own_message(settings, published):
    settings.WEBHOOK_HANDOFF_LINGER_MS = 0
    hand_off = _HandOff()
    for event_id in (21, 22, 23):  # back to back: any linger at all would join them
        hand_off.submit(event_id)
    _wait_for(published, 3)
    assert published == [[21], [22], [23]]


def test_full_messages_go_out_at_once_and_the_remainder_shares_one_after_its_linger(settings, published):
    settings.WEBHOOK_HANDOFF_LINGER_MS = 1500
    hand_off = _HandOff()
    started = time.monotonic()
    total = 2 * APPLY_BATCH + 3
    for event_id in range(1, total + 1):
        hand_off.submit(event_id)
    _wait_for(published, 2 * APPLY_BATCH)
    assert time.monotonic() - started < 1.0  # the full messages did not wait for the linger
    assert published == [list(range(1, APPLY_BATCH + 1)), list(range(APPLY_BATCH + 1, 2 * APPLY_BATCH + 1))]
    _wait_for(published, total)
    assert time.monotonic() - started >= 1.4  # the remainder lingered, and went out as one message
    assert published[2:] == [list(range(2 * APPLY_BATCH + 1, total + 1))]


def test_flush_publishes_what_lingers_at_once_and_nothing_twice(settings, published):
    settings.WEBHOOK_HANDOFF_LINGER_MS = 1500
    hand_off = _HandOff()
    ids = list(range(31, 31 + APPLY_BATCH + 2))
    for event_id in ids[:3]:
        hand_off.submit(event_id)
    assert hand_off.flush() == 3
    assert published == [ids[:3]]  # published on this thread, before the linger ended
    for event_id in ids[3:]:
        hand_off.submit(event_id)
    time.sleep(2.0)  # past the publisher's lingers: whatever it held went out once
    assert sorted(i for message in published for i in message) == ids

