"""Error reporting to Sentry, on only when ``SENTRY_DSN`` is set (settings.py calls ``init_sentry``).

No personal data by default, and ``before_send`` / ``before_breadcrumb`` run every event
through the same redaction as the logs: request headers (Authorization, Signature, Cookie),
bodies, frame locals (a ``token`` variable in a traceback), breadcrumbs built from log lines.
"""
from __future__ import annotations

from typing import Any

from brxsync.observability.redaction import REDACTED, is_sensitive_key, redact_value

_DROP_REQUEST_PARTS = ("data", "cookies")


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Remove secrets from a Sentry event (also used for transactions and breadcrumbs)."""
    request = event.get("request")
    if isinstance(request, dict):
        for part in _DROP_REQUEST_PARTS:
            if part in request:
                request[part] = REDACTED  # webhook bodies and form posts: never sent
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: (REDACTED if is_sensitive_key(k) else v) for k, v in headers.items()}
        if request.get("query_string"):
            request["query_string"] = redact_value(request["query_string"])
        if isinstance(request.get("env"), dict):
            request["env"] = redact_value(request["env"])
    for exc in (event.get("exception") or {}).get("values") or []:
        if exc.get("value"):
            exc["value"] = redact_value(exc["value"])
        for frame in (exc.get("stacktrace") or {}).get("frames") or []:
            if isinstance(frame.get("vars"), dict):
                frame["vars"] = redact_value(frame["vars"])
    for key in ("extra", "contexts", "tags", "message", "logentry"):
        if key in event:
            event[key] = redact_value(event[key])
    crumbs = event.get("breadcrumbs")
    if isinstance(crumbs, dict) and isinstance(crumbs.get("values"), list):
        crumbs["values"] = [redact_value(c) for c in crumbs["values"]]
    return event


def scrub_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    return redact_value(crumb)


def init_sentry(dsn: str, *, transport: Any = None) -> None:
    import logging

    import sentry_sdk
    from django.conf import settings
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import ignore_logger, ignore_logger_for_sentry_logs
    from sentry_sdk.integrations.redis import RedisIntegration

    from brxsync.observability import logs

    options: dict[str, Any] = {
        "dsn": dsn,
        "environment": settings.ENVIRONMENT,
        "integrations": [DjangoIntegration(), CeleryIntegration(monitor_beat_tasks=False), RedisIntegration()],
        "send_default_pii": False,
        "include_local_variables": True,  # scrubbed by scrub_event before anything leaves
        "max_request_body_size": "never",
        "traces_sample_rate": settings.SENTRY_TRACES_SAMPLE_RATE,
        "before_send": scrub_event,
        "before_send_transaction": scrub_event,
        "before_breadcrumb": scrub_breadcrumb,
    }
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(**options)
    # The access line (one per request, INFO, never an event) would only be a breadcrumb repeating the
    # request the Django integration records. Ignored by Sentry, it keeps the direct path, which Sentry's
    # patched Logger.callHandlers would otherwise close for every line (~3x the line's CPU).
    ignore_logger(logs.ACCESS_LOGGER)
    ignore_logger_for_sentry_logs(logs.ACCESS_LOGGER)
    logs.trust_call_handlers(logging.Logger.callHandlers, [logs.ACCESS_LOGGER])
