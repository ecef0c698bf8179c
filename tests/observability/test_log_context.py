"""One request, one id: the web access line, the view's own line and the task it enqueued
(run by a real worker subprocess) all carry the request id the response echoes."""
from __future__ import annotations

import time
import uuid

import pytest


def _wait_for(worker, event: str, count: int, timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in worker.lines() if line.get("event") == event]
        if len(lines) >= count:
            return lines
        time.sleep(0.1)
    raise AssertionError(f"worker never logged {event!r} x{count}:\n{worker.log_path.read_text()[-3000:]}")


@pytest.mark.django_db
def test_request_id_reaches_the_task_log_line(client, probe_urls, probe_queue, worker_factory, json_logs):
    worker = worker_factory(probe_queue)
    seller_a, seller_b = str(uuid.uuid4()), str(uuid.uuid4())

    given = client.get(f"/obs/enqueue/{seller_a}/?queue={probe_queue}", HTTP_X_REQUEST_ID="req-obs-given-1")
    generated = client.get(f"/obs/enqueue/{seller_b}/?queue={probe_queue}")
    assert given.status_code == generated.status_code == 200
    assert given["X-Request-ID"] == "req-obs-given-1"
    generated_id = generated["X-Request-ID"]
    assert generated_id and generated_id != "req-obs-given-1"

    web = {line["seller_id"]: line for line in json_logs.events("probe_enqueue")}
    assert web[seller_a]["request_id"] == "req-obs-given-1"
    assert web[seller_b]["request_id"] == generated_id
    access = [line for line in json_logs.events("http_request") if line["route"] == "obs/enqueue/<str:seller_uuid>/"]
    assert [a["request_id"] for a in access] == ["req-obs-given-1", generated_id]
    assert all(a["status"] == 200 and a["method"] == "GET" and a["duration_ms"] >= 0 for a in access)
    for line in web.values():
        assert line["service"] == "brx-sync" and line["level"] == "INFO"
        assert line["component"] == "tests.observability.probe" and line["timestamp"].endswith("Z")

    ran = {line["seller_id"]: line for line in _wait_for(worker, "probe_task_ran", 2)}
    assert ran[seller_a]["request_id"] == "req-obs-given-1"
    assert ran[seller_b]["request_id"] == generated_id
    for line in ran.values():
        assert line["task_name"] == "tests.observability.log_probe" and line["task_id"]
        assert line["component"] == "tests.observability.probe"
    # No context leaks from one request into the next, on either side.
    assert ran[seller_a]["task_id"] != ran[seller_b]["task_id"]


@pytest.mark.django_db
def test_eager_task_gets_task_context_and_the_request_keeps_its_own(client, probe_urls, probe_queue, json_logs):
    from brxsync.celery import app

    app.conf.task_always_eager = True
    try:
        response = client.get(f"/obs/enqueue/{uuid.uuid4()}/?queue={probe_queue}", HTTP_X_REQUEST_ID="req-eager")
    finally:
        app.conf.task_always_eager = False
    assert response.status_code == 200
    (task_line,) = json_logs.events("probe_task_ran")
    assert task_line["request_id"] == "req-eager" and task_line["task_id"]
    (access,) = [a for a in json_logs.events("http_request") if a["request_id"] == "req-eager"]
    assert "task_id" not in access  # the task's context was unwound when it returned


def test_console_format_is_readable_and_redacted():
    import logging

    from brxsync.observability.logs import make_formatter
    from brxsync.observability.redaction import RedactingFilter

    record = logging.LogRecord("syncops.push", logging.WARNING, __file__, 1, "retrying with %s",
                               ("Bearer abc.def.ghijk",), None)
    RedactingFilter().filter(record)
    line = make_formatter("console").format(record)
    assert not line.lstrip().startswith("{")
    assert "retrying with Bearer [REDACTED]" in line and "abc.def" not in line
    assert "warning" in line.lower() and "syncops.push" in line


def test_json_lines_render_what_orjson_refuses_and_keep_the_field_order(json_logs):
    """The JSON renderer uses orjson and falls back to json.dumps: a huge int or an int key still
    give one valid line; objects inside containers are rendered by repr as before."""
    import datetime
    import logging

    import structlog

    structlog.get_logger("tests.render").info("big", n=2**70, nested={1: "a"})
    structlog.get_logger("tests.render").info("plain", when=[datetime.date(2026, 1, 2)], count=3)
    logging.getLogger("tests.render").info("stdlib %d", 7)
    lines = [r for r in json_logs.records() if r.get("component") == "tests.render"]
    assert [r["event"] for r in lines] == ["big", "plain", "stdlib 7"]
    assert lines[0]["n"] == 2**70 and lines[0]["nested"] == {"1": "a"}
    assert lines[1]["when"] == ["datetime.date(2026, 1, 2)"] and lines[1]["count"] == 3
    first = json_logs.text.splitlines()[0]
    assert first.startswith('{"timestamp":') and list(lines[2])[:5] == [
        "timestamp", "level", "service", "component", "event"]
