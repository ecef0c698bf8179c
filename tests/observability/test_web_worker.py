"""Production's web worker keeps serving while one of its requests waits on PostgreSQL.

``brxsync/gunicorn.conf.py`` runs gevent: one event loop per worker process. A request waiting
on the database must hand the loop to the others, which holds only if psycopg waits through
gevent's patched ``select`` (it does when gevent patched before psycopg was imported). If psycopg
waited in C instead, the whole worker would freeze behind one slow statement; run with
``PSYCOPG_WAIT_FUNC=wait_c`` and this test fails on the probe's timeout. Real gunicorn, real
PostgreSQL lock, real HTTP.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import psycopg
import pytest
import requests

from tests.observability.conftest import serving_gunicorn, wait_until


@pytest.mark.django_db(transaction=True)
def test_a_request_waiting_on_postgresql_does_not_stop_the_worker(tmp_path):
    from django.db import connection

    from inventory.models import User
    from syncops.models import WebhookEvent
    from tests.webhooks import builders
    from tests.webhooks.conftest import make_shop

    shop = make_shop()
    db = connection.settings_dict
    proc, log, port = serving_gunicorn(
        tmp_path, DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}")
    try:
        assert "Using worker: gevent" in log.read_text()  # production's default, what this is about
        body, signature = builders.signed(builders.delivery(builders.order(8101, "paid", [(111, 1)])), shop.secret)
        answered: dict = {}

        def deliver() -> None:
            response = requests.post(
                f"http://127.0.0.1:{port}/api/v1/webhooks/cardtrader/{shop.settings.webhook_id}/", data=body,
                headers={"Signature": signature, "Content-Type": "application/json"}, timeout=30)
            answered.update(status=response.status_code, body=response.json())

        params = {"host": db["HOST"], "port": db["PORT"], "user": db["USER"], "dbname": db["NAME"]}
        with psycopg.connect(**params) as holder, psycopg.connect(**params, autocommit=True) as watcher:
            # The inbox insert checks its foreign key to the seller (FOR KEY SHARE): holding the
            # seller's row FOR UPDATE makes the delivery's statement wait inside PostgreSQL.
            holder.execute(f'SELECT 1 FROM "{User._meta.db_table}" WHERE id = %s FOR UPDATE', [shop.user.pk])
            delivery = threading.Thread(target=deliver)
            delivery.start()

            def waiting_on_the_lock() -> bool:  # (a transaction would see one snapshot of the activity)
                return watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                    [db["NAME"]]).fetchone()[0] > 0

            wait_until(waiting_on_the_lock, 20, "the delivery to wait on the seller's row")
            started = time.monotonic()
            probe = requests.get(f"http://127.0.0.1:{port}/health/live", timeout=5)
            assert probe.status_code == 200
            assert time.monotonic() - started < 2.0
            assert delivery.is_alive() and not answered  # the delivery is still waiting, on the same worker
            holder.rollback()
        delivery.join(timeout=20)
        assert answered.get("status") == 200, answered
        assert answered["body"]["duplicate"] is False
        assert WebhookEvent.objects.filter(seller=shop.user, object_id=8101).count() == 1
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
