"""``GET /api/v1/sellers/<uuid>/status``: what a seller's front end polls."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from brxsync.api.views import SellerScopedView
from inventory.models import ConnectionState, SyncStatus
from inventory.selectors import seller_status
from syncops.apis.operations import OperationSerializer


class ConnectionSerializer(serializers.Serializer):
    """The CardTrader connection, never its token or shared secret."""

    class Meta:
        ref_name = "ConnectionStatus"

    state = serializers.ChoiceField(ConnectionState.choices, source="connection_state")
    connected_at = serializers.DateTimeField(allow_null=True)
    cardtrader_user_id = serializers.IntegerField(allow_null=True)
    cardtrader_app_name = serializers.CharField(allow_blank=True)
    webhook_url = serializers.URLField(allow_null=True, help_text="Null until connected")


class SellerStatusSerializer(serializers.Serializer):
    seller_id = serializers.UUIDField()
    sync_status = serializers.ChoiceField(SyncStatus.choices)
    paused = serializers.BooleanField()
    connection = ConnectionSerializer(source="*")
    last_sync_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    running_operation = OperationSerializer(allow_null=True)
    pending_operations = serializers.IntegerField()
    open_conflicts = serializers.IntegerField()
    rate_limit = serializers.JSONField(
        allow_null=True, help_text="The rate limiter's summary (buckets, breakers); null when unavailable"
    )
    features = serializers.DictField(
        child=serializers.BooleanField(), help_text="Feature flags in force (FEATURE_* environment variables)"
    )


class SellerStatusApi(SellerScopedView):
    @extend_schema(operation_id="seller_status", responses={200: SellerStatusSerializer}, tags=["sellers"])
    def get(self, request: Request, seller_uuid: Any) -> Response:
        return Response(SellerStatusSerializer(seller_status(seller=self.get_seller())).data)
