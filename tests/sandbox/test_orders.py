"""Orders as the seller sees them: sales, CardTrader Zero, transitions and cancellations."""
from __future__ import annotations

import pytest

from cardtrader_sandbox.control import SandboxControlError

EXPLANATION = "The card was damaged in storage and cannot be shipped in the stated condition."


@pytest.fixture
def stock(api):
    """Two products: 5 × A (blueprint 6), 2 × B (blueprint 7)."""
    a = api.post("/products", json={"blueprint_id": 6, "price": 3.5, "quantity": 5}).json()["resource"]["id"]
    b = api.post("/products", json={"blueprint_id": 7, "price": 1.25, "quantity": 2}).json()["resource"]["id"]
    return a, b


def _qty(api):
    return {r["id"]: r["quantity"] for r in api.get("/products/export").json()}


def test_sale_decrements_stock_and_the_seller_sees_the_buyer(api, control, sandbox_account, stock):
    a, b = stock
    order = control.sell(sandbox_account.user_id, [{"product_id": a, "quantity": 2}, {"product_id": b, "quantity": 2}])
    assert order["state"] == "paid" and order["via_cardtrader_zero"] is False and order["order_as"] == "seller"
    assert _qty(api) == {a: 3}  # B sold out: it leaves the inventory
    got = api.get(f"/orders/{order['id']}").json()
    assert got["buyer"]["username"] and "email" in got["buyer"]
    assert got["seller_subtotal"] == {"cents": 2 * 350 + 2 * 125, "currency": "EUR"}
    assert {i["product_id"]: i["quantity"] for i in got["order_items"]} == {a: 2, b: 2}
    assert all(i["hub_pending_order_id"] is None for i in got["order_items"])
    assert got["order_items"][0]["seller_price"] == {"cents": 350, "currency": "EUR"}
    assert got["paid_at"].endswith("Z")
    with pytest.raises(SandboxControlError) as err:  # can't sell more than is in stock
        control.sell(sandbox_account.user_id, [{"product_id": a, "quantity": 4}])
    assert err.value.status == 422
    assert _qty(api) == {a: 3}


def test_seller_transitions_with_errors_on_illegal_moves(api, control, sandbox_account, stock):
    a, _ = stock
    oid = control.sell(sandbox_account.user_id, [{"product_id": a, "quantity": 1}])["id"]
    assert api.put(f"/orders/{oid}/tracking_code", json={}).status_code == 422
    assert api.put(f"/orders/{oid}/tracking_code", json={"tracking_code": "RR123"}).status_code == 200
    shipped = api.put(f"/orders/{oid}/ship")
    assert shipped.status_code == 200 and shipped.json()["state"] == "sent" and shipped.json()["sent_at"]
    again = api.put(f"/orders/{oid}/ship")
    assert again.status_code == 422 and again.json()["error_code"] == "validation_error"
    short = api.put(f"/orders/{oid}/request-cancellation", json={"cancel_explanation": "too short"})
    assert short.status_code == 422
    asked = api.put(f"/orders/{oid}/request-cancellation", json={"cancel_explanation": EXPLANATION})
    assert asked.json()["state"] == "request_for_cancel"
    # the seller cannot confirm their own request
    assert api.put(f"/orders/{oid}/confirm-cancellation").status_code == 422
    assert api.put("/orders/1/ship").status_code == 404


def test_cancellation_restores_stock(api, control, sandbox_account, stock):
    a, b = stock
    first = control.sell(sandbox_account.user_id, [{"product_id": a, "quantity": 1}, {"product_id": b, "quantity": 2}])
    assert _qty(api) == {a: 4}
    canceled = control.transition_order(sandbox_account.user_id, first["id"], "canceled")
    assert canceled["state"] == "canceled" and canceled["cancelled_at"]
    assert _qty(api) == {a: 5, b: 2}  # B comes back with its own id
    with pytest.raises(SandboxControlError):
        control.transition_order(sandbox_account.user_id, first["id"], "paid")  # out of a terminal state
    # buyer asks, seller confirms over the API
    second = control.sell(sandbox_account.user_id, [{"product_id": a, "quantity": 2}])
    control.transition_order(sandbox_account.user_id, second["id"], "request_for_cancel")
    confirmed = api.put(f"/orders/{second['id']}/confirm-cancellation", json={})
    assert confirmed.status_code == 200 and confirmed.json()["state"] == "canceled"
    assert _qty(api)[a] == 5


def test_cardtrader_zero_hub_pending_then_weekly_merge(api, control, sandbox_account, stock):
    a, b = stock
    uid = sandbox_account.user_id
    one = control.sell(uid, [{"product_id": a, "quantity": 1}], via_cardtrader_zero=True)
    two = control.sell(uid, [{"product_id": b, "quantity": 1}], via_cardtrader_zero=True, presale=True)
    assert one["state"] == "hub_pending" and one["paid_at"] is None
    assert one["order_items"][0]["hub_pending_order_id"] == one["id"]
    assert two["presale"] is True
    assert _qty(api) == {a: 4, b: 1}  # decremented at hub_pending
    result = control.merge_ct0(uid)
    merged = result["merged"]
    assert merged["state"] == "paid" and merged["via_cardtrader_zero"] is True
    assert sorted(merged["cardtrader_zero_merged_order_ids"]) == sorted([one["id"], two["id"]])
    # items remember the hub_pending order that decremented them
    assert {i["hub_pending_order_id"] for i in merged["order_items"]} == {one["id"], two["id"]}
    assert all(i["hub_pending_order_id"] != merged["id"] for i in merged["order_items"])
    assert api.get(f"/orders/{one['id']}").json()["state"] == "closed"
    assert api.get(f"/orders/{two['id']}").json()["state"] == "closed"
    assert _qty(api) == {a: 4, b: 1}  # not decremented again
    assert control.merge_ct0(uid)["merged"] is None  # nothing left to merge
    # a CT0 order needs its tracking code before shipping
    assert api.put(f"/orders/{merged['id']}/ship").status_code == 422
    api.put(f"/orders/{merged['id']}/tracking_code", json={"tracking_code": "CT0-1"})
    assert api.put(f"/orders/{merged['id']}/ship").json()["state"] == "sent"


def test_order_list_filters_sort_and_pages_with_silent_defaults(api, control, sandbox_account, stock):
    a, _ = stock
    ids = [control.sell(sandbox_account.user_id, [{"product_id": a, "quantity": 1}])["id"] for _ in range(4)]
    control.transition_order(sandbox_account.user_id, ids[0], "sent")

    def listed(**params):
        resp = api.get("/orders", params=params)
        assert resp.status_code == 200
        return [o["id"] for o in resp.json()]

    assert listed() == ids[::-1]  # default date.desc
    assert listed(sort="id.asc") == ids
    assert listed(sort="bogus", limit="x", page="-3") == ids[::-1]  # bad values fall back to defaults
    assert listed(limit=2, sort="id.asc") == ids[:2]
    assert listed(limit=2, page=2, sort="id.asc") == ids[2:]
    assert listed(limit=2, page=3) == []
    assert listed(limit=500, sort="id.asc") == ids  # out of range → default 20
    assert listed(state="sent") == [ids[0]]
    assert listed(from_id=ids[1], to_id=ids[2], sort="id.asc") == [ids[2]]
    assert listed(order_as="buyer") == []
    assert listed(**{"from": "2000-01-01", "to": "2000-01-02"}) == []
