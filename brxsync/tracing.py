"""OpenTelemetry tracing: web requests, Celery, requests, Redis and every SQL query.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: then nothing here is imported by the
request path, no instrumentation is installed and the log processor checks one boolean.

Web requests get their server span from ``ObservabilityMiddleware`` (``request_span`` below), not
from opentelemetry-instrumentation-django: that middleware built the absolute URI twice, resolved
the URL again and collected every WSGI attribute for its HTTP metrics *before* the sampler
decided, ~0.3–0.4 ms per request even when the trace was not sampled, 15–20 % of a webhook
delivery (docs/BENCHMARKS.md). Ours extracts the W3C context, lets the sampler decide, and only
a recorded span pays for its attributes (method, route, status, the exception on a 500).

When on, the Celery instrumentation writes the W3C trace context into each task's message
headers at publish time and resumes it at ``task_prerun``, so the task enqueued by a request
is a child span of that request's trace (tested with an in-memory exporter). SQL spans come
from a Django ``execute_wrapper`` installed on every new connection rather than the psycopg
instrumentation: that package has no 0.66b2 release matching the SDK pinned here (0.66b1 pins
``opentelemetry-instrumentation==0.66b1``), and the wrapper covers the MySQL catalogue too.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger(__name__)

_enabled = False
_provider: Any = None


_switch: Any = None


def _make_switch() -> Any:
    """The provider's one span processor, forwarding to the current exporter's processor.

    OpenTelemetry lets a process set its tracer provider once and never remove a processor;
    this indirection lets ``disable`` (and a test's second ``configure``) swap exporters.
    Built on first use so that nothing of the SDK is imported while tracing is off."""
    from opentelemetry.sdk.trace import SpanProcessor

    class Switch(SpanProcessor):
        def __init__(self) -> None:
            self.delegate: Any = None

        def replace(self, delegate: Any) -> None:
            old, self.delegate = self.delegate, delegate
            if old is not None:
                old.shutdown()

        def on_start(self, span: Any, parent_context: Any = None) -> None:
            if self.delegate is not None:
                self.delegate.on_start(span, parent_context=parent_context)

        def on_end(self, span: Any) -> None:
            if self.delegate is not None:
                self.delegate.on_end(span)

        def shutdown(self) -> None:
            self.replace(None)

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return self.delegate.force_flush(timeout_millis) if self.delegate is not None else True

    return Switch()


def enabled() -> bool:
    return _enabled


_tracers: dict[str, Any] = {}


def _tracer(name: str) -> Any:
    """The global provider's tracer for ``name``, made once: ``trace.get_tracer`` builds a new
    Tracer and instrumentation scope on every call (~0.07 ms, more than an unsampled span itself)."""
    tracer = _tracers.get(name)
    if tracer is None:
        from opentelemetry import trace

        tracer = _tracers[name] = trace.get_tracer(name)
    return tracer


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the active span as hex, or None outside any span."""
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def configure(exporter: Any = None, *, service_name: str | None = None) -> Any:
    """Install the tracer provider and instrumentations once per process.

    ``exporter`` defaults to OTLP over HTTP at ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the exporter reads
    the standard OTEL_* variables itself: headers, timeout, compression). Tests pass an
    in-memory exporter, exported synchronously so spans are visible at once.
    """
    global _enabled, _provider, _switch
    if _enabled:
        return _provider
    if _switch is None:
        _switch = _make_switch()
    from django.conf import settings
    from opentelemetry import trace
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased

    resource = Resource.create({
        "service.name": service_name or settings.OTEL_SERVICE_NAME,
        "deployment.environment": settings.ENVIRONMENT,
    })
    # The global provider can be set once per process: a later configure (tests) adds to it.
    # Parent-based: a task or SQL span follows the request that started its trace, so a trace is
    # whole or absent. Unsampled requests cost little: the instrumentations skip their attribute
    # work for a non-recording span.
    global _root_sampler
    if _provider is None:
        _root_sampler = _make_root_sampler(settings.OTEL_TRACES_SAMPLE_RATIO)
    provider = _provider or TracerProvider(resource=resource, sampler=ParentBased(_root_sampler))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        _switch.replace(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        _switch.replace(SimpleSpanProcessor(exporter))
    if _provider is None:
        provider.add_span_processor(_switch)
        trace.set_tracer_provider(provider)

    CeleryInstrumentor().instrument()
    RequestsInstrumentor().instrument()  # CardTrader calls: URL and status, never headers
    RedisInstrumentor().instrument()
    _install_sql_spans()
    _provider = provider
    _enabled = True
    logger.info("tracing enabled", extra={"exporter": type(exporter).__name__ if exporter else "otlp-http"})
    return provider


def disable() -> None:
    """Remove every instrumentation (tests; a process normally keeps tracing for its life)."""
    global _enabled
    if not _enabled:
        return
    from django.db import connections
    from django.db.backends.signals import connection_created
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    for instrumentor in (CeleryInstrumentor(), RequestsInstrumentor(), RedisInstrumentor()):
        instrumentor.uninstrument()
    connection_created.disconnect(dispatch_uid="brx-sql-spans")
    for conn in connections.all(initialized_only=True):
        if _sql_span in conn.execute_wrappers:
            conn.execute_wrappers.remove(_sql_span)
    _switch.replace(None)
    _enabled = False


# W3C trace context and baggage, as WSGI names them.
_CONTEXT_HEADERS = {"traceparent": "HTTP_TRACEPARENT", "tracestate": "HTTP_TRACESTATE", "baggage": "HTTP_BAGGAGE"}


# A root span the request middleware drew and sampled itself carries this attribute into the root
# sampler, which then samples it without a second draw (and drops the attribute).
_DECIDED = "brx.sampling.decided"
_root_sampler: Any = None
_ids: Any = None
_unsampled_flags: Any = None  # as the SDK sets them for a root it drops: not sampled, random trace id


def _make_root_sampler(ratio: float) -> Any:
    """The root sampler: ``TraceIdRatioBased(ratio)``, except for a root ``request_span`` already
    decided to sample. Built on first use, like ``_make_switch``, so the SDK stays unimported
    while tracing is off."""
    global _ids, _unsampled_flags
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    from opentelemetry.sdk.trace.sampling import Decision, SamplingResult, TraceIdRatioBased
    from opentelemetry.trace import TraceFlags

    _ids = RandomIdGenerator()
    _unsampled_flags = TraceFlags(TraceFlags.RANDOM_TRACE_ID)

    class RequestRootRatio(TraceIdRatioBased):
        def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None,
                          attributes: Any = None, links: Any = None, trace_state: Any = None) -> Any:
            if attributes and attributes.get(_DECIDED):
                return SamplingResult(Decision.RECORD_AND_SAMPLE,
                                      {k: v for k, v in attributes.items() if k != _DECIDED})
            return super().should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

        def get_description(self) -> str:
            return f"RequestRootRatio{{{self.rate}}}"

    return RequestRootRatio(ratio)


@contextmanager
def request_span(request: Any) -> Iterator[Any]:
    """The server span of one web request, current while the view runs (so SQL, Redis, CardTrader
    calls and enqueued tasks are its children). Call only while ``enabled()``. The caller names
    it and sets the status once the response exists (``finish_request_span``).

    A request that starts its trace here is drawn first, by the root sampler's own rule (the
    trace id against its bound). Most are not sampled (production samples 0.1), and for those
    the SDK's span machinery (sampler chain, span object, context manager layers) was ~10 µs
    of every request for a span that records nothing; the context made here by hand is the one
    it would have made: a valid trace id (in the log lines, carried into enqueued tasks), not
    sampled, so nothing downstream records either."""
    from opentelemetry import context, propagate, trace

    carrier = {name: request.META[key] for name, key in _CONTEXT_HEADERS.items() if key in request.META}
    parent = propagate.extract(carrier) if carrier else None
    attributes = None
    if parent is None and _root_sampler is not None:
        trace_id = _ids.generate_trace_id()
        if trace_id & _root_sampler.TRACE_ID_LIMIT >= _root_sampler.bound:
            span = trace.NonRecordingSpan(trace.SpanContext(trace_id, _ids.generate_span_id(), is_remote=False,
                                                            trace_flags=_unsampled_flags))
            token = context.attach(trace.set_span_in_context(span))
            try:
                yield span
            finally:
                context.detach(token)
            return
        attributes = {_DECIDED: True}
    with _tracer("brxsync.http").start_as_current_span(
        request.method or "HTTP", context=parent, kind=trace.SpanKind.SERVER, attributes=attributes,
        record_exception=True, set_status_on_exception=True,
    ) as span:
        yield span


def finish_request_span(span: Any, request: Any, route: str, status: int) -> None:
    if not span.is_recording():
        return  # not sampled: nothing to describe
    from opentelemetry.trace import Status, StatusCode

    span.update_name(f"{request.method} {route}")
    span.set_attributes({"http.request.method": request.method or "", "http.route": route,
                         "url.path": request.path, "http.response.status_code": status})
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


def _install_sql_spans() -> None:
    from django.db.backends.signals import connection_created

    connection_created.connect(_add_sql_wrapper, weak=False, dispatch_uid="brx-sql-spans")
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        _add_sql_wrapper(connection=conn)


def _add_sql_wrapper(sender: Any = None, connection: Any = None, **_: Any) -> None:
    if connection is not None and _sql_span not in connection.execute_wrappers:
        connection.execute_wrappers.append(_sql_span)


def _sql_span(execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    from opentelemetry import trace

    if not trace.get_current_span().is_recording():
        return execute(sql, params, many, context)  # an unsampled trace: no span to hang it on
    connection = context["connection"]
    verb = sql.lstrip().split(None, 1)[0].upper() if sql else "SQL"
    with _tracer("brxsync.db").start_as_current_span(
        f"{verb} {connection.alias}", kind=trace.SpanKind.CLIENT,
        attributes={"db.system.name": connection.vendor, "db.namespace": connection.alias,
                    "db.query.text": sql[:2000]},  # parameters are never recorded
    ):
        return execute(sql, params, many, context)
