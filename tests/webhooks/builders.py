"""Builders for CardTrader order snapshots and signed deliveries, shaped like the real bodies in
/work/shared/cardtrader-samples/orders.json (the sandbox renders the same shape)."""
from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any

from syncops import webhook_signature

_item_ids = itertools.count(900_000_000)


def order(
    order_id: int,
    state: str,
    items: list[tuple[int, int]] | list[dict[str, Any]],
    *,
    ct0: bool = False,
    presale: bool | None = None,
    merged_ids: list[int] | None = None,
) -> dict[str, Any]:
    """A seller-view order. ``items`` are (product_id, quantity) pairs or ready item dicts."""
    rendered = []
    for it in items:
        if isinstance(it, tuple):
            product_id, quantity = it
            it = {"id": next(_item_ids), "product_id": product_id, "quantity": quantity,
                  "hub_pending_order_id": order_id if ct0 else None}
        rendered.append({"blueprint_id": 16253, "name": "One-Eyed Scarecrow", "deleted_at": None, **it})
    return {
        "id": order_id, "state": state, "via_cardtrader_zero": ct0, "presale": presale,
        "cardtrader_zero_merged_order_ids": merged_ids or [], "order_as": "seller",
        "buyer": {"id": 34089, "username": "buyer"}, "order_items": rendered,
    }


def delivery(
    data: dict[str, Any] | None,
    *,
    cause: str = "order.update",
    object_id: int | None = None,
    mode: str = "live",
    at: float | None = None,
    delivery_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": delivery_id or str(uuid.uuid4()),
        "time": int(time.time() if at is None else at),
        "cause": cause,
        "object_class": "Order",
        "object_id": object_id if object_id is not None else (data or {})["id"],
        "mode": mode,
        "data": data if data is not None else {},
    }


def destroy(order_id: int, **kw: Any) -> dict[str, Any]:
    return delivery({}, cause="order.destroy", object_id=order_id, **kw)


def body_of(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def signed(doc: dict[str, Any] | bytes, secret: str) -> tuple[bytes, str]:
    body = doc if isinstance(doc, bytes) else body_of(doc)
    return body, webhook_signature.sign(body, secret)
