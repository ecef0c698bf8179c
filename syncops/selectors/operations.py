"""Reads of operations. Every function takes ``seller_id`` (None = any seller, for services)
so visibility is applied in the query, never by filtering rows after loading them."""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from django.db.models import QuerySet

from syncops.models import OperationState, SyncOperation


def _visible(seller_id: uuid.UUID | None) -> QuerySet[SyncOperation]:
    qs = SyncOperation.objects.all()
    return qs if seller_id is None else qs.filter(seller_id=seller_id)


def operation_get(*, operation_id: int, seller_id: uuid.UUID | None) -> SyncOperation | None:
    return _visible(seller_id).filter(pk=operation_id).first()


def operation_list(
    *,
    seller_id: uuid.UUID,
    states: Iterable[str] = (),
    kinds: Iterable[str] = (),
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    product_id: int | None = None,
) -> QuerySet[SyncOperation]:
    """A seller's operations, newest first (served by the (seller, -created_at) index)."""
    qs = SyncOperation.objects.filter(seller_id=seller_id)
    if states := list(states):
        qs = qs.filter(state__in=states)
    if kinds := list(kinds):
        qs = qs.filter(kind__in=kinds)
    if created_after is not None:
        qs = qs.filter(created_at__gte=created_after)
    if created_before is not None:
        qs = qs.filter(created_at__lt=created_before)
    if product_id is not None:
        qs = qs.filter(product_id=product_id)
    return qs.order_by("-created_at", "-id")


def operation_running(*, seller_id: uuid.UUID) -> SyncOperation | None:
    """The seller's most recently started running operation (an import shows its progress)."""
    return (
        SyncOperation.objects.filter(seller_id=seller_id, state=OperationState.RUNNING)
        .order_by("-started_at", "-id")
        .first()
    )


def operation_pending_count(*, seller_id: uuid.UUID) -> int:
    return SyncOperation.objects.filter(seller_id=seller_id, state=OperationState.PENDING).count()
