"""Every error as the one envelope of ``brxsync.api.errors``: DRF exceptions and Django's own.

``api_exception_handler`` is DRF's EXCEPTION_HANDLER; ``bad_request`` / ``permission_denied`` /
``page_not_found`` / ``server_error`` are Django's handler400/403/404/500, so an unknown URL,
a too-large body or a crash outside DRF also answers JSON. An unhandled exception is logged
with its traceback and the request id; the client gets only the id, never the trace.
"""
from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from brxsync.api.errors import error_body, error_response
from brxsync.api.middleware import get_request_id
from brxsync.errors import ServiceError

logger = logging.getLogger("brxsync.api")


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class Conflict(exceptions.APIException):
    """The request is valid but clashes with the resource's current state (e.g. not retryable)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"

    def __init__(self, detail: str | None = None, code: str | None = None, details: dict | None = None) -> None:
        super().__init__(detail, code)
        self.details = details or {}


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request cannot be processed."
    default_code = "unprocessable"

    def __init__(self, detail: str | None = None, code: str | None = None, details: dict | None = None) -> None:
        super().__init__(detail, code)
        self.details = details or {}


def _first_code(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    while isinstance(codes, list | dict):
        if not codes:
            return exc.default_code
        codes = next(iter(codes.values())) if isinstance(codes, dict) else codes[0]
    return str(codes) or exc.default_code


def describe(exc: exceptions.APIException) -> tuple[str, str, Any]:
    """(code, message, details) for a DRF exception."""
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return "validation_error", "The request is invalid; see details.fields.", {"fields": fields}
    details: dict[str, Any] = dict(getattr(exc, "details", None) or {})
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        details["retry_after"] = math.ceil(exc.wait)
    message = exc.detail if isinstance(exc.detail, str) else exc.default_detail
    return _first_code(exc), str(message), details


def _internal_error_body(request: Any) -> dict:
    request_id = get_request_id(request)
    return error_body(
        "internal_error",
        "An unexpected error occurred. Quote the request id when reporting it.",
        {"request_id": request_id},
    )


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()

    request = context.get("request")
    set_rollback()
    if isinstance(exc, ServiceError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    if not isinstance(exc, exceptions.APIException):
        logger.error(
            "unhandled exception in %s %s (request id %s)",
            getattr(request, "method", "?"), getattr(request, "path", "?"), get_request_id(request),
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        return Response(_internal_error_body(request), status=status.HTTP_500_INTERNAL_SERVER_ERROR)

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(math.ceil(exc.wait))
    code, message, details = describe(exc)
    return Response(error_body(code, message, details), status=exc.status_code, headers=headers)


# --- Django's handlers (urls.py: handler400/403/404/500) ----------------------------------
def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if isinstance(exception, RequestDataTooBig):
        return error_response(413, "payload_too_large", "The request body is too large.")
    return error_response(400, "bad_request", "The request is malformed.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(403, "permission_denied", "You do not have permission to perform this action.")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(404, "not_found", "Not found.")


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_internal_error_body(request), status=500)
