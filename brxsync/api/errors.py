"""The one JSON error envelope: ``{"error": {"code", "message", "details"}}``.

Every error the service answers — DRF exceptions, Django 404/405/413, unhandled 500s, and the
CardTrader-facing webhook endpoint — is built here, so clients parse one shape.
"""
from __future__ import annotations

from typing import Any

from django.http import JsonResponse


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def error_response(status: int, code: str, message: str, details: Any = None, **headers: str) -> JsonResponse:
    response = JsonResponse(error_body(code, message, details), status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response
