"""Single-product writes: CardTrader's semantics and its two response shapes."""
from __future__ import annotations

import pytest

# blueprint 6 (Ghalta, Game Night): editable condition, mtg_foil, signed, altered; fixed mtg_rarity/collector_number
GHALTA = 6


def _create(api, **fields):
    body = {"blueprint_id": GHALTA, "price": 62.58, "quantity": 1} | fields
    resp = api.post("/products", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _export(api, **params):
    resp = api.get("/products/export", params=params)
    assert resp.status_code == 200
    return {row["id"]: row for row in resp.json()}


def test_write_resource_and_export_row_have_cardtraders_two_shapes(api, sandbox_account):
    body = _create(api, quantity=3, graded=True, description="shelf A", user_data_field="loc-7",
                   properties={"condition": "Slightly Played", "mtg_foil": True})
    assert body["result"] == "ok"
    assert body["warnings"] == {}
    res = body["resource"]
    assert res["price"] == {"cents": 6258, "currency": "EUR"}  # float major units in, integer cents out
    assert res["graded"] == 1  # an integer in write responses
    assert res["properties"] == {"condition": "Slightly Played", "mtg_foil": True, "signed": False, "altered": False}
    assert "price_cents" not in res and "properties_hash" not in res
    row = _export(api)[res["id"]]
    assert row["price_cents"] == 6258 and row["price_currency"] == "EUR"
    assert row["graded"] is True  # a boolean in the export
    assert row["properties_hash"] == {"mtg_rarity": "Rare", "collector_number": "44", "condition": "Slightly Played",
                                      "mtg_foil": True, "signed": False, "altered": False}
    assert row["user_id"] == sandbox_account.user_id
    assert row["user_data_field"] == "loc-7" and row["description"] == "shelf A"
    assert "price" not in row and "properties" not in row


def test_price_is_rounded_to_cents_and_currency_is_the_accounts(control, make_api):
    shop = control.create_account(currency="USD")
    res = _create(make_api(shop.token), price=1.005)["resource"]
    assert res["price"] == {"cents": 101, "currency": "USD"}


def test_create_merges_into_an_identical_product(api):
    first = _create(api, quantity=2, properties={"condition": "Played"})["resource"]
    again = _create(api, quantity=3, properties={"condition": "Played"})["resource"]
    assert again["id"] == first["id"]
    assert again["quantity"] == 5
    other_price = _create(api, quantity=1, price=70, properties={"condition": "Played"})["resource"]
    other_props = _create(api, quantity=1, properties={"condition": "Poor"})["resource"]
    assert len({first["id"], other_price["id"], other_props["id"]}) == 3
    assert _export(api)[first["id"]]["quantity"] == 5


def test_increment_adjusts_and_deletes_at_zero(api):
    pid = _create(api, quantity=2)["resource"]["id"]
    up = api.post(f"/products/{pid}/increment", json={"delta_quantity": 3}).json()
    assert up["warnings"] == {} and up["resource"]["quantity"] == 5
    assert up["resource"]["price"]["cents"] == 6258
    down = api.post(f"/products/{pid}/increment", json={"delta_quantity": -5})
    assert down.status_code == 200
    assert pid not in _export(api)
    gone = api.put(f"/products/{pid}", json={"quantity": 1})
    assert gone.status_code == 404 and gone.json()["error_code"] == "not_found"


def test_update_sets_absolute_quantity_and_a_false_boolean_becomes_false(api):
    pid = _create(api, quantity=4, properties={"mtg_foil": True, "signed": True})["resource"]["id"]
    # omitting a property leaves it unchanged
    body = api.put(f"/products/{pid}", json={"quantity": 2, "properties": {"condition": "Played"}}).json()
    assert body["warnings"] == {}
    assert body["resource"]["quantity"] == 2
    assert body["resource"]["properties"]["mtg_foil"] is True
    # listing it as false sets it to false
    body = api.put(f"/products/{pid}", json={"price": 1.5, "properties": {"mtg_foil": False}}).json()
    props = _export(api)[pid]["properties_hash"]
    assert props["mtg_foil"] is False and props["signed"] is True and props["condition"] == "Played"
    assert body["resource"]["price"]["cents"] == 150


def test_delete_answers_warnings_as_an_array(api):
    pid = _create(api)["resource"]["id"]
    resp = api.delete(f"/products/{pid}")
    assert resp.status_code == 200
    assert resp.json()["warnings"] == []
    assert resp.json()["resource"]["id"] == pid
    assert api.delete(f"/products/{pid}").status_code == 404


def test_non_strict_replaces_invalid_values_with_defaults_and_warns(api):
    body = _create(api, properties={"condition": "Plaied", "mtg_rarity": "Mythic", "signed": "yes"})
    assert body["resource"]["properties"]["condition"] == "Near Mint"
    assert body["resource"]["properties"]["signed"] is False
    warnings = body["warnings"]["properties"]
    assert warnings["mtg_rarity"] == ["Read only property mtg_rarity has been ignored"]
    assert set(warnings) == {"condition", "signed", "mtg_rarity"}


def test_strict_mode_fails_the_item_and_writes_nothing(api):
    before = _export(api)
    resp = api.post("/products", json={"blueprint_id": GHALTA, "price": 2, "quantity": 1, "error_mode": "strict",
                                       "properties": {"condition": "Plaied"}})
    assert resp.status_code == 422
    body = resp.json()
    assert body["error_code"] == "validation_error"
    assert "condition" in body["errors"]["properties"]
    assert body["request_id"] and body["extra"]["message"]
    assert _export(api) == before
    # read-only properties are only ignored, even in strict mode
    ok = api.post("/products", json={"blueprint_id": GHALTA, "price": 2, "quantity": 1, "error_mode": "strict",
                                     "properties": {"mtg_rarity": "Common"}})
    assert ok.status_code == 200
    assert ok.json()["warnings"]["properties"]["mtg_rarity"] == ["Read only property mtg_rarity has been ignored"]


@pytest.mark.parametrize(("body", "field"), [
    ({"price": 1, "quantity": 1}, "blueprint_id"),
    ({"blueprint_id": 999_999_999, "price": 1, "quantity": 1}, "blueprint_id"),
    ({"blueprint_id": GHALTA, "quantity": 1}, "price"),
    ({"blueprint_id": GHALTA, "price": -1, "quantity": 1}, "price"),
    ({"blueprint_id": GHALTA, "price": 1, "quantity": 0}, "quantity"),
])
def test_bad_create_is_a_validation_error_with_the_field(api, body, field):
    resp = api.post("/products", json=body)
    assert resp.status_code == 422
    assert field in resp.json()["errors"]


def test_another_accounts_or_a_missing_product_is_not_found(api, control, make_api):
    other = make_api(control.create_account(name="Other").token)
    theirs = _create(other)["resource"]["id"]
    for resp in (api.put(f"/products/{theirs}", json={"quantity": 9}), api.delete(f"/products/{theirs}"),
                 api.post(f"/products/{theirs}/increment", json={"delta_quantity": 1}),
                 api.put("/products/1", json={"quantity": 9})):
        assert resp.status_code == 404
        assert set(resp.json()) == {"error_code", "errors", "extra", "request_id"}
        assert resp.json()["error_code"] == "not_found"
    assert _export(other)[theirs]["quantity"] == 1


def test_auth_is_required_on_every_route(cardtrader_sandbox):
    import requests

    for method, path in [("GET", "/info"), ("GET", "/games"), ("GET", "/products/export"), ("POST", "/products"),
                         ("GET", "/orders"), ("GET", "/jobs/x")]:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            resp = requests.request(method, cardtrader_sandbox.api_base + path, headers=headers, timeout=5)
            assert resp.status_code == 401
            assert resp.json()["error_code"] == "unauthorized"
            assert resp.json()["extra"]["message"] == "You are not authorized to access this page"


def test_bad_json_is_a_clear_400_and_a_missing_content_type_is_tolerated(api):
    assert api.post("/products", data=b"{not json").status_code == 400
    tolerated = api.post("/products", data=b'{"blueprint_id": 6, "price": 1, "quantity": 1}',
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert tolerated.status_code == 200


def test_info_names_the_app_and_its_secret(api, sandbox_account):
    assert api.get("/info").json() == {"id": sandbox_account.app_id, "name": sandbox_account.name,
                                       "shared_secret": sandbox_account.shared_secret,
                                       "user_id": sandbox_account.user_id}
