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
import socket
import threading
import time

import psycopg
import pytest
import requests

from tests.observability.conftest import serving_gunicorn, wait_until


def _database_url() -> str:
    """The test database, for a gunicorn subprocess."""
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_a_request_waiting_on_postgresql_does_not_stop_the_worker(tmp_path):
    from django.db import connection

    from inventory.models import User
    from syncops.models import WebhookEvent
    from tests.webhooks import builders
    from tests.webhooks.conftest import make_shop

    shop = make_shop()
    db = connection.settings_dict
    proc, log, port = serving_gunicorn(tmp_path, DATABASE_URL=_database_url())
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


@pytest.mark.django_db
def test_a_blackholed_catalogue_does_not_stop_the_worker_during_a_readiness_probe(tmp_path):
    """mysqlclient connects in C: the readiness probe's catalogue check must not block the
    worker's event loop. A listening socket that never answers stands in for a blackholed
    MariaDB (the client waits for the server's greeting until its 3 s connect timeout)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        proc, _log, port = serving_gunicorn(
            tmp_path, DATABASE_URL=_database_url(),
            BLUEPRINT_DATABASE_URL=f"mysql://root@127.0.0.1:{silent.getsockname()[1]}/catalogue")
        try:
            answered: dict = {}

            def probe() -> None:
                started = time.monotonic()
                response = requests.get(f"http://127.0.0.1:{port}/health/ready", timeout=30)
                answered.update(status=response.status_code, body=response.json(), seconds=time.monotonic() - started)

            readiness = threading.Thread(target=probe)
            readiness.start()
            time.sleep(0.5)  # the catalogue check is waiting on the silent socket now
            started = time.monotonic()
            live = requests.get(f"http://127.0.0.1:{port}/health/live", timeout=10)
            assert live.status_code == 200
            assert time.monotonic() - started < 0.5
            readiness.join(timeout=30)
            assert answered["status"] == 503 and answered["body"]["failing"] == ["blueprints"]
            assert answered["seconds"] < 2.5  # cut at the probe's own timeout, not the driver's
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
