"""Request bodies for product writes.

Callers speak integer cents (the model stores ``price_cents``); CardTrader wants ``price`` as a
float in major units. ``cents / 100`` is the correctly rounded double nearest the decimal value,
and JSON encodes a float by its shortest round-trip repr, so 6258 goes out as exactly ``62.58``.

Properties are sent as given, falsy values included: CardTrader only changes what it is sent, so
dropping ``mtg_foil: false`` (what the earlier implementation did) silently left foils foil.
"""
from __future__ import annotations

from typing import Any, NotRequired, TypedDict

# Fields CardTrader accepts on create/update besides price and properties.
_PLAIN_FIELDS = ("quantity", "description", "user_data_field", "graded", "error_mode")


class ProductCreate(TypedDict):
    blueprint_id: int
    price_cents: int
    quantity: int
    properties: NotRequired[dict[str, Any]]
    description: NotRequired[str]
    user_data_field: NotRequired[str]
    graded: NotRequired[bool]
    error_mode: NotRequired[str]


class ProductUpdate(TypedDict):
    id: int
    price_cents: NotRequired[int]
    quantity: NotRequired[int]
    properties: NotRequired[dict[str, Any]]
    description: NotRequired[str]
    user_data_field: NotRequired[str]
    graded: NotRequired[bool]
    error_mode: NotRequired[str]


def cents_to_price(cents: int) -> float:
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError(f"price_cents must be an int, got {type(cents).__name__}")
    if cents < 0:
        raise ValueError("price_cents must not be negative")
    return cents / 100


def _check_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


def product_body(fields: dict[str, Any], *, require: tuple[str, ...] = (), strict: bool = False) -> dict[str, Any]:
    """Translate one create/update item into CardTrader's body. Unknown keys are an error so a
    typo ("foil" for "mtg_foil" at top level, "price" in major units) never goes out silently."""
    allowed = {"id", "blueprint_id", "price_cents", "properties", *_PLAIN_FIELDS}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown product field(s): {', '.join(sorted(unknown))}")
    missing = [name for name in require if name not in fields]
    if missing:
        raise ValueError(f"missing product field(s): {', '.join(missing)}")
    body: dict[str, Any] = {}
    for name in ("id", "blueprint_id"):
        if name in fields:
            body[name] = _check_int(name, fields[name])
    if "price_cents" in fields:
        body["price"] = cents_to_price(fields["price_cents"])
    if "quantity" in fields:
        body["quantity"] = _check_int("quantity", fields["quantity"])
    for name in ("description", "user_data_field"):
        if name in fields:
            body[name] = "" if fields[name] is None else str(fields[name])
    if "graded" in fields:
        body["graded"] = bool(fields["graded"])
    if "properties" in fields:
        props = fields["properties"]
        if not isinstance(props, dict):
            raise TypeError("properties must be a dict")
        body["properties"] = dict(props)  # every key kept, False and "" included
    if "error_mode" in fields:
        body["error_mode"] = fields["error_mode"]
    elif strict:
        body["error_mode"] = "strict"
    return body
