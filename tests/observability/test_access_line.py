"""The access line's direct path (``logs.log_direct``): same line as the stdlib path, redacted,
honouring LOG_FORMAT and LOG_LEVEL, whole under concurrent writers, and given up for the stdlib
path whenever anything else would see the record.

Production's root logger has one handler (stderr, ``make_formatter``, ``RedactingFilter``); the
tests' capture handlers and the suite's secret scanner add more, which sends every line the stdlib
way. So these tests install production's shape themselves (``only_handler``) and count the
``LogRecord``s created (stdlib's record factory), which the direct path never builds.
"""
from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import structlog

from brxsync.observability import context, logs
from brxsync.observability.redaction import REDACTED, RedactingFilter, forget_secret, register_secret

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzZWxsZXIifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"


def production_handler(stream: io.TextIOBase, fmt: str = "json") -> logging.StreamHandler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.make_formatter(fmt))
    handler.addFilter(RedactingFilter())
    return handler


@contextmanager
def only_handler(*handlers: logging.Handler, level: int = logging.INFO) -> Iterator[None]:
    """The root logger as production configures it (or with ``handlers``), restored afterwards."""
    root = logging.getLogger()
    saved, saved_level = root.handlers[:], root.level
    root.handlers = list(handlers)
    root.setLevel(level)
    try:
        yield
    finally:
        root.handlers = saved
        root.setLevel(saved_level)


@contextmanager
def counting_records() -> Iterator[list[str]]:
    made: list[str] = []
    factory = logging.getLogRecordFactory()

    def counted(*args, **kwargs):
        record = factory(*args, **kwargs)
        made.append(record.name)
        return record

    logging.setLogRecordFactory(counted)
    try:
        yield made
    finally:
        logging.setLogRecordFactory(factory)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.django_db
def test_access_line_skips_stdlib_and_equals_the_stdlib_line(client, probe_urls):
    out = io.StringIO()
    with only_handler(production_handler(out)), counting_records() as made:
        assert client.get("/obs/slow/?seconds=0", HTTP_X_REQUEST_ID="req-direct-1").status_code == 200
    assert "brxsync.http" not in made  # written directly
    other = io.StringIO()
    with only_handler(production_handler(out), production_handler(other)), counting_records() as made:
        assert client.get("/obs/slow/?seconds=0", HTTP_X_REQUEST_ID="req-direct-2").status_code == 200
    assert "brxsync.http" in made  # two handlers: the stdlib way, and both see it

    direct, stdlib = lines(out)
    assert lines(other) == [stdlib]
    assert list(direct) == list(stdlib)  # the same fields in the same order
    assert list(direct)[:5] == ["timestamp", "level", "service", "component", "event"]
    for key in ("timestamp", "duration_ms", "request_id"):
        direct.pop(key), stdlib.pop(key)
    assert direct == stdlib == {"level": "INFO", "service": "brx-sync", "component": "brxsync.http",
                                "event": "http_request", "method": "GET", "route": "obs/slow/", "status": 200}
    assert out.getvalue().splitlines()[0].startswith('{"timestamp":"') and "req-direct-1" in out.getvalue()


@pytest.mark.django_db
def test_direct_line_is_redacted(client, probe_urls):
    """The request id is the caller's (X-Request-ID): a registered secret sent as one is cut, and
    so are secret-named fields and credential shapes in fields and bound context."""
    secret = "direct-secret-0123456789abcdef"
    register_secret(secret)
    out = io.StringIO()
    try:
        with only_handler(production_handler(out)), counting_records() as made:
            assert client.get("/obs/slow/?seconds=0", HTTP_X_REQUEST_ID=secret).status_code == 200
            context.bind(api_key="ctx-secret-0123456789")
            try:
                logs.log_direct(context.access_logger, logging.INFO, "http_request", token="tok-0123456789",
                                note=f"Bearer {JWT}")
                logs.log_direct(context.access_logger, logging.INFO, f"careless event {secret}")
            finally:
                structlog.contextvars.unbind_contextvars("api_key")
    finally:
        forget_secret(secret)
    assert made == []
    access, direct, careless = lines(out)
    assert access["request_id"] == REDACTED and careless["event"] == f"careless event {REDACTED}"
    assert direct["token"] == REDACTED and direct["api_key"] == REDACTED and direct["note"] == f"Bearer {REDACTED}"
    for leaked in (secret, "ctx-secret", "tok-0123456789", JWT):
        assert leaked not in out.getvalue()


def test_console_format_and_level_are_honoured():
    out = io.StringIO()
    with only_handler(production_handler(out, "console")):
        logs.log_direct(context.access_logger, logging.INFO, "http_request", route="a/b/", status=204)
    text = out.getvalue()
    assert text.count("\n") == 1 and not text.startswith("{")
    assert "http_request" in text and "route=a/b/" in text and "info" in text.lower()

    quiet = io.StringIO()
    with only_handler(production_handler(quiet), level=logging.WARNING):
        logs.log_direct(context.access_logger, logging.INFO, "http_request", status=200)
        logs.log_direct(context.access_logger, logging.WARNING, "http_request", status=503)
    handler = production_handler(quiet)
    handler.setLevel(logging.ERROR)
    with only_handler(handler):
        logs.log_direct(context.access_logger, logging.INFO, "http_request", status=201)
    assert [(r["level"], r["status"]) for r in lines(quiet)] == [("WARNING", 503)]


def test_anything_else_listening_gets_the_stdlib_path(monkeypatch):
    """A second handler, a logger filter, a non-stream handler, a foreign formatter, or a patched
    ``Logger.callHandlers`` (Sentry's logging integration) each send the record through stdlib."""
    out = io.StringIO()
    handler = production_handler(out)
    logger = context.access_logger
    with only_handler(handler):
        assert logs.direct_handler(logger, logging.INFO) is handler

        logger.addFilter(logging.Filter("brxsync"))
        try:
            assert logs.direct_handler(logger, logging.INFO) is None
        finally:
            logger.filters.clear()

        plain = logging.StreamHandler(out)
        plain.setFormatter(logging.Formatter("%(message)s"))
        with only_handler(plain):
            assert logs.direct_handler(logger, logging.INFO) is None
        with only_handler(handler, logging.NullHandler()):
            assert logs.direct_handler(logger, logging.INFO) is None

        seen = []
        stdlib = logging.Logger.callHandlers

        def breadcrumbs(self, record):
            seen.append(record.getMessage() if not isinstance(record.msg, dict) else record.msg["event"])
            return stdlib(self, record)

        monkeypatch.setattr(logging.Logger, "callHandlers", breadcrumbs)
        with counting_records() as made:
            logs.log_direct(logger, logging.INFO, "http_request", status=200)
        assert "brxsync.http" in made and seen == ["http_request"]
    assert [r["status"] for r in lines(out)] == [200]


class _SlowStream(io.StringIO):
    """Writes each line in two pieces with a thread switch between: unlocked writers interleave."""

    def write(self, text: str) -> int:
        half = len(text) // 2
        super().write(text[:half])
        time.sleep(0)
        return super().write(text[half:])


def test_concurrent_requests_write_whole_lines():
    out = _SlowStream()
    threads, per_thread = 8, 150
    start = threading.Barrier(threads)

    def writer(n: int) -> None:
        start.wait()
        for i in range(per_thread):
            logs.log_direct(context.access_logger, logging.INFO, "http_request", writer=n, i=i, pad="x" * 500)

    with only_handler(production_handler(out)):
        workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    got = lines(out)  # every line parses
    assert len(got) == threads * per_thread
    assert sorted((r["writer"], r["i"]) for r in got) == [(n, i) for n in range(threads) for i in range(per_thread)]


def test_timestamps_are_utc_iso_with_microseconds_across_seconds():
    """The date and time are formatted once per second and reused: each line still gets its own
    second and fraction."""
    import datetime
    import re

    def stamp() -> datetime.datetime:
        text = logs._add_timestamp(None, "info", {})["timestamp"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text), text
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))

    first = stamp()
    assert abs((datetime.datetime.now(datetime.UTC) - first).total_seconds()) < 1
    time.sleep(1.0 - first.microsecond / 1e6 + 0.01)  # into the next second
    second = stamp()
    assert second.replace(microsecond=0) > first.replace(microsecond=0)
    assert abs((datetime.datetime.now(datetime.UTC) - second).total_seconds()) < 1


def test_with_sentry_on_the_access_line_keeps_the_direct_path_and_other_lines_still_reach_sentry():
    """Sentry's logging integration patches ``Logger.callHandlers`` for every logger; the access
    logger is ignored by Sentry (an INFO line, never an event), so its line stays direct, while
    any other logger's records still go through the patch (an ERROR line becomes a Sentry event)."""
    import uuid

    import sentry_sdk
    from sentry_sdk.transport import Transport

    from brxsync.sentry import init_sentry

    sent: list = []

    class Capture(Transport):
        def capture_envelope(self, envelope):
            sent.append(envelope)

    out = io.StringIO()
    handler = production_handler(out)
    marker = f"sentry-marker-{uuid.uuid4().hex}"
    init_sentry("https://public@sentry.example/1", transport=Capture)
    try:
        with only_handler(handler):
            assert logging.Logger.callHandlers is not logs._STDLIB_CALL_HANDLERS  # Sentry's patch is on
            with counting_records() as made:
                logs.log_direct(context.access_logger, logging.INFO, "http_request", status=200)
            assert made == []  # no LogRecord: the direct path
            assert logs.direct_handler(logging.getLogger("brxsync.other"), logging.INFO) is None
            logging.getLogger("tests.sentry_other").error(marker)
        sentry_sdk.flush()
    finally:
        sentry_sdk.init(dsn=None)
    assert [r["status"] for r in lines(out) if r["event"] == "http_request"] == [200]
    assert marker.encode() in b"".join(item.get_bytes() for env in sent for item in env.items)
