"""Base classes for every ``/api/v1`` endpoint; new endpoints subclass these.

- ``ApiView``: JWT or API key, per-caller throttles, the error envelope, and ``Idempotency-Key``
  on every mutating method (automatic: a subclass's ``post``/``put``/``patch``/``delete`` runs
  inside the idempotency protocol and one transaction; see ``brxsync.api.idempotency``).
- ``SellerScopedView``: for ``<uuid:seller_uuid>`` URLs; another seller's id is a 404;
  ``self.get_seller()`` gives the seller row.
- ``accepted(operation_id)``: the contract's ``202 {"operation_id": ...}`` answer.
- Lists: ``self.paginate(queryset, Serializer)`` answers a cursor page; declare the response as
  ``Serializer(many=True)`` and the schema shows the page and its ``cursor``/``limit`` params.

A "seller-scoped, idempotent, 202 with operation id" endpoint is therefore::

    class ImportsApi(SellerScopedView):
        error_statuses = (404, 409)

        @extend_schema(request=None, responses={202: OperationAcceptedSerializer})
        def post(self, request, seller_uuid):
            operation = import_start(seller=self.get_seller())   # one service call
            return accepted(operation.pk)
"""
from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from brxsync.api import idempotency
from brxsync.api.authentication import ApiKeyAuthentication, JWTAuthentication, caller_id
from brxsync.api.pagination import CursorPage
from brxsync.api.permissions import ActsForSeller, IsSellerOrService
from brxsync.api.schema import ApiAutoSchema


class OperationAcceptedSerializer(serializers.Serializer):
    operation_id = serializers.IntegerField()


def accepted(operation_id: int) -> Response:
    return Response(
        {"operation_id": operation_id},
        status=status.HTTP_202_ACCEPTED,
        headers={"Location": f"/api/v1/operations/{operation_id}"},
    )


class ApiView(APIView):
    authentication_classes = [JWTAuthentication, ApiKeyAuthentication]
    permission_classes = [IsSellerOrService]
    schema = ApiAutoSchema()
    # Every list is a cursor page: with this set, a view declaring ``responses={200: X(many=True)}``
    # is documented as ``{"next", "previous", "results": [X]}`` with ``cursor``/``limit``.
    pagination_class = CursorPage
    idempotent = True  # set False only for endpoints whose callers cannot send the header
    error_statuses: tuple[int, ...] = ()  # extra documented error statuses (404, 409...)

    def check_permissions(self, request: Request) -> None:
        """Throttle before the permission checks, so a caller probing other sellers' ids (404s)
        spends their budget like any other request. DRF's order is the reverse."""
        self._throttles_checked = True
        super().check_throttles(request)
        super().check_permissions(request)

    def check_throttles(self, request: Request) -> None:
        if not getattr(self, "_throttles_checked", False):
            super().check_throttles(request)

    def paginate(self, queryset: Any, serializer_class: type[serializers.Serializer]) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True).data)

    def _handler(self, request: Request) -> Any:
        method = request.method.lower()
        if method in self.http_method_names:
            return getattr(self, method, self.http_method_not_allowed)
        return self.http_method_not_allowed

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """DRF's dispatch, with the handler wrapped in the idempotency protocol."""
        self.args, self.kwargs = args, kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        record = None
        try:
            self.initial(request, *args, **kwargs)
            handler = self._handler(request)
            key = request.headers.get(idempotency.HEADER)
            if (
                key is not None
                and self.idempotent
                and request.method in idempotency.MUTATING_METHODS
                and handler != self.http_method_not_allowed
            ):
                claimed = idempotency.begin(
                    caller=caller_id(request.user), key=key, method=request.method,
                    path=request.get_full_path(), body=request.body,
                )
                if isinstance(claimed, Response):
                    response = claimed
                else:
                    record = claimed
                    with transaction.atomic():
                        response = handler(request, *args, **kwargs)
                        # Whatever the handler *returned* is its answer, committed with its effect.
                        idempotency.complete(record, response)
                        record = None
            else:
                response = handler(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        if record is not None:  # the handler raised: its transaction rolled back, nothing was done
            if response.status_code < 500:
                idempotency.complete(record, response)
            else:
                idempotency.release(record)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response


class SellerScopedView(ApiView):
    permission_classes = [ActsForSeller]
    error_statuses = (404,)

    def get_seller(self) -> Any:
        """The seller of the URL (already checked: a seller may only name themselves)."""
        from rest_framework.exceptions import NotFound

        from inventory.selectors import seller_get

        seller = seller_get(seller_id=self.kwargs["seller_uuid"])
        if seller is None:
            raise NotFound()
        return seller
