"""``/api/v1/sellers/<uuid>/connection``: connect (PUT), disconnect (DELETE), pause/resume (PATCH).

Thin: validate the body, call one service of ``syncops.services.connection``, serialize. The
PUT needs no existing seller row (connecting is how a seller starts); the permission still lets a
seller name only themselves.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from brxsync.api.exceptions import Conflict, Unprocessable
from brxsync.api.views import SellerScopedView
from inventory.models import SyncSettings
from syncops.services.connection import (
    ConnectionRefused,
    connection_connect,
    connection_disconnect,
    connection_set_paused,
)


class CardTraderUnavailableError(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "CardTrader cannot be reached right now."
    default_code = "cardtrader_unavailable"

    def __init__(self, detail: str | None = None, code: str | None = None, details: dict | None = None) -> None:
        super().__init__(detail, code)
        self.details = details or {}


class ConnectSerializer(serializers.Serializer):
    # A CardTrader token is a JWT: printable ASCII only. Anything else could never be valid and
    # cannot even travel in an HTTP header, so it is a 400 here rather than an error later.
    cardtrader_token = serializers.RegexField(r"^[\x21-\x7E]+$", max_length=4096, trim_whitespace=True)


class PauseSerializer(serializers.Serializer):
    paused = serializers.BooleanField()


class ConnectionSerializer(serializers.Serializer):
    seller_id = serializers.UUIDField()
    connection_state = serializers.CharField()
    paused = serializers.BooleanField()
    sync_status = serializers.CharField()
    cardtrader_app_id = serializers.IntegerField(allow_null=True)
    cardtrader_app_name = serializers.CharField()
    cardtrader_user_id = serializers.IntegerField(allow_null=True)
    webhook_url = serializers.CharField(allow_null=True)
    steps = serializers.ListField(child=serializers.CharField(), required=False)


def _state(sync: SyncSettings, steps: tuple[str, ...] = ()) -> dict[str, Any]:
    data = {
        "seller_id": sync.user_id, "connection_state": sync.connection_state, "paused": sync.paused,
        "sync_status": sync.sync_status, "cardtrader_app_id": sync.cardtrader_app_id,
        "cardtrader_app_name": sync.cardtrader_app_name, "cardtrader_user_id": sync.cardtrader_user_id,
        "webhook_url": sync.webhook_url if sync.is_connected else None,
    }
    if steps:
        data["steps"] = list(steps)
    return ConnectionSerializer(data).data


def _raise_api(exc: ConnectionRefused) -> None:
    if exc.status == 422:
        raise Unprocessable(exc.message, code=exc.code, details=exc.details)
    if exc.status == 409:
        raise Conflict(exc.message, code=exc.code, details=exc.details)
    if exc.status == 503:
        raise CardTraderUnavailableError(exc.message, code=exc.code, details=exc.details)
    raise exceptions.ValidationError({"non_field_errors": [exc.message]})


class SellerConnectionApi(SellerScopedView):
    error_statuses = (400, 404, 409, 422, 503)

    @extend_schema(request=ConnectSerializer, responses={200: ConnectionSerializer})
    def put(self, request: Request, seller_uuid: Any) -> Response:
        body = ConnectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            result = connection_connect(seller_id=seller_uuid, token=body.validated_data["cardtrader_token"])
        except ConnectionRefused as exc:
            _raise_api(exc)
        sync = SyncSettings.objects.get(user_id=result.seller_id)
        return Response(_state(sync, result.steps), status=status.HTTP_200_OK)

    @extend_schema(request=None, responses={200: ConnectionSerializer})
    def delete(self, request: Request, seller_uuid: Any) -> Response:
        seller = self.get_seller()
        try:
            sync = connection_disconnect(seller_id=seller.pk)
        except ConnectionRefused as exc:
            _raise_api(exc)
        return Response(_state(sync))

    @extend_schema(request=PauseSerializer, responses={200: ConnectionSerializer})
    def patch(self, request: Request, seller_uuid: Any) -> Response:
        body = PauseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        seller = self.get_seller()
        try:
            sync = connection_set_paused(seller_id=seller.pk, paused=body.validated_data["paused"])
        except ConnectionRefused as exc:
            _raise_api(exc)
        return Response(_state(sync))
