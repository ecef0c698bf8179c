"""Trace propagation: the task a request enqueues continues that request's trace.

A real in-process Celery worker (``celery.contrib.testing``) consumes from the real Redis broker,
so the trace context crosses in the message headers exactly as between containers; both sides
export to one in-memory exporter (the only fake: there is no collector here to send spans to).
"""
from __future__ import annotations

import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from brxsync import tracing
from tests.observability.conftest import capture_json_logs


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.configure(exporter, service_name="brx-sync-test")
    try:
        yield exporter
    finally:
        tracing.disable()


def test_tracing_is_off_and_logs_carry_no_trace_ids_by_default(settings):
    assert settings.OTEL_EXPORTER_OTLP_ENDPOINT == ""
    assert tracing.enabled() is False


def test_enqueued_task_carries_the_request_trace(spans, probe_urls, probe_queue):
    from django.test import Client

    from brxsync.celery import app

    seller = str(uuid.uuid4())
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, queues=[probe_queue],
                      shutdown_timeout=10), capture_json_logs() as json_logs:
        response = Client().get(f"/obs/enqueue/{seller}/?queue={probe_queue}")
        assert response.status_code == 200
        deadline = time.monotonic() + 15
        while not [s for s in spans.get_finished_spans() if s.name.startswith("run/")]:
            assert time.monotonic() < deadline, [s.name for s in spans.get_finished_spans()]
            time.sleep(0.05)

    finished = spans.get_finished_spans()
    (server,) = [s for s in finished if s.kind.name == "SERVER" and "obs/enqueue" in s.name]
    (publish,) = [s for s in finished if s.name.startswith("apply_async/tests.observability.log_probe")]
    (run,) = [s for s in finished if s.name == "run/tests.observability.log_probe"]
    trace_id = server.context.trace_id
    assert publish.context.trace_id == trace_id and run.context.trace_id == trace_id
    assert run.parent.span_id == publish.context.span_id
    assert publish.parent.span_id == server.context.span_id

    # The log lines of both sides name the same trace.
    (web_line,) = json_logs.events("probe_enqueue")
    assert web_line["trace_id"] == format(trace_id, "032x")
    (task_line,) = [r for r in json_logs.events("probe_task_ran") if r.get("seller_id") == seller]
    assert task_line["trace_id"] == format(trace_id, "032x")
    assert task_line["span_id"] == format(run.context.span_id, "016x")
    # The publish went through Redis (instrumented), inside the same trace.
    assert any(s.kind.name == "CLIENT" and s.attributes.get("db.system") == "redis"
               and s.context.trace_id == trace_id for s in finished)


def test_request_span_continues_the_callers_trace_and_describes_the_request(spans, probe_urls):
    """The server span comes from our middleware: it joins an incoming W3C trace, is named by
    route, carries method / route / status, and is current while the access line is written."""
    from django.test import Client

    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with capture_json_logs() as json_logs:
        response = Client().get("/obs/slow/?seconds=0", HTTP_TRACEPARENT=f"00-{caller_trace}-{caller_span}-01")
        assert response.status_code == 200
        missing = Client().get("/api/v1/no-such-route/")
        assert missing.status_code == 404
    (server,) = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER" and "obs/slow" in s.name]
    assert server.name == "GET obs/slow/"
    assert format(server.context.trace_id, "032x") == caller_trace
    assert format(server.parent.span_id, "016x") == caller_span and server.parent.is_remote
    assert server.attributes["http.route"] == "obs/slow/"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["http.request.method"] == "GET"
    (access,) = [e for e in json_logs.events("http_request") if e.get("route") == "obs/slow/"]
    assert access["trace_id"] == caller_trace
    (unrouted,) = [s for s in spans.get_finished_spans() if s.attributes.get("url.path") == "/api/v1/no-such-route/"]
    assert unrouted.name == "GET <unresolved>" and unrouted.attributes["http.response.status_code"] == 404


@pytest.mark.parametrize("sampled", [False, True])
def test_a_request_that_starts_its_trace_is_sampled_by_the_root_rule_and_propagates_either_way(
        spans, probe_urls, probe_queue, monkeypatch, sampled):
    """``request_span`` draws a new trace itself and, when the draw is not sampled, makes the
    non-recording context by hand instead of through the SDK. That context must still be a valid
    trace: its id in the access line and carried, unsampled, into the task the request enqueues;
    and nothing of the trace recorded. A sampled draw records the span, without the marker
    attribute that told the sampler."""
    from celery.signals import before_task_publish
    from django.test import Client

    monkeypatch.setattr(tracing, "_root_sampler", tracing._make_root_sampler(1.0 if sampled else 0.0))
    carried: list[str] = []

    def record(sender: str = "", headers: dict | None = None, **_) -> None:
        if sender == "tests.observability.log_probe":
            carried.append((headers or {}).get("traceparent", ""))

    before_task_publish.connect(record, weak=False)
    try:
        with capture_json_logs() as json_logs:
            assert Client().get(f"/obs/enqueue/{uuid.uuid4()}/?queue={probe_queue}").status_code == 200
    finally:
        before_task_publish.disconnect(record)

    (access,) = [e for e in json_logs.events("http_request") if e.get("route", "").startswith("obs/enqueue")]
    (traceparent,) = carried
    _, trace_id, _, flags = traceparent.split("-")
    assert access["trace_id"] == trace_id and int(trace_id, 16) != 0
    finished = spans.get_finished_spans()
    if sampled:
        assert int(flags, 16) & 1  # sampled (0x02 says the trace id is random)
        (server,) = [s for s in finished if s.kind.name == "SERVER"]
        assert format(server.context.trace_id, "032x") == trace_id
        assert tracing._DECIDED not in server.attributes and server.attributes["http.route"].startswith("obs/enqueue")
    else:
        assert flags == "02"  # what the SDK sets for a root it drops: not sampled, random trace id
        # (The provider's own root sampler still samples everything here: a root span of the
        # broker client, say its PING, may be recorded. Nothing of the request's trace is.)
        assert not [s.name for s in finished if format(s.context.trace_id, "032x") == trace_id]
        assert not [s for s in finished if s.kind.name == "SERVER"]


def test_probes_are_not_traced(spans):
    from django.test import Client

    assert Client().get("/health/live").status_code == 200
    assert not [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]


_SAMPLED_SPANS = """
import django, os
django.setup()
from django.test import Client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from brxsync import tracing
exporter = InMemorySpanExporter()
tracing.configure(exporter)
client = Client()
for _ in range(200):
    client.get("/api/v1/no-such-route/")
print(len({s.context.trace_id for s in exporter.get_finished_spans()}))
"""


@pytest.mark.parametrize(("ratio", "low", "high"), [("0", 0, 0), ("0.1", 5, 45), ("1.0", 200, 200)])
def test_sample_ratio_records_that_share_of_requests(ratio, low, high):
    """The tracer provider is set once per process, so each ratio gets a process of its own."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, DJANGO_SETTINGS_MODULE="brxsync.test_settings", OTEL_TRACES_SAMPLE_RATIO=ratio)
    out = subprocess.run([sys.executable, "-c", _SAMPLED_SPANS], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout.strip().splitlines()[-1]
    assert low <= int(out) <= high


@pytest.mark.django_db(transaction=True)  # the hand-off runs on commit
def test_webhook_apply_task_continues_the_delivery_requests_trace(spans, redis_client):
    """The apply message is published by a background thread (no response waits on the broker):
    it must still be published inside the delivery request's trace and log context."""
    from celery.signals import before_task_publish
    from django.conf import settings as live
    from django.test import Client

    from brxsync.observability.context import HEADER
    from tests.webhooks import builders
    from tests.webhooks.conftest import make_shop

    carried: list[dict] = []

    def record(sender: str = "", headers: dict | None = None, **_) -> None:
        if sender.endswith("webhook_apply"):
            carried.append(dict((headers or {}).get(HEADER) or {}))

    shop = make_shop()
    body, signature = builders.signed(builders.delivery(builders.order(4242, "paid", [(1, 1)])), shop.secret)
    before_task_publish.connect(record, weak=False)
    try:
        response = Client().post(shop.url, data=body, content_type="application/json", HTTP_SIGNATURE=signature,
                                 HTTP_TRACEPARENT="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                                 HTTP_X_REQUEST_ID="req-webhook-trace-test")
        assert response.status_code == 200, response.content
        deadline = time.monotonic() + 10
        while not [s for s in spans.get_finished_spans() if "webhook_apply" in s.name]:
            assert time.monotonic() < deadline, [s.name for s in spans.get_finished_spans()]
            time.sleep(0.02)
    finally:
        before_task_publish.disconnect(record)
        # The message is for no worker of this run: take it off the queue.
        redis_client.delete(f"{live.CELERY_BROKER_TRANSPORT_OPTIONS['global_keyprefix']}high-priority")

    finished = spans.get_finished_spans()
    (server,) = [s for s in finished if s.kind.name == "SERVER"]
    (publish,) = [s for s in finished if s.name.startswith("apply_async/") and "webhook_apply" in s.name]
    assert server.context.trace_id == int("0af7651916cd43dd8448eb211c80319c", 16)
    assert publish.context.trace_id == server.context.trace_id
    assert publish.parent.span_id == server.context.span_id
    assert carried and carried[0].get("request_id") == "req-webhook-trace-test"
