"""Settings and schedules whose mistakes would be silent in production."""
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django_celery_beat.models import PeriodicTask

from brxsync.celery import app, prefetch_for_queues
from inventory.models import InventoryItem
from inventory.services import inventory_stats_refresh


def test_celery_reliability_settings_are_applied_to_the_app():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_time_limit and conf.task_soft_time_limit < conf.task_time_limit
    assert {q.name for q in conf.task_queues} == {"high-priority", "bulk-sync", "default"}
    assert conf.broker_transport_options["visibility_timeout"] > settings.CELERY_MAX_COUNTDOWN_SECONDS


@pytest.mark.parametrize(
    ("queues", "expected"),
    [(["high-priority"], 1), (["bulk-sync"], 1), (["default"], 4), (["default", "high-priority"], 1), (None, 1)],
)
def test_prefetch_follows_the_queues_a_worker_consumes(queues, expected):
    assert prefetch_for_queues(queues) == expected


def test_task_routes_send_flows_to_their_queues():
    router = app.amqp.router
    assert router.route({}, "syncops.tasks.webhook_apply")["queue"].name == "high-priority"
    assert router.route({}, "syncops.tasks.import_run")["queue"].name == "bulk-sync"
    assert router.route({}, "inventory.tasks.refresh_inventory_stats")["queue"].name == "default"
    assert router.route({}, "syncops.tasks.webhook_prune")["queue"].name == "default"
    assert router.route({}, "syncops.tasks.push_seller")["queue"].name == "high-priority"


@pytest.mark.django_db
def test_setup_periodic_tasks_is_idempotent_and_keeps_admin_edits():
    call_command("setup_periodic_tasks")
    row = PeriodicTask.objects.get(task="inventory.tasks.refresh_inventory_stats")
    assert row.interval.every == 300
    row.enabled = False
    row.save()
    call_command("setup_periodic_tasks")
    assert PeriodicTask.objects.filter(task="inventory.tasks.refresh_inventory_stats").count() == 1
    assert PeriodicTask.objects.get(pk=row.pk).enabled is False


@pytest.mark.django_db(transaction=True)
def test_materialized_view_refreshes_concurrently(seller):
    InventoryItem.objects.create(seller=seller, product_id=1, blueprint_id=1, quantity=3, price_cents=100)
    InventoryItem.objects.create(seller=seller, product_id=2, blueprint_id=1, quantity=2, price_cents=300)
    assert inventory_stats_refresh() is True
    with connection.cursor() as cur:
        cur.execute(
            "SELECT total_items, total_quantity, avg_price_cents, unmapped_items "
            "FROM mv_user_inventory_stats WHERE seller_id = %s",
            [seller.pk],
        )
        assert cur.fetchone() == (2, 5, 200, 2)


@pytest.mark.parametrize(
    ("args", "expected"),
    [(["-Q", "high-priority", "-c", "2"], 2), (["-Q", "default", "-c", "2"], 8),
     (["-Q", "high-priority", "-c", "2", "--prefetch-multiplier", "3"], 6)],
    ids=["high-priority", "default", "operator-choice"],
)
def test_a_real_worker_prefetches_what_its_queues_allow(tmp_path, args, expected):
    """Setting the config in ``celeryd_init`` alone left every worker at Celery's default of 4
    (the CLI passes its own default): a high-priority worker held 16 messages for 4 processes.
    Real worker, asked over the broker what its consumer prefetches (prefetch × processes)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import uuid
    from pathlib import Path

    name = f"prefetch-{uuid.uuid4().hex[:8]}@test"
    log = tmp_path / "worker.log"
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="brxsync.test_settings", LOG_LEVEL="INFO")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "brxsync", "worker", *args, "-n", name, "--without-gossip",
         "--without-mingle", "--without-heartbeat", "-l", "INFO"],
        cwd=Path(__file__).resolve().parents[2], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while "ready" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        stats = app.control.inspect(destination=[name], timeout=5).stats() or {}
        assert stats[name]["prefetch_count"] == expected
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
