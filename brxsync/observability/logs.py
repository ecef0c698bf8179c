"""structlog on top of stdlib logging: one pipeline for our lines, Django's, Celery's and libraries'.

Every record, whether it came from ``structlog.get_logger()`` or ``logging.getLogger()``, ends as
one line with ``timestamp``, ``level``, ``service``, ``component`` (the logger name), ``event``
and the bound context (request_id, seller_id, operation_id, task_id, trace_id, span_id) plus any
``extra=`` fields. ``LOG_FORMAT=json`` writes JSON lines for the aggregator; ``console`` writes
aligned, readable lines for a terminal. Redaction is the last step before rendering, always:
structlog events are redacted at the end of structlog's chain (``configure_structlog``) and
carried to the handler as they are; foreign stdlib records are redacted in the formatter's tail.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

import orjson
import structlog

from brxsync import tracing
from brxsync.observability.redaction import RedactingFilter, redact_event

SERVICE = "brx-sync"
_STDLIB_NOISE = {"django.db.backends": "INFO", "urllib3": "WARNING", "celery.utils.functional": "WARNING",
                 "kombu": "WARNING", "amqp": "WARNING", "opentelemetry": "WARNING"}


def _add_service(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event_dict.setdefault("service", SERVICE)
    return event_dict


def _add_level(_logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    record = event_dict.get("_record")
    if record is not None:
        event_dict["level"] = record.levelname
    else:
        event_dict["level"] = "WARNING" if method == "warn" else method.upper()
    return event_dict


def _add_component(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    record = event_dict.get("_record")
    if record is not None:
        event_dict["component"] = record.name
    elif _logger is not None and getattr(_logger, "name", None):
        event_dict["component"] = _logger.name
    return event_dict


def _keep_redacted_exception(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """``RedactingFilter`` turns a stdlib record's traceback into redacted ``exc_text``: keep it."""
    record = event_dict.get("_record")
    if record is not None and record.exc_text and "exc_info" not in event_dict:
        event_dict["exception"] = record.exc_text
    return event_dict


def _add_trace_ids(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    if tracing.enabled():
        ids = tracing.current_ids()
        if ids:
            event_dict.setdefault("trace_id", ids[0])
            event_dict.setdefault("span_id", ids[1])
    return event_dict


def _drop_color_message(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event_dict.pop("color_message", None)  # uvicorn/gunicorn duplicates
    return event_dict


_second: tuple[int, str] = (-1, "")


def _add_timestamp(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """ISO 8601 UTC with microseconds (``2026-11-27T10:35:49.516087Z``), as structlog's
    ``TimeStamper(fmt="iso", utc=True)`` writes it but always with the fraction, the date and time
    formatted once per second: a third of TimeStamper's cost, which built a timezone-aware
    datetime and its isoformat for every line."""
    global _second
    now = time.time()
    whole = int(now)
    second = _second
    if second[0] != whole:
        second = _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    event_dict["timestamp"] = f"{second[1]}.{int((now - whole) * 1_000_000):06d}Z"
    return event_dict


_LEADING = ("timestamp", "level", "service", "component", "event")


def _leading_keys_first(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """The five fixed fields open every JSON line, so a human scanning raw logs finds them."""
    ordered = {k: event_dict.pop(k) for k in _LEADING if k in event_dict}
    ordered.update(event_dict)
    return ordered


def shared_processors() -> list[Any]:
    """Run for structlog events and foreign stdlib records alike (in this order)."""
    return [
        structlog.contextvars.merge_contextvars,
        _add_level,
        _add_component,
        _add_service,
        _add_timestamp,
        _add_trace_ids,
    ]


def _redact_foreign(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Drop ProcessorFormatter's bookkeeping keys and redact a foreign (stdlib) record's event.

    A structlog event (``_from_structlog``) was redacted as the last step of structlog's chain and
    nothing has been added to it since, so it is not scanned a second time (that was half of the
    redaction cost of every access line)."""
    from_structlog = event_dict.pop("_from_structlog", False)
    event_dict.pop("_record", None)
    return event_dict if from_structlog else redact_event(logger, method, event_dict)


_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _dumps(obj: Any, **kw: Any) -> str:
    """The JSON renderer's serializer: orjson (~10× json.dumps on a log line), with datetimes and
    dataclasses still handed to structlog's fallback (``repr``) as json.dumps would; json.dumps for
    what orjson refuses (an int beyond 64 bits, a key it cannot turn into a string)."""
    try:
        return orjson.dumps(obj, default=kw.get("default"), option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(obj, **kw)


def _tail(fmt: str) -> list[Any]:
    """Exception text first, then redaction (always last before rendering), then the renderer.
    Tracebacks are rendered to text before redaction so an exception message is scanned too."""
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
        if fmt == "console" else structlog.processors.JSONRenderer(serializer=_dumps)
    )
    ordering = [] if fmt == "console" else [_leading_keys_first]
    return [structlog.processors.format_exc_info, _drop_color_message, _redact_foreign, *ordering, renderer]


def build_logging_dict(level: str, fmt: str) -> dict[str, Any]:
    """The ``LOGGING`` dict for settings: one stderr handler through structlog's formatter."""
    fmt = "console" if fmt == "console" else "json"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "brxsync.observability.redaction.RedactingFilter"}},
        "formatters": {
            "structlog": {
                "()": "brxsync.observability.logs.make_formatter",
                "fmt": fmt,
            },
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "structlog",
                "filters": ["redact"],
            },
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            # Django's defaults add their own console / mail handlers: send everything to root.
            "django": {"handlers": [], "level": level, "propagate": True},
            "django.server": {"handlers": [], "level": level, "propagate": True},
            "celery": {"handlers": [], "level": level, "propagate": True},
            **{name: {"level": lvl} for name, lvl in _STDLIB_NOISE.items()},
        },
    }


def make_formatter(fmt: str = "json") -> structlog.stdlib.ProcessorFormatter:
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared_processors(), structlog.stdlib.ExtraAdder(), _keep_redacted_exception],
        processors=_tail(fmt),  # _redact_foreign removes ProcessorFormatter's meta keys
    )
    formatter._brx_tail = True  # type: ignore[attr-defined]  # its tail is _tail(): log_direct may run it
    return formatter


# --- the direct path ------------------------------------------------------------------------------
#
# Every web request writes one access line. Through structlog's stdlib integration that line costs
# ~80 µs of CPU in a tight loop and ~0.2 ms inside a real request (docs/BENCHMARKS.md, fifth pass):
# a BoundLogger call, two LogRecords (the logger's, and the formatter's copy), the caller lookup
# walking the stack, the handler's filter and lock, ProcessorFormatter's second pass. None of it
# changes the line. ``log_direct`` runs the same processors (``shared_processors`` and
# ``redact_event``, then the handler's formatter tail: same fields, same order, same redaction,
# JSON or console as configured) and writes the result to the handler's stream under the
# handler's lock, when the configured handler is the only one the record would reach. Anything
# else attached (a test's capture handler, the suite's secret scanner, a second handler, a logger
# filter, a patched ``Logger.callHandlers``) sends the line the stdlib way, so every consumer still
# sees it. The one exception is Sentry's patch, for the loggers Sentry was told to ignore (below).

_STDLIB_CALL_HANDLERS = logging.Logger.callHandlers
_METHODS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error",
            logging.CRITICAL: "critical"}
_DIRECT_CHAIN: list[Any] = []  # merge, redact_event, the other shared processors: configure_structlog()
ACCESS_LOGGER = "brxsync.http"
# Sentry's logging integration patches ``Logger.callHandlers`` for every logger. ``brxsync.sentry``
# tells it to ignore the access logger (its patch then does nothing for those records) and trusts
# its patch here for exactly that logger, so with Sentry on the access line keeps the direct path.
_trusted_call_handlers: Any = None
_trusted_loggers: frozenset[str] = frozenset()


def trust_call_handlers(call_handlers: Any, logger_names: Iterable[str]) -> None:
    """``call_handlers`` (the current ``Logger.callHandlers``, patched by Sentry) does nothing for
    records of ``logger_names`` but call stdlib's: ``log_direct`` may skip it for them."""
    global _trusted_call_handlers, _trusted_loggers
    _trusted_call_handlers, _trusted_loggers = call_handlers, frozenset(logger_names)


def direct_handler(logger: logging.Logger, level: int) -> logging.StreamHandler[Any] | None:
    """The one handler a record of ``logger`` at ``level`` would reach, if ``log_direct`` can write
    to it itself: a plain ``StreamHandler`` on the root, formatted by ``make_formatter``, filtered by
    ``RedactingFilter`` only (which leaves structlog events alone); else None."""
    call_handlers = logging.Logger.callHandlers
    if call_handlers is not _STDLIB_CALL_HANDLERS and not (
            call_handlers is _trusted_call_handlers and logger.name in _trusted_loggers):
        return None
    if logger.filters or logger.disabled:
        return None
    node: Any = logger
    while not node.handlers:
        if not node.propagate or node.parent is None:
            return None  # no handler at all: stdlib's lastResort decides
        node = node.parent
    if node.parent is not None or len(node.handlers) != 1:
        return None
    handler = node.handlers[0]
    if (type(handler) is not logging.StreamHandler or level < handler.level
            or not getattr(handler.formatter, "_brx_tail", False)
            or not all(type(f) is RedactingFilter for f in handler.filters)):
        return None
    return handler


def log_direct(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log ``event`` with ``fields`` as ``structlog.get_logger(logger.name).log(level, ...)`` would,
    through the direct path when ``direct_handler`` allows it (see above). ``fields`` must be plain
    values: no ``exc_info`` / ``stack_info`` (those go the stdlib way)."""
    if not logger.isEnabledFor(level):
        return
    method = _METHODS.get(level)
    handler = direct_handler(logger, level) if method is not None and _DIRECT_CHAIN else None
    if handler is None or "exc_info" in fields or "stack_info" in fields:
        structlog.get_logger(logger.name).log(level, event, **fields)
        return
    event_dict: Any = fields
    event_dict["event"] = event
    for processor in _DIRECT_CHAIN:
        event_dict = processor(logger, method, event_dict)
    event_dict["_from_structlog"] = True  # redacted above: the tail's _redact_foreign skips it
    for processor in handler.formatter.processors:  # type: ignore[union-attr]
        event_dict = processor(logger, method, event_dict)
    line = event_dict + handler.terminator
    handler.acquire()
    try:
        handler.stream.write(line)
        handler.stream.flush()
    except Exception:  # as StreamHandler.emit: a broken stream must not break the request
        handler.handleError(logging.makeLogRecord({"name": logger.name, "levelno": level, "msg": event}))
    finally:
        handler.release()


def configure_structlog() -> None:
    """structlog loggers hand their event dict to stdlib, whose handler renders it."""
    # Redaction right after the context merge: what it scans is what a call site or a bound context
    # could carry (the fields, the event, request_id...); the processors after it add only values
    # this module makes (level, component = the logger's name, service, timestamp, trace ids), and
    # they land in the same key order as through structlog's chain (shared_processors, then redact).
    merge, *added = shared_processors()
    _DIRECT_CHAIN[:] = [merge, redact_event, *added]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_event,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def configure(logging_settings: dict[str, Any]) -> None:
    import logging.config

    logging.config.dictConfig(logging_settings)
    configure_structlog()
    logging.captureWarnings(True)
    if not sys.stderr.isatty():
        logging.getLogger("py.warnings").setLevel(logging.ERROR)
