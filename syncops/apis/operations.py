"""Operations over REST: read one, list a seller's (filtered), retry a failed one."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from brxsync.api.authentication import caller_id
from brxsync.api.permissions import seller_scope
from brxsync.api.views import ApiView, OperationAcceptedSerializer, SellerScopedView, accepted
from syncops.models import OperationKind, OperationState, SyncOperation
from syncops.selectors.operations import operation_get, operation_list
from syncops.services.operations import operation_retry


class OperationProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(source="progress_done")
    total = serializers.IntegerField(source="progress_total", allow_null=True)
    percent = serializers.FloatField(source="progress_percent", allow_null=True)


class OperationErrorSerializer(serializers.Serializer):
    code = serializers.CharField(source="error_code")
    message = serializers.CharField(source="last_error")


class OperationSerializer(serializers.ModelSerializer):
    """The contract's operation: id, kind, state, progress, attempts, error (+ timestamps)."""

    seller_id = serializers.UUIDField(read_only=True)
    progress = OperationProgressSerializer(source="*", read_only=True)
    error = serializers.SerializerMethodField()

    class Meta:
        model = SyncOperation
        fields = [
            "id", "kind", "state", "seller_id", "product_id", "progress", "attempts", "max_attempts",
            "error", "next_attempt_at", "created_at", "updated_at", "started_at", "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OperationErrorSerializer(allow_null=True))
    def get_error(self, operation: SyncOperation) -> dict[str, str] | None:
        if not (operation.error_code or operation.last_error):
            return None
        return OperationErrorSerializer(operation).data


class OperationDetailSerializer(OperationSerializer):
    """One operation in full: also its attempt history and its result (per-item outcomes, reports)."""

    attempt_log = serializers.ListField(child=serializers.DictField(), read_only=True)
    result = serializers.DictField(read_only=True)

    class Meta(OperationSerializer.Meta):
        fields = [*OperationSerializer.Meta.fields, "cardtrader_job_uuid", "attempt_log", "result"]
        read_only_fields = fields


class OperationFilterSerializer(serializers.Serializer):
    state = serializers.ListField(child=serializers.ChoiceField(OperationState.choices), required=False,
                                  help_text="Repeat to match any of several states")
    kind = serializers.ListField(child=serializers.ChoiceField(OperationKind.choices), required=False,
                                 help_text="Repeat to match any of several kinds")
    created_after = serializers.DateTimeField(required=False, help_text="Inclusive")
    created_before = serializers.DateTimeField(required=False, help_text="Exclusive")
    product_id = serializers.IntegerField(required=False, min_value=0, max_value=2**63 - 1)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        after, before = attrs.get("created_after"), attrs.get("created_before")
        if after and before and after >= before:
            raise serializers.ValidationError({"created_before": ["Must be later than created_after."]})
        return attrs


class OperationDetailApi(ApiView):
    error_statuses = (404,)

    @extend_schema(operation_id="operation_get", responses={200: OperationDetailSerializer}, tags=["operations"])
    def get(self, request: Request, operation_id: int) -> Response:
        operation = operation_get(operation_id=operation_id, seller_id=seller_scope(request.user))
        if operation is None:
            raise NotFound()
        return Response(OperationDetailSerializer(operation).data)


class OperationRetryApi(ApiView):
    error_statuses = (404, 409)

    @extend_schema(
        operation_id="operation_retry",
        request=None,
        responses={202: OperationAcceptedSerializer},
        tags=["operations"],
        description="Put a failed, uncertain, partial or cancelled operation back to pending; 409 otherwise.",
    )
    def post(self, request: Request, operation_id: int) -> Response:
        if operation_get(operation_id=operation_id, seller_id=seller_scope(request.user)) is None:
            raise NotFound()
        try:
            operation = operation_retry(operation_id=operation_id, actor=caller_id(request.user))
        except SyncOperation.DoesNotExist:
            raise NotFound()
        return accepted(operation.pk)


class SellerOperationListApi(SellerScopedView):
    @extend_schema(
        operation_id="seller_operations_list",
        parameters=[OperationFilterSerializer],
        responses={200: OperationSerializer(many=True)},
        tags=["operations"],
    )
    def get(self, request: Request, seller_uuid: Any) -> Response:
        seller = self.get_seller()
        filters = OperationFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        qs = operation_list(
            seller_id=seller.pk,
            states=f.get("state", ()),
            kinds=f.get("kind", ()),
            created_after=f.get("created_after"),
            created_before=f.get("created_before"),
            product_id=f.get("product_id"),
        )
        return self.paginate(qs, OperationSerializer)
