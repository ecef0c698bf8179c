"""``POST /api/v1/sellers/<uuid>/imports`` and ``.../reconciliations``: start a bulk operation.

202 with the operation id; 409 naming the running operation while the seller's lease is held
(``details.operation``), or with ``not_connected`` / ``seller_paused``.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from brxsync.api.authentication import caller_id
from brxsync.api.exceptions import Conflict
from brxsync.api.views import OperationAcceptedSerializer, SellerScopedView, accepted
from syncops.models import SyncOperation
from syncops.services.imports import import_start
from syncops.services.reconcile import reconcile_start
from syncops.services.sync_runs import SyncBusy, SyncStartRefused


class ReconcileSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(required=False, default=False)


def _operation_summary(op: SyncOperation | None) -> dict[str, Any] | None:
    if op is None:
        return None
    return {"id": op.pk, "kind": op.kind, "state": op.state, "attempts": op.attempts,
            "progress": {"done": op.progress_done, "total": op.progress_total, "percent": op.progress_percent},
            "created_at": op.created_at.isoformat() if op.created_at else None}


def _conflict(exc: SyncStartRefused) -> Conflict:
    details = {"operation": _operation_summary(exc.operation)} if isinstance(exc, SyncBusy) else {}
    return Conflict(exc.message, code=exc.code, details=details)


class SellerImportsApi(SellerScopedView):
    error_statuses = (404, 409)

    @extend_schema(request=None, responses={202: OperationAcceptedSerializer})
    def post(self, request: Request, seller_uuid: Any) -> Response:
        try:
            op = import_start(seller=self.get_seller(), actor=caller_id(request.user))
        except SyncStartRefused as exc:
            raise _conflict(exc)
        return accepted(op.pk)


class SellerReconciliationsApi(SellerScopedView):
    error_statuses = (400, 404, 409)

    @extend_schema(request=ReconcileSerializer, responses={202: OperationAcceptedSerializer})
    def post(self, request: Request, seller_uuid: Any) -> Response:
        body = ReconcileSerializer(data=request.data if request.data else {})
        body.is_valid(raise_exception=True)
        try:
            op = reconcile_start(seller=self.get_seller(), dry_run=body.validated_data["dry_run"],
                                 actor=caller_id(request.user))
        except SyncStartRefused as exc:
            raise _conflict(exc)
        return accepted(op.pk)
