"""OpenAPI pieces every endpoint shares: the error envelope, the auth schemes, Idempotency-Key.

``ApiAutoSchema`` (used by ``brxsync.api.views.ApiView``) adds to every operation the error
responses it can really give (401, 429, and for mutating ones 400/409/413/422) and the
``Idempotency-Key`` header, so a new endpoint is documented correctly without repeating them.
"""
from __future__ import annotations

from http import HTTPStatus
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from brxsync.api import idempotency


class ErrorSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ErrorDetail"

    code = serializers.CharField(help_text="Machine-readable, stable (e.g. validation_error, not_found)")
    message = serializers.CharField(help_text="For humans; may change")
    details = serializers.JSONField(
        help_text="Context: fields→messages for validation_error, request_id for internal_error, ..."
    )


class ErrorEnvelopeSerializer(serializers.Serializer):
    error = ErrorSerializer()

    class Meta:
        ref_name = "Error"


IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=idempotency.HEADER,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (≤255 printable ASCII). A repeat with the same key and body within 24 h "
        "returns the first answer without acting again; the same key with another body is a 422."
    ),
    pattern=r"^[\x21-\x7E]{1,255}$",
    type=str,
)

ALWAYS = {401, 429}
MUTATING = {400, 409, 413, 422}


class ApiAutoSchema(AutoSchema):
    extra_error_statuses: tuple[int, ...] = ()

    def get_override_parameters(self) -> list[Any]:
        params = list(super().get_override_parameters())
        if self.method in idempotency.MUTATING_METHODS and getattr(self.view, "idempotent", False):
            params.append(IDEMPOTENCY_KEY_PARAMETER)
        return params

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        statuses = set(ALWAYS) | set(getattr(self.view, "error_statuses", ()))
        if self.method in idempotency.MUTATING_METHODS:
            statuses |= MUTATING
        if any(param.get("in") == "query" for param in self._get_parameters()):
            statuses.add(400)
        for status in sorted(statuses):
            if str(status) not in responses:
                response = self._get_response_for_code(ErrorEnvelopeSerializer, str(status), direction=direction)
                response["description"] = HTTPStatus(status).phrase
                responses[str(status)] = response
        return responses


class JWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "brxsync.api.authentication.JWTAuthentication"
    name = "SellerJWT"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Ebartex access token (RS256; sub = seller UUID; type=access; mfa_verified=true).",
        }


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "brxsync.api.authentication.ApiKeyAuthentication"
    name = "ServiceApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>` from `manage.py create_api_key`; may act for any seller.",
        }
