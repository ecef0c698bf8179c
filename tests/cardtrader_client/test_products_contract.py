"""Contract tests: single-product writes, prices, boolean properties, the two response shapes."""
from __future__ import annotations

import pytest

from syncops.cardtrader import NotFound, ValidationError


@pytest.fixture
def blueprint(client):
    """A real blueprint of the sandbox's fixtures with mtg_foil editable."""
    for bp in client.blueprints_export(1):
        names = {p.name for p in bp.editable_properties}
        if {"condition", "mtg_foil"} <= names:
            return bp
    pytest.fail("no MTG blueprint with condition/mtg_foil in the sandbox fixtures")


def _export(control, user_id, product_id):
    return next((p for p in control.products(user_id) if p["id"] == product_id), None)


def test_create_sends_price_as_major_units_and_reads_cents(client, control, sandbox_account, blueprint):
    result = client.create_product({"blueprint_id": blueprint.id, "price_cents": 6258, "quantity": 3,
                                    "properties": {"condition": "Near Mint", "mtg_foil": True},
                                    "user_data_field": "shelf A1"})
    p = result.product
    assert p is not None and p.price_cents == 6258 and p.quantity == 3
    assert p.currency == sandbox_account.currency
    row = _export(control, sandbox_account.user_id, p.id)
    assert row["price_cents"] == 6258 and row["user_data_field"] == "shelf A1"
    assert row["properties_hash"]["mtg_foil"] is True


def test_write_resource_and_export_row_normalise_to_the_same_product(client, blueprint):
    created = client.create_product({"blueprint_id": blueprint.id, "price_cents": 199, "quantity": 2,
                                     "properties": {"condition": "Played", "mtg_foil": False}}).product
    exported = next(client.export_products(blueprint_id=blueprint.id))
    assert exported.id == created.id
    for name in ("blueprint_id", "quantity", "price_cents", "currency", "graded", "bundle_size"):
        assert getattr(exported, name) == getattr(created, name), name
    for key in ("condition", "mtg_foil"):
        assert exported.properties[key] == created.properties[key]


def test_unfoiling_is_sent_as_false_and_reaches_cardtrader(client, control, sandbox_account, blueprint):
    pid = client.create_product({"blueprint_id": blueprint.id, "price_cents": 500, "quantity": 1,
                                 "properties": {"mtg_foil": True}}).product.id
    updated = client.update_product(pid, {"properties": {"mtg_foil": False}}).product
    assert updated.properties["mtg_foil"] is False
    assert _export(control, sandbox_account.user_id, pid)["properties_hash"]["mtg_foil"] is False


def test_update_is_absolute_and_keeps_unsent_fields(client, control, sandbox_account, blueprint):
    pid = client.create_product({"blueprint_id": blueprint.id, "price_cents": 1000, "quantity": 5,
                                 "description": "keep me"}).product.id
    result = client.update_product(pid, {"quantity": 2, "price_cents": 1})
    assert result.product.quantity == 2 and result.product.price_cents == 1
    row = _export(control, sandbox_account.user_id, pid)
    assert (row["quantity"], row["price_cents"], row["description"]) == (2, 1, "keep me")


def test_invalid_property_strict_is_a_validation_error_with_field_errors(client, control, sandbox_account,
                                                                          blueprint):
    before = control.products(sandbox_account.user_id)
    with pytest.raises(ValidationError) as err:
        client.create_product({"blueprint_id": blueprint.id, "price_cents": 100, "quantity": 1,
                               "properties": {"condition": "Plaied"}}, strict=True)
    assert err.value.status == 422
    assert err.value.field_errors and err.value.request_id
    assert control.products(sandbox_account.user_id) == before  # nothing half-written


def test_invalid_property_lenient_is_replaced_with_a_warning(client, blueprint):
    result = client.create_product({"blueprint_id": blueprint.id, "price_cents": 100, "quantity": 1,
                                    "properties": {"condition": "Plaied"}})
    assert result.warnings  # CardTrader says what it replaced
    assert result.product.properties["condition"] != "Plaied"


def test_increment_changes_quantity_and_to_zero_deletes(client, control, sandbox_account, blueprint):
    pid = client.create_product({"blueprint_id": blueprint.id, "price_cents": 100, "quantity": 3}).product.id
    assert client.increment_product(pid, -1).product.quantity == 2
    assert client.increment_product(pid, 4).product.quantity == 6
    client.increment_product(pid, -6)
    assert _export(control, sandbox_account.user_id, pid) is None
    with pytest.raises(ValueError):
        client.increment_product(pid, 0)


def test_delete_then_delete_again_is_not_found(client, control, sandbox_account, blueprint):
    pid = client.create_product({"blueprint_id": blueprint.id, "price_cents": 100, "quantity": 1}).product.id
    result = client.delete_product(pid)
    assert result.warnings == {}  # CardTrader answers [] here; normalised
    assert _export(control, sandbox_account.user_id, pid) is None
    with pytest.raises(NotFound):
        client.delete_product(pid)
    with pytest.raises(NotFound):
        client.update_product(pid, {"quantity": 1})
