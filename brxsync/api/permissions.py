"""Who may act for which seller.

A seller acts only for their own UUID; a service (API key) for any seller. Another seller's
resources answer 404, exactly like resources that do not exist, so ids cannot be probed.
"""
from __future__ import annotations

import uuid
from typing import Any

from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from brxsync.api.authentication import is_service


def seller_scope(user: Any) -> uuid.UUID | None:
    """The only seller ``user`` may see, or None for a service that may see every seller.

    Selectors take this as ``seller_id`` so the filtering happens in the query, not after it.
    """
    return None if is_service(user) else user.pk


def can_act_for(user: Any, seller_id: Any) -> bool:
    return is_service(user) or str(user.pk) == str(seller_id)


class IsSellerOrService(BasePermission):
    """Authenticated through the API (JWT or API key): staff sessions do not reach the API."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (is_service(user) or request.auth is not None))


class ActsForSeller(IsSellerOrService):
    """For URLs carrying ``seller_uuid`` (and for objects with a ``seller_id``): other sellers → 404."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not super().has_permission(request, view):
            return False
        seller_id = view.kwargs.get("seller_uuid")
        if seller_id is not None and not can_act_for(request.user, seller_id):
            raise exceptions.NotFound()
        return True

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        if not can_act_for(request.user, getattr(obj, "seller_id", None)):
            raise exceptions.NotFound()
        return True
