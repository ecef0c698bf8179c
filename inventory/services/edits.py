"""Local writes that must reach CardTrader: edit, delete, adjust (sale / restock), batch.

Each write changes the item AND inserts its ``SyncOperation`` (the outbox row) in ONE
transaction, then asks for the push task only once that transaction has committed
(``transaction.on_commit``). A crash between the two loses nothing: the row is in the outbox and
the sweeper re-dispatches it. Pushes come only from here, never from model signals, so a
webhook-driven stock change (which writes the item directly) never bounces back to CardTrader.

Stock never goes below zero: ``item_adjust`` is one conditional UPDATE (``quantity + delta >= 0``),
so fifty concurrent sales of ten cards leave exactly ten winners and nothing half-written.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from brxsync.errors import ServiceError
from inventory.models import InventoryItem, ItemSyncState, User
from inventory.properties import PropertyError, normalise_bool, normalise_properties
from syncops.models import OperationKind, SyncOperation

EDITABLE_FIELDS = ("quantity", "price_cents", "description", "user_data_field", "graded", "properties")
MAX_TEXT = {"description": 5000, "user_data_field": 1000}
MAX_INT = 2_000_000_000
MAX_BATCH = 1000


class EditError(ServiceError):
    """A refused write; ``status``/``code`` are what the API answers, ``details`` the field errors."""


class EditInvalid(EditError):
    status = 400
    code = "validation_error"


class ItemNotFound(EditError):
    status = 404
    code = "not_found"


class ItemBeingDeleted(EditError):
    status = 409
    code = "item_pending_delete"


class InsufficientStock(EditError):
    status = 409
    code = "insufficient_stock"


@dataclass
class BatchEdit:
    """One entry of a batch: ``action`` is update | delete | adjust."""

    item_id: int
    action: str
    changes: dict[str, Any] = field(default_factory=dict)
    delta: int = 0
    reason: str = ""


def _int_field(name: str, value: Any, errs: dict[str, list[str]]) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        errs[name] = ["must be an integer"]
        return None
    if value < 0:
        errs[name] = ["must not be negative"]
        return None
    if value > MAX_INT:
        errs[name] = ["is too large"]
        return None
    return value


def validate_changes(changes: Mapping[str, Any], *, item: InventoryItem) -> dict[str, Any]:
    """Check and normalise an edit. ``None`` clears a field: text becomes "", ``graded`` false,
    a property its CardTrader default (sent explicitly). Properties merge over the stored ones."""
    if not isinstance(changes, Mapping) or not changes:
        hint = f"give at least one of {', '.join(EDITABLE_FIELDS)}"
        raise EditInvalid("nothing to change", {"non_field_errors": [hint]})
    errs: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in EDITABLE_FIELDS:
            errs[name] = [f"not editable (editable: {', '.join(EDITABLE_FIELDS)})"]
        elif name in ("quantity", "price_cents"):
            if value is None:
                errs[name] = ["cannot be cleared"]
            else:
                checked = _int_field(name, value, errs)
                if checked is not None and name == "price_cents" and checked < 1:
                    errs[name] = ["must be at least 1 (CardTrader refuses a zero price)"]
                elif checked is not None:
                    out[name] = checked
        elif name in MAX_TEXT:
            text = "" if value is None else value
            if not isinstance(text, str):
                errs[name] = ["must be a string or null"]
            elif len(text) > MAX_TEXT[name]:
                errs[name] = [f"at most {MAX_TEXT[name]} characters"]
            else:
                out[name] = text
        elif name == "graded":
            try:
                out[name] = False if value is None else normalise_bool(value)
            except ValueError as exc:
                errs[name] = [str(exc)]
        else:  # properties
            try:
                normalised = normalise_properties(value if value is not None else {}, game_id=item.game_id)
            except PropertyError as exc:
                errs["properties"] = [f"{k}: {' '.join(v)}" for k, v in exc.errors.items()]
            else:
                out[name] = {**(item.properties or {}), **normalised}
    if errs:
        raise EditInvalid("invalid edit", errs)
    return out


def _dispatch_on_commit(seller_id: Any) -> None:
    from syncops.services.push_dispatch import push_dispatch

    transaction.on_commit(lambda: push_dispatch(str(seller_id)))


def _locked_item(seller: User, item_id: int) -> InventoryItem:
    try:
        item = InventoryItem.objects.select_for_update().get(seller=seller, pk=item_id)
    except (InventoryItem.DoesNotExist, ValueError, TypeError):
        raise ItemNotFound("no such item") from None
    if item.sync_state == ItemSyncState.PENDING_DELETE:
        raise ItemBeingDeleted("the item is being deleted on CardTrader; it can no longer be changed")
    return item


def _outbox(item: InventoryItem, kind: str, payload: dict[str, Any]) -> SyncOperation:
    return SyncOperation.objects.create(
        operation_key=f"{kind}:{item.pk}:v{item.version}",
        seller_id=item.seller_id,
        kind=kind,
        item=item,
        product_id=item.product_id,
        payload={**payload, "version": item.version},
        progress_total=1,
    )


def _edit(seller: User, item_id: int, changes: Mapping[str, Any]) -> SyncOperation:
    item = _locked_item(seller, item_id)
    clean = validate_changes(changes, item=item)
    for name, value in clean.items():
        setattr(item, name, value)
    item.version += 1
    item.sync_state = ItemSyncState.PENDING_PUSH
    item.save(update_fields=[*clean, "version", "sync_state", "updated_at"])
    return _outbox(item, OperationKind.PUSH_UPDATE, {"fields": sorted(clean)})


def _delete(seller: User, item_id: int) -> SyncOperation:
    item = _locked_item(seller, item_id)
    item.version += 1
    item.sync_state = ItemSyncState.PENDING_DELETE
    item.save(update_fields=["version", "sync_state", "updated_at"])
    return _outbox(item, OperationKind.PUSH_DELETE, {})


def _adjust(seller: User, item_id: int, delta: Any, reason: str) -> SyncOperation:
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0 or abs(delta) > MAX_INT:
        raise EditInvalid("invalid adjustment", {"delta": ["must be a non-zero integer"]})
    if not isinstance(reason, str) or len(reason) > 200:
        raise EditInvalid("invalid adjustment", {"reason": ["must be a string of at most 200 characters"]})
    # One conditional UPDATE: the check and the write are atomic, so concurrent sales can never
    # take the quantity below zero (the check constraint is the last line of defence).
    changed = (
        InventoryItem.objects.filter(seller=seller, pk=item_id, quantity__gte=-delta)
        .exclude(sync_state=ItemSyncState.PENDING_DELETE)
        .update(quantity=F("quantity") + delta, version=F("version") + 1,
                sync_state=ItemSyncState.PENDING_PUSH, updated_at=timezone.now())
    )
    if not changed:
        current = InventoryItem.objects.filter(seller=seller, pk=item_id).values("quantity", "sync_state").first()
        if current is None:
            raise ItemNotFound("no such item")
        if current["sync_state"] == ItemSyncState.PENDING_DELETE:
            raise ItemBeingDeleted("the item is being deleted on CardTrader; it can no longer be changed")
        raise InsufficientStock(
            f"only {current['quantity']} in stock: a change of {delta} would go below zero",
            {"quantity": current["quantity"], "delta": delta},
        )
    item = InventoryItem.objects.get(seller=seller, pk=item_id)  # our UPDATE holds the row lock
    return _outbox(item, OperationKind.ADJUST, {"delta": delta, "reason": reason})


def item_edit(*, seller: User, item_id: int, changes: Mapping[str, Any]) -> SyncOperation:
    """Change fields of one item and queue the push (``quantity`` here is the absolute stock the
    seller states; sales and restocks go through ``item_adjust`` as deltas)."""
    with transaction.atomic():
        op = _edit(seller, item_id, changes)
        _dispatch_on_commit(seller.pk)
    return op


def item_delete(*, seller: User, item_id: int) -> SyncOperation:
    """Mark the item pending_delete and queue the CardTrader delete. The row stays until
    CardTrader confirms, so a failed delete can be retried instead of leaving an orphan listing."""
    with transaction.atomic():
        op = _delete(seller, item_id)
        _dispatch_on_commit(seller.pk)
    return op


def item_adjust(*, seller: User, item_id: int, delta: int, reason: str = "") -> SyncOperation:
    """Record a local sale (negative) or restock (positive); sent to CardTrader as a delta."""
    with transaction.atomic():
        op = _adjust(seller, item_id, delta, reason)
        _dispatch_on_commit(seller.pk)
    return op


def items_batch(*, seller: User, edits: Iterable[BatchEdit]) -> list[SyncOperation]:
    """Apply many edits all-or-nothing: one bad entry refuses the whole batch (its index named)."""
    entries = list(edits)
    if not entries:
        raise EditInvalid("empty batch", {"edits": ["give at least one edit"]})
    if len(entries) > MAX_BATCH:
        raise EditInvalid("batch too large", {"edits": [f"at most {MAX_BATCH} edits per batch"]})
    ops: list[SyncOperation] = []
    with transaction.atomic():
        for index, entry in enumerate(entries):
            try:
                if entry.action == "update":
                    ops.append(_edit(seller, entry.item_id, entry.changes))
                elif entry.action == "delete":
                    ops.append(_delete(seller, entry.item_id))
                elif entry.action == "adjust":
                    ops.append(_adjust(seller, entry.item_id, entry.delta, entry.reason))
                else:
                    raise EditInvalid("invalid edit", {"action": ["must be update, delete or adjust"]})
            except EditError as exc:
                exc.details = {"index": index, "item_id": entry.item_id, "errors": exc.details}
                exc.message = f"edit {index} (item {entry.item_id}): {exc.message}"
                raise
        _dispatch_on_commit(seller.pk)
    return ops
