"""Every metric family brxsync/metrics.py owns, moved by the code path it describes."""
from __future__ import annotations

import json
import uuid

import pytest
from kombu import Exchange, Queue
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.webhooks import builders
from tests.webhooks.conftest import make_shop


def scrape(client) -> dict[tuple[str, tuple], float]:
    """``/metrics`` as the web serves it (metrics_view), as {(sample name, sorted labels): value}."""
    response = client.get("/obs/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.django_db
def test_webhook_deliveries_accepted_duplicate_rejected(client, probe_urls):
    shop = make_shop()
    doc = builders.delivery(builders.order(int(uuid.uuid4().int % 10**9), "paid", []), mode="test")
    body, signature = builders.signed(doc, shop.secret)
    before = {r: value("brxsync_webhook_deliveries_total", result=r, reason=c)
              for r, c in (("accepted", ""), ("duplicate", ""), ("rejected", "invalid_signature"))}

    first = client.post(shop.url, data=body, content_type="application/json", HTTP_SIGNATURE=signature)
    again = client.post(shop.url, data=body, content_type="application/json", HTTP_SIGNATURE=signature)
    forged = client.post(shop.url, data=body, content_type="application/json", HTTP_SIGNATURE="AAAA" + signature[4:])
    assert (first.status_code, again.status_code, forged.status_code) == (200, 200, 401)

    assert value("brxsync_webhook_deliveries_total", result="accepted", reason="") == before["accepted"] + 1
    assert value("brxsync_webhook_deliveries_total", result="duplicate", reason="") == before["duplicate"] + 1
    assert value("brxsync_webhook_deliveries_total", result="rejected",
                 reason="invalid_signature") == before["rejected"] + 1


@pytest.mark.django_db
def test_operations_by_kind_and_state_and_import_progress(client, probe_urls, seller):
    from syncops.models import SyncOperation

    before = scrape(client)
    key = ("brxsync_operations", (("kind", "push_update"), ("state", "failed")))
    SyncOperation.objects.create(operation_key=f"obs-{uuid.uuid4()}", seller=seller, kind="push_update", state="failed")
    SyncOperation.objects.create(operation_key=f"obs-{uuid.uuid4()}", seller=seller, kind="push_update", state="failed")
    running = SyncOperation.objects.create(operation_key=f"obs-{uuid.uuid4()}", seller=seller, kind="import",
                                           state="running", progress_done=1200, progress_total=5000)
    after = scrape(client)

    assert after[key] == before.get(key, 0) + 2
    recent = ("brxsync_operations_created_last_hour", (("kind", "import"), ("state", "running")))
    assert after[recent] == before.get(recent, 0) + 1
    labels = (("operation_id", str(running.pk)), ("seller_id", str(seller.pk)))
    assert after[("brxsync_import_items_done", labels)] == 1200
    assert after[("brxsync_import_items_total", labels)] == 5000
    assert after[("brxsync_scrape_errors", (("source", "operations"),))] == 0

    SyncOperation.objects.filter(pk=running.pk).update(state="succeeded")
    assert ("brxsync_import_items_done", labels) not in scrape(client)  # only running imports


@pytest.mark.django_db
def test_queue_depth_reads_the_broker_lists(client, probe_urls, settings, redis_client):
    """Real messages published by Celery to the real broker, on queues of this test's own."""
    from brxsync.celery import app
    from tests.observability.probe import log_probe

    names = [f"obs-q-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    settings.CELERY_TASK_QUEUES = tuple(Queue(n, Exchange(n), routing_key=n) for n in names)
    try:
        for _ in range(3):
            log_probe.apply_async(args=["x"], queue=names[0])
        log_probe.apply_async(args=["x"], queue=names[1], priority=6)  # a priority sub-list
        after = scrape(client)
        assert after[("brxsync_celery_queue_length", (("queue", names[0]),))] == 3
        assert after[("brxsync_celery_queue_length", (("queue", names[1]),))] == 1
        assert ("brxsync_celery_unacked_messages", ()) in after
        assert after[("brxsync_scrape_errors", (("source", "broker"),))] == 0
    finally:
        prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
        for n in names:
            redis_client.delete(*(prefix + n + s for s in ("", "\x06\x163", "\x06\x166", "\x06\x169")))
    assert app  # the project's app published them


@pytest.mark.django_db
def test_a_dead_broker_is_reported_not_fatal(client, probe_urls, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    after = scrape(client)
    assert after[("brxsync_scrape_errors", (("source", "broker"),))] == 1
    assert after[("brxsync_scrape_errors", (("source", "operations"),))] == 0


@pytest.mark.django_db
def test_db_connections_opened_counts_new_connections():
    from django.db import connections

    before = value("brxsync_db_connections_opened_total", alias="default")
    fresh = connections.create_connection("default")  # a second wrapper: the test's own stays in its transaction
    try:
        with fresh.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        fresh.close()
    assert value("brxsync_db_connections_opened_total", alias="default") == before + 1


def test_cardtrader_endpoint_labels_are_templates():
    from brxsync.metrics import cardtrader_endpoint

    assert cardtrader_endpoint("/products/123456/increment") == "/products/:id/increment"
    assert cardtrader_endpoint("/jobs/0f6e3c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6?x=1") == "/jobs/:id"
    assert cardtrader_endpoint("/products/export") == "/products/export"


def test_cardtrader_requests_counted_by_the_client(sandbox_settings, sandbox_account):
    from syncops.cardtrader.client import CardTraderClient

    before_ok = value("brxsync_cardtrader_requests_total", endpoint="/info", method="GET", outcome="ok")
    before_auth = value("brxsync_cardtrader_requests_total", endpoint="/info", method="GET", outcome="auth_error")
    base = sandbox_settings.CARDTRADER_API_BASE
    with CardTraderClient(token=sandbox_account.token, seller_id="s", base_url=base) as c:
        c.info()
    with CardTraderClient(token="not-a-token", seller_id="s", base_url=base) as c:
        with pytest.raises(Exception):  # any auth error class will do here
            c.info()
    assert value("brxsync_cardtrader_requests_total", endpoint="/info", method="GET", outcome="ok") == before_ok + 1
    assert value("brxsync_cardtrader_requests_total", endpoint="/info", method="GET",
                 outcome="auth_error") == before_auth + 1
    assert value("brxsync_cardtrader_request_seconds_count", endpoint="/info", method="GET") >= 2


@pytest.mark.django_db
def test_http_requests_by_route_method_status_with_latency(client, probe_urls):
    """ObservabilityMiddleware counts every answer (probes included) under its URL pattern."""
    def count(route: str, method: str, status: str) -> float:
        return value("brxsync_http_requests_total", route=route, method=method, status=status)

    def latency_count(route: str, method: str) -> float:
        return value("brxsync_http_request_seconds_count", route=route, method=method)

    before = (count("health/live", "GET", "200"), latency_count("health/live", "GET"),
              count("<unresolved>", "GET", "404"), count("<unresolved>", "other", "404"))
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/live").status_code == 200
    assert client.get("/api/v1/no-such-route/").status_code == 404
    assert client.generic("BREW", "/api/v1/no-such-route/").status_code == 404  # odd methods: one label
    after = (count("health/live", "GET", "200"), latency_count("health/live", "GET"),
             count("<unresolved>", "GET", "404"), count("<unresolved>", "other", "404"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 2, 1, 1]
    assert value("brxsync_http_request_seconds_sum", route="health/live", method="GET") > 0
    # /metrics serves the family (it is registered on the process registry).
    scraped = scrape(client)
    assert scraped[("brxsync_http_requests_total", (("method", "GET"), ("route", "health/live"),
                                                    ("status", "200")))] == after[0]


@pytest.mark.django_db
def test_webhook_route_is_counted_under_its_pattern(client, probe_urls):
    shop = make_shop()
    route = "api/v1/webhooks/cardtrader/<str:webhook_id>/"
    before = value("brxsync_http_requests_total", route=route, method="POST", status="401")
    body, signature = builders.signed(builders.delivery(builders.order(1, "paid", []), mode="test"), shop.secret)
    assert client.post(shop.url, data=body, content_type="application/json",
                       HTTP_SIGNATURE="AAAA" + signature[4:]).status_code == 401
    assert value("brxsync_http_requests_total", route=route, method="POST", status="401") == before + 1


_POOL_PROBE = """
import django, json
django.setup()
from django.db import connection
from prometheus_client import REGISTRY
from brxsync import metrics

def gauges():
    return [REGISTRY.get_sample_value("brxsync_db_pool_connections", {"alias": "default", "state": s})
            for s in ("open", "in_use", "max", "waiting")]

connection.pool.open(wait=True, timeout=30)  # min_size connections ready: the checkout waits for none
connection.ensure_connection()  # one connection out of the pool
metrics.sample_db_pools()
print(json.dumps(gauges()))
connection.close()  # back to the pool
metrics.sample_db_pools()
print(json.dumps(gauges()))
"""


def _run_pool_probe(settings, probe: str) -> list[str]:
    """Run ``probe`` in a new process with production's pool (``DB_POOL=true``, 1–3 connections) on
    the test database and no multiprocess metrics dir; its output lines."""
    import os
    import subprocess
    import sys

    db = settings.DATABASES["default"]
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="brxsync.test_settings", DB_POOL="true",
               DB_POOL_MIN_SIZE="1", DB_POOL_MAX_SIZE="3",
               DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                          timeout=120, check=True).stdout.strip().splitlines()


@pytest.mark.django_db
def test_db_pool_gauges_follow_the_pool(settings):
    """A process with production's pool (``DB_POOL=true``) samples it when a request starts:
    the in-use count goes up and back down (a value that did not change is not rewritten, one
    that did is)."""
    out = _run_pool_probe(settings, _POOL_PROBE)
    checked_out, returned = json.loads(out[-2]), json.loads(out[-1])
    assert checked_out[1] == 1 and checked_out[2] == 3 and checked_out[0] >= 1
    assert returned[1] == 0 and returned[2] == 3


_THROTTLE_PROBE = """
import django, json, time
django.setup()
from django.core.signals import request_started
from django.db import connection
from prometheus_client import REGISTRY
from brxsync import metrics

metrics.POOL_SAMPLE_SECONDS = 0.3

def in_use():
    return REGISTRY.get_sample_value("brxsync_db_pool_connections", {"alias": "default", "state": "in_use"})

connection.pool.open(wait=True, timeout=30)
connection.ensure_connection()
# Called directly: the signal's other receiver (close_old_connections) would return the connection.
metrics.sample_db_pools_on_request()
seen = [in_use()]
connection.close()
metrics.sample_db_pools_on_request()  # within the interval: not sampled again
seen.append(in_use())
time.sleep(0.35)
metrics.sample_db_pools_on_request()
seen.append(in_use())
# bootstrap connected it to request_started under this uid (disconnect says whether it was there)
seen.append(request_started.disconnect(dispatch_uid="brx-db-sample-request"))
print(json.dumps(seen))
"""


@pytest.mark.django_db
def test_requests_sample_the_pool_at_most_once_per_interval(settings):
    """request_started samples the pool through ``sample_db_pools_on_request``: a request inside
    ``POOL_SAMPLE_SECONDS`` of the last sample leaves the gauges alone, the next one after it
    records the change."""
    out = _run_pool_probe(settings, _THROTTLE_PROBE)
    assert json.loads(out[-1]) == [1, 1, 0, True]
