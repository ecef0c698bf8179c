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
import sys
from typing import Any

import orjson
import structlog

from brxsync import tracing
from brxsync.observability.redaction import redact_event

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
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
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
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared_processors(), structlog.stdlib.ExtraAdder(), _keep_redacted_exception],
        processors=_tail(fmt),  # _redact_foreign removes ProcessorFormatter's meta keys
    )


def configure_structlog() -> None:
    """structlog loggers hand their event dict to stdlib, whose handler renders it."""
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
