"""Turning HTTP failures and error bodies into the client's error taxonomy.

Kept apart from the client so the mapping (which status / body / exception means what) is in one
small place that the docs (docs/CARDTRADER_CLIENT.md) can point at.
"""
from __future__ import annotations

import email.utils
import html
import json
import re
import time
from typing import Any

import requests
import urllib3.exceptions

from ratelimit.guard import Outcome

from . import errors

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_MESSAGE = 200
# CardTrader's documented back-off when it sends no Retry-After (CARDTRADER_API.md §2).
GLOBAL_LIMIT_RETRY = 10.0
PER_SECOND_LIMIT_RETRY = 1.0

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
_PARA = re.compile(rb"<(?:p|h1|h2)[^>]*>(.*?)</(?:p|h1|h2)>", re.I | re.S)
_TAGS = re.compile(r"<[^>]+>")


def looks_like_html(body: bytes, content_type: str = "") -> bool:
    head = body[:512].lstrip().lower()
    return "html" in content_type.lower() or head.startswith((b"<!doctype", b"<html", b"<"))


def summarise_body(body: bytes, content_type: str = "") -> str:
    """A short, single-line description of a body we cannot use. Never the whole page: HTML
    error pages can be large and may echo request data back."""
    if not body:
        return "empty body"
    if looks_like_html(body, content_type):
        match = _PARA.search(body) or _TITLE.search(body)
        text = match.group(1).decode("utf-8", "replace") if match else ""
        text = " ".join(html.unescape(_TAGS.sub(" ", text)).split())
        return f"HTML page: {text[:MAX_MESSAGE]}" if text else "HTML page"
    text = " ".join(body[:MAX_MESSAGE * 2].decode("utf-8", "replace").split())
    return f"non-JSON body: {text[:MAX_MESSAGE]}"


def parse_json(body: bytes) -> Any:
    return json.loads(body)


def _request_id(envelope: Any, response: requests.Response) -> str | None:
    if isinstance(envelope, dict) and envelope.get("request_id"):
        return str(envelope["request_id"])
    return response.headers.get("X-Request-Id") or None


def _envelope_message(envelope: Any, default: str) -> str:
    if not isinstance(envelope, dict):
        return default
    extra = envelope.get("extra")
    if isinstance(extra, dict) and extra.get("message"):
        return str(extra["message"])[:MAX_MESSAGE]
    if envelope.get("error"):
        return str(envelope["error"])[:MAX_MESSAGE]
    if envelope.get("error_code"):
        return str(envelope["error_code"])
    return default


def _field_errors(envelope: Any) -> dict[str, list[str]]:
    raw = envelope.get("errors") if isinstance(envelope, dict) else None
    if isinstance(raw, dict):
        return {str(k): [str(m) for m in v] if isinstance(v, list) else [str(v)] for k, v in raw.items()}
    if isinstance(raw, list) and raw:
        return {"base": [json.dumps(m) if isinstance(m, dict) else str(m) for m in raw]}
    return {}


def retry_after_seconds(response: requests.Response, message: str) -> tuple[float, str]:
    """Retry-After when present (seconds or an HTTP date), else CardTrader's documented back-off
    for the limit its body names. Returns (seconds, scope)."""
    scope = "per_second" if "per second" in message.lower() else "global"
    header = response.headers.get("Retry-After")
    if header:
        header = header.strip()
        try:
            return max(0.0, float(header)), scope
        except ValueError:
            when = email.utils.parsedate_to_datetime(header) if header else None
            if when is not None:
                return max(0.0, when.timestamp() - time.time()), scope
    return (PER_SECOND_LIMIT_RETRY if scope == "per_second" else GLOBAL_LIMIT_RETRY), scope


def error_for_response(method: str, path: str, response: requests.Response, body: bytes) -> errors.CardTraderError:
    """The taxonomy error for a non-2xx answer. The status decides the class; the body only
    supplies details, because an HTML 404 from a proxy is still a 404 to the caller."""
    status = response.status_code
    content_type = response.headers.get("Content-Type", "")
    envelope: Any = None
    if body and not looks_like_html(body, content_type):
        try:
            envelope = parse_json(body)
        except ValueError:
            envelope = None
    summary = summarise_body(body, content_type) if envelope is None else ""
    message = _envelope_message(envelope, summary or f"HTTP {status}")
    common: dict[str, Any] = {
        "status": status, "request_id": _request_id(envelope, response), "method": method, "path": path,
    }
    if status in (401, 403):
        return errors.AuthError(message, **common)
    if status == 404:
        return errors.NotFound(message, **common)
    if status == 429:
        retry_after, scope = retry_after_seconds(response, message)
        return errors.RateLimited(message, retry_after=retry_after, scope=scope, **common)
    if status in (400, 422):
        error_code = str(envelope.get("error_code") or "") if isinstance(envelope, dict) else ""
        return errors.ValidationError(message, field_errors=_field_errors(envelope), error_code=error_code, **common)
    if status >= 500:
        return errors.ServerError(message, outcome_unknown=method in WRITE_METHODS, **common)
    outcome = Outcome.CLIENT_ERROR if 400 <= status < 500 else Outcome.SERVER_ERROR
    return errors.UnexpectedResponse(f"undocumented status: {message}", outcome=outcome, **common)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps: requests wraps urllib3 (``args[0]``), urllib3 wraps the
    socket error (``MaxRetryError.reason``), and Python links ``__cause__`` / ``__context__``."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not s for s in seen):
        seen.append(cur)
        if isinstance(cur, urllib3.exceptions.MaxRetryError) and cur.reason is not None:
            cur = cur.reason
            continue
        nxt = cur.args[0] if cur.args and isinstance(cur.args[0], BaseException) else None
        cur = nxt or cur.__cause__ or cur.__context__
    return seen


_NOT_SENT = (requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError,
             urllib3.exceptions.NewConnectionError, urllib3.exceptions.NameResolutionError)
_READ_TIMEOUT = (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError)


def error_for_exception(method: str, path: str, exc: BaseException) -> errors.CardTraderError:
    """The taxonomy error for a transport failure (requests' or, mid-stream, urllib3's).

    Only a failure to open the connection (refused, DNS, connect timeout) proves the request was
    not sent. requests reports a timeout while reading a non-streamed body as a ConnectionError,
    so the wrapped exceptions decide, not the outer class.
    """
    chain = _chain(exc)
    sent = not any(isinstance(e, _NOT_SENT) for e in chain)
    common: dict[str, Any] = {"method": method, "path": path, "outcome_unknown": sent and method in WRITE_METHODS}
    # urllib3's NewConnectionError (refused) subclasses ConnectTimeoutError: tell them apart.
    if not sent and any(isinstance(e, requests.exceptions.ConnectTimeout | urllib3.exceptions.ConnectTimeoutError)
                        and not isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain):
        return errors.Timeout("connect timeout", request_sent=False, **common)
    if sent and any(isinstance(e, _READ_TIMEOUT) for e in chain):
        return errors.Timeout("read timeout", request_sent=True, **common)
    return errors.ConnectionError(f"connection failed ({type(chain[-1]).__name__})", request_sent=sent, **common)
