"""Orders as the seller sees them: sales that decrement stock like CardTrader, CardTrader Zero
(hub_pending sales merged weekly into one paid order, originals closed), the seller's own
transitions with errors on illegal moves, and cancellations that put stock back.

Callers hold ``World.lock``. Internal order records are plain dicts; ``seller_view`` renders the
API shape (modelled on the real bodies in fixtures/orders.json).
"""
from __future__ import annotations

import copy
import datetime as dt
import secrets
import time
from typing import Any

from .catalogue import catalogue
from .inventory import ItemError
from .state import Account, Product, World

STATES = ("paid", "sent", "arrived", "done", "hub_pending", "closed", "request_for_cancel", "canceled", "lost")
TERMINAL = ("canceled", "closed")
FEE_PERCENT = 5
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def money(cents: int, currency: str) -> dict:
    return {"cents": cents, "currency": currency}


def formatted(cents: int, currency: str) -> str:
    symbol = SYMBOLS.get(currency, currency + " ")
    return f"{symbol}{cents / 100:.2f}"


def _buyer(n: int) -> dict:
    return {"id": 34_000 + n, "username": f"buyer-{n}", "email": f"buyer-{n}@example.invalid",
            "phone": f"+39 000 {n:04d}"}


def _address(buyer: dict) -> dict:
    template = catalogue().sample_orders[0]
    shipping = dict(template["order_shipping_address"], user_id=buyer["id"], name=buyer["username"])
    billing = dict(template["order_billing_address"], name=buyer["username"])
    return {"shipping": shipping, "billing": billing}


def _restore(world: World, acct: Account, item: dict) -> None:
    product = acct.products.get(item["product_id"])
    if product is not None:
        product.quantity += item["quantity"]
        return
    snap = item["_snapshot"]
    acct.add(Product(item["product_id"], snap["blueprint_id"], item["quantity"], snap["price_cents"],
                     dict(snap["properties"]), snap["description"], snap["user_data_field"], snap["graded"],
                     snap["tag"], snap["bundle_size"]))


def sell(world: World, acct: Account, items: Any, *, via_cardtrader_zero: bool = False,
         presale: bool = False) -> dict:
    """A buyer's purchase: every line must be in stock (else nothing changes), stock goes down,
    a product that reaches 0 disappears from the inventory."""
    if not isinstance(items, list) or not items:
        raise ItemError({"items": ["must be a non-empty list of {product_id, quantity}"]})
    wanted: dict[int, int] = {}
    for line in items:
        if not isinstance(line, dict) or not isinstance(line.get("product_id"), int):
            raise ItemError({"items": ["each item needs an integer product_id"]})
        qty = line.get("quantity", 1)
        if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
            raise ItemError({"quantity": ["must be a positive integer"]})
        wanted[line["product_id"]] = wanted.get(line["product_id"], 0) + qty
    for pid, qty in wanted.items():
        product = acct.products.get(pid)
        if product is None:
            raise ItemError({"product_id": [f"Product {pid} not found"]}, status=404, code="not_found")
        if product.quantity < qty:
            raise ItemError({"quantity": [f"Product {pid} has only {product.quantity} available"]})
    now = time.time()
    order_id = next(world.order_ids)
    n = order_id % 10_000
    order_items = []
    for pid, qty in wanted.items():
        product = acct.products[pid]
        bp = catalogue().blueprints[product.blueprint_id]
        order_items.append({
            "id": next(world.order_item_ids), "hub_pending_order_id": order_id if via_cardtrader_zero else None,
            "product_id": pid, "quantity": qty, "created_at": now,
            "_snapshot": {"blueprint_id": bp.id, "price_cents": product.price_cents,
                          "properties": dict(product.properties), "description": product.description,
                          "user_data_field": product.user_data_field, "graded": product.graded, "tag": product.tag,
                          "bundle_size": product.bundle_size},
        })
        product.quantity -= qty
        if product.quantity <= 0:
            acct.remove(product)
    buyer = _buyer(n)
    order = {
        "id": order_id, "code": dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y%m%d") + secrets.token_hex(3),
        "transaction_code": None, "state": "hub_pending" if via_cardtrader_zero else "paid",
        "via_cardtrader_zero": via_cardtrader_zero, "merged_ids": [], "presale": bool(presale),
        "buyer": buyer, "addresses": _address(buyer), "cancel_requester": None, "created_at": now,
        "paid_at": None if via_cardtrader_zero else now, "sent_at": None, "cancelled_at": None,
        "credit_added_to_seller_at": None, "tracking_code": None, "items": order_items, "packing_number": None,
    }
    acct.orders[order_id] = order
    return order


def seller_view(acct: Account, order: dict) -> dict:
    cur = acct.currency
    items = []
    subtotal = 0
    for it in order["items"]:
        snap = it["_snapshot"]
        bp = catalogue().blueprints[snap["blueprint_id"]]
        props = dict(bp.fixed)
        props.update(snap["properties"])
        subtotal += snap["price_cents"] * it["quantity"]
        items.append({
            "id": it["id"], "hub_pending_order_id": it["hub_pending_order_id"], "product_id": it["product_id"],
            "blueprint_id": bp.id, "category_id": bp.category_id, "game_id": bp.game_id, "name": bp.name,
            "expansion": catalogue().expansion_ref(bp.expansion_id)["name_en"], "quantity": it["quantity"],
            "bundle_size": snap["bundle_size"], "description": snap["description"], "tag": snap["tag"],
            "graded": snap["graded"], "user_data_field": snap["user_data_field"], "properties": props,
            "seller_price": money(snap["price_cents"], cur), "formatted_price": formatted(snap["price_cents"], cur),
            "cancelled_price": [], "repurchase_price": [], "mkm_id": bp.raw.get("card_market_id"),
            "tcg_player_id": bp.raw.get("tcg_player_id"), "scryfall_id": bp.raw.get("scryfall_id"),
            "created_at": iso(it["created_at"]), "deleted_at": None,
        })
    fee = round(subtotal * FEE_PERCENT / 100)
    shipping_method = None
    if not order["via_cardtrader_zero"] or order["merged_ids"]:
        shipping_method = {"id": 1, "name": "Standard", "tracked": order["tracking_code"] is not None,
                           "tracking_code": order["tracking_code"], "max_estimate_shipping_days": 7,
                           "seller_price": money(0, cur), "formatted_price": formatted(0, cur)}
    return {
        "id": order["id"], "via_cardtrader_zero": order["via_cardtrader_zero"],
        "cardtrader_zero_merged_order_ids": list(order["merged_ids"]), "order_as": "seller",
        "seller": {"id": acct.user_id, "username": acct.name}, "buyer": copy.deepcopy(order["buyer"]),
        "cancel_requester": copy.deepcopy(order["cancel_requester"]), "code": order["code"],
        "transaction_code": order["transaction_code"], "state": order["state"],
        "size": sum(it["quantity"] for it in order["items"]),
        "paid_at": iso(order["paid_at"]), "credit_added_to_seller_at": iso(order["credit_added_to_seller_at"]),
        "sent_at": iso(order["sent_at"]), "cancelled_at": iso(order["cancelled_at"]),
        "presale_ended_at": None, "packing_number": order["packing_number"],
        "order_shipping_address": copy.deepcopy(order["addresses"]["shipping"]),
        "order_billing_address": copy.deepcopy(order["addresses"]["billing"]),
        "fee_percentage": f"{FEE_PERCENT:.1f}", "seller_total": money(subtotal, cur),
        "seller_fee_amount": money(fee, cur), "seller_subtotal": money(subtotal, cur),
        "formatted_subtotal": formatted(subtotal, cur), "formatted_total": formatted(subtotal, cur),
        "presale": order["presale"] or None, "order_shipping_method": shipping_method,
        "order_items": items,
    }


def get(acct: Account, order_id: Any) -> dict:
    try:
        order = acct.orders.get(int(order_id))
    except (TypeError, ValueError):
        order = None
    if order is None:
        raise ItemError({"id": ["Order not found"]}, status=404, code="not_found")
    return order


def _illegal(order: dict, action: str) -> ItemError:
    return ItemError({"state": [f"cannot {action} an order in state {order['state']}"]})


def _cancel(world: World, acct: Account, order: dict, *, relist: bool = True) -> None:
    order["state"] = "canceled"
    order["cancelled_at"] = time.time()
    if relist:
        for item in order["items"]:
            _restore(world, acct, item)


def transition(world: World, acct: Account, order: dict, state: str) -> None:
    """Marketplace-side change (buyer, CardTrader staff, the clock). Validates the name, refuses to
    leave a terminal state; entering ``canceled`` puts the stock back."""
    if state not in STATES:
        raise ItemError({"state": [f"unknown state {state!r}; one of {', '.join(STATES)}"]})
    if order["state"] in TERMINAL and state != order["state"]:
        raise _illegal(order, f"move to {state}")
    now = time.time()
    if state == "canceled":
        if order["state"] != "canceled":
            _cancel(world, acct, order)
        return
    order["state"] = state
    if state == "paid" and order["paid_at"] is None:
        order["paid_at"] = now
    elif state == "sent" and order["sent_at"] is None:
        order["sent_at"] = now
    elif state == "done":
        order["credit_added_to_seller_at"] = now
    elif state == "request_for_cancel":
        order["cancel_requester"] = {"id": order["buyer"]["id"], "username": order["buyer"]["username"]}


def merge_ct0(world: World, acct: Account) -> tuple[dict | None, list[dict]]:
    """CardTrader Zero's weekly merge: hub_pending → one merged paid order; originals closed.
    Items keep hub_pending_order_id = their original order, so stock isn't decremented twice."""
    pending = [o for o in acct.orders.values() if o["state"] == "hub_pending"]
    if not pending:
        return None, []
    now = time.time()
    merged_id = next(world.order_ids)
    items = []
    for original in pending:
        for it in original["items"]:
            items.append(dict(it, id=next(world.order_item_ids), created_at=now))
        original["state"] = "closed"
    buyer = {"id": 1, "username": "CardTrader Zero", "email": None, "phone": None}
    merged = {
        "id": merged_id, "code": dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y%m%d") + secrets.token_hex(3),
        "transaction_code": None, "state": "paid", "via_cardtrader_zero": True,
        "merged_ids": [o["id"] for o in pending], "presale": False, "buyer": buyer,
        "addresses": _address(buyer), "cancel_requester": None, "created_at": now, "paid_at": now,
        "sent_at": None, "cancelled_at": None, "credit_added_to_seller_at": None, "tracking_code": None,
        "items": items, "packing_number": 1,
    }
    acct.orders[merged_id] = merged
    return merged, pending


# --- the seller's own API actions (never fire webhooks) --------------------------------------

def set_tracking_code(order: dict, body: Any) -> None:
    code = body.get("tracking_code") if isinstance(body, dict) else None
    if not isinstance(code, str) or not code.strip():
        raise ItemError({"tracking_code": ["can't be blank"]}, code="missing_parameter")
    if order["state"] not in ("paid", "sent"):
        raise _illegal(order, "set the tracking code of")
    order["tracking_code"] = code.strip()


def ship(order: dict) -> None:
    if order["state"] != "paid":
        raise _illegal(order, "ship")
    if order["via_cardtrader_zero"] and not order["tracking_code"]:
        raise ItemError({"tracking_code": ["must be set before shipping a CardTrader Zero order"]})
    order["state"] = "sent"
    order["sent_at"] = time.time()


def request_cancellation(acct: Account, order: dict, body: Any) -> None:
    body = body if isinstance(body, dict) else {}
    explanation = body.get("cancel_explanation")
    if not isinstance(explanation, str) or not explanation:
        raise ItemError({"cancel_explanation": ["can't be blank"]}, code="missing_parameter")
    if len(explanation) < 50:
        raise ItemError({"cancel_explanation": ["is too short (minimum is 50 characters)"]})
    if order["state"] not in ("paid", "sent"):
        raise _illegal(order, "request the cancellation of")
    order["state"] = "request_for_cancel"
    order["cancel_requester"] = {"id": acct.user_id, "username": acct.name}
    order["relist_if_cancelled"] = body.get("relist_if_cancelled", True) is not False


def confirm_cancellation(world: World, acct: Account, order: dict, body: Any) -> None:
    """The seller confirms the buyer's request (confirming one's own request is illegal)."""
    body = body if isinstance(body, dict) else {}
    requester = order.get("cancel_requester") or {}
    if order["state"] != "request_for_cancel" or requester.get("id") == acct.user_id:
        raise _illegal(order, "confirm the cancellation of")
    _cancel(world, acct, order, relist=body.get("relist_if_cancelled", True) is not False)


# --- listing ---------------------------------------------------------------------------------

def _int(value: str | None, default: int, lo: int, hi: int) -> int:
    try:
        n = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return n if lo <= n <= hi else default


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def list_orders(acct: Account, q: dict[str, str]) -> list[dict]:
    """GET /orders with CardTrader's silent fallback to defaults for bad values."""
    if q.get("order_as") == "buyer":
        return []
    page = _int(q.get("page"), 1, 1, 10**9)
    limit = _int(q.get("limit"), 20, 1, 100)
    sort = q.get("sort") if q.get("sort") in ("id.asc", "id.desc", "date.asc", "date.desc") else "date.desc"
    frm, to = _date(q.get("from")), _date(q.get("to"))
    from_id = _int(q.get("from_id"), 0, 0, 10**15) if q.get("from_id") else None
    to_id = _int(q.get("to_id"), 0, 0, 10**15) if q.get("to_id") else None
    state = q.get("state") if q.get("state") in STATES else None
    rows = []
    for o in acct.orders.values():
        day = dt.datetime.fromtimestamp(o["created_at"], dt.UTC).date()
        if (frm and day < frm) or (to and day > to) or (state and o["state"] != state):
            continue
        if (from_id is not None and o["id"] <= from_id) or (to_id is not None and o["id"] > to_id):
            continue
        rows.append(o)
    field, direction = sort.split(".")
    key = (lambda o: o["id"]) if field == "id" else (lambda o: (o["created_at"], o["id"]))
    rows.sort(key=key, reverse=direction == "desc")
    return [seller_view(acct, o) for o in rows[(page - 1) * limit: page * limit]]
