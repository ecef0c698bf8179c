"""Parsing CardTrader's bodies into typed results, on the real 2022/2025 response samples.

No HTTP here: these pin the tolerance rules (both product shapes, both list shapes, warnings as {}
or [], unknown keys) that the contract tests then exercise against the sandbox.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncops.cardtrader import Blueprint, Category, Game, Job, Order, Product, WriteResult, cents_to_price
from syncops.cardtrader.payloads import product_body
from syncops.cardtrader.types import normalise_messages, unwrap_array

SAMPLES = Path("/work/shared/cardtrader-samples")


def _sample(name: str):
    return json.loads((SAMPLES / name).read_text())


def test_games_sample_with_array_wrapper_and_bare_array_parse_the_same():
    body = _sample("games.json")
    assert isinstance(body, dict) and "array" in body
    wrapped = [Game.from_json(g) for g in unwrap_array(body)]
    bare = [Game.from_json(g) for g in unwrap_array(body["array"])]
    assert wrapped == bare
    assert wrapped[0] == Game(id=1, name="Magic", display_name="Magic: the Gathering")


def test_unwrap_array_refuses_other_shapes():
    with pytest.raises(TypeError):
        unwrap_array({"error": "nope"})
    with pytest.raises(TypeError):
        unwrap_array("[]")


def test_categories_and_blueprints_samples_parse_with_properties():
    categories = [Category.from_json(c) for c in _sample("categories.json")]
    mtg = next(c for c in categories if c.id == 1)
    assert "condition" in {p.name for p in mtg.properties}
    blueprints = [Blueprint.from_json(b) for b in _sample("blueprints_export_expansion_1.json")]
    assert blueprints and all(b.expansion_id == 1 for b in blueprints)
    assert any(b.editable_properties for b in blueprints)


def test_blueprint_reads_the_old_singular_card_market_id():
    bp = Blueprint.from_json({"id": 5, "name": "X", "card_market_id": 77, "new_key": {"x": 1}})
    assert bp.card_market_ids == (77,)


def test_both_product_shapes_normalise_to_the_same_product():
    export_row = {
        "id": 108455069, "name_en": "Shock", "quantity": 4, "bundle_size": 1, "bundled_quantity": 4,
        "description": "nice", "price_cents": 6258, "price_currency": "EUR", "game_id": 1, "category_id": 1,
        "blueprint_id": 16253, "user_id": 9, "properties_hash": {"condition": "Near Mint", "mtg_foil": False},
        "graded": False, "tag": "", "user_data_field": "A1", "uploaded_images": [], "expansion": {"id": 3},
        "some_future_key": [1, 2],
    }
    resource = {
        "id": 108455069, "quantity": 4, "bundle_size": 1, "description": "nice", "graded": 0, "game_id": 1,
        "category_id": 1, "expansion_id": 3, "blueprint_id": 16253, "user_data_field": "A1",
        "price": {"cents": 6258, "currency": "EUR"}, "properties": {"condition": "Near Mint", "mtg_foil": False},
    }
    a, b = Product.from_json(export_row), Product.from_json(resource)
    assert a.price_cents == b.price_cents == 6258
    assert a.properties == b.properties
    assert a.graded is b.graded is False
    assert (a.id, a.blueprint_id, a.quantity, a.currency, a.expansion_id) == (
        b.id, b.blueprint_id, b.quantity, b.currency, b.expansion_id)
    assert Product.from_json({**resource, "graded": 1}).graded is True


def test_product_with_a_missing_price_is_a_shape_error():
    with pytest.raises(KeyError):
        Product.from_json({"id": 1, "blueprint_id": 2, "quantity": 1})


def test_warnings_as_object_or_array():
    assert normalise_messages({}) == {}
    assert normalise_messages([]) == {}
    assert normalise_messages(["x"]) == {"base": ["x"]}
    deleted = WriteResult.from_json({"result": "ok", "warnings": [], "resource": {
        "id": 1, "blueprint_id": 2, "quantity": 0, "price": {"cents": 5, "currency": "EUR"}, "properties": {}}})
    assert deleted.warnings == {} and deleted.product is not None


def test_job_from_the_documented_example():
    job = Job.from_json({
        "uuid": "daca4458-aaaa", "state": "completed", "spawned_children": 3,
        "stats": {"ok": 1, "warning": 1, "error": 1},
        "results": [
            {"result": "warning", "job_index": 2, "product_id": 102043807,
             "warnings": {"properties": {"mtg_foil": ["Read only property mtg_foil has been ignored"]}}},
            {"result": "ok", "job_index": 0, "product_id": 101950096},
            {"result": "error", "job_index": 1, "errors": {"blueprint_id": ["Blueprint cant be blank"]}},
        ],
    })
    assert job.finished
    assert [r.index for r in job.results] == [0, 1, 2]
    assert job.results[1].errors == {"blueprint_id": ["Blueprint cant be blank"]}
    assert job.results[2].result == "warning" and job.results[2].product_id == 102043807
    with pytest.raises(ValueError):
        Job.from_json({"uuid": "u", "state": "exploded"})


def test_orders_sample_parses_with_items_and_ct0_fields():
    orders = [Order.from_json(o) for o in _sample("orders.json")]
    assert len(orders) == 20
    first = orders[0]
    assert first.state == "hub_pending" and first.via_cardtrader_zero
    assert first.items[0].product_id == 216581169 and first.items[0].hub_pending_order_id == 26062877
    assert first.items[0].seller_price.cents == 5
    assert first.raw["code"] == "20251122azwzzc"


@given(st.integers(min_value=0, max_value=10**11))
def test_cents_to_price_round_trips_exactly_through_json(cents):
    price = cents_to_price(cents)
    # What goes on the wire is the shortest repr; it must be the exact decimal of the cents.
    text = json.dumps(price)
    assert round(float(text) * 100) == cents
    whole, frac = divmod(cents, 100)
    assert float(text) == float(f"{whole}.{frac:02d}")


def test_cents_to_price_rejects_non_integers_and_negatives():
    for bad in (1.5, "100", True, None):
        with pytest.raises(TypeError):
            cents_to_price(bad)
    with pytest.raises(ValueError):
        cents_to_price(-1)


def test_product_body_keeps_false_booleans_and_converts_price():
    body = product_body({"id": 7, "price_cents": 6258, "properties": {"mtg_foil": False, "signed": False},
                         "graded": False, "description": ""})
    assert body == {"id": 7, "price": 62.58, "properties": {"mtg_foil": False, "signed": False},
                    "graded": False, "description": ""}
    assert json.dumps(body["price"]) == "62.58"


def test_product_body_refuses_unknown_fields_and_missing_required():
    with pytest.raises(ValueError, match="price"):
        product_body({"id": 7, "price": 62.58})
    with pytest.raises(ValueError, match="quantity"):
        product_body({"blueprint_id": 1, "price_cents": 1}, require=("blueprint_id", "price_cents", "quantity"))
    assert product_body({"id": 1}, strict=True)["error_mode"] == "strict"
