"""Request ids: one per request, echoed in ``X-Request-ID`` and quoted by every 500 envelope.

A caller (Ebartex's gateway, a load balancer) may send its own id so one request can be
followed across services; it is kept only if it looks like an id (bounded, no control
characters), otherwise a fresh one is generated, so log lines cannot be forged through it.
"""
from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from brxsync.api.errors import error_response

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def get_request_id(request: HttpRequest | None = None) -> str:
    """The id of ``request`` (or of the request being served on this thread)."""
    if request is not None:
        rid = getattr(request, "request_id", "") or getattr(getattr(request, "_request", None), "request_id", "")
        if rid:
            return rid
    return current_request_id.get()


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


# Views that bound their own body (and answer the 413 themselves, so it is counted with their
# other answers): CardTrader's webhook endpoint reads at most its limit + 1 bytes.
_OWN_SIZE_CHECK = ("/api/v1/webhooks/",)

_STATUS_CODES = {400: "bad_request", 403: "permission_denied", 404: "not_found", 405: "method_not_allowed",
                 413: "payload_too_large", 500: "internal_error"}


class ErrorEnvelopeMiddleware:
    """The envelope for errors Django answers without raising, on every non-admin path.

    Django *returns* some errors instead of raising them (``require_GET``'s bare 405, the CSRF
    failure page), so no handler sees them; this rewrites any non-JSON error response into the
    envelope (keeping headers such as ``Allow``). It also refuses an ``/api/`` request whose
    declared body exceeds ``DATA_UPLOAD_MAX_MEMORY_SIZE`` with a 413 before any view reads it:
    DRF's parsers read the stream directly, so Django's own size check never fires for them.
    The admin keeps its HTML pages.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/") and not request.path.startswith(_OWN_SIZE_CHECK):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return error_response(400, "bad_request", "Content-Length is not a number.")
            if limit is not None and length > limit:
                return error_response(
                    413, "payload_too_large", "The request body is too large.", {"max_bytes": limit}
                )
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and not request.path.startswith("/admin/")
            and "json" not in response.get("Content-Type", "")
        ):
            status = response.status_code
            enveloped = error_response(status, _STATUS_CODES.get(status, f"http_{status}"), response.reason_phrase)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    enveloped[header] = response[header]
            return enveloped
        return response
