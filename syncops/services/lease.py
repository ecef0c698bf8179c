"""The per-seller sync lease: at most one import or reconcile per seller at a time.

The lease is two columns on ``SyncSettings`` (``lease_owner``, ``lease_expires_at``) changed only by
single conditional UPDATEs, so two workers (or two API requests) racing for it cannot both win, on
any database. The holder renews it while it works (a heartbeat every chunk); a worker that dies
stops renewing and the lease simply runs out, so nobody ever needs a "force" flag to get a seller
unstuck. All times are the database's clock (``Now()``), never a worker's, so clock skew between
machines cannot make a live lease look expired.

The owner is the operation that holds it (``op:<id>``, see ``owner_for``), which is how a 409 can
name the running operation, and how a re-delivered task of the same operation takes it back.
"""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import DateTimeField, ExpressionWrapper, Q, Value
from django.db.models.functions import Now

from inventory.models import SyncSettings

OWNER_PREFIX = "op:"


class LeaseHeld(Exception):
    """Another operation holds the seller's lease (API: 409 naming it)."""

    def __init__(self, seller_id: object, owner: str) -> None:
        super().__init__(f"seller {seller_id} is busy: the sync lease is held by {owner or 'nobody'}")
        self.seller_id = seller_id
        self.owner = owner

    @property
    def operation_id(self) -> int | None:
        return operation_id_of(self.owner)


class LeaseLost(Exception):
    """The holder's lease expired and someone else took it: the holder must stop writing."""


def lease_seconds() -> float:
    return float(settings.SYNC_LEASE_SECONDS)


def owner_for(operation_id: int) -> str:
    return f"{OWNER_PREFIX}{operation_id}"


def operation_id_of(owner: str) -> int | None:
    if owner.startswith(OWNER_PREFIX) and owner[len(OWNER_PREFIX):].isdigit():
        return int(owner[len(OWNER_PREFIX):])
    return None


def _until(seconds: float) -> ExpressionWrapper:
    return ExpressionWrapper(Now() + Value(timedelta(seconds=seconds)), output_field=DateTimeField())


def _free_or_mine(owner: str) -> Q:
    return Q(lease_owner="") | Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=Now()) | Q(lease_owner=owner)


def lease_acquire(seller_id: object, owner: str, *, seconds: float | None = None) -> bool:
    """Take the lease if it is free, expired, or already ``owner``'s (re-entrant). One UPDATE."""
    ttl = lease_seconds() if seconds is None else seconds
    return bool(
        SyncSettings.objects.filter(pk=seller_id).filter(_free_or_mine(owner))
        .update(lease_owner=owner, lease_expires_at=_until(ttl))
    )


def lease_renew(seller_id: object, owner: str, *, seconds: float | None = None) -> None:
    """Heartbeat: push the expiry forward. Raises ``LeaseLost`` if ``owner`` no longer holds it."""
    ttl = lease_seconds() if seconds is None else seconds
    if not SyncSettings.objects.filter(pk=seller_id, lease_owner=owner).update(lease_expires_at=_until(ttl)):
        raise LeaseLost(f"seller {seller_id}: lease of {owner} was lost (expired and taken over)")


def lease_release(seller_id: object, owner: str) -> bool:
    """Give the lease back (a no-op if it already passed to someone else)."""
    return bool(
        SyncSettings.objects.filter(pk=seller_id, lease_owner=owner).update(lease_owner="", lease_expires_at=None)
    )


def lease_holder(seller_id: object) -> str:
    """The live holder's owner string, or "" when the lease is free or expired."""
    row = (
        SyncSettings.objects.filter(pk=seller_id, lease_expires_at__gte=Now())
        .exclude(lease_owner="").values_list("lease_owner", flat=True).first()
    )
    return row or ""
