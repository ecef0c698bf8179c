"""The seller's inventory over REST: list, edit, delete, adjust (sale/restock), batch.

Thin views on ``SellerScopedView`` (auth, other seller → 404, Idempotency-Key, one transaction):
each write calls one service of ``inventory.services.edits`` and answers 202 with the operation
id; the push to CardTrader happens in a worker after commit.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from brxsync.api.exceptions import Conflict
from brxsync.api.pagination import CursorPage
from brxsync.api.views import OperationAcceptedSerializer, SellerScopedView, accepted
from inventory.models import InventoryItem, ItemSyncState
from inventory.services.edits import (
    BatchEdit,
    EditError,
    item_adjust,
    item_delete,
    item_edit,
    items_batch,
)


class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = InventoryItem
        fields = (
            "id", "product_id", "blueprint_id", "name", "quantity", "price_cents", "currency", "properties",
            "description", "user_data_field", "graded", "sync_state", "version", "last_synced_at", "updated_at",
        )


class ItemEditSerializer(serializers.Serializer):
    """Any subset; ``null`` clears a field (text → "", graded → false, a property → its default)."""

    quantity = serializers.IntegerField(required=False, min_value=0)
    price_cents = serializers.IntegerField(required=False, min_value=0)
    description = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    user_data_field = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    graded = serializers.BooleanField(required=False, allow_null=True)
    properties = serializers.DictField(
        required=False, allow_null=True,
        help_text='condition ("NM", "Near Mint"...), language ("Japanese", "jp"...), foil, signed, altered',
    )


class AdjustSerializer(serializers.Serializer):
    delta = serializers.IntegerField(help_text="negative for a sale, positive for a restock; never 0")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")


class BatchEntrySerializer(serializers.Serializer):
    item_id = serializers.IntegerField()
    action = serializers.ChoiceField(choices=("update", "delete", "adjust"))
    changes = serializers.DictField(required=False, default=dict)
    delta = serializers.IntegerField(required=False, default=0)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class BatchSerializer(serializers.Serializer):
    edits = BatchEntrySerializer(many=True, allow_empty=False)


class BatchAcceptedSerializer(serializers.Serializer):
    operation_id = serializers.IntegerField(help_text="the first operation (the contract's shape)")
    operation_ids = serializers.ListField(child=serializers.IntegerField(), help_text="one per edit, in order")


def _raise_api(exc: EditError) -> None:
    if exc.status == 404:
        raise exceptions.NotFound(exc.message)
    if exc.status == 409:
        raise Conflict(exc.message, code=exc.code, details=exc.details)
    raise exceptions.ValidationError(exc.details or {"non_field_errors": [exc.message]})


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise exceptions.ValidationError({"non_field_errors": ["expected a JSON object"]})
    return request.data


class InventoryListApi(SellerScopedView):
    class Pagination(CursorPage):
        ordering = ("id",)

    @extend_schema(
        parameters=[
            OpenApiParameter("blueprint_id", int), OpenApiParameter("product_id", int),
            OpenApiParameter("sync_state", str, enum=[c for c, _ in ItemSyncState.choices]),
            OpenApiParameter("limit", int),
        ],
        responses={200: ItemSerializer(many=True)},
    )
    def get(self, request: Request, seller_uuid: Any) -> Response:
        filters: dict[str, Any] = {}
        errs: dict[str, list[str]] = {}
        for name in ("blueprint_id", "product_id"):
            raw = request.query_params.get(name)
            if raw is not None:
                if not raw.isdigit():
                    errs[name] = ["must be an integer"]
                else:
                    filters[name] = int(raw)
        state = request.query_params.get("sync_state")
        if state is not None:
            if state not in ItemSyncState.values:
                errs["sync_state"] = [f"must be one of {', '.join(ItemSyncState.values)}"]
            else:
                filters["sync_state"] = state
        if errs:
            raise exceptions.ValidationError(errs)
        queryset = InventoryItem.objects.filter(seller_id=self.get_seller().pk, **filters)
        paginator = self.Pagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(ItemSerializer(page, many=True).data)


class InventoryItemApi(SellerScopedView):
    error_statuses = (400, 404, 409)

    @extend_schema(request=ItemEditSerializer, responses={202: OperationAcceptedSerializer})
    def patch(self, request: Request, seller_uuid: Any, item_id: int) -> Response:
        body = _body(request)
        ItemEditSerializer(data=body).is_valid(raise_exception=True)
        try:
            op = item_edit(seller=self.get_seller(), item_id=item_id, changes=body)
        except EditError as exc:
            _raise_api(exc)
        return accepted(op.pk)

    @extend_schema(request=None, responses={202: OperationAcceptedSerializer})
    def delete(self, request: Request, seller_uuid: Any, item_id: int) -> Response:
        try:
            op = item_delete(seller=self.get_seller(), item_id=item_id)
        except EditError as exc:
            _raise_api(exc)
        return accepted(op.pk)


class InventoryAdjustApi(SellerScopedView):
    error_statuses = (400, 404, 409)

    @extend_schema(request=AdjustSerializer, responses={202: OperationAcceptedSerializer})
    def post(self, request: Request, seller_uuid: Any, item_id: int) -> Response:
        data = AdjustSerializer(data=_body(request))
        data.is_valid(raise_exception=True)
        try:
            op = item_adjust(seller=self.get_seller(), item_id=item_id, delta=data.validated_data["delta"],
                             reason=data.validated_data["reason"])
        except EditError as exc:
            _raise_api(exc)
        return accepted(op.pk)


class InventoryBatchApi(SellerScopedView):
    error_statuses = (400, 404, 409)

    @extend_schema(request=BatchSerializer, responses={202: BatchAcceptedSerializer})
    def post(self, request: Request, seller_uuid: Any) -> Response:
        data = BatchSerializer(data=_body(request))
        data.is_valid(raise_exception=True)
        entries = [BatchEdit(**entry) for entry in data.validated_data["edits"]]
        try:
            ops = items_batch(seller=self.get_seller(), edits=entries)
        except EditError as exc:
            _raise_api(exc)
        response = accepted(ops[0].pk)
        response.data = {"operation_id": ops[0].pk, "operation_ids": [op.pk for op in ops]}
        return response
