"""The log context: which request, seller, operation and task a log line belongs to.

Context lives in structlog's contextvars, so it follows the code without being passed around
and every stdlib ``logger.info`` picks it up too. The web side binds it in
``ObservabilityMiddleware``; ``before_task_publish`` copies the propagated keys into the
message headers of every task enqueued meanwhile, and ``task_prerun`` binds them again in the
worker, so one request id follows the work from the HTTP request into each task it caused.
"""
from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from functools import lru_cache
from typing import Any

import structlog
from django.http import HttpRequest, HttpResponse

from brxsync import metrics, tracing
from brxsync.observability import logs

HEADER = "brx_log_context"
# Keys that cross from a publisher to the task it enqueues.
PROPAGATED = ("request_id", "seller_id", "operation_id")
# Task parameters bound as context when present (positional or keyword).
_TASK_PARAMS = ("seller_id", "operation_id", "event_id")
_QUIET_PREFIXES = ("/health/", "/metrics", "/static/")

# The access line goes through ``logs.log_direct`` (one line per request: the cheap path when only
# the configured handler would see it, stdlib logging otherwise).
access_logger = logging.getLogger(logs.ACCESS_LOGGER)


def bind(**values: Any) -> None:
    """Add context for the rest of this request / task (e.g. ``bind(operation_id=op.pk)``)."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v is not None})


def current() -> dict[str, Any]:
    return structlog.contextvars.get_contextvars()


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return match.route if match is not None and match.route else "<unresolved>"


class ObservabilityMiddleware:
    """Binds the request's log context, writes one access line, counts the request (route,
    method, status, latency) and webhook outcomes.

    Sits right after ``brxsync.api.middleware.RequestIdMiddleware`` and takes the id that one
    assigned (``request.request_id``), so the id echoed in ``X-Request-ID``, quoted in error
    envelopes, written in log lines and carried into tasks is one and the same.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = getattr(request, "request_id", "") or ""
        # A web thread serves one request at a time: start from nothing, leave nothing behind.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        quiet = request.path.startswith(_QUIET_PREFIXES)  # probes and scrapes: no spans, DEBUG lines
        with tracing.request_span(request) if tracing.enabled() and not quiet else nullcontext() as span:
            status = 500
            try:
                response = self.get_response(request)
                status = response.status_code
                if getattr(request, "resolver_match", None) is not None and (
                    request.resolver_match.url_name == "cardtrader-webhook"
                ):
                    # The view tags its answer (syncops/apis/webhooks.py); parse only an untagged one.
                    outcome = getattr(response, "webhook_outcome", None)
                    if outcome is not None:
                        metrics.record_webhook_delivery(*outcome)
                    else:
                        metrics.observe_webhook_response(response)
                return response
            finally:
                elapsed = time.perf_counter() - started
                route = _route(request)
                metrics.observe_http_request(route, request.method or "", status, elapsed)
                if span is not None:
                    tracing.finish_request_span(span, request, route, status)
                level = logging.DEBUG if quiet and status < 500 else logging.INFO
                if access_logger.isEnabledFor(level):  # inside the span: the line carries its trace id
                    logs.log_direct(
                        access_logger, level, "http_request", method=request.method, route=route, status=status,
                        duration_ms=round(elapsed * 1000, 2),
                    )
                structlog.contextvars.clear_contextvars()

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: dict[str, Any]) -> None:
        seller = kwargs.get("seller_uuid") or kwargs.get("seller_id")
        if seller:
            bind(seller_id=str(seller))


# --- Celery ---------------------------------------------------------------------------------


def on_before_task_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None:
        return
    ctx = structlog.contextvars.get_contextvars()
    carried = {k: ctx[k] for k in PROPAGATED if ctx.get(k)}
    if carried:
        headers[HEADER] = carried


@lru_cache(maxsize=256)
def _param_positions(task_name: str, run: Callable[..., Any]) -> tuple[tuple[str, int], ...]:
    try:
        params = list(inspect.signature(run).parameters)
    except (TypeError, ValueError):
        return ()
    return tuple((name, params.index(name)) for name in _TASK_PARAMS if name in params)


def on_task_prerun(task_id: str | None = None, task: Any = None, args: Any = None, kwargs: Any = None,
                   **_: Any) -> None:
    if task is None:
        return
    values: dict[str, Any] = {}
    carried = getattr(task.request, HEADER, None)
    if isinstance(carried, dict):
        values.update({k: v for k, v in carried.items() if k in PROPAGATED})
    for name, position in _param_positions(task.name, task.run):
        if kwargs and name in kwargs:
            values[name] = str(kwargs[name])
        elif args and len(args) > position:
            values[name] = str(args[position])
    values["task_id"] = task_id
    values["task_name"] = task.name
    # Tokens restore the publisher's context afterwards: an eager task runs inside the request.
    task.request._brx_log_tokens = structlog.contextvars.bind_contextvars(**values)


def on_task_postrun(task: Any = None, **_: Any) -> None:
    tokens = getattr(getattr(task, "request", None), "_brx_log_tokens", None)
    if tokens:
        structlog.contextvars.reset_contextvars(**tokens)
        task.request._brx_log_tokens = None
