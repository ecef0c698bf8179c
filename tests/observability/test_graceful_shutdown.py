"""SIGTERM drains: gunicorn finishes the request in flight; a Celery worker finishes the task
it is running (warm shutdown) and leaves the task it had not started in the queue, where the
next worker picks it up. Real processes, real signals, real broker."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid

import pytest
import redis as redis_lib
import requests

from tests.observability.conftest import serving_gunicorn, wait_until


def test_gunicorn_sigterm_finishes_the_request_in_flight(tmp_path):
    proc, log, port = serving_gunicorn(tmp_path, DJANGO_SETTINGS_MODULE="tests.observability.web_settings")
    try:
        result: dict = {}

        def slow() -> None:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/obs/slow/?seconds=3", timeout=30)
                result.update(status=r.status_code, body=r.json(), request_id=r.headers.get("X-Request-ID"))
            except requests.RequestException as exc:
                result["error"] = repr(exc)

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(1.0)  # the request is inside the view now
        sent_at = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        thread.join(timeout=30)
        assert result.get("status") == 200 and result["body"] == {"done": True}, result
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - sent_at >= 1.5  # it waited for the request instead of cutting it
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/health/live", timeout=1)
        # The access line of the drained request is in the JSON log, with the id it answered with.
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        assert any(r.get("event") == "http_request" and r.get("request_id") == result["request_id"] for r in lines)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def test_worker_sigterm_finishes_the_running_task_and_loses_none(worker_factory, probe_queue, redis_client):
    from tests.observability.probe import slow_probe

    first, second = f"obs-marker-{uuid.uuid4().hex}", f"obs-marker-{uuid.uuid4().hex}"
    worker = worker_factory(probe_queue)
    slow_probe.apply_async(args=[first, 3.0], queue=probe_queue)
    slow_probe.apply_async(args=[second, 0.5], queue=probe_queue)
    markers = redis_lib.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        wait_until(lambda: markers.lrange(first, 0, -1) == [b"started"], 20, "the first task to start")
        # Like `docker stop`: SIGTERM to the main process only (a signal to the whole group would
        # also hit the pool child, which then dies mid-task and relies on redelivery instead).
        os.kill(worker.proc.pid, signal.SIGTERM)
        assert worker.proc.wait(timeout=30) == 0
        assert markers.lrange(first, 0, -1) == [b"started", b"finished"]  # warm shutdown: ran to the end
        assert markers.lrange(second, 0, -1) == []  # not started, and not dropped either:

        worker_factory(probe_queue)
        wait_until(lambda: markers.lrange(second, 0, -1) == [b"started", b"finished"], 20, "the second task")
        time.sleep(0.5)
        assert markers.lrange(first, 0, -1) == [b"started", b"finished"]  # and the first is not run twice
    finally:
        markers.delete(first, second)
        markers.close()


@pytest.mark.django_db(transaction=True)
def test_gunicorn_sigterm_publishes_the_webhook_deliveries_still_lingering(tmp_path, redis_client):
    """A deploy's SIGTERM while accepted deliveries wait in the hand-off's linger: the exiting
    worker publishes their apply message instead of leaving them to the sweeper (seconds later)."""
    import base64

    from django.conf import settings
    from django.db import connection

    from syncops.models import WebhookEvent
    from tests.webhooks import builders
    from tests.webhooks.conftest import make_shop

    shop = make_shop()
    queue_key = f"{settings.CELERY_BROKER_TRANSPORT_OPTIONS['global_keyprefix']}high-priority"
    proc, _log, port = serving_gunicorn(
        tmp_path, WEBHOOK_HANDOFF_LINGER_MS="60000",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}")
    try:
        url = f"http://127.0.0.1:{port}/api/v1/webhooks/cardtrader/{shop.settings.webhook_id}/"
        for order_id in (7001, 7002):
            body, signature = builders.signed(builders.delivery(builders.order(order_id, "paid", [(111, 1)])),
                                              shop.secret)
            response = requests.post(url, data=body, headers={"Signature": signature,
                                                              "Content-Type": "application/json"}, timeout=10)
            assert response.status_code == 200, response.text
        stored = sorted(WebhookEvent.objects.filter(seller=shop.user).values_list("pk", flat=True))
        assert len(stored) == 2
        sent_at = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - sent_at < 15  # it did not sit out the 60 s linger
        args = [json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
                for raw in redis_client.lrange(queue_key, 0, -1)]
        assert [a for a in args if set(a[0]) & set(stored)] == [[stored]]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        redis_client.delete(queue_key)
