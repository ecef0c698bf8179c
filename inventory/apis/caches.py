"""``POST /api/v1/admin/caches/clear`` ``{"seller_id": "<uuid>"}`` (or ``{}`` for all sellers).

For service API keys only (staff tooling): a seller's JWT gets 403. Calls the same service as the
admin's "clear caches" action and answers what was dropped.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from brxsync.api.authentication import is_service
from brxsync.api.views import ApiView
from inventory.services.caches import caches_clear


class IsService(BasePermission):
    message = "only service API keys may clear caches"

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and is_service(request.user))


class CachesClearSerializer(serializers.Serializer):
    seller_id = serializers.UUIDField(required=False, allow_null=True,
                                      help_text="Clear one seller's caches; omit to clear every seller's")


class CachesClearedSerializer(serializers.Serializer):
    scope = serializers.CharField()
    blueprint_keys = serializers.IntegerField()
    settings_entries = serializers.IntegerField()


class CachesClearApi(ApiView):
    permission_classes = [IsService]
    error_statuses = (400, 403)

    @extend_schema(request=CachesClearSerializer, responses={200: CachesClearedSerializer}, tags=["admin"])
    def post(self, request: Request) -> Response:
        body = CachesClearSerializer(data=request.data if request.data else {})
        body.is_valid(raise_exception=True)
        result = caches_clear(seller_id=body.validated_data.get("seller_id"))
        return Response(CachesClearedSerializer(result).data)
