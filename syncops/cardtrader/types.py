"""Typed results of the CardTrader client, built from CardTrader's JSON.

Every ``from_json`` reads the keys it knows and ignores the rest, because CardTrader adds fields
over time (``fixed_properties``, ``image``, ``card_market_ids`` replacing ``card_market_id``...).
A missing required key or a wrong type raises KeyError / TypeError / ValueError, which the client
turns into ``UnexpectedResponse``.

CardTrader returns a product in two shapes: export rows (``price_cents`` + ``price_currency``,
``properties_hash``, ``graded`` as a bool) and the write ``resource`` (``price{cents,currency}``,
``properties``, ``graded`` as 0/1). ``Product.from_json`` accepts both so nothing downstream
has to know which endpoint a product came from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

JobState = Literal["pending", "running", "completed", "unprocessable"]
ItemResult = Literal["ok", "warning", "error"]


def _int(value: Any) -> int:
    """An integer id/count. Rejects bools and floats with a fraction: those mean a wrong shape."""
    if isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise TypeError(f"expected an integer, got {value!r}")


def _opt_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _bool(value: Any) -> bool:
    """CardTrader's booleans arrive as true/false, 0/1 or "true"/"false" depending on the endpoint."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    raise TypeError(f"expected a boolean, got {value!r}")


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def normalise_messages(value: Any) -> dict[str, Any]:
    """``warnings`` / ``errors`` arrive as ``{}``, ``[]``, ``{"field": [...]}`` or a list of texts.

    Always return a dict: an empty list becomes ``{}``, a non-empty list is kept under ``"base"``
    (the field-less messages) so nothing CardTrader said is lost.
    """
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return {"base": list(value)} if value else {}
    return {"base": [str(value)]}


def unwrap_array(body: Any) -> list[Any]:
    """A list endpoint answers a bare array or ``{"array": [...]}`` (seen on /games)."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get("array"), list):
        return body["array"]
    raise TypeError("expected a JSON array or {\"array\": [...]}")


@dataclass(frozen=True, slots=True)
class AppInfo:
    id: int
    name: str
    user_id: int | None
    shared_secret: str = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppInfo:
        return cls(
            id=_int(data["id"]),
            name=_str(data.get("name")),
            user_id=_opt_int(data.get("user_id")),
            shared_secret=_str(data.get("shared_secret")),
        )


@dataclass(frozen=True, slots=True)
class Game:
    id: int
    name: str
    display_name: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Game:
        return cls(id=_int(data["id"]), name=_str(data.get("name")),
                   display_name=_str(data.get("display_name") or data.get("name")))


@dataclass(frozen=True, slots=True)
class PropertyDef:
    name: str
    type: str
    possible_values: tuple[Any, ...] = ()
    default_value: Any = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PropertyDef:
        return cls(
            name=_str(data["name"]),
            type=_str(data.get("type")),
            possible_values=tuple(data.get("possible_values") or ()),
            default_value=data.get("default_value"),
        )


@dataclass(frozen=True, slots=True)
class Category:
    id: int
    name: str
    game_id: int | None
    properties: tuple[PropertyDef, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Category:
        return cls(
            id=_int(data["id"]),
            name=_str(data.get("name")),
            game_id=_opt_int(data.get("game_id")),
            properties=tuple(PropertyDef.from_json(p) for p in data.get("properties") or ()),
        )


@dataclass(frozen=True, slots=True)
class Expansion:
    id: int
    game_id: int | None
    code: str
    name: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Expansion:
        return cls(id=_int(data["id"]), game_id=_opt_int(data.get("game_id")),
                   code=_str(data.get("code")), name=_str(data.get("name") or data.get("name_en")))


@dataclass(frozen=True, slots=True)
class Blueprint:
    id: int
    name: str
    game_id: int | None
    category_id: int | None
    expansion_id: int | None
    version: str | None = None
    editable_properties: tuple[PropertyDef, ...] = ()
    fixed_properties: dict[str, Any] = field(default_factory=dict)
    card_market_ids: tuple[int, ...] = ()
    tcg_player_id: int | None = None
    scryfall_id: str | None = None
    image_url: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Blueprint:
        cm_ids = data.get("card_market_ids")
        if cm_ids is None and data.get("card_market_id") is not None:  # the 2022 singular form
            cm_ids = [data["card_market_id"]]
        return cls(
            id=_int(data["id"]),
            name=_str(data.get("name")),
            game_id=_opt_int(data.get("game_id")),
            category_id=_opt_int(data.get("category_id")),
            expansion_id=_opt_int(data.get("expansion_id")),
            version=data.get("version"),
            editable_properties=tuple(PropertyDef.from_json(p) for p in data.get("editable_properties") or ()),
            fixed_properties=dict(data.get("fixed_properties") or {}),
            card_market_ids=tuple(_int(i) for i in cm_ids or ()),
            tcg_player_id=_opt_int(data.get("tcg_player_id")),
            scryfall_id=data.get("scryfall_id"),
            image_url=data.get("image_url"),
        )


@dataclass(frozen=True, slots=True)
class Product:
    """One of the seller's CardTrader products, whichever endpoint it came from.

    Slotted and flat on purpose: the import holds one at a time but builds 250,000 of them.
    """

    id: int
    blueprint_id: int
    quantity: int
    price_cents: int
    currency: str
    properties: dict[str, Any]
    description: str = ""
    user_data_field: str = ""
    graded: bool = False
    bundle_size: int = 1
    game_id: int | None = None
    category_id: int | None = None
    expansion_id: int | None = None
    name_en: str = ""
    tag: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Product:
        price = data.get("price")
        if isinstance(price, dict):  # write resource / marketplace listing
            price_cents = _int(price["cents"])
            currency = _str(price.get("currency"))
        else:  # export row
            price_cents = _int(data["price_cents"])
            currency = _str(data.get("price_currency"))
        props = data.get("properties_hash")
        if props is None:
            props = data.get("properties")
        expansion_id = data.get("expansion_id")
        if expansion_id is None and isinstance(data.get("expansion"), dict):
            expansion_id = data["expansion"].get("id")
        return cls(
            id=_int(data["id"]),
            blueprint_id=_int(data["blueprint_id"]),
            quantity=_int(data["quantity"]),
            price_cents=price_cents,
            currency=currency,
            properties=dict(props or {}),
            description=_str(data.get("description")),
            user_data_field=_str(data.get("user_data_field")),
            graded=_bool(data.get("graded")),
            bundle_size=_int(data.get("bundle_size") or 1),
            game_id=_opt_int(data.get("game_id")),
            category_id=_opt_int(data.get("category_id")),
            expansion_id=_opt_int(expansion_id),
            name_en=_str(data.get("name_en")),
            tag=_str(data.get("tag")),
        )


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The answer to a single-product write. ``product`` is None when CardTrader sent no
    resource (e.g. an increment that took the quantity to zero and deleted the product)."""

    product: Product | None
    warnings: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WriteResult:
        if not isinstance(data, dict):
            raise TypeError("expected a JSON object")
        if data.get("result") not in (None, "ok"):
            raise ValueError(f"unexpected result {data.get('result')!r}")
        resource = data.get("resource")
        product = Product.from_json(resource) if isinstance(resource, dict) and resource else None
        return cls(product=product, warnings=normalise_messages(data.get("warnings")))


@dataclass(frozen=True, slots=True)
class JobItem:
    """One payload item's outcome inside a bulk job (``index`` is its position in the payload)."""

    index: int
    result: ItemResult
    product_id: int | None
    errors: dict[str, Any]
    warnings: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobItem:
        result = _str(data.get("result"))
        if result not in ("ok", "warning", "error"):
            raise ValueError(f"unknown job item result {result!r}")
        return cls(
            index=_int(data["job_index"]),
            result=result,  # type: ignore[arg-type]
            product_id=_opt_int(data.get("product_id")),
            errors=normalise_messages(data.get("errors")),
            warnings=normalise_messages(data.get("warnings")),
        )


@dataclass(frozen=True, slots=True)
class Job:
    uuid: str
    state: JobState
    spawned_children: int | None
    stats: dict[str, int]
    results: tuple[JobItem, ...]

    @property
    def finished(self) -> bool:
        return self.state in ("completed", "unprocessable")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        state = _str(data.get("state"))
        if state not in ("pending", "running", "completed", "unprocessable"):
            raise ValueError(f"unknown job state {state!r}")
        stats = data.get("stats") or {}
        return cls(
            uuid=_str(data["uuid"]),
            state=state,  # type: ignore[arg-type]
            spawned_children=_opt_int(data.get("spawned_children")),
            stats={str(k): _int(v) for k, v in stats.items()} if isinstance(stats, dict) else {},
            results=tuple(sorted((JobItem.from_json(r) for r in data.get("results") or ()),
                                 key=lambda item: item.index)),
        )


@dataclass(frozen=True, slots=True)
class Money:
    cents: int
    currency: str

    @classmethod
    def from_json(cls, data: Any) -> Money | None:
        if not isinstance(data, dict) or data.get("cents") is None:
            return None
        return cls(cents=_int(data["cents"]), currency=_str(data.get("currency")))


@dataclass(frozen=True, slots=True)
class OrderItem:
    id: int
    product_id: int | None
    blueprint_id: int | None
    quantity: int
    hub_pending_order_id: int | None
    properties: dict[str, Any]
    seller_price: Money | None
    deleted_at: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OrderItem:
        return cls(
            id=_int(data["id"]),
            product_id=_opt_int(data.get("product_id")),
            blueprint_id=_opt_int(data.get("blueprint_id")),
            quantity=_int(data["quantity"]),
            hub_pending_order_id=_opt_int(data.get("hub_pending_order_id")),
            properties=dict(data.get("properties") or {}),
            seller_price=Money.from_json(data.get("seller_price")),
            deleted_at=data.get("deleted_at"),
        )


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the seller sees it. ``raw`` keeps CardTrader's whole object for the audit
    trail and for fields nobody reads yet (addresses, fees)."""

    id: int
    code: str
    state: str
    via_cardtrader_zero: bool
    presale: bool
    order_as: str
    items: tuple[OrderItem, ...]
    paid_at: str | None
    sent_at: str | None
    cancelled_at: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Order:
        return cls(
            id=_int(data["id"]),
            code=_str(data.get("code")),
            state=_str(data["state"]),
            via_cardtrader_zero=_bool(data.get("via_cardtrader_zero")),
            presale=_bool(data.get("presale")),
            order_as=_str(data.get("order_as")),
            items=tuple(OrderItem.from_json(i) for i in data.get("order_items") or ()),
            paid_at=data.get("paid_at"),
            sent_at=data.get("sent_at"),
            cancelled_at=data.get("cancelled_at"),
            raw=data,
        )
